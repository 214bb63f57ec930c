"""`iceprobe exporter`: a Prometheus exporter of the fleet file's targets (iceprobe.exporter)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING

import click

from . import ExitCode, InternalError, cli
from .params import CheckedCommand
from .serve import listen_address

if TYPE_CHECKING:
    from ..exporter.app import Exporter

DEFAULT_LISTEN = "127.0.0.1:9642"
#: How long a shutdown may take: probes still running get this long to end.
SHUTDOWN_SECONDS = 5.0


@cli.command(cls=CheckedCommand)
@click.option("-c", "--config", "config_file", required=True, metavar="FILE",
              type=click.Path(dir_okay=False),
              help="The fleet file: modules, auth and targets (docs/fleet.md).")
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, metavar="HOST:PORT",
              callback=listen_address, help="Address to listen on (port 0: any free port).")
@click.option("--timeout-offset", type=click.FloatRange(0, 60), default=0.5,
              show_default=True, metavar="SECONDS",
              help="A probe gets Prometheus's scrape timeout minus this (or its module's "
                   "timeout, when smaller).")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks.")
def exporter(config_file: str, listen: tuple[str, int], timeout_offset: float,
             verbose: bool) -> int:
    """Serve Prometheus metrics of probes of the fleet file's targets.

    \b
    GET /probe?target=NAME runs one probe of a target of the fleet file and answers its
    metrics (probe_success, phase timings, probe_ice_failure_info: why it failed). A bare
    URL needs module=NAME and auth=NAME. SIGHUP or POST /-/reload reloads the file.

    \b
    Exit codes: 0 stopped by SIGINT or SIGTERM, 2 bad usage or fleet file, 3 internal error.
    """
    from prometheus_client import disable_created_metrics

    from ..exporter.app import Exporter
    from ..fleet.config import load
    from ..fleet.model import FleetError

    disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created: noise here
    environ = dict(os.environ)
    try:
        fleet = load(config_file, environ)
    except FleetError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{config_file}: {exc.strerror or exc}") from None
    state = Exporter(lambda: load(config_file, dict(os.environ)), fleet, timeout_offset)
    for warning in fleet.warnings:
        click.echo(f"iceprobe: warning: {warning}", err=True)
    try:
        return asyncio.run(_serve(state, listen))
    except OSError as exc:  # the address is taken or not ours
        click.echo(f"iceprobe: error: cannot listen on {listen[0]}:{listen[1]}: "
                   f"{exc.strerror or exc}", err=True)
        return ExitCode.USAGE
    except (KeyboardInterrupt, click.Abort, click.ClickException):
        raise
    except Exception as exc:
        raise InternalError(exc, verbose) from exc


async def _serve(state: Exporter, listen: tuple[str, int]) -> int:
    from aiohttp import web

    from ..exporter.app import make_app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, state.reload)
    runner = web.AppRunner(make_app(state), access_log=None, handle_signals=False,
                           shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    try:
        site = web.TCPSite(runner, listen[0], listen[1])
        await site.start()
        host, port = _bound(runner, listen)
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"iceprobe exporter: listening on http://{shown}:{port} "
                   f"({len(state.fleet.targets)} targets from {state.fleet.path})")
        sys.stdout.flush()
        await stop.wait()
    finally:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(runner.cleanup(), SHUTDOWN_SECONDS + 1)
    click.echo("iceprobe exporter: stopped", err=True)
    return ExitCode.OK


def _bound(runner: object, listen: tuple[str, int]) -> tuple[str, int]:
    """The address really listened on (the port the kernel chose for port 0)."""
    for address in getattr(runner, "addresses", []):
        if isinstance(address, tuple) and len(address) >= 2:
            return str(address[0]), int(address[1])
    return listen
