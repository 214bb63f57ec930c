"""The relay data path, end to end: two aiortc peers, both relay-only through one TURN server,
connected over ICE, DTLS and SCTP, then echo messages and a bulk transfer between them.

This is the only module that imports aiortc, and nothing imports it at start-up: `gather` and
`explain` never pay for aiortc. Like the rest of the gatherer it returns a value for every
outcome (`RelayCheck`, with the step that failed), and every await is bounded by a deadline.

aioice handles a failed ChannelBind (e.g. 403 Forbidden IP) by passing the exception to its
protocol's `error_received`, which only logs it at DEBUG, after which ICE silently times out.
We replace that handler on each relay protocol of both peers to record the error as an event
and stop waiting at once.

ICE usually connects within tens of milliseconds here, but now and then only after about
half a second: a peer's first connectivity check reaches the other peer's relay before that
peer has installed its permission (its own first ChannelBind), so the relay drops it. aioice
does not resend the check when the other peer's check arrives (RFC 8445 section 7.3.1.4 says
it should), so the connection waits for its 500 ms retransmission timer. We count the checks
sent again on each relay protocol (`send_stun`) so that the report says so.

When the run is stopped, the check in progress keeps what it measured: the steps that
completed, the echoes so far and the bulk transfer so far.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import statistics
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
)
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from ..model import (
    Cause,
    Credentials,
    ErrorEvent,
    GatherReport,
    RelayCheck,
    RelayPair,
    RelayStep,
    Scheme,
    ServerSpec,
    Spread,
    Transport,
)

log = logging.getLogger("iceprobe.relay")

#: Time kept back at the end of the budget for closing the peers and releasing allocations.
CLOSE_RESERVE = 1.0
#: Time kept back for the echo phase.
ECHO_RESERVE = 1.0
#: Longest wait for one echo before it counts as lost.
ECHO_WAIT = 1.0
#: Bulk transfer: message size, and how much may wait in the SCTP send buffer.
BULK_CHUNK = 16 * 1024
BULK_BUFFER = 1024 * 1024
#: After the sending window, how long the receiver may still drain.
BULK_DRAIN = 1.0

_ECHO_ID, _BULK_ID = 1, 2


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


def aiortc_url(spec: ServerSpec) -> str:
    """The URL in the form aiortc's parser accepts (no IPv6 literal, explicit transport)."""
    transport = "tcp" if spec.transport is not Transport.UDP else "udp"
    return f"{spec.scheme.value}:{spec.host}:{spec.port}?transport={transport}"


def supported(spec: ServerSpec) -> str | None:
    """Why aiortc cannot check this server, or None when it can."""
    if not spec.is_turn:
        return f"{spec.url} is not a TURN URL"
    if ":" in spec.host:
        return (f"{spec.url}: aiortc cannot reach a TURN server at an IPv6 literal; "
                "use a name with an AAAA record")
    return None


@dataclass
class _Peer:
    """One side: its peer connection, its channels and what happened to it, in ms from the
    start of the check."""

    name: str
    pc: RTCPeerConnection
    echo: RTCDataChannel
    bulk: RTCDataChannel
    ice_connected: asyncio.Event = field(default_factory=asyncio.Event)
    dtls_connected: asyncio.Event = field(default_factory=asyncio.Event)
    open: asyncio.Event = field(default_factory=asyncio.Event)
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    ice_state: str = "new"
    connection_state: str = "new"
    bulk_bytes: int = 0
    bulk_last: float = 0.0


@dataclass
class _Bulk:
    """A bulk transfer in progress: which way, who receives and since when."""

    field: str
    receiver: _Peer
    started: float


