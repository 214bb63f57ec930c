"""`iceprobe serve`: serve test links that customers open in their own browser, and store
what their browsers recorded, judged by the rules of `analyze`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..constants import Scheme
from . import ExitCode, cli
from .options import (
    CredentialInput,
    read_secret_file,
    resolve_credentials,
    rest_secret,
    serve_credential_options,
)
from .options import server_urls as server_urls_option
from .params import CheckedCommand

if TYPE_CHECKING:
    import ssl

    from ..model import ServerSpec
    from ..serve.app import ServeConfig
    from ..serve.store import Store

DEFAULT_LISTEN = "127.0.0.1:8478"


def listen_address(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"{value!r} is not HOST:PORT (such as {DEFAULT_LISTEN})",
                                 ctx=ctx, param=param)
    return host, int(port)


def public_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query \
            or parts.fragment:
        raise click.BadParameter(f"{value!r} is not an http(s) URL without query "
                                 "(such as https://probe.example.com)", ctx=ctx, param=param)
    return value.rstrip("/")


@cli.command(cls=CheckedCommand)
@click.option("--stun", "stun_servers", multiple=True, metavar="URL",
              callback=server_urls_option("STUN", (Scheme.STUN, Scheme.STUNS)),
              help="STUN server URL the page tests (stun: or stuns:); repeatable.")
@click.option("--turn", "turn_servers", multiple=True, metavar="URL",
              callback=server_urls_option("TURN", (Scheme.TURN, Scheme.TURNS)),
              help="TURN server URL the page tests (turn: or turns:, ?transport=udp|tcp); "
                   "repeatable.")
@serve_credential_options
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, metavar="HOST:PORT",
              callback=listen_address, help="Address to listen on (port 0: any free port).")
@click.option("--public-url", metavar="URL", callback=public_url,
              help="Base of the links it makes, when it runs behind a reverse proxy "
                   "(such as https://probe.example.com).")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), metavar="PEM",
              help="Serve HTTPS with this certificate (chain); needs --tls-key.")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), metavar="PEM",
              help="The private key of --tls-cert.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), metavar="PATH",
              help="SQLite database of the results (default: "
                   "$XDG_DATA_HOME/iceprobe/results.db).")
@click.option("--deadline", type=click.IntRange(1, 60), default=8, show_default=True,
              metavar="SECONDS",
              help="A server that yields nothing within this is reported as unreachable.")
@click.option("--admin-token-file", type=click.Path(dir_okay=False), metavar="PATH",
              help="Read the admin token from a file (else one is made and printed).")
@click.option("--max-upload", type=click.IntRange(1024, 64 * 2**20), default=2**20,
              show_default=True, metavar="BYTES", help="Largest recording accepted.")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks.")
@click.pass_context
def serve(ctx: click.Context, stun_servers: tuple[ServerSpec, ...],
          turn_servers: tuple[ServerSpec, ...], credentials: CredentialInput,
          listen: tuple[str, int], public_url: str | None, tls_cert: str | None,
          tls_key: str | None, db_path: str | None, deadline: int,
          admin_token_file: str | None, max_upload: int, verbose: bool) -> int:
    """Serve test links that customers open in their own browser.

    \b
    The page gathers against the --stun and --turn servers from the customer's network,
    shows a plain-language result, and uploads the recording; it is judged by the rules of
    `analyze` and stored (`iceprobe results`). Make links with `iceprobe link` or on /admin.

    \b
    Exit codes: 0 stopped by SIGINT or SIGTERM, 2 bad usage, 3 internal error.
    """
    from ..serve.app import RestSecret, ServeConfig, new_admin_token
    from ..serve.store import Store, StoreError, default_path

    specs = stun_servers + turn_servers
    if not specs:
        raise click.UsageError("nothing to test: give --stun URL or --turn URL", ctx=ctx)
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together", ctx=ctx)
    secret = rest_secret(ctx, credentials)
    static = resolve_credentials(ctx, specs, credentials)  # checks every combination
    rest = None if secret is None else RestSecret(secret, credentials.turn_user,
                                                   credentials.separator, credentials.ttl)
    if admin_token_file is not None:
        token, printed = read_secret_file(ctx, "--admin-token-file", admin_token_file), False
    else:
        token, printed = new_admin_token(), True
    context = _tls(ctx, tls_cert, tls_key)
    try:
        store = Store(db_path or default_path())
    except StoreError as exc:
        raise click.UsageError(f"--db: {exc}", ctx=ctx) from None
    if rest is None and static is not None:
        click.echo("iceprobe: warning: static TURN credentials: every customer who opens a "
                   "link sees them (use --turn-secret for ephemeral ones)", err=True)
    config = ServeConfig(specs, token, static=None if rest else static, rest=rest,
                         deadline_ms=deadline * 1000, public_url=public_url,
                         max_upload=max_upload)
    from .web import serve as run_server

    try:
        return run_server(_serve(config, store, listen, context, printed), listen, verbose)
    finally:
        store.close()


def _tls(ctx: click.Context, cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if cert is None or key is None:
        return None
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise click.UsageError(f"--tls-cert/--tls-key: {exc}", ctx=ctx) from None
    return context


async def _serve(config: ServeConfig, store: Store, listen: tuple[str, int],
                 context: ssl.SSLContext | None, print_token: bool) -> int:
    from ..serve.app import make_app
    from .web import run_until_stopped

    def announce(host: str, port: int) -> None:
        scheme = "https" if context else "http"
        base = config.public_url or f"{scheme}://{host}:{port}"
        click.echo(f"iceprobe serve: listening on {scheme}://{host}:{port}")
        click.echo(f"iceprobe serve: admin pages at {base}/admin")
        if print_token:
            click.echo(f"iceprobe serve: admin token {config.admin_token}")
        click.echo(f"iceprobe serve: results in {store.path}")

    await run_until_stopped(make_app(config, store), listen, announce, context)
    click.echo("iceprobe serve: stopped", err=True)
    return ExitCode.OK

