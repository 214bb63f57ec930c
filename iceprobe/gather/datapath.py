"""The relay data path, end to end: two aiortc peers, both relay-only through one TURN server,
connected over ICE, DTLS and SCTP, then echo messages and a bulk transfer between them.

This module and its parts (relay_state: the check in progress; relay_peers: the peers and
aiortc's insides; relay_measure: echo and bulk; turn_recorder: the peers' own TURN
transactions) are the only ones that import aiortc, and nothing imports them at start-up:
`gather` and `explain` never pay for aiortc. Like the rest of the gatherer it returns a
value for every outcome (`RelayCheck`, with the step that failed), and every await is
bounded by a deadline, closing included.

aioice handles a failed ChannelBind (e.g. 403 Forbidden IP) by passing the exception to its
protocol's `error_received`, which only logs it at DEBUG, after which ICE silently times out;
and it silently discards an answer without valid MESSAGE-INTEGRITY. The check hooks each
relay protocol of both peers to record these as events and to stop waiting at once on a 403
(relay_peers, turn_recorder).

ICE usually connects within tens of milliseconds here, but now and then only after about
half a second: a peer's first connectivity check reaches the other peer's relay before that
peer has installed its permission (its own first ChannelBind), so the relay drops it. aioice
does not resend the check when the other peer's check arrives (RFC 8445 section 7.3.1.4 says
it should), so the connection waits for its 500 ms retransmission timer. We count the checks
sent again on each relay protocol (`send_stun`) so that the report says so.

When the run is stopped, the check in progress keeps what it measured: the steps that
completed, the echoes so far and the bulk transfer so far. When the server goes away during
the check (an ICMP error, a closed connection), the step in progress fails at once.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass

from ..model import (
    Credentials,
    GatherReport,
    RelayCheck,
    RelayPair,
    RelayStep,
    ServerSpec,
)
from .relay_measure import BULK_DRAIN, bulk, echo, spread
from .relay_peers import Peer, close_peers
from .relay_state import Check, aiortc_url, until

log = logging.getLogger("iceprobe.relay")

#: Time kept back at the end of the budget for closing the peers and releasing allocations;
#: also the most the close may take.
CLOSE_RESERVE = 1.0
#: Time kept back for the echo phase.
ECHO_RESERVE = 1.0
#: How long an interrupted check may spend closing its peers (and releasing allocations).
STOP_CLOSE = 1.0


@dataclass(frozen=True)
class RelayOptions:
    """How to check: `count` echo messages of `size` bytes, a bulk transfer of `duration`
    seconds each way, all within `timeout` seconds."""

    credentials: Credentials
    timeout: float = 15.0
    count: int = 20
    size: int = 200
    duration: float = 2.0

    #: For turns: the TLS context (trust store, or verification off); None for the default.
    tls: ssl.SSLContext | None = None

    @property
    def reserve(self) -> float:
        """Time after the set-up that the later steps need."""
        return 2 * (self.duration + BULK_DRAIN) + ECHO_RESERVE + CLOSE_RESERVE


def supported(spec: ServerSpec) -> str | None:
    """Why aiortc cannot check this server, or None when it can."""
    if not spec.is_turn:
        return f"{spec.url} is not a TURN URL"
    if ":" in spec.host:
        return (f"{spec.url}: aiortc cannot reach a TURN server at an IPv6 literal; "
                "use a name with an AAAA record")
    return None


async def check_relay(spec: ServerSpec, options: RelayOptions,
                      stopping: asyncio.Event | None = None,
                      check: Check | None = None) -> RelayCheck:
    """Run the whole check against one TURN server; never raises for a network failure.
    `stopping` is set by a caller about to cancel it: the peers then close within
    STOP_CLOSE, and `check` (the caller's) holds what was measured."""
    check = check if check is not None else Check(spec, options)
    peers: list[Peer] = []
    try:
        result = await _run(check, peers)
    except Exception as exc:  # a bug or an aiortc surprise is still a value
        log.debug("! relay check crashed", exc_info=True)
        result = RelayCheck(server=spec, duration_ms=check.elapsed_ms(),
                            failed_step=RelayStep.ICE,
                            failure=f"internal error: {type(exc).__name__}: {exc}",
                            errors=tuple(check.errors))
    finally:
        await close_peers(peers, STOP_CLOSE if stopping is not None and stopping.is_set()
                          else CLOSE_RESERVE, check.turn)
    return check.with_turn(result)


def _lost(check: Check, step: RelayStep) -> str:
    lost = check.turn.lost
    how = lost.error_text if lost is not None else "the TURN server went away"
    return f"the TURN server went away during the {step.value} step: {how}"


async def _run(check: Check, peers: list[Peer]) -> RelayCheck:
    options = check.options
    a = check.peer("offerer")
    peers.append(a)
    b = check.peer("answerer")
    peers.append(b)
    result = check.result

    def broken(step: RelayStep, why: str) -> RelayCheck:
        if check.denied.is_set():
            why = ("the TURN server refused the permission to the other peer (403): "
                   "ICE checks could not pass")
        elif check.gone.is_set():
            why = _lost(check, step)
        return check.make(failed_step=step, failure=why)

    setup = options.reserve
    try:
        await asyncio.wait_for(_negotiate(check, a, b), check.remaining(setup))
    except asyncio.TimeoutError:
        return broken(RelayStep.ALLOCATE, "the peers did not get their relay candidates "
                                          "in time")
    # The pair ICE will try (each peer has one relay candidate): shown even if it fails.
    result["pair"] = _pair(check.spec, a, b)
    if result["pair"] is None:
        return broken(RelayStep.ALLOCATE, "a peer got no relay candidate although the "
                                          "allocation check just before worked: the server "
                                          "refused or dropped its Allocate (a per-user quota "
                                          "below 3 does that: the check needs one allocation "
                                          "of its own and one per peer)")
    check.step = RelayStep.ICE
    if not await until(check, [a.ice_connected, b.ice_connected], [a.failed, b.failed], setup):
        state = "failed" if a.failed.is_set() or b.failed.is_set() else "did not finish"
        return broken(RelayStep.ICE, f"ICE connectivity checks between the two relay "
                                     f"addresses {state}: no data passes the relays")
    result["ice_connected_ms"] = check.elapsed_ms()
    check.ice_done = True
    check.step = RelayStep.DTLS
    if not await until(check, [a.dtls_connected, b.dtls_connected], [a.failed, b.failed],
                       setup):
        return broken(RelayStep.DTLS, "ICE connected but the DTLS handshake over the relay "
                                      "did not complete")
    result["dtls_connected_ms"] = check.elapsed_ms()
    check.step = RelayStep.CHANNEL
    if not await until(check, [a.open, b.open], [], setup):
        return broken(RelayStep.CHANNEL, "DTLS connected but the data channel (SCTP) did not "
                                         "open")
    result["channel_open_ms"] = check.elapsed_ms()
    log.debug("  data channel open")

    check.step = RelayStep.ECHO
    sent, rtts = await echo(check, a, b, keep=2 * (options.duration + BULK_DRAIN)
                            + CLOSE_RESERVE)
    result.update(sent=sent, received=len(rtts), rtt=spread(rtts) if rtts else None)
    if check.gone.is_set() or (sent and not rtts):
        return broken(RelayStep.ECHO, f"the data channel opened but all {sent} echo messages "
                                      "were lost")
    check.step = RelayStep.BULK
    result["throughput_up_bps"] = await bulk(check, a, b, "throughput_up_bps",
                                             keep=options.duration + BULK_DRAIN
                                             + CLOSE_RESERVE)
    if not check.gone.is_set():
        result["throughput_down_bps"] = await bulk(check, b, a, "throughput_down_bps",
                                                   keep=CLOSE_RESERVE)
    if check.gone.is_set() or not result["throughput_up_bps"] \
            or not result.get("throughput_down_bps"):
        return broken(RelayStep.BULK, "echo messages passed but the bulk transfer delivered "
                                      "nothing")
    return check.make()


async def _negotiate(check: Check, a: Peer, b: Peer) -> None:
    """Offer and answer; each setLocalDescription gathers that peer's relay candidate."""
    await a.pc.setLocalDescription(await a.pc.createOffer())
    check.watch(a)
    await b.pc.setRemoteDescription(a.pc.localDescription)
    await b.pc.setLocalDescription(await b.pc.createAnswer())
    check.watch(b)
    await a.pc.setRemoteDescription(b.pc.localDescription)


def _pair(spec: ServerSpec, a: Peer, b: Peer) -> RelayPair | None:
    def relay(peer: Peer) -> tuple[str, int] | None:
        sctp = peer.pc.sctp
        if sctp is None:
            return None
        for candidate in sctp.transport.transport.iceGatherer.getLocalCandidates():
            if candidate.type == "relay":
                return str(candidate.ip), int(candidate.port)
        return None

    local, remote = relay(a), relay(b)
    if local is None or remote is None:
        return None
    return RelayPair(local=local[0], local_port=local[1], remote=remote[0],
                     remote_port=remote[1], relay_protocol=spec.transport)


async def check_relays(gathered: GatherReport, options: RelayOptions,
                       stop: asyncio.Event | None = None) -> tuple[RelayCheck, ...]:
    """A data-path check for each TURN server of a gathering run, one after the other so that
    their measurements do not disturb each other. A server whose allocation failed in the
    gathering is not tried: its verdicts already say why. When `stop` is set, the check in
    progress closes its peers (releasing their allocations) within STOP_CLOSE and the
    checks not run yet are reported as not tried."""
    checks: list[RelayCheck] = []
    for result in gathered.results:
        if stop is not None and stop.is_set():
            if result.server.is_turn:
                checks.append(_interrupted(result.server, 0.0))
            continue
        spec = result.server
        if not spec.is_turn:
            continue
        why = supported(spec)
        if why is None and not result.ok:
            why = "not tried: the allocation failed (see the error events)"
        if why is not None:
            checks.append(RelayCheck(server=spec, duration_ms=0.0, attempted=False,
                                     failed_step=RelayStep.ALLOCATE, failure=why))
            continue
        log.debug("relay check through %s", spec.url)
        checks.append(await _stoppable(spec, options, stop))
    return tuple(checks)


async def _stoppable(spec: ServerSpec, options: RelayOptions,
                     stop: asyncio.Event | None) -> RelayCheck:
    if stop is None:
        return await check_relay(spec, options)
    stopping = asyncio.Event()
    check = Check(spec, options)
    task = asyncio.ensure_future(check_relay(spec, options, stopping, check))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    stopping.set()
    task.cancel()
    await asyncio.wait({task}, timeout=STOP_CLOSE + 0.2)
    step = check.step.value
    return check.so_far(f"not finished: the run was interrupted during the {step} step "
                        "(the measurements until then are kept)")


def _interrupted(spec: ServerSpec, duration_ms: float) -> RelayCheck:
    return RelayCheck(server=spec, duration_ms=duration_ms, attempted=False,
                      failed_step=RelayStep.ALLOCATE,
                      failure="not finished: the run was interrupted")


__all__ = ["CLOSE_RESERVE", "ECHO_RESERVE", "STOP_CLOSE", "RelayOptions", "aiortc_url",
           "check_relay", "check_relays", "supported"]
