"""The control plane of iceprobe's own TURN data plane: allocations, permissions and
channels on links it owns (plane_data), kept alive on their own timers, and released.

Set-up runs gather's own Allocate (`probes.allocate`: the long-term credential challenge of
RFC 8489 section 9.2, a 438 answered with the new nonce) over a `BlockingChannel`, whose
`transact` never suspends: the engine's thread runs the coroutine to its end without an event
loop (`drive`). During the measurement, `Upkeep` refreshes what would expire, from the same
loop that moves the data: permissions (300 s, RFC 8656 section 9), channel bindings (600 s,
section 12) and the allocation itself (its LIFETIME, section 8). `release_all` sends every
allocation's Refresh of LIFETIME 0 at once and waits for the answers within one budget.
"""

from __future__ import annotations

import functools
import logging
import select
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..model import Cause, Credentials
from . import probes, wire
from .channel import ProbeFailure, describe, route
from .plane_data import Link, is_stun
from .wire import Address, LongTermAuth, Request, Response

log = logging.getLogger("iceprobe.plane")

T = TypeVar("T")

#: UDP retransmission: first RTO (RFC 8489 section 6.2.1 allows 250 ms), doubling.
FIRST_RTO = 0.25
#: Refresh intervals: before the 300 s of a permission, the 600 s of a channel binding,
#: and this long before the allocation's LIFETIME runs out.
PERMISSION_EVERY = 240.0
CHANNEL_EVERY = 480.0
ALLOCATION_MARGIN = 60.0
#: An upkeep request unanswered after this many sends is given up (and reported).
UPKEEP_SENDS = 5
#: How long an upkeep request over TCP or TLS may wait for its answer.
STREAM_WAIT = 10.0
FIRST_CHANNEL = 0x4000


