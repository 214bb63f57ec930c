"""The transport matrix: one TURN host probed over every transport and port, to answer
"which way out of this network works?" in one run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .model import Cause, ProbeResult, ServerSpec, Transport
from .urls import parse_server_url

DEFAULT_PORTS = (3478, 443, 5349)
TRANSPORTS = (Transport.UDP, Transport.TCP, Transport.TLS)


def matrix_specs(hosts: Sequence[str], ports: Sequence[int]) -> list[ServerSpec]:
    """turn:/turns: URLs for every host, transport and port (ports in the given order)."""
    specs = []
    for host in dict.fromkeys(hosts):
        shown = f"[{host}]" if ":" in host else host
        for transport in TRANSPORTS:
            for port in dict.fromkeys(ports):
                if transport is Transport.TLS:
                    url = f"turns:{shown}:{port}?transport=tcp"
                else:
                    url = f"turn:{shown}:{port}?transport={transport.value}"
                specs.append(parse_server_url(url))
    return specs


@dataclass(frozen=True)
class Cell:
    host: str
    transport: Transport
    port: int
    ok: bool
    summary: str
    duration_ms: float


def cells(results: Sequence[ProbeResult]) -> list[Cell]:
    """One cell per TURN result (STUN servers in the same run are not part of the grid)."""
    found = []
    for result in (r for r in results if r.server.is_turn):
        spec = result.server
        if result.ok:
            summary = "ok"
        elif result.errors:
            first = result.errors[0]
            summary = (f"{first.error_code} {first.error_text}"
                       if first.cause is Cause.RESPONSE else f"701 {first.cause.value}")
        else:
            summary = "no relay"
        found.append(Cell(spec.host, spec.transport, spec.port, result.ok, summary,
                          cell_duration_ms(result)))
    return found


def cell_duration_ms(result: ProbeResult) -> float:
    """From the probe's own first packet (its request, or its TCP connection attempt) to its
    outcome: the relay candidate, or else the last failure. Not from the run's start, which
    would add other probes' set-up to every cell."""
    relays = [c.elapsed_ms for c in result.candidates
              if c.type is result.server.expected_candidate and c.elapsed_ms is not None]
    failures = [e.elapsed_ms for e in result.errors if e.elapsed_ms is not None]
    if relays:
        outcome = min(relays)
    elif failures:
        outcome = max(failures)
    else:
        outcome = result.duration_ms or 0.0
    return round(max(0.0, outcome - (result.first_sent_ms or 0.0)), 1)
