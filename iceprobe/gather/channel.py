"""Connected channels to one server address, and STUN transactions over them.

UDP sockets are connected, so that an ICMP error (port or host unreachable) reaches us at
once instead of costing the whole time budget. Requests over UDP are retransmitted on a
browser-like schedule (first RTO 250 ms, doubling, RFC 8489 section 6.2.1) until the deadline;
over TCP and TLS they are sent once (RFC 8489 section 6.2.2).

Every failure is raised as `ProbeFailure`, which carries the 701 cause and a text a person
can act on; callers turn it into an `ErrorEvent`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
import time
from collections.abc import Coroutine
from typing import Any, Protocol

from ..model import Cause
from . import wire
from .wire import Address, Malformed, Request, Response

log = logging.getLogger("iceprobe.gather")

FIRST_RTO = 0.25


class ProbeFailure(Exception):
    """A probe that could not complete; becomes an ErrorEvent."""

    def __init__(self, cause: Cause, text: str, code: int = 701,
                 problem: str | None = None, after_challenge: bool | None = None) -> None:
        super().__init__(text)
        self.cause = cause
        self.text = text
        self.code = code
        self.problem = problem
        #: For an error response to an Allocate: whether the request answered the server's
        #: 401 challenge with credentials (USERNAME, MESSAGE-INTEGRITY); None otherwise.
        self.after_challenge = after_challenge


class Channel(Protocol):
    local_address: Address
    server_address: Address
    #: udp, tcp or tls: how the channel reaches the server.
    transport: str
    #: When its first packet went out (time.monotonic()); None before.
    first_sent_at: float | None

    @property
    def software(self) -> str | None:
        """The server's SOFTWARE attribute, from the last response that carried one."""

    async def transact(self, request: Request, deadline: float) -> Response: ...

    def close(self) -> None: ...


def remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def describe(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def route(transport: str, local: Address | str | None, server: Address) -> str:
    """How a trace line names a channel: transport, local address:port -> server."""
    if isinstance(local, tuple):
        here = describe(local)
    elif local is None:
        here = "?"
    else:  # the address, before the system picks the port
        here = f"[{local}]:?" if ":" in local else f"{local}:?"
    return f"{transport} {here} -> {describe(server)}"


def _nonce(nonce: bytes | None) -> str:
    """A nonce for the trace: present or not, and its first bytes only."""
    if nonce is None:
        return "no NONCE"
    text = nonce.decode("ascii", errors="replace")
    return f"NONCE {text[:8]}{'…' if len(text) > 8 else ''} ({len(nonce)} bytes)"


def _request_line(request: Request) -> str:
    """A request for the trace: never its key, only who it speaks for."""
    line = f"{request.name} request tid={request.transaction_id.hex()}"
    if request.username is not None:
        line += f" USERNAME {request.username!r} REALM {request.realm!r} NONCE MESSAGE-INTEGRITY"
    return line


def _response_line(request: Request, response: Response) -> str:
    kind = (f"error response {response.error_code} {response.reason!r}" if response.is_error
            else "success response")
    realm = "no REALM" if response.realm is None else f"REALM {response.realm!r}"
    return (f"{request.name} {kind} tid={request.transaction_id.hex()} {realm} "
            f"{_nonce(response.nonce)}")


#: How many unrelated replies a channel describes (it counts them all).
MAX_STRAY_KEPT = 10


class _Waiters:
    """Pending transactions keyed by transaction id, plus what went wrong on the wire."""

    def __init__(self, server: Address, transport: str = "udp") -> None:
        self.server = server
        #: How trace lines name the channel; completed once the local port is known.
        self.route = route(transport, None, server)
        self.pending: dict[bytes, asyncio.Future[Response]] = {}
        #: The method and name of each pending request: its reply must be of that method.
        self.methods: dict[bytes, tuple[int, str]] = {}
        self.failure: ProbeFailure | None = None
        #: Replies that belonged to no pending transaction: how many, and the first few.
        self.stray_count = 0
        self.stray: list[str] = []
        #: Of those, STUN messages whose transaction id matches no request ever sent on this
        #: channel (late duplicates of answered requests are not counted).
        self.mismatched_count = 0
        #: Transaction ids this channel sent (a reply to one is no mismatch, only late).
        self.sent: set[bytes] = set()
        #: The SOFTWARE attribute of the last response that carried one.
        self.software: str | None = None

    def expect(self, transaction_id: bytes, method: int = 0x001,
               name: str = "Binding") -> asyncio.Future[Response]:
        if self.failure is not None:
            raise self.failure
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.pending[transaction_id] = future
        self.methods[transaction_id] = (method, name)
        if len(self.sent) < 10_000:  # a channel sends a handful; never unbounded
            self.sent.add(transaction_id)
        return future

    def deliver(self, data: bytes) -> None:
        transaction_id = wire.transaction_id_of(data)
        future = self.pending.get(transaction_id) if transaction_id else None
        if future is None or future.done():
            what = "not a STUN message" if transaction_id is None else "an unknown transaction"
            self.stray_count += 1
            if transaction_id is not None and transaction_id not in self.sent:
                self.mismatched_count += 1
            if len(self.stray) < MAX_STRAY_KEPT:  # a flood must not grow memory
                self.stray.append(f"{len(data)} bytes, {what}")
            log.debug("%s < ignored %d bytes (%s)", self.route, len(data), what)
            return
        assert transaction_id is not None
        reply = wire.read_response(data)
        if isinstance(reply, Malformed):
            future.set_exception(ProbeFailure(
                Cause.MALFORMED,
                f"{describe(self.server)} sent a reply iceprobe cannot read: {reply.problem}",
            ))
            return
        if reply.software is not None:
            self.software = reply.software
        method, name = self.methods.get(transaction_id, (reply.method, ""))
        if reply.method != method:
            kind = "error" if reply.is_error else "success"
            got = wire.method_name(reply.method)
            log.debug("%s < %s %s response to the %s request (same transaction id)",
                      self.route, got, kind, name)
            future.set_exception(ProbeFailure(
                Cause.WRONG_METHOD,
                f"{describe(self.server)} answered the {name} request with a {got} {kind} "
                "response (same transaction id)",
                problem=f"{got.lower().replace(' ', '-')}-{kind}"))
            return
        future.set_result(reply)

    def fail(self, failure: ProbeFailure) -> None:
        if self.failure is None:
            self.failure = failure
        for future in self.pending.values():
            if not future.done():
                future.set_exception(failure)

    def forget(self, transaction_id: bytes) -> None:
        self.methods.pop(transaction_id, None)
        future = self.pending.pop(transaction_id, None)
        if future is not None and not future.done():
            future.cancel()
        elif future is not None and not future.cancelled():
            future.exception()  # mark retrieved


def _timeout_text(server: Address, request: Request, sends: int, waited: float,
                  stray: int) -> str:
    text = (f"No answer from {describe(server)} to the {request.name} request "
            f"within {waited:.1f} s ({sends} {'send' if sends == 1 else 'sends'})")
    if stray:
        text += f"; ignored {stray} unrelated {'reply' if stray == 1 else 'replies'}"
    return text


def _timeout(server: Address, request: Request, sends: int, waited: float,
             waiters: _Waiters, mismatched_before: int) -> ProbeFailure:
    """The timeout of one request; when the server did answer it, only with STUN messages
    whose transaction ids match nothing sent, the failure says so (problem
    `mismatched-transaction-ids`): a broken server, or a middlebox rewriting STUN."""
    mismatched = waiters.mismatched_count - mismatched_before
    text = _timeout_text(server, request, sends, waited, waiters.stray_count)
    if not mismatched:
        return ProbeFailure(Cause.TIMEOUT, text)
    replies = "reply" if mismatched == 1 else "replies"
    return ProbeFailure(
        Cause.TIMEOUT,
        f"No matching answer from {describe(server)} to the {request.name} request within "
        f"{waited:.1f} s ({sends} {'send' if sends == 1 else 'sends'}), but {mismatched} "
        f"STUN {replies} from it with transaction ids that match no request",
        problem="mismatched-transaction-ids")


def _os_failure(exc: OSError, what: str) -> ProbeFailure:
    reason = exc.strerror or str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return ProbeFailure(Cause.REFUSED, f"{what}: connection refused")
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN):
        return ProbeFailure(Cause.UNREACHABLE, f"{what}: {reason}")
    if exc.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
        return ProbeFailure(Cause.CLOSED, f"{what}: {reason}")
    return ProbeFailure(Cause.SOCKET, f"{what}: {reason}")


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, waiters: _Waiters) -> None:
        self.waiters = waiters

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.waiters.deliver(data)

    def error_received(self, exc: Exception) -> None:
        # A connected UDP socket reports ICMP errors as ECONNREFUSED and friends.
        server = describe(self.waiters.server)
        if isinstance(exc, ConnectionRefusedError):
            failure = ProbeFailure(Cause.UNREACHABLE,
                                   f"{server} is unreachable: ICMP port unreachable "
                                   "(nothing listens on that UDP port)")
        elif isinstance(exc, OSError):
            failure = ProbeFailure(Cause.UNREACHABLE,
                                   f"{server} is unreachable: {exc.strerror or exc}")
        else:
            failure = ProbeFailure(Cause.SOCKET, f"socket error towards {server}: {exc}")
        log.debug("%s < ! %s", self.waiters.route, failure.text)
        self.waiters.fail(failure)