class _Check:
    def __init__(self, spec: ServerSpec, options: RelayOptions) -> None:
        self.spec = spec
        self.options = options
        self.start = time.monotonic()
        self.deadline = self.start + options.timeout
        self.errors: list[ErrorEvent] = []
        self.denied = asyncio.Event()
        self.marks: dict[str, float] = {}
        #: What has been measured so far (RelayCheck fields), and the step under way.
        self.result: dict[str, Any] = {}
        self.step = RelayStep.ALLOCATE
        self.sent = 0
        self.rtts: list[float] = []
        self.bulk: _Bulk | None = None
        #: ICE checks: sends per transaction id, and when one went out again (ms).
        self.check_sends: dict[bytes, int] = {}
        self.retransmitted_ms: list[float] = []
        self.ice_done = False

    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.start) * 1000, 1)

    def remaining(self, keep: float = 0.0) -> float:
        return max(0.0, self.deadline - keep - time.monotonic())

    def peer(self, name: str) -> _Peer:
        credentials = self.options.credentials
        config = RTCConfiguration(
            iceServers=[RTCIceServer(urls=aiortc_url(self.spec), username=credentials.username,
                                     credential=credentials.password)],
            iceTransportPolicy=RTCIceTransportPolicy.RELAY)
        pc = RTCPeerConnection(config)
        echo = pc.createDataChannel("iceprobe-echo", ordered=False, maxRetransmits=0,
                                    negotiated=True, id=_ECHO_ID)
        bulk = pc.createDataChannel("iceprobe-bulk", negotiated=True, id=_BULK_ID)
        if self.spec.scheme is Scheme.TURNS and self.options.tls is not None:
            _ice_connection(pc).turn_ssl = self.options.tls
        peer = _Peer(name, pc, echo, bulk)

        @pc.on("iceconnectionstatechange")
        def on_ice() -> None:
            peer.ice_state = pc.iceConnectionState
            log.debug("  %s ICE %s", name, peer.ice_state)
            if peer.ice_state in ("connected", "completed"):
                peer.ice_connected.set()
            elif peer.ice_state == "failed":
                peer.failed.set()

        @pc.on("connectionstatechange")
        def on_connection() -> None:
            peer.connection_state = pc.connectionState
            log.debug("  %s connection %s", name, peer.connection_state)
            if peer.connection_state == "connected":
                peer.dtls_connected.set()
            elif peer.connection_state == "failed":
                peer.failed.set()

        @bulk.on("open")
        def on_open() -> None:
            if echo.readyState == "open":
                peer.open.set()

        @echo.on("open")
        def on_echo_open() -> None:
            if bulk.readyState == "open":
                peer.open.set()

        @bulk.on("message")
        def on_bulk(message: bytes | str) -> None:
            peer.bulk_bytes += len(message)
            peer.bulk_last = time.monotonic()

        return peer

    def watch_relay_errors(self, peer: _Peer) -> None:
        """Record what aioice's relay protocols would swallow (see the module docstring)."""
        for protocol in _relay_protocols(peer.pc):
            candidate = getattr(protocol, "local_candidate", None)
            address = getattr(candidate, "host", None)
            port = getattr(candidate, "port", None)

            def error_received(exc: Exception, address: str | None = address,
                               port: int | None = port) -> None:
                self.record(exc, address, port)

            protocol.error_received = error_received
            self._count_checks(peer, protocol)

    def _count_checks(self, peer: _Peer, protocol: Any) -> None:
        """Count the ICE connectivity checks (Binding requests) this relay protocol sends,
        and note each one sent again before ICE connected."""
        original = protocol.send_stun

        def send_stun(message: Any, addr: tuple[str, int]) -> None:
            method = getattr(message.message_method, "name", "")
            kind = getattr(message.message_class, "name", "")
            if method == "BINDING" and kind == "REQUEST" and not self.ice_done:
                tid = bytes(message.transaction_id)
                sends = self.check_sends.get(tid, 0) + 1
                self.check_sends[tid] = sends
                if sends > 1:
                    self.retransmitted_ms.append(self.elapsed_ms())
                log.debug("  %s relay > ICE check tid=%s to %s:%s (send %d)", peer.name,
                          tid.hex(), addr[0], addr[1], sends)
            original(message, addr)

        protocol.send_stun = send_stun

    def ice_note(self) -> str | None:
        """Why ICE took as long as it did, when checks had to be sent again."""
        if not self.retransmitted_ms:
            return None
        count = len(self.retransmitted_ms)
        return (f"{count} connectivity {'check was' if count == 1 else 'checks were'} sent "
                f"again (first at {self.retransmitted_ms[0]:.0f} ms): the first send was not "
                "answered, typically because it reached the other peer's relay before that "
                "peer's permission was installed, and aioice waits 500 ms before it retries")

    def so_far(self, failure: str) -> RelayCheck:
        """What was measured until the stop, with the step that was under way."""
        result = dict(self.result)
        if self.sent and "sent" not in result:
            result.update(sent=self.sent, received=len(self.rtts),
                          rtt=_spread(self.rtts) if self.rtts else None)
        bulk = self.bulk
        if bulk is not None and bulk.field not in result:
            receiver = bulk.receiver
            if receiver.bulk_bytes and receiver.bulk_last > bulk.started:
                result[bulk.field] = round(receiver.bulk_bytes * 8
                                           / (receiver.bulk_last - bulk.started), 1)
        return RelayCheck(server=self.spec, duration_ms=self.elapsed_ms(),
                          failed_step=self.step, failure=failure, errors=tuple(self.errors),
                          ice_check_retransmissions=len(self.retransmitted_ms),
                          ice_note=self.ice_note(), interrupted=True, **result)

    def record(self, exc: Exception, address: str | None, port: int | None) -> None:
        response = getattr(exc, "response", None)
        attributes: dict[str, Any] = getattr(response, "attributes", {}) or {}
        error = attributes.get("ERROR-CODE")
        method = getattr(getattr(response, "message_method", None), "name", None)
        request = {"CHANNEL_BIND": "ChannelBind",
                   "CREATE_PERMISSION": "CreatePermission"}.get(method or "", "a request")
        if isinstance(error, tuple) and len(error) == 2:
            code, reason = int(error[0]), str(error[1]).rstrip("\x00").strip()
            event = ErrorEvent(
                url=self.spec.url, address=address, port=port, server_address=self.spec.host,
                server_port=self.spec.port, error_code=code,
                error_text=f"{reason} (on {request})", cause=Cause.RESPONSE,
                elapsed_ms=self.elapsed_ms(), problem=request)
            if code == 403:
                self.denied.set()
        else:
            event = ErrorEvent(
                url=self.spec.url, address=address, port=port, server_address=self.spec.host,
                server_port=self.spec.port, error_code=701,
                error_text=f"relay send failed: {type(exc).__name__}: {exc}",
                cause=Cause.TIMEOUT if "Timeout" in type(exc).__name__ else Cause.INTERNAL,
                elapsed_ms=self.elapsed_ms(), problem=request)
        log.debug("! relay %s:%s %s %s", address, port, event.error_code, event.error_text)
        if not any(e.error_code == event.error_code and e.address == event.address
                   and e.error_text == event.error_text for e in self.errors):
            self.errors.append(event)


