"""Options and checks that several commands share: server URLs, TURN credentials, TLS trust,
verdict ids and the verbose trace."""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..constants import Requirement, Scheme
from .params import EqualsValueOption

if TYPE_CHECKING:
    from ..model import Credentials, ServerSpec

F = TypeVar("F", bound=Callable[..., Any])


def server_urls(kind: str, schemes: tuple[Scheme, ...]) -> Callable[
        [click.Context, click.Parameter, Sequence[str]], tuple[ServerSpec, ...]]:
    """The callback of a repeatable URL option: each value parsed (one URL per option), and
    two spellings of the same server probed once, with a note on stderr."""
    def convert(ctx: click.Context, param: click.Parameter,
                values: Sequence[str]) -> tuple[ServerSpec, ...]:
        from ..urls import UrlError, parse_server_url

        option = param.opts[0] if param.opts else kind
        specs = []
        for value in values:
            if "," in value:
                raise click.BadParameter(
                    f"{value!r}: one URL per {option}; repeat the option "
                    f"({option} URL1 {option} URL2)", ctx=ctx, param=param)
            try:
                spec = parse_server_url(value)
            except UrlError as exc:
                raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
            if spec.scheme not in schemes:
                raise click.BadParameter(
                    f"{value!r} is not a {kind} URL (expected "
                    f"{' or '.join(s.value + ':' for s in schemes)})", ctx=ctx, param=param)
            specs.append(spec)
        unique = unique_servers(specs)
        if not ctx.resilient_parsing:  # not while completing a command line
            for note in duplicate_notes(specs):
                click.echo(f"iceprobe: note: {note}", err=True)
        return unique

    return convert


def server_key(spec: ServerSpec) -> tuple[str, str, int, str]:
    """What makes two URLs the same server: `stun:HOST` and `stun:host:3478` are one."""
    return spec.scheme.value, spec.host, spec.port, spec.transport.value


def unique_servers(specs: Sequence[ServerSpec]) -> tuple[ServerSpec, ...]:
    """Each server once, in the order first given, under its first spelling."""
    seen: dict[tuple[str, str, int, str], ServerSpec] = {}
    for spec in specs:
        seen.setdefault(server_key(spec), spec)
    return tuple(seen.values())


def duplicate_notes(specs: Sequence[ServerSpec]) -> list[str]:
    """One line for each server given more than once."""
    spellings: dict[tuple[str, str, int, str], list[str]] = {}
    for spec in specs:
        spellings.setdefault(server_key(spec), []).append(spec.url)
    notes = []
    for urls in spellings.values():
        if len(urls) < 2:
            continue
        times = "twice" if len(urls) == 2 else f"{len(urls)} times"
        distinct = list(dict.fromkeys(urls))
        spelt = f" (as {', '.join(distinct)})" if len(distinct) > 1 else ""
        notes.append(f"{urls[0]} given {times}{spelt}, probed once")
    return notes


def verdict_ids(ctx: click.Context, param: click.Parameter,
                 values: Sequence[str]) -> tuple[str, ...]:
    from ..rules import VERDICT_IDS

    for value in values:
        if value not in VERDICT_IDS:
            raise click.BadParameter(f"unknown verdict id {value!r} (known: "
                                     f"{', '.join(sorted(VERDICT_IDS))})", ctx=ctx, param=param)
    return tuple(values)




@dataclass(frozen=True)
class CredentialInput:
    """The credential options as given, before they are checked and combined."""

    username: str | None
    credential: str | None
    credential_file: str | None
    turn_secret: str | None
    turn_secret_file: str | None
    turn_user: str
    separator: str
    ttl: int
    #: --no-auth: probe TURN without credentials (an open relay is looked for).
    no_auth: bool = False


_CREDENTIAL_OPTIONS = (
    click.option("-u", "--username", envvar="ICEPROBE_USERNAME", metavar="NAME",
                 help="TURN username (env ICEPROBE_USERNAME)."),
    click.option("-p", "--credential", envvar="ICEPROBE_CREDENTIAL", metavar="SECRET",
                 show_envvar=False,
                 help="TURN password (env ICEPROBE_CREDENTIAL); never printed."),
    click.option("--credential-file", type=click.Path(dir_okay=False), metavar="PATH",
                 help="Read the TURN password from a file instead of -p."),
    click.option("--turn-secret", envvar="ICEPROBE_TURN_SECRET", metavar="SECRET",
                 help="TURN REST API shared secret (coturn static-auth-secret; env "
                      "ICEPROBE_TURN_SECRET): makes ephemeral credentials. Never printed."),
    click.option("--turn-secret-file", type=click.Path(dir_okay=False), metavar="PATH",
                 help="Read the TURN REST API shared secret from a file."),
    click.option("--turn-user", default="iceprobe", show_default=True, metavar="NAME",
                 help="User part of ephemeral usernames (<expiry><separator><user>); '' "
                      "with --separator '' makes a bare <expiry> (pion/turn's format)."),
    click.option("--separator", default=":", show_default=True, metavar="SEP",
                 help="Separator in ephemeral usernames."),
    None,  # --ttl, whose default depends on the command (_ttl_option)
    click.option("--no-auth", is_flag=True,
                 help="Probe TURN servers without credentials (is it an open relay?); not "
                      "with -u, -p or --turn-secret."),
)
_CREDENTIAL_KEYS = ("username", "credential", "credential_file", "turn_secret",
                    "turn_secret_file", "turn_user", "separator", "ttl", "no_auth")


