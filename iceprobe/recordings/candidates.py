"""Candidate lines (RFC 8839 section 5.1), as browsers write them in SDP, in
`icecandidate` events and in stats: our own small parser."""

from __future__ import annotations

from dataclasses import dataclass

_TYPES = ("host", "srflx", "prflx", "relay")


@dataclass(frozen=True)
class CandidateLine:
    foundation: str
    component: int
    protocol: str
    priority: int
    address: str
    port: int
    type: str
    related_address: str | None = None
    related_port: int | None = None
    tcp_type: str | None = None


def parse_candidate_line(text: str) -> CandidateLine | None:
    """The candidate in `text` ("a=candidate:…", "candidate:…" or the bare attribute value),
    or None when it is not a candidate line."""
    line = text.strip()
    if line.startswith("a="):
        line = line[2:]
    if line.startswith("candidate:"):
        line = line[len("candidate:"):]
    fields = line.split()
    if len(fields) < 8 or fields[6].lower() != "typ":
        return None
    try:
        component, priority, port = int(fields[1]), int(fields[3]), int(fields[5])
    except ValueError:
        return None
    kind = fields[7].lower()
    if kind not in _TYPES or not 0 <= port <= 65535:
        return None
    extras: dict[str, str] = {}
    rest = fields[8:]
    for name, value in zip(rest[::2], rest[1::2], strict=False):
        extras[name.lower()] = value
    related_port = extras.get("rport")
    return CandidateLine(
        foundation=fields[0], component=component, protocol=fields[2].lower(),
        priority=priority, address=fields[4].strip("[]"), port=port, type=kind,
        related_address=extras.get("raddr"),
        related_port=int(related_port) if related_port and related_port.isdigit() else None,
        tcp_type=extras.get("tcptype"))
