"""A DNS responder that answers every query with NXDOMAIN (RFC 1035 section 4.1.1).

It stands in for a resolver that does not know a name, so DNS-failure tests see the real
"Name or service not known" without asking any resolver outside the lab.
"""

from __future__ import annotations

import struct

from tests.lab.udpserver import UdpThreadServer

_NXDOMAIN = 3


def nxdomain_reply(query: bytes) -> bytes | None:
    """The reply to `query`: same id and question, QR=1, RA=1, RCODE=NXDOMAIN."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack_from("!HHH", query, 0)
    reply_flags = 0x8000 | (flags & 0x0100) | 0x0080 | _NXDOMAIN
    return struct.pack("!HHHHHH", ident, reply_flags, qdcount, 0, 0, 0) + query[12:]


class NxdomainResolver(UdpThreadServer):
    def __init__(self, address: str, port: int = 53) -> None:
        super().__init__(address, port, lambda query, peer: nxdomain_reply(query), "lab-dns")