class UdpChannel:
    transport = "udp"

    def __init__(self, transport: asyncio.DatagramTransport, waiters: _Waiters,
                 local_address: Address) -> None:
        self._transport = transport
        self._waiters = waiters
        self.local_address = local_address
        self.server_address = waiters.server
        self.first_sent_at: float | None = None
        waiters.route = route("udp", local_address, waiters.server)

    @property
    def software(self) -> str | None:
        return self._waiters.software

    async def transact(self, request: Request, deadline: float) -> Response:
        future = self._waiters.expect(request.transaction_id, request.method, request.name)
        mismatched_before = self._waiters.mismatched_count
        start = time.monotonic()
        rto = FIRST_RTO
        sends = 0
        try:
            while True:
                sends += 1
                log.debug("%s > %s (send %d)", self._waiters.route, _request_line(request),
                          sends)
                try:
                    self._transport.sendto(request.data)
                except OSError as exc:
                    raise _os_failure(exc, f"sending to {describe(self.server_address)}") from exc
                if self.first_sent_at is None:
                    self.first_sent_at = time.monotonic()
                wait = min(rto, remaining(deadline))
                if wait <= 0:
                    break
                done, _ = await asyncio.wait({future}, timeout=wait)
                if done:
                    response = future.result()
                    log.debug("%s < %s in %.1f ms", self._waiters.route,
                              _response_line(request, response),
                              (time.monotonic() - start) * 1e3)
                    return response
                if remaining(deadline) <= 0:
                    break
                rto *= 2
        finally:
            self._waiters.forget(request.transaction_id)
        raise _timeout(self.server_address, request, sends, time.monotonic() - start,
                       self._waiters, mismatched_before)

    def close(self) -> None:
        self._transport.close()


class _StreamProtocol(asyncio.Protocol):
    def __init__(self, waiters: _Waiters) -> None:
        self.waiters = waiters
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 4:
            if self.buffer[0] & 0xC0:
                self.waiters.fail(ProbeFailure(
                    Cause.MALFORMED,
                    f"{describe(self.waiters.server)} sent bytes that are not STUN framing"))
                self.buffer = b""
                return
            total = wire.message_length(self.buffer)
            if len(self.buffer) < total:
                return
            message, self.buffer = self.buffer[:total], self.buffer[total:]
            self.waiters.deliver(message)

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc else ""
        log.debug("%s connection closed%s", self.waiters.route, reason)
        self.waiters.fail(ProbeFailure(
            Cause.CLOSED,
            f"{describe(self.waiters.server)} closed the connection before answering{reason}"))


class StreamChannel:
    def __init__(self, protocol: _StreamProtocol, transport: asyncio.Transport,
                 local_address: Address, kind: str, connecting_at: float) -> None:
        self._protocol = protocol
        self._transport = transport
        self.local_address = local_address
        self.server_address = protocol.waiters.server
        self.transport = kind
        #: The connection attempt (its SYN) was the first packet.
        self.first_sent_at: float | None = connecting_at

    @property
    def software(self) -> str | None:
        return self._protocol.waiters.software

    async def transact(self, request: Request, deadline: float) -> Response:
        waiters = self._protocol.waiters
        future = waiters.expect(request.transaction_id, request.method, request.name)
        mismatched_before = waiters.mismatched_count
        start = time.monotonic()
        try:
            log.debug("%s > %s", waiters.route, _request_line(request))
            self._transport.write(request.data)
            try:
                response = await asyncio.wait_for(asyncio.shield(future), remaining(deadline))
            except asyncio.TimeoutError:
                raise _timeout(self.server_address, request, 1, time.monotonic() - start,
                               waiters, mismatched_before) from None
            log.debug("%s < %s in %.1f ms", waiters.route, _response_line(request, response),
                      (time.monotonic() - start) * 1e3)
            return response
        finally:
            waiters.forget(request.transaction_id)

    def close(self) -> None:
        self._transport.abort()


