"""A small UDP proxy between TURN clients and coturn that misbehaves on purpose: towards the
clients it sends every `duplicate_every`-th ChannelData message twice, and holds back every
`reorder_every`-th one until the next has gone out (or `hold` seconds have passed). STUN
messages pass untouched. It counts what it did, so that a test can compare the receiver's
figures with the truth."""

from __future__ import annotations

import select
import socket
import threading
import time

Address = tuple[str, int]


class MisbehavingProxy:
    def __init__(self, ip: str, server: Address, duplicate_every: int = 10,
                 reorder_every: int = 7, hold: float = 0.05) -> None:
        self.server = server
        self.duplicate_every = duplicate_every
        self.reorder_every = reorder_every
        self.hold = hold
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((ip, 0))
        self.port = int(self.front.getsockname()[1])
        self.ip = ip
        #: One upstream socket per client address: coturn tells allocations by 5-tuple.
        self.upstream: dict[Address, socket.socket] = {}
        self.client_of: dict[socket.socket, Address] = {}
        self.channel_data = 0
        self.duplicated = 0
        self.reordered = 0
        self._held: tuple[bytes, Address, float] | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="misbehaving-proxy",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.is_set():
            readers = [self.front, *self.upstream.values()]
            readable, _, _ = select.select(readers, [], [], 0.01)
            for sock in readable:
                if sock is self.front:
                    data, client = self.front.recvfrom(65535)
                    self._upstream(client).send(data)
                else:
                    try:
                        data = sock.recv(65535)
                    except OSError:
                        continue
                    self._towards_client(data, self.client_of[sock])
            held = self._held
            if held is not None and time.monotonic() - held[2] > self.hold:
                self.front.sendto(held[0], held[1])  # nothing came after it: not reordered
                self._held = None

    def _upstream(self, client: Address) -> socket.socket:
        sock = self.upstream.get(client)
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((self.ip, 0))
            sock.connect(self.server)
            self.upstream[client] = sock
            self.client_of[sock] = client
        return sock

    def _towards_client(self, data: bytes, client: Address) -> None:
        if len(data) < 4 or data[0] & 0xC0 != 0x40:
            self.front.sendto(data, client)
            return
        self.channel_data += 1
        if self._held is None and self.channel_data % self.reorder_every == 0:
            self._held = (data, client, time.monotonic())
            return
        self.front.sendto(data, client)
        if self.channel_data % self.duplicate_every == 0:
            self.front.sendto(data, client)
            self.duplicated += 1
        held = self._held
        if held is not None:
            self.front.sendto(held[0], held[1])
            self._held = None
            self.reordered += 1

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=2)
        self.front.close()
        for sock in self.upstream.values():
            sock.close()
