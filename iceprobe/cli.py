"""The command line: parse, gather, judge, render, exit. Nothing else lives here.

Heavy modules (aioice through the gatherer, rich through the renderers) are imported inside
the commands, so that `--help` and `--version` start fast.
"""

from __future__ import annotations

import enum
import logging
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

import click

from . import __version__
from .model import SERVER_UNREACHABLE_CODE, Credentials, Requirement, Scheme, ServerSpec

if TYPE_CHECKING:
    from .codes import CodeInfo
from .urls import UrlError, parse_server_url

BUG_REPORT = "please report this bug with the output of --verbose"


class ExitCode(enum.IntEnum):
    OK = 0
    FAIL = 1
    USAGE = 2
    INTERNAL = 3
    INTERRUPTED = 130


class InternalError(Exception):
    """An unexpected exception inside a command, with whether to show its traceback."""

    def __init__(self, original: BaseException, verbose: bool) -> None:
        super().__init__(str(original))
        self.original = original
        self.verbose = verbose


def _server_urls(kind: str, schemes: tuple[Scheme, ...]) -> Callable[
        [click.Context, click.Parameter, Sequence[str]], tuple[ServerSpec, ...]]:
    def convert(ctx: click.Context, param: click.Parameter,
                values: Sequence[str]) -> tuple[ServerSpec, ...]:
        specs = []
        for value in values:
            try:
                spec = parse_server_url(value)
            except UrlError as exc:
                raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
            if spec.scheme not in schemes:
                raise click.BadParameter(
                    f"{value!r} is not a {kind} URL (expected "
                    f"{' or '.join(s.value + ':' for s in schemes)})", ctx=ctx, param=param)
            specs.append(spec)
        return tuple(specs)

    return convert


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="iceprobe",
                      message="%(prog)s %(version)s")
def cli() -> None:
    """iceprobe tells you why WebRTC connectivity fails.

    It gathers ICE candidates against the STUN and TURN servers you name, records every
    error event the way a browser's icecandidateerror does, and explains what it saw.
    """


def _verdict_ids(ctx: click.Context, param: click.Parameter,
                 values: Sequence[str]) -> tuple[str, ...]:
    from .rules import VERDICT_IDS

    for value in values:
        if value not in VERDICT_IDS:
            raise click.BadParameter(f"unknown verdict id {value!r} (known: "
                                     f"{', '.join(sorted(VERDICT_IDS))})", ctx=ctx, param=param)
    return tuple(values)


@cli.command()
@click.option("--stun", "stun_servers", multiple=True, metavar="URL",
              callback=_server_urls("STUN", (Scheme.STUN, Scheme.STUNS)),
              help="STUN server URL (stun: or stuns:); repeatable.")
@click.option("--turn", "turn_servers", multiple=True, metavar="URL",
              callback=_server_urls("TURN", (Scheme.TURN, Scheme.TURNS)),
              help="TURN server URL (turn: or turns:, ?transport=udp|tcp); repeatable.")
@click.option("-u", "--username", envvar="ICEPROBE_USERNAME", metavar="NAME",
              help="TURN username (env ICEPROBE_USERNAME).")
@click.option("-p", "--credential", envvar="ICEPROBE_CREDENTIAL", metavar="SECRET",
              show_envvar=False, help="TURN password (env ICEPROBE_CREDENTIAL); never printed.")
@click.option("--credential-file", type=click.Path(dir_okay=False), metavar="PATH",
              help="Read the TURN password from a file instead of -p.")
@click.option("--turn-secret", envvar="ICEPROBE_TURN_SECRET", metavar="SECRET",
              help="TURN REST API shared secret (coturn static-auth-secret; env "
                   "ICEPROBE_TURN_SECRET): makes ephemeral credentials. Never printed.")
@click.option("--turn-secret-file", type=click.Path(dir_okay=False), metavar="PATH",
              help="Read the TURN REST API shared secret from a file.")
@click.option("--turn-user", default="iceprobe", show_default=True, metavar="NAME",
              help="User part of ephemeral usernames (<expiry><separator><user>).")
@click.option("--separator", default=":", show_default=True, metavar="SEP",
              help="Separator in ephemeral usernames.")
@click.option("--ttl", type=click.IntRange(min=1, max=10 * 365 * 86400), default=3600,
              show_default=True, metavar="SECONDS", help="Lifetime of ephemeral credentials.")
@click.option("--ca-file", type=click.Path(dir_okay=False), metavar="PEM",
              callback=lambda ctx, param, value: _ca_file(ctx, param, value),
              help="Extra trust anchors for stuns:/turns: (added to the system store).")
@click.option("--insecure", is_flag=True,
              help="Do not verify TLS certificates (the report says so).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True, max=300),
              default=5.0, show_default=True, metavar="SECONDS",
              help="Time budget per server.")