#: OpenSSL's X509_V_ERR codes (x509_vfy.h) grouped by what a person must fix.
_UNTRUSTED = {2, 18, 19, 20, 21, 27}
_EXPIRED = {9, 10}
_NAME_MISMATCH = {62, 64}


def _certificate_problem(exc: ssl.SSLCertVerificationError) -> str:
    code = exc.verify_code
    if code in _EXPIRED:
        return "certificate-expired" if code == 10 else "certificate-not-yet-valid"
    if code in _NAME_MISMATCH:
        return "hostname-mismatch"
    if code in _UNTRUSTED:
        return "certificate-untrusted"
    return "certificate-invalid"


def shareable_udp_socket(family: int) -> socket.socket:
    """A UDP socket that other sockets of this process may bind to the same port
    (SO_REUSEPORT, where the system has it)."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    reuse = getattr(socket, "SO_REUSEPORT", None)
    if reuse is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, reuse, 1)
        except OSError:
            log.debug("! SO_REUSEPORT refused: probes get ports of their own")
    return sock


def _bind(sock: socket.socket, local_ip: str, port: int) -> None:
    """Bind to `port` (shared with the host candidate's socket) when asked and possible,
    else to a port of its own."""
    if port:
        try:
            sock.bind((local_ip, port))
            return
        except OSError as exc:
            log.debug("! cannot share port %d of %s (%s): a port of its own", port, local_ip,
                      exc.strerror or exc)
    sock.bind((local_ip, 0))


async def open_udp(local_ip: str, server: Address, port: int = 0) -> UdpChannel:
    """A UDP socket connected to `server`; bound to `port` of `local_ip` (the host
    candidate's port, shared: the kernel gives each connected socket its own server's
    datagrams and ICMP errors) or, when 0 or not possible, to a port of its own."""
    loop = asyncio.get_running_loop()
    waiters = _Waiters(server)
    family = socket.AF_INET6 if ":" in local_ip else socket.AF_INET
    try:
        sock = shareable_udp_socket(family) if port else socket.socket(family, socket.SOCK_DGRAM)
    except OSError as exc:
        raise _os_failure(exc, "could not create a UDP socket") from exc
    try:
        sock.setblocking(False)
        _bind(sock, local_ip, port)
        sock.connect(server)
    except OSError as exc:
        sock.close()
        failure = _os_failure(exc, f"could not open a UDP socket from {local_ip} to "
                                   f"{describe(server)}")
        if failure.cause is Cause.REFUSED:
            failure = ProbeFailure(Cause.UNREACHABLE, failure.text)
        raise failure from exc
    transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(waiters), sock=sock)
    local = sock.getsockname()
    return UdpChannel(transport, waiters, (str(local[0]), int(local[1])))


async def open_stream(local_ip: str, server: Address, deadline: float,
                      tls: ssl.SSLContext | None, server_hostname: str) -> StreamChannel:
    """Connect over TCP, then (for stuns:/turns:) run the TLS handshake as its own step so
    that a failure of either is named precisely."""
    loop = asyncio.get_running_loop()
    kind = "tcp" if tls is None else "tls"
    waiters = _Waiters(server, kind)
    waiters.route = route(kind, local_ip, server)
    what = f"TCP connection from {local_ip} to {describe(server)}"
    log.debug("%s TCP connect", waiters.route)
    connecting_at = time.monotonic()
    try:
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: _StreamProtocol(waiters), host=server[0],
                                   port=server[1], local_addr=(local_ip, 0)),
            remaining(deadline))
    except asyncio.TimeoutError:
        log.debug("%s TCP connect timed out", waiters.route)
        raise ProbeFailure(Cause.TIMEOUT, f"{what} timed out") from None
    except OSError as exc:
        failure = _os_failure(exc, what)
        log.debug("%s TCP connect failed: %s", waiters.route, failure.text)
        raise failure from exc
    sockname = transport.get_extra_info("sockname")
    local = (str(sockname[0]), int(sockname[1]))
    waiters.route = route(kind, local, server)
    log.debug("%s TCP connected in %.1f ms", waiters.route,
              (time.monotonic() - connecting_at) * 1e3)
    if tls is None:
        return StreamChannel(protocol, transport, local, kind, connecting_at)
    log.debug("%s TLS handshake start (server name %s)", waiters.route, server_hostname)
    handshake_at = time.monotonic()
    try:
        tls_transport = await _handshake(
            loop.start_tls(transport, protocol, tls, server_hostname=server_hostname),
            local_ip, server, deadline)
    except _PlainPort:
        transport.abort()
        log.debug("%s TLS handshake abandoned: the port speaks plain STUN", waiters.route)
        raise ProbeFailure(Cause.TLS, f"TLS handshake with {server_hostname} "
                                      f"({describe(server)}) unanswered after "
                                      f"{PLAIN_PROBE_AFTER:g} s, while the port answered a "
                                      "plain STUN Binding over TCP: this port speaks plain "
                                      "STUN/TURN over TCP, not TLS",
                           problem="not-tls") from None
    except asyncio.TimeoutError:
        transport.abort()
        log.debug("%s TLS handshake timed out", waiters.route)
        raise ProbeFailure(Cause.TLS, f"TLS handshake with {server_hostname} "
                                      f"({describe(server)}) timed out",
                           problem="handshake") from None
    except ssl.SSLCertVerificationError as exc:
        transport.abort()
        failure = ProbeFailure(Cause.TLS, f"TLS certificate of {server_hostname} "
                                          f"({describe(server)}) rejected: "
                                          f"{exc.verify_message or exc.reason}",
                               problem=_certificate_problem(exc))
        log.debug("%s TLS handshake failed: %s", waiters.route, failure.text)
        raise failure from exc
    except (ssl.SSLError, OSError) as exc:
        transport.abort()
        failure = ProbeFailure(Cause.TLS, f"TLS handshake with {server_hostname} "
                                          f"({describe(server)}) failed: {exc}",
                               problem="handshake")
        log.debug("%s TLS handshake failed: %s", waiters.route, failure.text)
        raise failure from exc
    if tls_transport is None:
        raise ProbeFailure(Cause.TLS, f"TLS handshake with {describe(server)} failed")
    session = tls_transport.get_extra_info("ssl_object")
    log.debug("%s TLS handshake done in %.1f ms (%s, %s)", waiters.route,
              (time.monotonic() - handshake_at) * 1e3,
              session.version() if session is not None else "?",
              (tls_transport.get_extra_info("cipher") or ("?",))[0])
    protocol.transport = tls_transport
    return StreamChannel(protocol, tls_transport, local, kind, connecting_at)


#: A TLS handshake still unanswered after this long gets a plain STUN Binding over TCP to
#: the same port, on a second connection: coturn and pion never answer a ClientHello on a
#: plain port, but answer a Binding there at once.
PLAIN_PROBE_AFTER = 0.5


class _PlainPort(Exception):
    """The port a TLS handshake waits on answered plain STUN over TCP."""


async def _handshake(start_tls: Coroutine[Any, Any, asyncio.Transport | None], local_ip: str,
                     server: Address, deadline: float) -> asyncio.Transport | None:
    """Run the TLS handshake until the deadline, unless the port turns out to speak plain
    STUN over TCP (then `_PlainPort`); `asyncio.TimeoutError` when the deadline passes."""
    handshake = asyncio.ensure_future(start_tls)
    plain = asyncio.ensure_future(_answers_plain_stun(local_ip, server, deadline))
    pending: set[asyncio.Future[Any]] = {handshake, plain}
    try:
        while not handshake.done():
            done, pending = await asyncio.wait(pending, timeout=remaining(deadline),
                                               return_when=asyncio.FIRST_COMPLETED)
            if not done:
                raise asyncio.TimeoutError
            if plain in done and not handshake.done() and plain.result():
                raise _PlainPort
        return handshake.result()
    finally:
        for task in (handshake, plain):
            if not task.done():
                task.cancel()
        await asyncio.wait({handshake, plain}, timeout=0.1)
        if handshake.done() and not handshake.cancelled():
            handshake.exception()  # retrieved: the caller has its own outcome


async def _answers_plain_stun(local_ip: str, server: Address, deadline: float) -> bool:
    """After PLAIN_PROBE_AFTER, whether `server` answers a plain STUN Binding over TCP (any
    STUN answer counts), on a connection of its own, within the deadline."""
    await asyncio.sleep(min(PLAIN_PROBE_AFTER, remaining(deadline)))
    if remaining(deadline) <= 0:
        return False
    log.debug("%s TLS handshake unanswered after %.1f s: trying plain STUN over TCP on the "
              "same port", route("tls", local_ip, server), PLAIN_PROBE_AFTER)
    channel: StreamChannel | None = None
    try:
        channel = await open_stream(local_ip, server, deadline, None, "")
        await channel.transact(wire.binding_request(), deadline)
    except ProbeFailure:
        return False
    finally:
        if channel is not None:
            channel.close()
    return True