def _ice_connection(pc: RTCPeerConnection) -> Any:
    """aioice's Connection behind a peer connection (a private attribute of aiortc's, pinned
    by the version ranges in pyproject.toml). Exists once a data channel was created."""
    return pc.sctp.transport.transport.iceGatherer._connection  # type: ignore[union-attr]


def _relay_protocols(pc: RTCPeerConnection) -> list[Any]:
    """aioice's protocols behind a peer connection's relay candidates (private, as above)."""
    try:
        return [p for p in _ice_connection(pc)._protocols
                if getattr(p.local_candidate, "type", None) == "relay"]
    except AttributeError:
        log.debug("! cannot reach aioice's relay protocols: 403s will show as ICE failures")
        return []


async def _until(check: _Check, events: list[asyncio.Event], failed: list[asyncio.Event],
                 keep: float) -> bool:
    """Wait until every one of `events` is set; False on a failure event, a 403, or the
    step's share of the budget running out."""
    async def all_set() -> None:
        for event in events:
            await event.wait()

    waiters = [asyncio.ensure_future(all_set()), asyncio.ensure_future(check.denied.wait()),
               *(asyncio.ensure_future(e.wait()) for e in failed)]
    try:
        done, _ = await asyncio.wait(waiters, timeout=check.remaining(keep),
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return waiters[0] in done and not check.denied.is_set()


async def check_relay(spec: ServerSpec, options: RelayOptions,
                      stopping: asyncio.Event | None = None,
                      check: _Check | None = None) -> RelayCheck:
    """Run the whole check against one TURN server; never raises for a network failure.
    `stopping` is set by a caller about to cancel it: the peers then close within
    STOP_CLOSE instead of the rest of the budget, and `check` (the caller's) holds what
    was measured."""
    check = check if check is not None else _Check(spec, options)
    peers: list[_Peer] = []
    try:
        return await _run(check, peers)
    except Exception as exc:  # a bug or an aiortc surprise is still a value
        log.debug("! relay check crashed", exc_info=True)
        return RelayCheck(server=spec, duration_ms=check.elapsed_ms(),
                          failed_step=RelayStep.ICE,
                          failure=f"internal error: {type(exc).__name__}: {exc}",
                          errors=tuple(check.errors))
    finally:
        await _close(check, peers, stopping is not None and stopping.is_set())


async def _run(check: _Check, peers: list[_Peer]) -> RelayCheck:
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
        return RelayCheck(server=check.spec, duration_ms=check.elapsed_ms(), failed_step=step,
                          failure=why, errors=tuple(check.errors),
                          ice_check_retransmissions=len(check.retransmitted_ms),
                          ice_note=check.ice_note(), **result)

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
    if not await _until(check, [a.ice_connected, b.ice_connected], [a.failed, b.failed], setup):
        state = "failed" if a.failed.is_set() or b.failed.is_set() else "did not finish"
        return broken(RelayStep.ICE, f"ICE connectivity checks between the two relay "
                                     f"addresses {state}: no data passes the relays")
    result["ice_connected_ms"] = check.elapsed_ms()
    check.ice_done = True
    check.step = RelayStep.DTLS
    if not await _until(check, [a.dtls_connected, b.dtls_connected], [a.failed, b.failed],
                        setup):
        return broken(RelayStep.DTLS, "ICE connected but the DTLS handshake over the relay "
                                      "did not complete")
    result["dtls_connected_ms"] = check.elapsed_ms()
    check.step = RelayStep.CHANNEL
    if not await _until(check, [a.open, b.open], [], setup):
        return broken(RelayStep.CHANNEL, "DTLS connected but the data channel (SCTP) did not "
                                         "open")
    result["channel_open_ms"] = check.elapsed_ms()

    check.step = RelayStep.ECHO
    sent, rtts = await _echo(check, a, b)
    result.update(sent=sent, received=len(rtts), rtt=_spread(rtts) if rtts else None)
    if sent and not rtts:
        return broken(RelayStep.ECHO, f"the data channel opened but all {sent} echo messages "
                                      "were lost")
    check.step = RelayStep.BULK
    result["throughput_up_bps"] = await _bulk(check, a, b, "throughput_up_bps",
                                              keep=options.duration + BULK_DRAIN
                                              + CLOSE_RESERVE)
    result["throughput_down_bps"] = await _bulk(check, b, a, "throughput_down_bps",
                                                keep=CLOSE_RESERVE)
    if not result["throughput_up_bps"] or not result["throughput_down_bps"]:
        return broken(RelayStep.BULK, "echo messages passed but the bulk transfer delivered "
                                      "nothing")
    return RelayCheck(server=check.spec, duration_ms=check.elapsed_ms(),
                      errors=tuple(check.errors),
                      ice_check_retransmissions=len(check.retransmitted_ms),
                      ice_note=check.ice_note(), **result)


async def _negotiate(check: _Check, a: _Peer, b: _Peer) -> None:
    """Offer and answer; each setLocalDescription gathers that peer's relay candidate."""
    await a.pc.setLocalDescription(await a.pc.createOffer())
    check.watch_relay_errors(a)
    await b.pc.setRemoteDescription(a.pc.localDescription)
    await b.pc.setLocalDescription(await b.pc.createAnswer())
    check.watch_relay_errors(b)
    await a.pc.setRemoteDescription(b.pc.localDescription)


def _pair(spec: ServerSpec, a: _Peer, b: _Peer) -> RelayPair | None:
    def relay(peer: _Peer) -> tuple[str, int] | None:
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


async def _echo(check: _Check, a: _Peer, b: _Peer) -> tuple[int, list[float]]:
    """`count` numbered messages from a, echoed by b, one at a time; returns how many were
    sent and the round-trip times (ms) of those that came back."""
    options = check.options
    replies: asyncio.Queue[bytes] = asyncio.Queue()

    @b.echo.on("message")
    def bounce(message: bytes | str) -> None:
        if b.echo.readyState == "open":
            b.echo.send(message)

    @a.echo.on("message")
    def back(message: bytes | str) -> None:
        if isinstance(message, bytes):
            replies.put_nowait(message)

    padding = bytes(max(0, options.size - 4))
    rtts = check.rtts  # kept on the check: a stop shows the echoes so far
    sent = 0
    keep = 2 * (options.duration + BULK_DRAIN) + CLOSE_RESERVE
    for number in range(options.count):
        budget = min(ECHO_WAIT, check.remaining(keep))
        if budget <= 0:
            break
        sent += 1
        check.sent = sent
        started = time.monotonic()
        a.echo.send(struct.pack("!I", number) + padding)
        while (wait := started + budget - time.monotonic()) > 0:
            try:
                reply = await asyncio.wait_for(replies.get(), wait)
            except asyncio.TimeoutError:
                break
            if reply[:4] == struct.pack("!I", number):
                rtts.append(round((time.monotonic() - started) * 1000, 2))
                break
    return sent, rtts


async def _bulk(check: _Check, sender: _Peer, receiver: _Peer, field: str,
                keep: float) -> float | None:
    """Send as fast as the channel takes for `duration` seconds, let the receiver drain,
    and return the receiver's rate in bits per second (None if nothing arrived). `field`
    names the measurement, for a stop in the middle."""
    channel = sender.bulk
    chunk = bytes(BULK_CHUNK)
    receiver.bulk_bytes, receiver.bulk_last = 0, 0.0
    started = time.monotonic()
    check.bulk = _Bulk(field, receiver, started)
    window = min(check.options.duration, check.remaining(keep + BULK_DRAIN))
    if window <= 0:
        return None
    end = started + window
    drained = asyncio.Event()
    channel.bufferedAmountLowThreshold = BULK_BUFFER // 2

    @channel.on("bufferedamountlow")
    def low() -> None:
        drained.set()

    while time.monotonic() < end and channel.readyState == "open":
        if channel.bufferedAmount < BULK_BUFFER:
            channel.send(chunk)
            await asyncio.sleep(0)
        else:
            drained.clear()
            try:
                await asyncio.wait_for(drained.wait(), max(0.0, end - time.monotonic()))
            except asyncio.TimeoutError:
                break
    # Let what is in flight arrive, but no longer than the drain allowance.
    settle = time.monotonic() + min(BULK_DRAIN, check.remaining(keep))
    while channel.bufferedAmount > 0 and time.monotonic() < settle:
        await asyncio.sleep(0.01)
    if receiver.bulk_bytes == 0 or receiver.bulk_last <= started:
        return None
    return round(receiver.bulk_bytes * 8 / (receiver.bulk_last - started), 1)


def _spread(samples: list[float]) -> Spread:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return Spread(min=ordered[0], median=round(statistics.median(ordered), 2), p95=p95,
                  max=ordered[-1])


async def _close(check: _Check, peers: list[_Peer], stopping: bool = False) -> None:
    """Close both peers (which releases their allocations), bounded by what is left of the
    budget and never less than the close reserve; STOP_CLOSE when the run is stopping."""
    if not peers:
        return
    budget = STOP_CLOSE if stopping else max(CLOSE_RESERVE, check.remaining())
    closing = asyncio.gather(*(p.pc.close() for p in peers), return_exceptions=True)
    try:
        await asyncio.wait_for(closing, budget)
    except asyncio.TimeoutError:
        log.debug("! closing the peers took longer than %.1f s", budget)



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


#: How long an interrupted check may spend closing its peers (and releasing allocations).
STOP_CLOSE = 1.0


async def _stoppable(spec: ServerSpec, options: RelayOptions,
                     stop: asyncio.Event | None) -> RelayCheck:
    if stop is None:
        return await check_relay(spec, options)
    stopping = asyncio.Event()
    check = _Check(spec, options)
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
