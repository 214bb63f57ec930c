"""Stream channels: a TCP connection to one server address, with TLS for stuns:/turns:.

The TLS handshake runs as its own step, so that a failure of the connection or of the
handshake is named precisely; a handshake left unanswered gets a plain STUN probe of the same
port (`not-tls`). Requests over TCP and TLS are sent once (RFC 8489 section 6.2.2).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Coroutine
from typing import Any

from ..model import Cause
from . import wire
from .channel import (
    ProbeFailure,
    Waiters,
    describe,
    os_failure,
    remaining,
    request_line,
    response_line,
    route,
    timeout_failure,
)
from .wire import Address, Request, Response

log = logging.getLogger("iceprobe.gather")


class _StreamProtocol(asyncio.Protocol):
    def __init__(self, waiters: Waiters) -> None:
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
                 local_address: Address, kind: str, connecting_at: float,
                 connect_seconds: float, tls_seconds: float | None = None,
                 certificate_expires: float | None = None) -> None:
        self._protocol = protocol
        self._transport = transport
        self.local_address = local_address
        self.server_address = protocol.waiters.server
        self.transport = kind
        #: The connection attempt (its SYN) was the first packet.
        self.first_sent_at: float | None = connecting_at
        #: How long the TCP connection and the TLS handshake took (seconds), and when the
        #: server's certificate expires (unix time; None without TLS).
        self.connect_seconds = connect_seconds
        self.tls_seconds = tls_seconds
        self.certificate_expires = certificate_expires

    @property
    def software(self) -> str | None:
        return self._protocol.waiters.software

    async def transact(self, request: Request, deadline: float) -> Response:
        waiters = self._protocol.waiters
        future = waiters.expect(request.transaction_id, request.method, request.name)
        mismatched_before = waiters.mismatched_count
        start = time.monotonic()
        try:
            log.debug("%s > %s", waiters.route, request_line(request))
            self._transport.write(request.data)
            try:
                response = await asyncio.wait_for(asyncio.shield(future), remaining(deadline))
            except asyncio.TimeoutError:
                raise timeout_failure(self.server_address, request, 1, time.monotonic() - start,
                                      waiters, mismatched_before) from None
            log.debug("%s < %s in %.1f ms", waiters.route, response_line(request, response),
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


async def open_stream(local_ip: str, server: Address, deadline: float,
                      tls: ssl.SSLContext | None, server_hostname: str) -> StreamChannel:
    """Connect over TCP, then (for stuns:/turns:) run the TLS handshake as its own step so
    that a failure of either is named precisely."""
    loop = asyncio.get_running_loop()
    kind = "tcp" if tls is None else "tls"
    waiters = Waiters(server, kind)
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
        failure = os_failure(exc, what)
        log.debug("%s TCP connect failed: %s", waiters.route, failure.text)
        raise failure from exc
    sockname = transport.get_extra_info("sockname")
    local = (str(sockname[0]), int(sockname[1]))
    waiters.route = route(kind, local, server)
    connected = time.monotonic() - connecting_at
    log.debug("%s TCP connected in %.1f ms", waiters.route, connected * 1e3)
    if tls is None:
        return StreamChannel(protocol, transport, local, kind, connecting_at, connected)
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
    handshake = time.monotonic() - handshake_at
    session = tls_transport.get_extra_info("ssl_object")
    log.debug("%s TLS handshake done in %.1f ms (%s, %s)", waiters.route, handshake * 1e3,
              session.version() if session is not None else "?",
              (tls_transport.get_extra_info("cipher") or ("?",))[0])
    protocol.transport = tls_transport
    return StreamChannel(protocol, tls_transport, local, kind, connecting_at, connected,
                         handshake, _not_after(session))


def _not_after(session: ssl.SSLObject | None) -> float | None:
    """When the server's certificate expires (unix time): from the verified certificate, or
    (with --insecure, where Python decodes none) from its DER form when `cryptography` is
    there (aiortc needs it); None when unknown."""
    if session is None:
        return None
    decoded = session.getpeercert()
    if decoded and isinstance(decoded.get("notAfter"), str):
        return float(ssl.cert_time_to_seconds(str(decoded["notAfter"])))
    der = session.getpeercert(binary_form=True)
    if not der:
        return None
    try:
        from cryptography import x509

        return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()
    except (ImportError, ValueError):
        return None


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
