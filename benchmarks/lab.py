"""The benchmark's own network: the test lab's namespace and coturn, and small UDP servers
of our own.

Standard library only (and the test lab's helpers, which are too): the benchmark builds its
lab before it knows whether iceprobe's dependencies are installed. Everything stays inside
the network and mount namespaces that `tests.lab.netns` creates for this process: a veth pair
with 198.18.0.10/24 and fd00::10/64 plus loopback, and its own /etc/hosts and
/etc/resolv.conf. The resolver they name is our own NXDOMAIN responder on DNS_ADDRESS, so no
lookup ever reaches a real resolver.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import selectors
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable

from tests.lab import netns, servers
from tests.lab.netns import DNS_ADDRESS, MISSING_NAME
from tests.lab.netns import LabNetwork as Network
from tests.lab.servers import Coturn

USER = "bench"
PASSWORD = "bench-secret-9"

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_RESPONSE = 0x0101
XOR_MAPPED_ADDRESS = 0x0020


class LabError(Exception):
    """The benchmark's lab cannot be built here (not root, no iproute2, no coturn, ...)."""


def enter_namespace() -> Network:
    """Move this process into new network and mount namespaces and build the lab network
    there (`tests.lab.netns`).

    Must run before this process starts any thread: unshare(CLONE_NEWNS) refuses a
    multithreaded process. Child processes inherit both namespaces."""
    try:
        return netns.enter_lab_network()
    except netns.LabUnavailable as exc:
        raise LabError(str(exc)) from None


# --- wire formats of our own small servers ---------------------------------------------------

def binding_reply(request: bytes, peer: tuple[str, int]) -> bytes | None:
    """A STUN Binding success response with XOR-MAPPED-ADDRESS (RFC 8489 sections 6.3.3 and
    14.2) for a Binding request; None for anything else."""
    if len(request) < 20:
        return None
    kind, _length, cookie = struct.unpack_from("!HHI", request, 0)
    if kind != BINDING_REQUEST or cookie != MAGIC_COOKIE:
        return None
    transaction_id = request[8:20]
    host, port = peer
    xport = port ^ (MAGIC_COOKIE >> 16)
    if ":" in host:
        raw = socket.inet_pton(socket.AF_INET6, host.split("%")[0])
        mask = struct.pack("!I", MAGIC_COOKIE) + transaction_id
        value = struct.pack("!BBH", 0, 2, xport) + bytes(a ^ b for a, b in zip(raw, mask,
                                                                               strict=True))
    else:
        (address,) = struct.unpack("!I", socket.inet_aton(host))
        value = struct.pack("!BBHI", 0, 1, xport, address ^ MAGIC_COOKIE)
    attribute = struct.pack("!HH", XOR_MAPPED_ADDRESS, len(value)) + value
    return struct.pack("!HHI", BINDING_RESPONSE, len(attribute), MAGIC_COOKIE) + \
        transaction_id + attribute


def nxdomain_reply(query: bytes, peer: tuple[str, int]) -> bytes | None:
    """The answer to a DNS query (RFC 1035 section 4.1.1): same id and question, QR=1,
    RD copied, RA=1, RCODE=3 (NXDOMAIN)."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack_from("!HHH", query, 0)
    reply_flags = 0x8000 | (flags & 0x0100) | 0x0080 | 3
    return struct.pack("!HHHHHH", ident, reply_flags, qdcount, 0, 0, 0) + query[12:]


Handler = Callable[[bytes, tuple[str, int]], bytes | None]


class UdpServers:
    """UDP sockets served by one thread: each answers with its handler's reply (None: stays
    silent; a silent socket keeps its port taken, so no ICMP error comes back), at once or
    after a fixed delay, as a server far away would."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._sockets: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        #: Replies waiting for their time: (due, sequence, socket, reply, peer).
        self._due: list[tuple[float, int, socket.socket, bytes, tuple[str, int]]] = []
        self._sequence = itertools.count()

    def add(self, address: str, port: int, handler: Handler | None, delay: float = 0.0) -> int:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((address, port))
        sock.setblocking(False)
        self._sockets.append(sock)
        if handler is not None:
            self._selector.register(sock, selectors.EVENT_READ, (handler, delay))
        return int(sock.getsockname()[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="bench-udp", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            wait = 0.1 if not self._due else max(0.0, min(0.1, self._due[0][0] - time.monotonic()))
            for key, _events in self._selector.select(timeout=wait):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                handler, delay = key.data
                while True:
                    try:
                        data, peer = sock.recvfrom(4096)
                    except OSError:  # drained (BlockingIOError) or closed
                        break
                    address = (str(peer[0]), int(peer[1]))
                    reply = handler(data, address)
                    if reply is not None:
                        heapq.heappush(self._due, (time.monotonic() + delay,
                                                   next(self._sequence), sock, reply, address))
            while self._due and self._due[0][0] <= time.monotonic():
                _due, _sequence, sock, reply, address = heapq.heappop(self._due)
                with contextlib.suppress(OSError):
                    sock.sendto(reply, address)

    def close(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._selector.close()
        for sock in self._sockets:
            sock.close()


# --- coturn ----------------------------------------------------------------------------------

def coturn_version() -> str:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "coturn"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def start_coturn(ip: str, port: int, relay_ports: tuple[int, int]) -> Coturn:
    """The test lab's coturn (UDP and TCP, no TLS) on ip:port, long-term credentials USER /
    PASSWORD; it waits until coturn answers a Binding request."""
    try:
        return servers.start_coturn(ip, user=USER, password=PASSWORD, port=port,
                                    relay_ports=relay_ports)
    except RuntimeError as exc:  # turnserver missing, exited, or silent
        raise LabError(str(exc)) from None


__all__ = ["DNS_ADDRESS", "MISSING_NAME", "Coturn", "LabError", "Network", "UdpServers",
           "binding_reply", "coturn_version", "enter_namespace", "nxdomain_reply",
           "start_coturn"]
