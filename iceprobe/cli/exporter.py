"""`iceprobe exporter`: a Prometheus exporter of the fleet file's targets (iceprobe.exporter)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from . import ExitCode, cli
from .params import CheckedCommand
from .serve import listen_address

if TYPE_CHECKING:
    from ..exporter.app import Exporter

DEFAULT_LISTEN = "127.0.0.1:9642"


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
    from .web import serve

    return serve(_serve(state, listen), listen, verbose)


async def _serve(state: Exporter, listen: tuple[str, int]) -> int:
    from ..exporter.app import make_app
    from .web import run_until_stopped

    def announce(host: str, port: int) -> None:
        click.echo(f"iceprobe exporter: listening on http://{host}:{port} "
                   f"({len(state.fleet.targets)} targets from {state.fleet.path})")

    await run_until_stopped(make_app(state), listen, announce, on_hangup=state.reload)
    click.echo("iceprobe exporter: stopped", err=True)
    return ExitCode.OK