@click.option("--require", type=click.Choice([r.value for r in Requirement]),
              default=Requirement.EACH.value, show_default=True,
              help="each: every server must yield its candidate; any: one working STUN and "
                   "one working TURN server are enough.")
@click.option("--ignore", multiple=True, metavar="VERDICT_ID", callback=_verdict_ids,
              help="Lower this verdict to info (still shown); repeatable.")
@click.option("--slow-ms", type=click.FloatRange(min=0, min_open=True), default=500.0,
              show_default=True, metavar="MS",
              help="A server whose first candidate takes longer is slow-server.")
@click.option("--relay-family", type=click.Choice(["ipv4", "ipv6", "both"]), default="ipv4",
              show_default=True,
              help="Relay address family to request (REQUESTED-ADDRESS-FAMILY); ipv4, as "
                   "browsers do, sends no attribute.")
@click.option("--matrix", is_flag=True,
              help="Probe each --turn host over UDP, TCP and TLS on ports 3478, 443, 5349 "
                   "(and each --port): which way out works?")
@click.option("--port", "ports", multiple=True, type=click.IntRange(1, 65535), metavar="PORT",
              help="An extra port for --matrix; repeatable.")
@click.option("--redact", type=click.Choice(["ips", "all"]), is_flag=False, flag_value="ips",
              default=None, help="Replace IP addresses in the report with placeholders "
                                 "(host-1, srflx-1, …); --redact=all hides host names too.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document to stdout.")
@click.option("-v", "--verbose", is_flag=True,
              help="Trace every transaction to stderr; show tracebacks.")
@click.pass_context
def gather(ctx: click.Context, stun_servers: tuple[ServerSpec, ...],
           turn_servers: tuple[ServerSpec, ...], username: str | None, credential: str | None,
           credential_file: str | None, turn_secret: str | None,
           turn_secret_file: str | None, turn_user: str,
           separator: str, ttl: int, ca_file: str | None, insecure: bool, timeout: float,
           require: str, ignore: tuple[str, ...], slow_ms: float, relay_family: str,
           matrix: bool,
           ports: tuple[int, ...], redact: str | None,
           as_json: bool, verbose: bool) -> int:
    """Gather candidates from STUN/TURN servers and explain every failure.

    \b
    Exit codes: 0 no failing verdict, 1 a failing verdict, 2 bad usage,
                3 internal error, 130 interrupted.
    """
    if ports and not matrix:
        raise click.UsageError("--port goes with --matrix", ctx=ctx)
    if matrix:
        if not turn_servers:
            raise click.UsageError("--matrix needs a --turn URL to take the host from", ctx=ctx)
        from .matrix import DEFAULT_PORTS, matrix_specs

        turn_servers = tuple(matrix_specs([s.host for s in turn_servers],
                                          [*DEFAULT_PORTS, *ports]))
        require = Requirement.ANY.value  # one way out is enough; the matrix says which
    specs = stun_servers + turn_servers
    if credential_file is not None:
        if credential is not None:
            raise click.UsageError("give the TURN password once: -p/--credential (or "
                                   "ICEPROBE_CREDENTIAL) or --credential-file", ctx=ctx)
        credential = _read_secret_file(ctx, "--credential-file", credential_file)
    secret = _secret(ctx, turn_secret, turn_secret_file)
    if secret is not None:
        if username is not None or credential is not None:
            raise click.UsageError("--turn-secret makes the username and credential: drop "
                                   "-u/--username and -p/--credential (use --turn-user)", ctx=ctx)
        if not separator or not turn_user or separator.isdigit():
            raise click.UsageError("--turn-user and --separator must be non-empty, and the "
                                   "separator not a digit", ctx=ctx)
        from .credentials import rest_credentials

        made = rest_credentials(secret, turn_user, ttl, separator, time.time())
        username, credential = made.username, made.password
    credentials = _credentials(ctx, specs, username, credential)
    try:
        settings = _Settings(timeout, Requirement(require), ignore, slow_ms, as_json, verbose,
                             ca_file, insecure, redact, matrix, relay_family)
        return _gather(specs, credentials, settings)
    except (KeyboardInterrupt, click.Abort):
        raise
    except Exception as exc:
        raise InternalError(exc, verbose) from exc



@cli.command()
@click.argument("code_or_text", required=False, metavar="[CODE_OR_TEXT]")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def explain(code_or_text: str | None, as_json: bool) -> int:
    """Explain a STUN/TURN/browser error code, a browser errorText or a 701 cause.

    \b
    iceprobe explain                 the whole table
    iceprobe explain 486             one code
    iceprobe explain "TURN allocate request timed out."
    iceprobe explain timeout         one of iceprobe's 701 causes
    """
    from rich.console import Console

    from . import codes
    from .render.explain import render_code_table, render_entries, render_explain_json

    if code_or_text is None:
        entries = [*codes.CODES, *codes.CAUSES_701]
    else:
        entries = _explain_entries(code_or_text)
    console = Console()
    if as_json:
        render_explain_json(entries, console)
    elif code_or_text is None:
        render_code_table(entries, console)
    else:
        render_entries(entries, console)
    return ExitCode.OK


