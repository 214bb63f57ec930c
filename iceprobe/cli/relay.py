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
              metavar="BYTES", help="Size of each echo message.")
@click.option("--duration", type=FiniteFloatRange(min=0, min_open=True, max=60), default=2.0,
              show_default=True, metavar="SECONDS",
              help="Bulk transfer time in each direction.")
@click.option("--timeout", type=FiniteFloatRange(min=0, min_open=True, max=MAX_TIMEOUT),
              default=None, metavar="SECONDS",
              help=f"Time budget per server, every step included.  [default: "
                   f"{DEFAULT_TIMEOUT:g}, more with a longer --duration or a larger "
                   f"--count]")
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
          size: int, duration: float, timeout: float | None, max_rtt: float,
          min_throughput: float, ignore: tuple[str, ...], redact: str | None, as_json: bool,
          output_path: str | None, quiet: bool, verbose: bool) -> int:
    """Prove that data flows through each TURN server, and measure it.

    For each --turn URL, two WebRTC peers in this process, both relay-only through that
    server, connect over ICE, DTLS and SCTP and open a data channel; iceprobe then measures
    the time to connect, the round-trip time and loss of --count echo messages, and the
    throughput of a --duration bulk transfer each way. The allocation is checked first,
    as `gather` does, so bad credentials get the same diagnosis without a connection attempt.

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
    output = Output(ignore, redact, as_json, verbose, output_path, quiet=quiet)
    try:
        return _relay(turn_servers, resolved, options, ca_file, insecure, max_rtt,
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


def _relay(specs: tuple[ServerSpec, ...], credentials: Credentials, options: RelayOptions,
           ca_file: str | None, insecure: bool, max_rtt: float, min_bps: float,
           output: Output) -> int:
    from ..credentials import ephemeral_expiry
    from ..gather import GatherOptions, gather
    from ..gather.datapath import check_relays
    from ..gather.options import tls_context
    from ..render import Report
    from ..rules import Evidence, evaluate

    precheck = GatherOptions(timeout=min(PRECHECK_TIMEOUT, options.timeout),
                             credentials=credentials, ca_file=ca_file, insecure=insecure,
                             turn_as_stun=False)
    options = dataclasses.replace(options, tls=tls_context(precheck))

    started = time.monotonic()

    async def probe(stop: asyncio.Event) -> tuple[GatherReport, tuple[RelayCheck, ...]]:
        logging.getLogger("iceprobe.relay").debug(
            "time budget %g s per server (--duration %g, --count %d)", options.timeout,
            options.duration, options.count)
        gathered = await gather(specs, precheck, stop)
        return gathered, await check_relays(gathered, options, stop)

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
