"""What the rules judge, and what they share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..constants import DEFAULT_RELAY_MAX_RTT_MS, DEFAULT_RELAY_MIN_BPS, DEFAULT_SLOW_MS
from ..credentials import EphemeralExpiry
from ..model import (
    Candidate,
    ErrorEvent,
    ProbeResult,
    Recording,
    RelayCheck,
    Requirement,
    Severity,
    Verdict,
)


@dataclass(frozen=True)
class Evidence:
    """What the rules look at: the host candidates and each server's result, plus how the
    run was configured. `turn_credentials` is None when unknown (a browser dump may not say)."""

    host_candidates: tuple[Candidate, ...]
    results: tuple[ProbeResult, ...]
    require: Requirement = Requirement.EACH
    turn_credentials: bool | None = None
    slow_ms: float = DEFAULT_SLOW_MS
    #: The expiry carried by a TURN REST (ephemeral) username, when one was given.
    ephemeral: EphemeralExpiry | None = None
    #: TLS verification was switched off (--insecure).
    insecure: bool = False
    #: The TURN servers are a transport matrix (--matrix): one verdict sums them up.
    matrix: bool = False
    #: The relay families asked for (--relay-family): ipv4, ipv6 or both.
    relay_family: str = "ipv4"
    #: Relay data-path checks (iceprobe relay, gather --relay-check), and their thresholds.
    relays: tuple[RelayCheck, ...] = ()
    relay_max_rtt_ms: float = DEFAULT_RELAY_MAX_RTT_MS
    relay_min_bps: float = DEFAULT_RELAY_MIN_BPS
    #: Set when the evidence was read from a browser's recording (iceprobe analyze).
    recording: Recording | None = None
    #: srflx and relay candidates no server can be named for (an SDP carries no URLs).
    unattributed: tuple[Candidate, ...] = ()
    #: TURN was probed without credentials on purpose (--no-auth): an open relay is looked
    #: for, and a 401 means the server requires authentication.
    no_auth: bool = False

    @property
    def gathered(self) -> tuple[Candidate, ...]:
        return tuple(c for r in self.results for c in r.candidates) + self.unattributed


Rule = Callable[[Evidence], list[Verdict]]


def failure_severity(evidence: Evidence, result: ProbeResult) -> Severity:
    """How bad it is that `result`'s server yielded nothing: always `fail` under
    `--require each`; under `any`, `warn` while another server of its kind works."""
    if evidence.require is Requirement.EACH:
        return Severity.FAIL
    peers_ok = any(r.ok for r in evidence.results
                   if r.server.is_turn == result.server.is_turn and r is not result)
    return Severity.WARN if peers_ok else Severity.FAIL


def local_addresses(events: Sequence[ErrorEvent]) -> str:
    """The local addresses events came from, for a verdict's detail."""
    seen = sorted({e.address for e in events if e.address})
    return ", ".join(seen) if seen else "this machine"


def response_text(event: ErrorEvent) -> str:
    """An error response as the server sent it: its code and reason phrase, or says that it
    sent none (pion/turn sends a bare 400), never a phrase made up for it."""
    return (f"{event.error_code} {event.error_text}" if event.error_text
            else f"{event.error_code} (no reason phrase)")


def sentence(text: str) -> str:
    """The text ending in exactly one full stop (browsers' errorTexts bring their own)."""
    return text.rstrip().rstrip(".") + "."
