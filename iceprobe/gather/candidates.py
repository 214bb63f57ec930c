"""The candidates a run finds: priority and foundation (RFC 8445), the host candidates'
shared UDP sockets, and server-reflexive candidates with their bases."""

from __future__ import annotations

import logging
import socket
import zlib

from ..model import Candidate, CandidateType, ServerSpec
from .channel import Channel
from .local import host_addresses
from .record import Run
from .udp import shareable_udp_socket
from .wire import Address

log = logging.getLogger("iceprobe.gather")

_TYPE_PREFERENCE = {CandidateType.HOST: 126, CandidateType.SRFLX: 100, CandidateType.RELAY: 0}


def priority(kind: CandidateType, address: str, protocol: str = "udp") -> int:
    """RFC 8445 section 5.1.2.1, component 1; IPv6 gets the higher local preference.

    A TCP candidate (all of iceprobe's are active: it opens the connection) takes its local
    preference from RFC 6544 section 4.2: 2^13 * direction-pref + other-pref, with
    direction-pref 6 for an active host or relayed candidate and 4 for an active srflx. That
    keeps it below every UDP candidate of the same type."""
    if protocol == "udp":
        local_preference = 65535 if ":" in address else 65279
    else:
        direction = 4 if kind is CandidateType.SRFLX else 6
        local_preference = (direction << 13) + (8191 if ":" in address else 8190)
    return (_TYPE_PREFERENCE[kind] << 24) + (local_preference << 8) + 255


def foundation(kind: CandidateType, base: str, server: str = "", protocol: str = "udp") -> str:
    """Equal for candidates of one type, base, server and transport protocol (RFC 8445
    section 5.1.1.3)."""
    return str(zlib.crc32(f"{kind.value}|{protocol}|{base}|{server}".encode()))


def bind_host_sockets(run: Run) -> tuple[list[socket.socket], list[Candidate]]:
    """One UDP socket per local address, as a browser binds: its port is the host
    candidate's, and an address that cannot be bound yields no candidate."""
    sockets: list[socket.socket] = []
    candidates: list[Candidate] = []
    for ip in host_addresses():
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        try:
            sock = shareable_udp_socket(family)
        except OSError as exc:
            log.debug("! cannot create a socket for %s: %s", ip, exc)
            continue
        try:
            sock.bind((ip, 0))
        except OSError as exc:
            log.debug("! cannot bind %s: %s", ip, exc)
            sock.close()
            continue
        sockets.append(sock)
        port = int(sock.getsockname()[1])
        run.host_ports[ip] = port
        candidates.append(Candidate(
            type=CandidateType.HOST, protocol="udp", address=ip, port=port,
            foundation=foundation(CandidateType.HOST, ip), priority=priority(
                CandidateType.HOST, ip), elapsed_ms=run.elapsed_ms()))
    return sockets, candidates


def share_host_port(run: Run, local_ip: str, server: Address) -> tuple[str, str, int] | None:
    """Claim the host candidate's port of `local_ip` for a Binding probe of `server`; None
    when there is no such port or a probe of the same server address holds it (the two
    connected sockets could not tell their datagrams apart)."""
    key = (local_ip, server[0], server[1])
    if local_ip not in run.host_ports or key in run.shared:
        return None
    run.shared.add(key)
    return key


def reflexive(run: Run, spec: ServerSpec, mapped: Address, channel: Channel) -> Candidate:
    """The server-reflexive candidate, labelled with the transport of the mapping (a stuns:
    server maps a TCP connection, RFC 6544), its base listed among the host candidates."""
    base = channel.local_address
    protocol = "udp" if channel.transport == "udp" else "tcp"
    tcp_type = None if protocol == "udp" else "active"
    _list_base(run, spec, base, protocol, tcp_type)
    return Candidate(
        type=CandidateType.SRFLX, protocol=protocol, address=mapped[0], port=mapped[1],
        related_address=base[0], related_port=base[1], url=spec.url,
        foundation=foundation(CandidateType.SRFLX, base[0], spec.host, protocol),
        priority=priority(CandidateType.SRFLX, base[0], protocol),
        elapsed_ms=run.elapsed_ms(), tcp_type=tcp_type)


def _list_base(run: Run, spec: ServerSpec, base: Address, protocol: str,
               tcp_type: str | None) -> None:
    """A srflx's related address is its base, a host candidate (RFC 8445 section 5.1.1.2):
    a base that is not a shared host socket is listed as one, with the URL it served."""
    if protocol == "udp" and run.host_ports.get(base[0]) == base[1]:
        return
    if any(c.address == base[0] and c.port == base[1] and c.protocol == protocol
           for c in run.bases):
        return
    run.bases.append(Candidate(
        type=CandidateType.HOST, protocol=protocol, address=base[0], port=base[1],
        foundation=foundation(CandidateType.HOST, base[0], protocol=protocol),
        priority=priority(CandidateType.HOST, base[0], protocol), elapsed_ms=run.elapsed_ms(),
        url=spec.url, tcp_type=tcp_type))
