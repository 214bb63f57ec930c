"""`iceprobe capacity`: a load test of the user's own TURN server (how many allocations, how
fast), stopping at the first 486 or 508 and releasing every allocation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..constants import Scheme
from . import InternalError, cli
from .options import (
    CredentialInput,
    credential_options,
    resolve_credentials,
    server_urls,
    tls_options,
)
from .output import run
from .params import CheckedCommand, FiniteFloatRange

if TYPE_CHECKING:
    import asyncio

    from ..capacity_model import CapacityResult
    from ..gather.capacity import CapacityOptions
    from ..model import ServerSpec

#: The most --max-allocations may ask for (iceprobe.capacity_model.MAX_ALLOCATIONS, kept
#: here too so that --help does not import the model).
MAX_ALLOCATIONS = 100


def _max_allocations(ctx: click.Context, param: click.Parameter, value: int | None
                     ) -> int | None:
    if value is None or ctx.resilient_parsing:
        return value
    if value < 1:
        raise click.BadParameter(f"{value} is not a number of allocations (at least 1)",
                                 ctx=ctx, param=param)
    if value > MAX_ALLOCATIONS:
        raise click.BadParameter(
            f"{value} is more than {MAX_ALLOCATIONS}: this load test never tries to fill "
            "a server's relay port range", ctx=ctx, param=param)
    return value


def _one_server(ctx: click.Context, param: click.Parameter, value: str
                ) -> ServerSpec:
    [spec] = server_urls("TURN", (Scheme.TURN, Scheme.TURNS))(ctx, param, [value])
    return spec


@cli.command(cls=CheckedCommand)
@click.option("--turn", "turn_server", metavar="URL", required=True, callback=_one_server,
              help="The TURN server to load (turn: or turns:, ?transport=udp|tcp).")
@click.option("--max-allocations", type=int, required=True, metavar="N",
              callback=_max_allocations,
              help=f"Allocate at most N relays: 1 to {MAX_ALLOCATIONS}, no default.")
@credential_options
@tls_options
@click.option("--timeout", type=FiniteFloatRange(min=0, min_open=True, max=60), default=5.0,
              show_default=True, metavar="SECONDS",
              help="Budget of each allocation (challenge and Allocate, retransmissions "
                   "included).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("-v", "--verbose", is_flag=True,
              help="Trace every transaction to stderr; show tracebacks.")
@click.pass_context
def capacity(ctx: click.Context, turn_server: ServerSpec, max_allocations: int,
             credentials: CredentialInput, ca_file: str | None, insecure: bool,
             timeout: float, as_json: bool, verbose: bool) -> int:
    """Load-test your own TURN server: how many allocations, how fast.

    A load test: run it only against TURN servers you operate. It sends pipelined Allocates
    (10 in flight), each from a local port of its own, up to --max-allocations, and reports
    the allocations per second and the Allocate latency (p50, p99). It stops at the first
    error, such as 486 Allocation Quota Reached (the user's quota) or 508 Insufficient
    Capacity (the server's), and reports how many allocations were granted before it. It
    never tries to fill the server's relay port range. Every allocation is released
    (Refresh, lifetime 0) before it exits, also on Ctrl-C or SIGTERM.

    \b
    Exit codes: 0 reached --max-allocations with no error, 1 stopped by an error
                (486, 508 or another: a finding), 2 bad usage, 3 internal error,
                130 interrupted (SIGINT), 143 terminated (SIGTERM).
    """
    resolved = resolve_credentials(ctx, (turn_server,), credentials)
    from ..gather.capacity import CapacityOptions

    options = CapacityOptions(max_allocations=max_allocations, credentials=resolved,
                              timeout=timeout, ca_file=ca_file, insecure=insecure)
    try:
        return _capacity(turn_server, options, as_json, verbose)
    except (KeyboardInterrupt, click.Abort, click.ClickException):
        raise
    except Exception as exc:
        raise InternalError(exc, verbose) from exc


def _capacity(spec: ServerSpec, options: CapacityOptions, as_json: bool, verbose: bool) -> int:
    import signal

    from ..gather.capacity import measure_capacity
    from .output import report_stream

    async def probe(stop: asyncio.Event) -> CapacityResult:
        return await measure_capacity(spec, options, stop)

    result, stopped_by = run(probe, f"Allocating up to {options.max_allocations} relays on "
                                    f"{spec.url}…", verbose)
    with report_stream(None) as stream:
        if as_json:
            from ..render.capacity_json import render_capacity_json

            render_capacity_json(result, stream)
        else:
            from rich.console import Console

            from ..render.capacity import render_capacity_table

            render_capacity_table(result, Console(file=stream))
    if stopped_by is not None:
        click.echo(f"iceprobe: interrupted ({signal.Signals(stopped_by).name}): "
                   f"{result.released} of {result.allocations_ok} allocations released",
                   err=True)
    return result.exit_code(stopped_by)


__all__ = ["capacity"]
