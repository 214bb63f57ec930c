"""UDP channels: a connected socket to one server address, and its retransmissions.

UDP sockets are connected, so that an ICMP error (port or host unreachable) reaches us at
once instead of costing the whole time budget. Requests over UDP are retransmitted on a
browser-like schedule (first RTO 250 ms, doubling, RFC 8489 section 6.2.1) until the deadline.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time

from ..model import Cause
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

FIRST_RTO = 0.25


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, waiters: Waiters) -> None:
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

    def __init__(self, transport: asyncio.DatagramTransport, waiters: Waiters,
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
                log.debug("%s > %s (send %d)", self._waiters.route, request_line(request),
                          sends)
                try:
                    self._transport.sendto(request.data)
                except OSError as exc:
                    raise os_failure(exc, f"sending to {describe(self.server_address)}") from exc
                if self.first_sent_at is None:
                    self.first_sent_at = time.monotonic()
                wait = min(rto, remaining(deadline))
                if wait <= 0:
                    break
                done, _ = await asyncio.wait({future}, timeout=wait)
                if done:
                    response = future.result()
                    log.debug("%s < %s in %.1f ms", self._waiters.route,
                              response_line(request, response),
                              (time.monotonic() - start) * 1e3)
                    return response
                if remaining(deadline) <= 0:
                    break
                rto *= 2
        finally:
            self._waiters.forget(request.transaction_id)
        raise timeout_failure(self.server_address, request, sends, time.monotonic() - start,
                              self._waiters, mismatched_before)

    def close(self) -> None:
        self._transport.close()


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
    waiters = Waiters(server)
    family = socket.AF_INET6 if ":" in local_ip else socket.AF_INET
    try:
        sock = shareable_udp_socket(family) if port else socket.socket(family, socket.SOCK_DGRAM)
    except OSError as exc:
        raise os_failure(exc, "could not create a UDP socket") from exc
    try:
        sock.setblocking(False)
        _bind(sock, local_ip, port)
        sock.connect(server)
    except OSError as exc:
        sock.close()
        failure = os_failure(exc, f"could not open a UDP socket from {local_ip} to "
                                  f"{describe(server)}")
        if failure.cause is Cause.REFUSED:
            failure = ProbeFailure(Cause.UNREACHABLE, failure.text)
        raise failure from exc
    transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(waiters), sock=sock)
    local = sock.getsockname()
    return UdpChannel(transport, waiters, (str(local[0]), int(local[1])))
