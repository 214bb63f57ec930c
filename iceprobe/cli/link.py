"""`iceprobe link`: ask a running `iceprobe serve` for a test link (POST /admin/links)."""

from __future__ import annotations

import click

from . import ExitCode, cli
from .options import read_secret_file
from .params import CheckedCommand

TIMEOUT_SECONDS = 10.0


def duration(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from ..serve.app import MAX_LINK_SECONDS, parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    if seconds > MAX_LINK_SECONDS:
        raise click.BadParameter(f"{value!r} is more than a year", ctx=ctx, param=param)
    return seconds


@cli.command(cls=CheckedCommand)
@click.option("--server", required=True, metavar="URL",
              help="The running `iceprobe serve` (such as http://127.0.0.1:8478).")
@click.option("--admin-token-file", required=True, type=click.Path(dir_okay=False),
              metavar="PATH", help="File holding the server's admin token.")
@click.option("--label", required=True, metavar="TEXT",
              help="What the results of this link are filed under (a ticket number).")
@click.option("--expires", default="24h", show_default=True, callback=duration,
              metavar="DURATION", help="How long the link works: 30m, 24h, 7d, seconds.")
@click.option("--ca-file", type=click.Path(dir_okay=False, exists=True), metavar="PEM",
              help="Trust anchors for an https --server with a private CA.")
@click.pass_context
def link(ctx: click.Context, server: str, admin_token_file: str, label: str, expires: int,
         ca_file: str | None) -> int:
    """Make a test link on a running `iceprobe serve`; prints the URL.

    \b
    The URL is the only line on stdout. Exit codes: 0 made, 1 the server refused or
    could not be reached (one line on stderr), 2 bad usage.
    """
    import json
    import ssl
    import urllib.error
    import urllib.request

    if not server.startswith(("http://", "https://")):
        raise click.UsageError(f"--server {server!r}: expected an http:// or https:// URL",
                               ctx=ctx)
    if not label.strip():
        raise click.UsageError("--label is empty", ctx=ctx)
    token = read_secret_file(ctx, "--admin-token-file", admin_token_file)
    request = urllib.request.Request(
        server.rstrip("/") + "/admin/links", method="POST",
        data=json.dumps({"label": label, "expires_in": expires}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS,
                                    context=context) as answer:
            url = json.loads(answer.read(65536))["url"]
    except urllib.error.HTTPError as exc:
        click.echo(f"iceprobe: error: {server} refused: {exc.code} {_reason(exc)}", err=True)
        return ExitCode.FAIL
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        click.echo(f"iceprobe: error: cannot reach {server}: {reason}", err=True)
        return ExitCode.FAIL
    except (ValueError, KeyError, TypeError):
        click.echo(f"iceprobe: error: {server} is not an iceprobe serve (no link in its "
                   "answer)", err=True)
        return ExitCode.FAIL
    click.echo(url)
    return ExitCode.OK


def _reason(error: object) -> str:
    import json

    try:
        body = error.read(4096)  # type: ignore[attr-defined]
        return str(json.loads(body)["error"])
    except Exception:
        return str(getattr(error, "reason", ""))
