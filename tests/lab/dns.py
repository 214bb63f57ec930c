"""A DNS responder that answers every query with NXDOMAIN (RFC 1035 section 4.1.1).

It stands in for a resolver that does not know a name, so DNS-failure tests see the real
"Name or service not known" without asking any resolver outside the lab.
"""

from __future__ import annotations

import socket
import struct
import threading

_NXDOMAIN = 3


def nxdomain_reply(query: bytes) -> bytes | None:
    """The reply to `query`: same id and question, QR=1, RA=1, RCODE=NXDOMAIN."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack_from("!HHH", query, 0)
    reply_flags = 0x8000 | (flags & 0x0100) | 0x0080 | _NXDOMAIN
    return struct.pack("!HHHHHH", ident, reply_flags, qdcount, 0, 0, 0) + query[12:]


class NxdomainResolver:
    def __init__(self, address: str, port: int = 53) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((address, port))
        self._sock.settimeout(0.2)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="lab-dns", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                query, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = nxdomain_reply(query)
            if reply is not None:
                self._sock.sendto(reply, peer)

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=1)
        self._sock.close()
