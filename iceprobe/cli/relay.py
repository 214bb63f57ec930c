"""`iceprobe relay`: prove that data flows through TURN servers, end to end, and measure it."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING

import click

from ..constants import DEFAULT_RELAY_MAX_RTT_MS, DEFAULT_RELAY_MIN_BPS, Requirement, Scheme
from . import InternalError, cli
from .options import (
    CredentialInput,
    output_options,
    relay_credential_options,
    resolve_credentials,
    server_urls,
    tls_options,
)
from .output import Output, finish, run
from .params import CheckedCommand, FiniteFloatRange

if TYPE_CHECKING:
    import asyncio

    from ..gather.datapath import RelayOptions
    from ..gather.plane import PlaneOptions
    from ..model import Credentials, GatherReport, RelayCheck, ServerSpec

#: The allocation pre-check (a plain gathering) gets at most this much of the budget.
PRECHECK_TIMEOUT = 5.0
#: The default --timeout at the default --duration and --count.
DEFAULT_TIMEOUT = 15.0
MAX_TIMEOUT = 600.0
#: Connecting (allocations, ICE, DTLS, SCTP) needs at least this; the default gives it
#: what the default --timeout leaves after the later steps at the default --duration.
MIN_CONNECT = 1.0
#: Echo time the default --timeout allows per message, beyond the fixed echo reserve.
ECHO_ALLOWANCE = 0.01


@cli.command(cls=CheckedCommand)
@click.option("--turn", "turn_servers", multiple=True, metavar="URL", required=True,
              callback=server_urls("TURN", (Scheme.TURN, Scheme.TURNS)),
              help="TURN server URL (turn: or turns:, ?transport=udp|tcp); repeatable.")
@relay_credential_options
@tls_options
@click.option("--count", type=click.IntRange(1, 10_000), default=20, show_default=True,
              metavar="N", help="Echo messages for the round-trip time and loss.")
@click.option("--size", type=click.IntRange(4, 65_535), default=200, show_default=True,
              metavar="BYTES",
              help="Size of each echo message and data-plane payload (at least 16 there).")
@click.option("--duration", type=FiniteFloatRange(min=0, min_open=True, max=60), default=2.0,
              show_default=True, metavar="SECONDS",
              help="Bulk transfer time in each direction.")
@click.option("--timeout", type=FiniteFloatRange(min=0, min_open=True, max=MAX_TIMEOUT),
              default=None, metavar="SECONDS",
              help=f"Time budget per server, every step included.  [default: "
                   f"{DEFAULT_TIMEOUT:g}, more with a longer --duration or a larger "
                   f"--count]")
@click.option("--rate", "rate_pps", type=FiniteFloatRange(min=1, max=100_000), default=50.0,
              show_default=True, metavar="PPS",
              help="TURN data plane: packets per second of each flow, for --duration.")
@click.option("--sweep", is_flag=True,
              help="TURN data plane: then an open-loop rate sweep at 64 and 1200-byte "
                   "payloads to the loss knee (a load test: your own servers only).")
@click.option("--flows", type=click.IntRange(1, 64), default=1, show_default=True,
              metavar="N", help="TURN data plane: flows, each its own 5-tuple.")
@click.option("--topology", type=click.Choice(["relay-relay", "relay-peer"]),
              default="relay-relay", show_default=True,
              help="TURN data plane: two allocations per flow, or one and a UDP socket of "
                   "this machine as the peer.")
@click.option("--webrtc/--no-webrtc", "webrtc", default=None,
              help="Only the WebRTC check (aiortc), or only the TURN data plane  "
                   "[default: both].")
@click.option("--max-rtt", type=FiniteFloatRange(min=0, min_open=True),
              default=DEFAULT_RELAY_MAX_RTT_MS, show_default=True, metavar="MS",
              help="relay-slow when the median echo round trip is above this.")
@click.option("--min-throughput", type=FiniteFloatRange(min=0),
              default=DEFAULT_RELAY_MIN_BPS / 1e6, show_default=True, metavar="MBIT/S",
              help="relay-slow when the bulk throughput either way is below this.")
@output_options
@click.pass_context
def relay(ctx: click.Context, turn_servers: tuple[ServerSpec, ...],
          credentials: CredentialInput, ca_file: str | None, insecure: bool, count: int,
          size: int, duration: float, timeout: float | None, rate_pps: float, sweep: bool,
          flows: int, topology: str, webrtc: bool | None, max_rtt: float,
          min_throughput: float, ignore: tuple[str, ...], redact: str | None, as_json: bool,
          output_path: str | None, quiet: bool, verbose: bool) -> int:
    """Prove that data flows through each TURN server, and measure it.

    For each --turn URL, after the allocation is checked as `gather` does (so bad
    credentials get the same diagnosis without a connection attempt), two measurements:

    The TURN data plane measures the server: iceprobe's own ChannelData on sockets it owns,
    --rate packets/s of --size bytes on each of --flows flows for --duration seconds, echoed
    back: round trip in microseconds, loss, reordering, duplicates, jitter, and its own CPU
    time. relay-relay crosses the server twice each way. --sweep then raises the rate until
    loss passes 1 % (the knee).

    The WebRTC check proves a call connects: two aiortc peers, both relay-only, over ICE,
    DTLS and SCTP, --count echo messages and a --duration bulk transfer each way (its
    throughput is aiortc's limit on this machine, not the server's).

    \b
    Exit codes: 0 no failing verdict, 1 a failing verdict, 2 bad usage,
                3 internal error, 130 interrupted (SIGINT), 143 terminated (SIGTERM).
    """
    from ..gather.datapath import RelayOptions, supported

    for spec in turn_servers:
        why = supported(spec)
        if why is not None:
            raise click.BadParameter(why, ctx=ctx, param_hint="--turn")
    resolved = resolve_credentials(ctx, turn_servers, credentials)
    assert resolved is not None  # a TURN URL without credentials is a usage error
    options = RelayOptions(credentials=resolved, count=count, size=size, duration=duration)
    least = options.reserve + MIN_CONNECT
    if timeout is None:
        timeout = default_timeout(options)
    elif timeout < least:
        raise click.BadParameter(
            f"{timeout:g} s leaves no time to connect: --duration {duration:g} needs "
            f"--timeout of at least {least:g} s (or leave --timeout out: its default grows "
            "with --duration)", ctx=ctx, param_hint="--timeout")
    options = dataclasses.replace(options, timeout=timeout)
    from ..gather.plane import PlaneOptions

    plane = PlaneOptions(credentials=resolved, rate_pps=rate_pps, duration=duration,
                         payload_bytes=size, flows=flows, topology=topology, sweep=sweep,
                         setup_timeout=min(PRECHECK_TIMEOUT, timeout))
    engines = Engines(plane=plane if webrtc is not True else None,
                      webrtc=webrtc is not False)
    output = Output(ignore, redact, as_json, verbose, output_path, quiet=quiet)
    try:
        return _relay(turn_servers, resolved, options, engines, ca_file, insecure, max_rtt,
                      min_throughput * 1e6, output)
    except (KeyboardInterrupt, click.Abort, click.ClickException):
        raise
    except Exception as exc:
        raise InternalError(exc, verbose) from exc


def default_timeout(options: RelayOptions) -> float:
    """--timeout when it is not given: the later steps' reserve for this --duration, echo
    time for this --count, and what the default leaves for connecting at the defaults
    (15 s at --duration 2 and --count 20), within the option's maximum."""
    from ..gather.datapath import RelayOptions

    defaults = RelayOptions(credentials=options.credentials)
    connect = DEFAULT_TIMEOUT - defaults.reserve - _echo_extra(defaults.count)
    return min(MAX_TIMEOUT, options.reserve + _echo_extra(options.count) + connect)