def drive(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (its awaits all finish at once) to its end."""
    try:
        work.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    work.close()
    raise RuntimeError("a blocking-channel coroutine suspended")


def _wait(links: list[Link], timeout: float) -> None:
    """Until one of `links` is readable (or has bytes to write and can), or `timeout`."""
    if any(link.pending_tls() for link in links):
        return
    writers = [link for link in links if link.out]
    try:
        select.select(links, writers, [], max(0.0, timeout))
    except (OSError, ValueError):
        time.sleep(min(0.01, max(0.0, timeout)))
    for link in writers:
        link.flush()


class BlockingChannel:
    """gather's `Channel` protocol on a link, for set-up and release: each `transact`
    sends, waits (retransmitting over UDP) and returns within its deadline. Data indications
    that arrive meanwhile are kept for whoever asks (`indications`)."""

    def __init__(self, link: Link, transport: str,
                 stop: threading.Event | None = None) -> None:
        self.link = link
        #: When set, a transaction in progress gives up at once.
        self.stop = stop
        self.transport = transport
        self.local_address = link.local
        self.server_address = link.server
        self.first_sent_at: float | None = None
        self.indications: list[bytes] = []
        self.route = route(transport, link.local, link.server)

    @property
    def software(self) -> str | None:
        return None

    async def transact(self, request: Request, deadline: float) -> Response:
        return self.exchange(request, deadline)

    def exchange(self, request: Request, deadline: float) -> Response:
        link = self.link
        start = time.monotonic()
        rto = FIRST_RTO
        sends = 0
        while True:
            sends += 1
            log.debug("%s > %s (send %d)", self.route, request.name, sends)
            link.send(request.data)
            if self.first_sent_at is None:
                self.first_sent_at = time.monotonic()
            resend_at = time.monotonic() + rto if not link.stream else deadline
            while (now := time.monotonic()) < min(resend_at, deadline):
                if self.stop is not None and self.stop.is_set():
                    raise ProbeFailure(Cause.TIMEOUT, f"the {request.name} request was "
                                                      "interrupted")
                _wait([link], min(resend_at, deadline, now + 0.05) - now)
                for message in link.receive():
                    reply = self._match(request, message)
                    if reply is not None:
                        log.debug("%s < %s %s in %.1f ms", self.route, request.name,
                                  reply.error_code or "success",
                                  (time.monotonic() - start) * 1e3)
                        return reply
                if link.broken is not None:
                    raise ProbeFailure(Cause.UNREACHABLE if not link.stream else Cause.CLOSED,
                                       f"{describe(link.server)}: {link.broken}")
            if time.monotonic() >= deadline:
                raise ProbeFailure(
                    Cause.TIMEOUT,
                    f"No answer from {describe(link.server)} to the {request.name} request "
                    f"within {time.monotonic() - start:.1f} s "
                    f"({sends} {'send' if sends == 1 else 'sends'})")
            rto *= 2

    def pump(self, timeout: float) -> None:
        """Read what arrives within `timeout`, keeping the Data indications."""
        until = time.monotonic() + timeout
        while (now := time.monotonic()) < until:
            _wait([self.link], until - now)
            for message in self.link.receive():
                if is_stun(message) and wire.data_indication_peer(message) is not None \
                        and len(self.indications) < 64:
                    self.indications.append(message)
            if self.indications:
                return

    def _match(self, request: Request, message: bytes) -> Response | None:
        if not is_stun(message):
            return None
        if wire.transaction_id_of(message) != request.transaction_id:
            if wire.data_indication_peer(message) is not None and len(self.indications) < 64:
                self.indications.append(message)
            return None
        reply = wire.read_response(message)
        if isinstance(reply, wire.Malformed):
            raise ProbeFailure(Cause.MALFORMED, f"{describe(self.link.server)} sent a reply "
                                                f"iceprobe cannot read: {reply.problem}")
        if reply.method != request.method:
            return None
        return reply

    def close(self) -> None:
        self.link.close()


def refused(response: Response, request: str) -> ProbeFailure:
    """An error response to a request after the allocation, as a failure."""
    code = response.error_code or 0
    return ProbeFailure(Cause.RESPONSE, response.reason or f"{request} refused with {code}",
                        code=code, problem=request)


@dataclass(eq=False)
class Relay:
    """One allocation on one link, with the peers its channels are bound to."""

    link: Link
    channel: BlockingChannel
    credentials: Credentials
    relayed: Address
    mapped: Address | None
    auth: LongTermAuth | None
    lifetime: int
    #: (channel number, peer address) bound on this allocation.
    bindings: list[tuple[int, Address]] = field(default_factory=list)
    #: Peer IP addresses with a permission of their own (CreatePermission).
    permitted: list[str] = field(default_factory=list)
    released: bool = False

    def renew(self, response: Response) -> bool:
        """Take the new nonce of a 438 (RFC 8489 section 9.2.4); False when there is none."""
        if self.auth is None or response.nonce is None:
            return False
        self.auth = wire.long_term_auth(self.credentials.username, self.credentials.password,
                                        response.realm or self.auth.realm, response.nonce)
        return True

    def request(self, make: Callable[[LongTermAuth | None], Request], name: str,
                deadline: float) -> None:
        """One control request during set-up; raises ProbeFailure when refused."""
        for _ in range(3):
            response = self.channel.exchange(make(self.auth), deadline)
            if not response.is_error:
                return
            if response.error_code == 438 and self.renew(response):
                continue
            raise refused(response, name)
        raise ProbeFailure(Cause.RESPONSE, f"{name}: the server kept answering 438 Stale Nonce",
                           code=438, problem=name)

    def permit(self, peer_ip: str, deadline: float) -> None:
        self.request(functools.partial(_permission, peer_ip), "CreatePermission", deadline)
        self.permitted.append(peer_ip)

    def bind(self, number: int, peer: Address, deadline: float) -> None:
        self.request(functools.partial(_bind, number, peer), "ChannelBind", deadline)
        self.bindings.append((number, peer))


def allocate(link: Link, transport: str, credentials: Credentials, deadline: float,
             pending: list[Relay], stop: threading.Event | None = None) -> Relay:
    """Allocate on `link` with gather's own Allocate. When it fails after an authenticated
    request went out without an answer, the server may hold an allocation all the same: it
    is added to `pending`, to be released with the others."""
    channel = BlockingChannel(link, transport, stop)
    attempt = probes.Attempt()
    try:
        made = drive(probes.allocate(channel, credentials, deadline, None, attempt))
    except ProbeFailure as failure:
        if attempt.auth is not None and failure.cause is not Cause.RESPONSE:
            pending.append(Relay(link, channel, credentials, ("0.0.0.0", 0), None,
                                 attempt.auth, 0))
        raise
    return Relay(link, channel, credentials, made.relayed_address, made.mapped_address,
                 made.auth, made.lifetime or 600)


def _refresh(lifetime: int, auth: LongTermAuth | None) -> Request:
    return wire.refresh_request(lifetime, auth)


def _permission(ip: str, auth: LongTermAuth | None) -> Request:
    return wire.create_permission_request((ip, 0), auth)


def _bind(number: int, peer: Address, auth: LongTermAuth | None) -> Request:
    return wire.channel_bind_request(number, peer, auth)


@dataclass(eq=False)
class _Pending:
    relay: Relay
    name: str
    make: Callable[[LongTermAuth | None], Request]
    request: Request
    sent_at: float
    sends: int = 1
    rto: float = FIRST_RTO


class Upkeep:
    """Refreshes, from the measuring loop, whatever would expire: each relay's permissions,
    channel bindings and allocation, on timers of their own. `tick` is cheap when nothing is
    due; the answers come through `deliver`. Failures are kept in `failures`."""

    def __init__(self, relays: list[Relay], now: float, permission_every: float =
                 PERMISSION_EVERY, channel_every: float = CHANNEL_EVERY) -> None:
        self.relays = relays
        self.pending: dict[bytes, _Pending] = {}
        self.failures: list[ProbeFailure] = []
        self.sent: dict[str, int] = {}
        self.answered: dict[str, int] = {}
        self._due: list[tuple[float, float, Relay, str]] = []
        for relay in relays:
            every = max(1.0, min(relay.lifetime - ALLOCATION_MARGIN, relay.lifetime / 2))
            self._due.append((now + every, every, relay, "Refresh"))
            if relay.permitted:
                self._due.append((now + permission_every, permission_every, relay,
                                  "CreatePermission"))
            if relay.bindings:
                self._due.append((now + channel_every, channel_every, relay, "ChannelBind"))
        self.next_at = min((d[0] for d in self._due), default=float("inf"))

    def tick(self, now: float) -> None:
        if now < self.next_at:
            return
        for index, (at, every, relay, name) in enumerate(self._due):
            if at <= now:
                self._due[index] = (now + every, every, relay, name)
                for make in self._requests(relay, name):
                    self._send(relay, name, make, now)
        for tid, pending in list(self.pending.items()):
            if now - pending.sent_at < pending.rto:
                continue
            if pending.sends >= UPKEEP_SENDS or pending.relay.link.stream:
                del self.pending[tid]
                self.failures.append(ProbeFailure(
                    Cause.TIMEOUT, f"No answer from {describe(pending.relay.link.server)} to "
                                   f"the {pending.name} request ({pending.sends} sends)",
                    problem=pending.name))
                continue
            pending.relay.link.send(pending.request.data)
            pending.sends += 1
            pending.sent_at, pending.rto = now, pending.rto * 2
        self.next_at = min([d[0] for d in self._due]
                           + [p.sent_at + p.rto for p in self.pending.values()])

    def _requests(self, relay: Relay, name: str
                  ) -> list[Callable[[LongTermAuth | None], Request]]:
        if name == "Refresh":
            return [functools.partial(_refresh, relay.lifetime)]
        if name == "CreatePermission":
            return [functools.partial(_permission, ip) for ip in relay.permitted]
        return [functools.partial(_bind, number, peer) for number, peer in relay.bindings]

    def _send(self, relay: Relay, name: str, make: Callable[[LongTermAuth | None], Request],
              now: float) -> None:
        request = make(relay.auth)
        # Over a stream a request is sent once (RFC 8489 section 6.2.2): give it STREAM_WAIT.
        self.pending[request.transaction_id] = _Pending(
            relay, name, make, request, now,
            rto=STREAM_WAIT if relay.link.stream else FIRST_RTO)
        self.sent[name] = self.sent.get(name, 0) + 1
        relay.link.send(request.data)
        self.next_at = min(self.next_at, now + self.pending[request.transaction_id].rto)

    def deliver(self, message: bytes, now: float) -> None:
        """A STUN message from a link during the measurement."""
        tid = wire.transaction_id_of(message)
        pending = self.pending.pop(tid, None) if tid is not None else None
        if pending is None:
            return
        reply = wire.read_response(message)
        if isinstance(reply, wire.Malformed):
            self.failures.append(ProbeFailure(Cause.MALFORMED, f"{pending.name}: "
                                              f"{reply.problem}", problem=pending.name))
            return
        if not reply.is_error:
            self.answered[pending.name] = self.answered.get(pending.name, 0) + 1
            log.debug("%s %s refreshed", pending.relay.channel.route, pending.name)
            return
        log.debug("%s %s refused: %s %s", pending.relay.channel.route, pending.name,
                  reply.error_code, reply.reason)
        if reply.error_code == 438 and pending.relay.renew(reply):
            self._send(pending.relay, pending.name, pending.make, now)
            return
        self.failures.append(refused(reply, pending.name))


def release_all(relays: list[Relay], budget: float) -> int:
    """Release every allocation (Refresh with LIFETIME 0, RFC 8656 section 8) at once,
    answering a 438 with the new nonce, within `budget` seconds; returns how many the server
    confirmed. A 437 (no such allocation) counts as gone, not as released."""
    deadline = time.monotonic() + budget
    waiting: dict[bytes, tuple[Relay, Request, float, float]] = {}

    def send(relay: Relay, now: float, rto: float = FIRST_RTO) -> None:
        request = wire.refresh_request(0, relay.auth)
        relay.link.send(request.data)
        waiting[request.transaction_id] = (relay, request, now + rto, rto)

    now = time.monotonic()
    for relay in relays:
        if relay.link.broken is None and not relay.released:
            send(relay, now)
    released = 0
    while waiting and (now := time.monotonic()) < deadline:
        links = list({id(r.link): r.link for r, *_ in waiting.values()}.values())
        wake = min(at for _, _, at, _ in waiting.values())
        _wait(links, min(deadline, wake) - now)
        for link in links:
            for message in link.receive():
                tid = wire.transaction_id_of(message) if is_stun(message) else None
                entry = waiting.pop(tid, None) if tid is not None else None
                if entry is None:
                    continue
                relay = entry[0]
                reply = wire.read_response(message)
                if isinstance(reply, wire.Response) and not reply.is_error:
                    relay.released = True
                    released += 1
                    log.debug("%s allocation %s released", relay.channel.route,
                              describe(relay.relayed))
                elif (isinstance(reply, wire.Response) and reply.error_code == 438
                        and relay.renew(reply)):
                    send(relay, time.monotonic())
        now = time.monotonic()
        for tid, (relay, request, at, rto) in list(waiting.items()):
            if relay.link.broken is not None:
                del waiting[tid]
            elif at <= now and not relay.link.stream:
                relay.link.send(request.data)
                waiting[tid] = (relay, request, now + rto * 2, rto * 2)
    for relay, *_ in waiting.values():
        log.debug("%s ! release unanswered within %.1f s", relay.channel.route, budget)
    return released
