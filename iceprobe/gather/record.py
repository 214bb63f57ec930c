"""A run's shared record, and the error events and probe results built from it.

Every probe of a run writes what it found into one `Run` (so that a stopped run still
reports it), and takes its times from the run's start.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..model import Candidate, ErrorEvent, PhaseTimes, ProbeResult, ServerSpec
from .channel import ProbeFailure
from .options import GatherOptions, tls_context
from .wire import Address


@dataclass
class Run:
    options: GatherOptions
    started: float
    deadline: float
    local_ips: list[str]
    slots: asyncio.Semaphore
    tls: ssl.SSLContext | None = None
    #: Per server (by index): what its finished attempts found, the addresses it resolved
    #: to, and how many attempts never got a slot; read back when the run is stopped.
    found: dict[int, tuple[list[Candidate], list[ErrorEvent]]] = field(default_factory=dict)
    addresses: dict[int, list[str]] = field(default_factory=dict)
    starved: dict[int, int] = field(default_factory=dict)
    #: Of those, how many found every slot taken (the rest found the budget spent).
    busy: dict[int, int] = field(default_factory=dict)
    #: Per server: the REALM it challenged with, and when its first packet went out (ms).
    realms: dict[int, str] = field(default_factory=dict)
    first_sent: dict[int, float] = field(default_factory=dict)
    #: Per server: its SOFTWARE attribute (from any response), and whether it granted an
    #: allocation to an Allocate without credentials (no 401 challenge).
    software: dict[int, str] = field(default_factory=dict)
    unauthenticated: set[int] = field(default_factory=set)
    #: The host candidates' UDP ports by local address: STUN Binding probes share them, as a
    #: browser sends every Binding from its one socket per address.
    host_ports: dict[str, int] = field(default_factory=dict)
    #: (local address, server address, server port) of the Binding probes on a shared port:
    #: a second probe of the same server address from there needs a port of its own.
    shared: set[tuple[str, str, int]] = field(default_factory=set)
    #: The bases of server-reflexive candidates that are no shared host socket (a probe's
    #: own UDP port, a TCP connection): listed as host candidates of their own.
    bases: list[Candidate] = field(default_factory=list)
    #: Per server: how long each step took (PhaseTimes field names, the first attempt to
    #: complete a step wins), and when its TLS certificate expires.
    phases: dict[int, dict[str, float]] = field(default_factory=dict)
    certificate_expires: dict[int, float] = field(default_factory=dict)

    def phase(self, index: int, name: str, seconds: float | None) -> None:
        """Note how long a step of server `index`'s probe took, unless one was noted."""
        if seconds is not None:
            self.phases.setdefault(index, {}).setdefault(f"{name}_ms", round(seconds * 1e3, 2))

    def phase_times(self, index: int) -> PhaseTimes:
        return dataclasses.replace(PhaseTimes(), **self.phases.get(index, {}))

    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 1)

    def tls_context(self) -> ssl.SSLContext:
        if self.tls is None:
            self.tls = tls_context(self.options)
        return self.tls


def probe_result(run: Run, index: int, spec: ServerSpec, candidates: list[Candidate],
                 errors: list[ErrorEvent], addresses: Sequence[str] = ()) -> ProbeResult:
    """The finished probe, timed like its candidates and errors: from the run's start."""
    return ProbeResult(server=spec, candidates=tuple(candidates), errors=tuple(errors),
                       duration_ms=run.elapsed_ms(), addresses=tuple(addresses),
                       realm=run.realms.get(index), first_sent_ms=run.first_sent.get(index),
                       software=run.software.get(index),
                       unauthenticated_allocation=index in run.unauthenticated,
                       phases=run.phase_times(index),
                       certificate_expires=run.certificate_expires.get(index))


def error_event(run: Run, spec: ServerSpec, failure: ProbeFailure, local_ip: str | None = None,
                local_port: int | None = None, server: Address | None = None,
                family: int | None = None) -> ErrorEvent:
    return ErrorEvent(
        url=spec.url, address=local_ip, port=local_port,
        server_address=server[0] if server else None, server_port=server[1] if server else None,
        error_code=failure.code, error_text=failure.text, cause=failure.cause,
        elapsed_ms=run.elapsed_ms(), problem=failure.problem,
        requested_family=family if spec.is_turn else None,
        after_challenge=failure.after_challenge)