def _ttl_option(default: int, help_text: str) -> Callable[[F], F]:
    return click.option("--ttl", type=click.IntRange(min=1, max=10 * 365 * 86400),
                        default=default, show_default=True, metavar="SECONDS", help=help_text)


def _credential_decorator(with_no_auth: bool, ttl: int = 3600,
                          ttl_help: str = "Lifetime of ephemeral credentials."
                          ) -> Callable[[F], F]:
    options = tuple(_ttl_option(ttl, ttl_help) if option is None else option
                    for option in _CREDENTIAL_OPTIONS)
    options = options if with_no_auth else options[:-1]
    keys = _CREDENTIAL_KEYS if with_no_auth else _CREDENTIAL_KEYS[:-1]

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = CredentialInput(**{key: kwargs.pop(key) for key in keys})
            return command(*args, credentials=given, **kwargs)

        decorated: Callable[..., Any] = wrapper
        for option in reversed(options):
            decorated = option(decorated)
        return decorated  # type: ignore[return-value]

    return decorate


#: Add the TURN credential options (and --no-auth); the command receives them as one
#: `credentials` argument (a `CredentialInput`).
credential_options = _credential_decorator(with_no_auth=True)
#: The same without --no-auth, for `relay`: its two peers need credentials.
relay_credential_options = _credential_decorator(with_no_auth=False)
#: For `serve`: credentials handed to each page load, ephemeral ones for 10 minutes.
serve_credential_options = _credential_decorator(
    with_no_auth=False, ttl=600,
    ttl_help="Lifetime of the ephemeral credentials minted for each page load.")


def rest_secret(ctx: click.Context, given: CredentialInput) -> str | None:
    """The TURN REST API secret of --turn-secret or --turn-secret-file (checked as
    `resolve_credentials` checks it), or None; for a command that mints credentials later
    and more than once (`serve`)."""
    return _secret(ctx, given.turn_secret, given.turn_secret_file)


def require_option(help_text: str) -> Callable[[F], F]:
    """--require each|any, with the command's own wording of what each means."""
    return click.option("--require", type=click.Choice([r.value for r in Requirement]),
                        default=Requirement.EACH.value, show_default=True, help=help_text)


def tls_options(command: F) -> F:
    command = click.option("--insecure", is_flag=True,
                           help="Do not verify TLS certificates (the report says so).")(command)
    return click.option(
        "--ca-file", type=click.Path(dir_okay=False), metavar="PEM",
        callback=lambda ctx, param, value: ca_file(ctx, param, value),
        help="Extra trust anchors for stuns:/turns: (added to the system store).")(command)


