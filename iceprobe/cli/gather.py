"""`iceprobe gather`: probe STUN/TURN servers, judge what came back, show it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..constants import DEFAULT_CONCURRENCY, DEFAULT_SLOW_MS, Requirement, Scheme
from ..pipeline import ProbeSettings
from . import InternalError, cli
from .options import (
    CredentialInput,
    credential_options,
    output_options,
    require_option,
    resolve_credentials,
    server_urls,
    tls_options,
)
from .output import Output, finish, run
from .params import CheckedCommand, FiniteFloatRange

if TYPE_CHECKING:
    import asyncio

    from ..model import Credentials, ServerSpec
    from ..pipeline import Probed


@cli.command(cls=CheckedCommand)
@click.option("--stun", "stun_servers", multiple=True, metavar="URL",
              callback=server_urls("STUN", (Scheme.STUN, Scheme.STUNS)),
              help="STUN server URL (stun: or stuns:); repeatable.")
@click.option("--turn", "turn_servers", multiple=True, metavar="URL",
              callback=server_urls("TURN", (Scheme.TURN, Scheme.TURNS)),
              help="TURN server URL (turn: or turns:, ?transport=udp|tcp); repeatable.")
@credential_options
@tls_options
@click.option("--timeout", type=FiniteFloatRange(min=0, min_open=True, max=300),
              default=5.0, show_default=True, metavar="SECONDS",
              help="Time budget of the whole gathering: every probe ends by then (plus at "
                   "most 1 s to release allocations).")
@click.option("--concurrency", type=click.IntRange(1, 10000), default=DEFAULT_CONCURRENCY,
              show_default=True, metavar="N",
              help="Probes in flight at once (each holds a socket); the rest wait for a "
                   "slot within the same --timeout.")
@require_option("each: every server must yield its candidate; any: one working STUN and "
                   "one working TURN server are enough.")
@click.option("--slow-ms", type=FiniteFloatRange(min=0, min_open=True), default=DEFAULT_SLOW_MS,
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
@click.option("--turn-as-stun/--no-turn-as-stun", default=True, show_default=True,
              help="Also probe each TURN server over UDP as a STUN server (stun:host:port), "
                   "as browsers do.")
@click.option("--relay-check", is_flag=True,
              help="After gathering, prove that data flows through each working TURN server "
                   "(the check of `iceprobe relay`, with its defaults).")
@output_options
@click.pass_context
def gather(ctx: click.Context, stun_servers: tuple[ServerSpec, ...],
           turn_servers: tuple[ServerSpec, ...], credentials: CredentialInput,
           ca_file: str | None, insecure: bool, timeout: float, concurrency: int,
           require: str,
           slow_ms: float, relay_family: str, matrix: bool, ports: tuple[int, ...],
           turn_as_stun: bool, relay_check: bool, ignore: tuple[str, ...], redact: str | None,
           as_json: bool, output_path: str | None, quiet: bool, verbose: bool) -> int:
    """Gather candidates from STUN/TURN servers and explain every failure.

    \b
    Exit codes: 0 no failing verdict, 1 a failing verdict, 2 bad usage,
                3 internal error, 130 interrupted (SIGINT), 143 terminated (SIGTERM).
    """
    if not stun_servers and not turn_servers:
        raise click.UsageError("nothing to probe: give --stun URL or --turn URL", ctx=ctx)
    if ports and not matrix:
        raise click.UsageError("--port goes with --matrix", ctx=ctx)
    if relay_check and matrix:
        raise click.UsageError("--relay-check does not go with --matrix", ctx=ctx)
    if relay_check and credentials.no_auth:
        raise click.UsageError("--relay-check needs TURN credentials: it does not go with "
                               "--no-auth", ctx=ctx)
    if matrix:
        if not turn_servers:
            raise click.UsageError("--matrix needs a --turn URL to take the host from", ctx=ctx)
        from ..matrix import DEFAULT_PORTS, matrix_specs

        turn_servers = tuple(matrix_specs([s.host for s in turn_servers],
                                          [*DEFAULT_PORTS, *ports]))
        require = Requirement.ANY.value  # one way out is enough; the matrix says which
    specs = stun_servers + turn_servers
    resolved = resolve_credentials(ctx, specs, credentials)
    output = Output(ignore, redact, as_json, verbose, output_path, quiet=quiet)
    try:
        settings = ProbeSettings(timeout, Requirement(require), slow_ms, ca_file, insecure,
                                 matrix, relay_family, relay_check, concurrency,
                                 turn_as_stun and not matrix, credentials.no_auth)
        return _gather(specs, resolved, settings, output)
    except (KeyboardInterrupt, click.Abort, click.ClickException):
        raise
    except Exception as exc:
        raise InternalError(exc, verbose) from exc


def _gather(specs: tuple[ServerSpec, ...], credentials: Credentials | None,
            settings: ProbeSettings, output: Output) -> int:
    from ..numbers import plural
    from ..pipeline import judge, probe

    async def probing(stop: asyncio.Event) -> Probed:
        return await probe(specs, credentials, settings, stop)

    probed, stopped_by = run(probing, f"Probing {plural(len(specs), 'server')}…",
                             output.verbose)
    report = judge(probed, credentials, settings, output.ignore, stopped_by)
    return finish(report, output, stopped_by)


__all__ = ["gather"]
