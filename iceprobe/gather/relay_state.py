"""One relay check in progress: its budget, its peers' events, what it measured so far and
what went wrong on the way (error events, the TURN recorder), so that a check that fails, or
is stopped, still reports all of it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from ..model import Cause, ErrorEvent, RelayCheck, RelayStep, Scheme, ServerSpec, Transport
from .relay_measure import spread
from .relay_peers import (
    Peer,
    attach_recorder,
    hook_errors,
    hook_sends,
    ice_connection,
    local_relay,
    relay_protocols,
)
from .turn_recorder import TurnRecorder

if TYPE_CHECKING:
    from .datapath import RelayOptions

log = logging.getLogger("iceprobe.relay")

_ECHO_ID, _BULK_ID = 1, 2


def aiortc_url(spec: ServerSpec) -> str:
    """The URL in the form aiortc's parser accepts (no IPv6 literal, explicit transport)."""
    transport = "tcp" if spec.transport is not Transport.UDP else "udp"
    return f"{spec.scheme.value}:{spec.host}:{spec.port}?transport={transport}"


@dataclass
class Bulk:
    """A bulk transfer in progress: which way, who receives and since when."""

    field: str
    receiver: Peer
    started: float


class Check:
    def __init__(self, spec: ServerSpec, options: RelayOptions) -> None:
        self.spec = spec
        self.options = options
        self.start = time.monotonic()
        self.deadline = self.start + options.timeout
        self.errors: list[ErrorEvent] = []
        self.turn = TurnRecorder(spec, self.start)
        self.marks: dict[str, float] = {}
        #: What has been measured so far (RelayCheck fields), and the step under way.
        self.result: dict[str, Any] = {}
        self.step = RelayStep.ALLOCATE
        self.sent = 0
        self.rtts: list[float] = []
        self.bulk: Bulk | None = None
        #: ICE checks: sends per transaction id, and when one went out again (ms).
        self.check_sends: dict[bytes, int] = {}
        self.retransmitted_ms: list[float] = []
        self.ice_done = False

    @property
    def denied(self) -> asyncio.Event:
        return self.turn.denied

    @property
    def gone(self) -> asyncio.Event:
        """Set when the server went away during the check."""
        return self.turn.gone

    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.start) * 1000, 1)

    def remaining(self, keep: float = 0.0) -> float:
        return max(0.0, self.deadline - keep - time.monotonic())

    def peer(self, name: str) -> Peer:
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
            ice_connection(pc).turn_ssl = self.options.tls
        peer = Peer(name, pc, echo, bulk)

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

    def watch(self, peer: Peer) -> None:
        """Hook into the peer's relay protocols: record what aioice would swallow, count
        the ICE checks sent again, and let the TURN recorder see the wire."""
        for protocol in relay_protocols(peer.pc):
            address, port = local_relay(protocol)

            def error_received(exc: Exception, address: str | None = address,
                               port: int | None = port) -> None:
                self.record(exc, address, port)

            def sent(message: Any, addr: tuple[str, int]) -> None:
                self._count_check(peer, message, addr)

            hook_errors(protocol, error_received)
            hook_sends(protocol, sent)
            attach_recorder(peer.name, protocol, self.turn)

    def _count_check(self, peer: Peer, message: Any, addr: tuple[str, int]) -> None:
        """Count an ICE connectivity check (Binding request) sent through a relay, and note
        each one sent again before ICE connected."""
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

    def ice_note(self) -> str | None:
        """Why ICE took as long as it did, when checks had to be sent again."""
        if not self.retransmitted_ms:
            return None
        count = len(self.retransmitted_ms)
        if self.turn.channel_data_sent == 0:
            return (f"{count} connectivity {'check was' if count == 1 else 'checks were'} "
                    "queued again, but none reached the server: aioice holds them until "
                    "its ChannelBind succeeds")
        return (f"{count} connectivity {'check was' if count == 1 else 'checks were'} sent "
                f"again (first at {self.retransmitted_ms[0]:.0f} ms): the first send was not "
                "answered, typically because it reached the other peer's relay before that "
                "peer's permission was installed, and aioice waits 500 ms before it retries")

    def record(self, exc: Exception, address: str | None, port: int | None) -> None:
        """A failed send aioice handed to the relay protocol. An error response is already
        on the TURN recorder's record (it saw the answer on the wire); anything else (no
        channel number left, a transport error) is an event here."""
        response = getattr(exc, "response", None)
        attributes: dict[str, Any] = getattr(response, "attributes", {}) or {}
        if isinstance(attributes.get("ERROR-CODE"), tuple):
            return
        event = ErrorEvent(
            url=self.spec.url, address=address, port=port, server_address=self.spec.host,
            server_port=self.spec.port, error_code=701,
            error_text=f"relay send failed: {type(exc).__name__}: {exc}",
            cause=Cause.TIMEOUT if "Timeout" in type(exc).__name__ else Cause.INTERNAL,
            elapsed_ms=self.elapsed_ms(), problem="ChannelBind")
        log.debug("! relay %s:%s %s %s", address, port, event.error_code, event.error_text)
        if not any(e.error_code == event.error_code and e.address == event.address
                   and e.error_text == event.error_text for e in self.errors):
            self.errors.append(event)

    def make(self, **fields: Any) -> RelayCheck:
        """The RelayCheck of this check now: what was measured, with `fields`."""
        return RelayCheck(server=self.spec, duration_ms=self.elapsed_ms(),
                          errors=tuple(self.errors),
                          ice_check_retransmissions=len(self.retransmitted_ms),
                          ice_note=self.ice_note(), **{**self.result, **fields})

    def with_turn(self, check: RelayCheck) -> RelayCheck:
        """`check` with the TURN recorder's findings: its requests, the ChannelData counts
        and the events for what went wrong (added after the close, so that the release is
        in)."""
        events = self.turn.error_events(failed=not check.ok)
        known = {(e.error_code, e.error_text, e.address) for e in check.errors}
        errors = check.errors + tuple(e for e in events
                                      if (e.error_code, e.error_text, e.address) not in known)
        return dataclasses.replace(
            check, errors=errors, turn_requests=self.turn.exchanges(),
            channel_data_sent=self.turn.channel_data_sent,
            channel_data_received=self.turn.channel_data_received)

    def so_far(self, failure: str) -> RelayCheck:
        """What was measured until the stop, with the step that was under way."""
        result = dict(self.result)
        if self.sent and "sent" not in result:
            result.update(sent=self.sent, received=len(self.rtts),
                          rtt=spread(self.rtts) if self.rtts else None)
        bulk = self.bulk
        if bulk is not None and bulk.field not in result:
            receiver = bulk.receiver
            if receiver.bulk_bytes and receiver.bulk_last > bulk.started:
                result[bulk.field] = round(receiver.bulk_bytes * 8
                                           / (receiver.bulk_last - bulk.started), 1)
        return self.with_turn(RelayCheck(
            server=self.spec, duration_ms=self.elapsed_ms(), failed_step=self.step,
            failure=failure, errors=tuple(self.errors),
            ice_check_retransmissions=len(self.retransmitted_ms), ice_note=self.ice_note(),
            interrupted=True, **result))


async def until(check: Check, events: list[asyncio.Event], failed: list[asyncio.Event],
                keep: float) -> bool:
    """Wait until every one of `events` is set; False on a failure event, a 403, the server
    going away, or the step's share of the budget running out."""
    async def all_set() -> None:
        for event in events:
            await event.wait()

    waiters = [asyncio.ensure_future(all_set()), asyncio.ensure_future(check.denied.wait()),
               asyncio.ensure_future(check.gone.wait()),
               *(asyncio.ensure_future(e.wait()) for e in failed)]
    try:
        done, _ = await asyncio.wait(waiters, timeout=check.remaining(keep),
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return waiters[0] in done and not check.denied.is_set() and not check.gone.is_set()