def _explain_entries(text: str) -> list[CodeInfo]:
    from . import codes

    value = text.strip()
    if value.isdigit() and value.isascii():
        code = int(value)
        if not 0 <= code <= 999:
            raise click.BadParameter(f"{code} is not an error code (0-999)",
                                     param_hint="CODE_OR_TEXT")
        info = codes.lookup(code)
        return [info, *codes.CAUSES_701] if code == SERVER_UNREACHABLE_CODE else [info]
    found = codes.match_text(value)
    if found is None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise click.BadParameter(
            f"{shown!r} is neither a code (0-999) nor a known error text or cause; run "
            "`iceprobe explain` for the table", param_hint="CODE_OR_TEXT")
    return [found]


def _ca_file(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
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


def _secret(ctx: click.Context, secret: str | None, path: str | None) -> str | None:
    if secret is not None and path is not None:
        raise click.UsageError("give the TURN secret once: --turn-secret (or "
                               "ICEPROBE_TURN_SECRET) or --turn-secret-file", ctx=ctx)
    if path is not None:
        secret = _read_secret_file(ctx, "--turn-secret-file", path)
    if secret is not None and not secret:
        raise click.UsageError("--turn-secret is empty", ctx=ctx)
    return secret


def _credentials(ctx: click.Context, specs: Sequence[ServerSpec], username: str | None,
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
    return Credentials(username, credential)


@dataclass(frozen=True)
class _Settings:
    timeout: float
    require: Requirement
    ignore: tuple[str, ...]
    slow_ms: float
    as_json: bool
    verbose: bool
    ca_file: str | None
    insecure: bool
    redact: str | None
    matrix: bool
    relay_family: str


def _gather(specs: tuple[ServerSpec, ...], credentials: Credentials | None,
            settings: _Settings) -> int:
    import asyncio

    from rich.console import Console

    from .gather import GatherOptions, gather
    from .render import RENDERERS, OutputFormat, Report
    from .rules import Evidence, evaluate

    if settings.verbose:
        _enable_trace()
    err = Console(stderr=True)
    options = GatherOptions(timeout=settings.timeout, credentials=credentials,
                            ca_file=settings.ca_file, insecure=settings.insecure,
                            relay_families={"ipv4": (None,), "ipv6": (6,),
                                            "both": (None, 6)}[settings.relay_family])
    if err.is_terminal and not settings.verbose:
        with err.status(f"Probing {len(specs)} server(s)…", spinner="dots"):
            gathered = asyncio.run(gather(specs, options))
    else:
        gathered = asyncio.run(gather(specs, options))

    from .credentials import ephemeral_expiry

    ephemeral = ephemeral_expiry(credentials.username, time.time()) if credentials else None
    evidence = Evidence(gathered.host_candidates, gathered.results, settings.require,
                        turn_credentials=credentials is not None, slow_ms=settings.slow_ms,
                        ephemeral=ephemeral, insecure=settings.insecure, matrix=settings.matrix,
                        relay_family=settings.relay_family)
    report = Report(gathered, tuple(evaluate(evidence, settings.ignore)), settings.require,
                    matrix=settings.matrix)
    if settings.redact is not None:
        from .redact import redact

        report = redact(report, hostnames=settings.redact == "all")
    out_format = OutputFormat.JSON if settings.as_json else OutputFormat.TABLE
    RENDERERS[out_format](report, Console())
    return ExitCode.OK if report.ok else ExitCode.FAIL


def _enable_trace() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(relativeCreated)8.1f ms  %(message)s"))
    logger = logging.getLogger("iceprobe")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point: maps every outcome to an exit code and at most one line on stderr."""
    try:
        code = cli.main(args=argv, prog_name="iceprobe", standalone_mode=False)
    except click.ClickException as exc:
        click.echo(f"iceprobe: error: {exc.format_message()}", err=True)
        sys.exit(ExitCode.USAGE)
    except (KeyboardInterrupt, click.Abort):
        click.echo("iceprobe: interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except InternalError as exc:
        if exc.verbose:
            traceback.print_exception(exc.original)
        _internal(exc.original)
    except Exception as exc:
        _internal(exc)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


def _internal(exc: BaseException) -> NoReturn:
    click.echo(f"iceprobe: internal error: {type(exc).__name__}: {exc} ({BUG_REPORT})",
               err=True)
    sys.exit(ExitCode.INTERNAL)