def output_file(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--output: a file in an existing, writable directory (checked before any probing)."""
    if value is None or ctx.resilient_parsing:
        return value
    if not value or os.path.isdir(value):
        raise click.BadParameter(f"{value!r} is a directory, not a file", ctx=ctx,
                                 param=param)
    directory = os.path.dirname(os.path.abspath(value))
    if not os.path.isdir(directory):
        raise click.BadParameter(f"{value!r}: no such directory {directory!r}", ctx=ctx,
                                 param=param)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise click.BadParameter(f"{value!r}: directory {directory!r} is not writable",
                                 ctx=ctx, param=param)
    return value


def output_options(command: F) -> F:
    """--ignore, --redact, --json, --output, --quiet and --verbose, in that order in the
    help."""
    for option in reversed((
        click.option("--ignore", multiple=True, metavar="VERDICT_ID", callback=verdict_ids,
                     help="Lower this verdict to info (still shown); repeatable."),
        click.option("--redact", cls=EqualsValueOption, bare_value="ips",
                     type=click.Choice(["ips", "all"]), default=None,
                     help="Replace IP addresses in the report with placeholders (host-1, "
                          "srflx-1, …); --redact=all hides host names too. The value "
                          "needs '=': a bare --redact is --redact=ips."),
        click.option("--json", "as_json", is_flag=True,
                     help="Print one JSON document (to stdout, or to --output FILE)."),
        click.option("-o", "--output", "output_path", metavar="FILE", callback=output_file,
                     type=click.Path(dir_okay=False),
                     help="Write the report (table or JSON) to FILE instead of stdout; "
                          "written whole or not at all."),
        click.option("-q", "--quiet", is_flag=True,
                     help="Show only the summary line and the causes (not with --json, "
                          "which is always the whole document)."),
        click.option("-v", "--verbose", is_flag=True,
                     help="Trace every transaction to stderr; list every error event and "
                          "grouped URL in the report; show tracebacks."),
    )):
        command = option(command)
    return command


def resolve_credentials(ctx: click.Context, specs: Sequence[ServerSpec],
                        given: CredentialInput) -> Credentials | None:
    """Long-term credentials from -u/-p, --credential-file or a REST secret; a usage error
    for any inconsistent or empty combination, and for a TURN URL without credentials
    unless --no-auth asks for exactly that (then None)."""
    if given.no_auth:
        named = [name for name, value in (
            ("-u/--username (or ICEPROBE_USERNAME)", given.username),
            ("-p/--credential (or ICEPROBE_CREDENTIAL)", given.credential),
            ("--credential-file", given.credential_file),
            ("--turn-secret (or ICEPROBE_TURN_SECRET)", given.turn_secret),
            ("--turn-secret-file", given.turn_secret_file)) if value is not None]
        if named:
            raise click.UsageError(f"--no-auth probes TURN without credentials: drop "
                                   f"{', '.join(named)}", ctx=ctx)
        return None
    username, credential = given.username, given.credential
    if given.credential_file is not None:
        if credential is not None:
            raise click.UsageError("give the TURN password once: -p/--credential (or "
                                   "ICEPROBE_CREDENTIAL) or --credential-file", ctx=ctx)
        credential = _read_secret_file(ctx, "--credential-file", given.credential_file)
    secret = _secret(ctx, given.turn_secret, given.turn_secret_file)
    if secret is not None:
        if username is not None or credential is not None:
            raise click.UsageError("--turn-secret makes the username and credential: drop "
                                   "-u/--username and -p/--credential (use --turn-user)",
                                   ctx=ctx)
        bare_expiry = given.turn_user == "" and given.separator == ""
        if not bare_expiry and (not given.separator or not given.turn_user
                                or given.separator.isdigit()):
            raise click.UsageError("--turn-user and --separator must be non-empty, and the "
                                   "separator not a digit; or both '' for a username that "
                                   "is a bare expiry (pion/turn's format)", ctx=ctx)
        from ..credentials import rest_credentials

        made = rest_credentials(secret, given.turn_user, given.ttl, given.separator,
                                time.time())
        username, credential = made.username, made.password
    return _require_credentials(ctx, specs, username, credential)


def ca_file(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    import ssl

    try:
        ssl.create_default_context().load_verify_locations(cafile=value)
    except ssl.SSLError:  # before OSError, of which it is a subclass
        raise click.BadParameter(f"{value!r} holds no PEM certificate", ctx=ctx,
                                 param=param) from None
    except OSError as exc:
        raise click.BadParameter(f"{value!r}: {exc.strerror or exc}", ctx=ctx,
                                 param=param) from None
    return value


def _read_secret_file(ctx: click.Context, option: str, path: str) -> str:
    """A secret from a file, without its line ending; never echoes the content."""
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read().strip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
        raise click.UsageError(f"{option} {path!r}: {reason}", ctx=ctx) from None
    if not value:
        raise click.UsageError(f"{option} {path!r} is empty", ctx=ctx)
    return value


#: A secret (a password, an admin token) from a file: a usage error when it cannot be read.
read_secret_file = _read_secret_file


def _secret(ctx: click.Context, secret: str | None, path: str | None) -> str | None:
    if secret is not None and path is not None:
        raise click.UsageError("give the TURN secret once: --turn-secret (or "
                               "ICEPROBE_TURN_SECRET) or --turn-secret-file", ctx=ctx)
    if path is not None:
        secret = _read_secret_file(ctx, "--turn-secret-file", path)
    if secret is not None and not secret:
        raise click.UsageError("--turn-secret is empty", ctx=ctx)
    return secret


def _require_credentials(ctx: click.Context, specs: Sequence[ServerSpec], username: str | None,
                 credential: str | None) -> Credentials | None:
    needs = [s.url for s in specs if s.is_turn]
    if username is not None and not username.strip():
        raise click.UsageError("-u/--username is empty", ctx=ctx)
    if credential is not None and credential == "":
        raise click.UsageError("-p/--credential is empty", ctx=ctx)
    if needs and (username is None or credential is None):
        missing = "-u/--username" if username is None else "-p/--credential"
        raise click.UsageError(f"turn-credentials-missing: {needs[0]} needs TURN credentials: "
                               f"give {missing} (or ICEPROBE_USERNAME / ICEPROBE_CREDENTIAL)",
                               ctx=ctx)
    if username is None or credential is None:
        return None
    from ..model import Credentials

    return Credentials(username, credential)



def enable_trace() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(relativeCreated)8.1f ms  %(message)s"))
    logger = logging.getLogger("iceprobe")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    # The libraries' own warnings, hidden otherwise, belong in the trace.
    libraries = logging.StreamHandler(sys.stderr)
    libraries.setFormatter(logging.Formatter("%(relativeCreated)8.1f ms  %(name)s: %(message)s"))
    libraries.setLevel(logging.WARNING)
    for name in ("aioice", "aiortc", "asyncio"):
        logging.getLogger(name).addHandler(libraries)