def _echo_extra(count: int) -> float:
    from ..gather.datapath import ECHO_RESERVE

    return max(0.0, count * ECHO_ALLOWANCE - ECHO_RESERVE)


@dataclasses.dataclass(frozen=True)
class Engines:
    """Which measurements run: the TURN data plane (with its options), the WebRTC check."""

    plane: PlaneOptions | None
    webrtc: bool


def _relay(specs: tuple[ServerSpec, ...], credentials: Credentials, options: RelayOptions,
           engines: Engines, ca_file: str | None, insecure: bool, max_rtt: float,
           min_bps: float, output: Output) -> int:
    from ..credentials import ephemeral_expiry
    from ..gather import GatherOptions, gather
    from ..gather.datapath import check_relays
    from ..gather.options import tls_context
    from ..render import Report
    from ..rules import Evidence, evaluate

    precheck = GatherOptions(timeout=min(PRECHECK_TIMEOUT, options.timeout),
                             credentials=credentials, ca_file=ca_file, insecure=insecure,
                             turn_as_stun=False)
    tls = tls_context(precheck)
    options = dataclasses.replace(options, tls=tls)
    plane = engines.plane
    if plane is not None:
        plane = dataclasses.replace(plane, tls=tls)

    started = time.monotonic()

    async def probe(stop: asyncio.Event) -> tuple[GatherReport, tuple[RelayCheck, ...]]:
        logging.getLogger("iceprobe.relay").debug(
            "time budget %g s per server (--duration %g, --count %d)", options.timeout,
            options.duration, options.count)
        gathered = await gather(specs, precheck, stop)
        checks: list[RelayCheck] = []
        # The WebRTC check first: the data plane waits out coturn's 1 s quota timer when
        # its Allocate gets a 486 (the peers' allocations, just released, may still count).
        if engines.webrtc:
            checks += await check_relays(gathered, options, stop)
        if plane is not None:
            from ..gather.plane_relays import measure_relays

            checks += await measure_relays(gathered, plane, stop)
        # Each server's measurements together, the TURN data plane first.
        order = {spec.url: index for index, spec in enumerate(specs)}
        return gathered, tuple(sorted(checks, key=lambda c: (order.get(c.server.url, 0),
                                                             c.engine != "turn")))

    from ..numbers import plural

    (gathered, relays), stopped_by = run(
        probe, f"Checking the data path through {plural(len(specs), 'TURN server')}…",
        output.verbose)
    evidence = Evidence(gathered.host_candidates, gathered.results, Requirement.EACH,
                        turn_credentials=True, insecure=insecure,
                        ephemeral=ephemeral_expiry(credentials.username, time.time()),
                        relays=relays, relay_max_rtt_ms=max_rtt, relay_min_bps=min_bps)
    report = Report(gathered, tuple(evaluate(evidence, output.ignore)), Requirement.EACH,
                    relays=relays, stopped_by=stopped_by,
                    run_ms=round((time.monotonic() - started) * 1000, 1))
    return finish(report, output, stopped_by)


__all__ = ["relay"]
