"""A UDP server on a thread of its own, for the lab's small responders."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

Handler = Callable[[bytes, tuple[str, int]], bytes | None]


class UdpThreadServer:
    """Answers each datagram with what `handler` returns (nothing for None) until closed."""

    def __init__(self, address: str, port: int, handler: Handler, name: str) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.bind((address, port))
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self._handler = handler
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self._handler(data, (str(peer[0]), int(peer[1])))
            if reply is not None:
                self._sock.sendto(reply, peer)

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=1)
        self._sock.close()
