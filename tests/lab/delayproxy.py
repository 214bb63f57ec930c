"""A UDP proxy of our own in front of a real server, for the exporter lab: it forwards what
clients send at once and holds the server's answers back for `delay` seconds, like a server
far away. It keeps count of what reached the server: the client ports seen, how many clients
had a STUN transaction waiting for its answer at once, and whether the server ever answered
a TURN Allocate with success (the moment an allocation exists)."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import selectors
import socket
import threading
import time

_ALLOCATE_SUCCESS = 0x0103
_MAGIC = b"\x21\x12\xa4\x42"


def _transaction(data: bytes) -> bytes | None:
    """The STUN transaction id of a datagram, or None for what is not STUN."""
    if len(data) >= 20 and data[0] & 0xC0 == 0 and data[4:8] == _MAGIC:
        return data[8:20]
    return None


class DelayingUdpProxy:
    """Clients talk to (ip, port); each gets its own upstream socket, so the server sees one
    5-tuple per client, as it would without the proxy."""

    def __init__(self, ip: str, upstream: tuple[str, int], delay: float) -> None:
        self.delay = delay
        self._upstream = upstream
        self._front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._front.bind((ip, 0))
        self._front.setblocking(False)
        self.ip = ip
        self.port = int(self._front.getsockname()[1])
        self._lock = threading.Lock()
        #: Client address -> its upstream socket.
        self._clients: dict[tuple[str, int], socket.socket] = {}
        self._client_of: dict[socket.socket, tuple[str, int]] = {}
        #: Client address -> transaction ids sent and not yet answered (to the client).
        self._waiting: dict[tuple[str, int], set[bytes]] = {}
        self._queue: list[tuple[float, int, bytes, tuple[str, int]]] = []
        self._order = itertools.count()
        #: The most clients with an unanswered transaction at the same moment.
        self.most_at_once = 0
        #: Set when the server answers an Allocate with success.
        self.allocated = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._front, selectors.EVENT_READ)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="delay-proxy", daemon=True)
        self._thread.start()

    @property
    def clients_seen(self) -> int:
        with self._lock:
            return len(self._clients)

    def clients_waiting(self) -> int:
        with self._lock:
            return sum(1 for waiting in self._waiting.values() if waiting)

    def _serve(self) -> None:
        while not self._stopped.is_set():
            timeout = 0.05
            if self._queue:
                timeout = max(0.0, min(timeout, self._queue[0][0] - time.monotonic()))
            for key, _ in self._selector.select(timeout):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data, peer = sock.recvfrom(65536)
                except OSError:
                    continue
                if sock is self._front:
                    self._from_client(data, (str(peer[0]), int(peer[1])))
                else:
                    self._from_server(data, sock)
            now = time.monotonic()
            while self._queue and self._queue[0][0] <= now:
                _, _, data, client = heapq.heappop(self._queue)
                with self._lock:
                    transaction = _transaction(data)
                    if transaction is not None:
                        self._waiting.get(client, set()).discard(transaction)
                with contextlib.suppress(OSError):  # the client has gone
                    self._front.sendto(data, client)

    def _from_client(self, data: bytes, client: tuple[str, int]) -> None:
        with self._lock:
            upstream = self._clients.get(client)
            if upstream is None:
                upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                upstream.connect(self._upstream)
                upstream.setblocking(False)
                self._clients[client] = upstream
                self._client_of[upstream] = client
                self._selector.register(upstream, selectors.EVENT_READ)
            transaction = _transaction(data)
            if transaction is not None:
                self._waiting.setdefault(client, set()).add(transaction)
            self.most_at_once = max(self.most_at_once, sum(
                1 for waiting in self._waiting.values() if waiting))
        with contextlib.suppress(OSError):  # an ICMP error from an earlier send
            upstream.send(data)

    def _from_server(self, data: bytes, upstream: socket.socket) -> None:
        if len(data) >= 2 and int.from_bytes(data[:2], "big") == _ALLOCATE_SUCCESS:
            self.allocated.set()
        client = self._client_of[upstream]
        heapq.heappush(self._queue, (time.monotonic() + self.delay, next(self._order), data,
                                     client))

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=1)
        self._selector.close()
        for sock in [self._front, *self._clients.values()]:
            sock.close()
