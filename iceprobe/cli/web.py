"""Running an aiohttp application until SIGINT or SIGTERM, for `iceprobe serve` and
`iceprobe exporter`: listen, say where, wait, and shut down within a bound (requests in flight
get SHUTDOWN_SECONDS, never a peer's courtesy)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import click

from . import ExitCode, InternalError

if TYPE_CHECKING:
    from aiohttp import web

SHUTDOWN_SECONDS = 5.0


def serve(main: Coroutine[Any, Any, int], listen: tuple[str, int], verbose: bool) -> int:
    """Run a server's coroutine: an address that is taken or not ours is one line and exit
    2; a bug is an internal error (a traceback only with --verbose)."""
    try:
        return asyncio.run(main)
    except OSError as exc:  # the address is taken or not ours
        click.echo(f"iceprobe: error: cannot listen on {listen[0]}:{listen[1]}: "
                   f"{exc.strerror or exc}", err=True)
        return ExitCode.USAGE
    except (KeyboardInterrupt, click.Abort, click.ClickException):
        raise
    except Exception as exc:
        raise InternalError(exc, verbose) from exc


async def run_until_stopped(app: web.Application, listen: tuple[str, int],
                            announce: Callable[[str, int], None],
                            context: ssl.SSLContext | None = None,
                            on_hangup: Callable[[], object] | None = None) -> None:
    """Serve `app` on `listen` until SIGINT or SIGTERM; `announce(host, port)` once it
    listens (the host bracketed when IPv6, the port the kernel chose for port 0); SIGHUP
    calls `on_hangup` when given."""
    from aiohttp import web

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if on_hangup is not None:
        loop.add_signal_handler(signal.SIGHUP, on_hangup)
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    try:
        site = web.TCPSite(runner, listen[0], listen[1], ssl_context=context)
        await site.start()
        host, port = _bound(runner, listen)
        announce(f"[{host}]" if ":" in host else host, port)
        sys.stdout.flush()
        await stop.wait()
    finally:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(runner.cleanup(), SHUTDOWN_SECONDS + 1)


def _bound(runner: web.AppRunner, listen: tuple[str, int]) -> tuple[str, int]:
    """The address really listened on (the port the kernel chose for port 0)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return str(address[0]), int(address[1])
    return listen
