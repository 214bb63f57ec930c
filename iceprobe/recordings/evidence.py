"""From a recording to the evidence the rules judge: the same `Candidate`, `ErrorEvent` and
`ProbeResult` values that gathering produces, so that the same rules run on both, plus a
`Recording` for what only a recording knows. Addresses stay as recorded (masked, mDNS)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from ..codes import match_text
from ..model import (
    Candidate,
    CandidateType,
    Cause,
    ErrorEvent,
    GatherReport,
    ProbeResult,
    Recording,
    RelayCheck,
    RelayStep,
    Requirement,
    Scheme,
    ServerSpec,
    Source,
    Spread,
    StateChange,
    Transport,
)
from ..rules import Evidence
from ..urls import UrlError, parse_server_url
from .candidates import parse_candidate_line
from .session import Input, RecordedCandidate, RecordedRelay, SavedReport, Session

_TYPES = {"host": CandidateType.HOST, "srflx": CandidateType.SRFLX,
          "relay": CandidateType.RELAY}
_ServerKey = tuple[str, str, int, str]


@dataclass(frozen=True)
class Analysis:
    """One PeerConnection (or one saved report), ready to judge and to show."""

    gathered: GatherReport
    evidence: Evidence
    source: Source
    require: Requirement = Requirement.EACH
    matrix: bool = False


def analysis(item: Input, slow_ms: float, require: Requirement) -> Analysis:
    if isinstance(item, SavedReport):
        return _saved(item, slow_ms)
    return _session(item, slow_ms, require)


def _saved(saved: SavedReport, slow_ms: float) -> Analysis:
    gathered = saved.gathered
    evidence = Evidence(gathered.host_candidates, gathered.results, saved.require,
                        slow_ms=slow_ms, matrix=saved.matrix)
    return Analysis(gathered, evidence, Source(saved.file, "iceprobe-report", "report"),
                    saved.require, saved.matrix)


def _session(session: Session, slow_ms: float, require: Requirement) -> Analysis:
    start = _start(session)

    def elapsed(at: float | None) -> float | None:
        return None if at is None or start is None else round(at - start, 1)

    servers: dict[_ServerKey, ServerSpec] = {}
    for url in session.ice_servers:
        _server(servers, url)
    found: dict[_ServerKey, list[Candidate]] = {key: [] for key in servers}
    hosts: list[Candidate] = []
    loose: list[Candidate] = []
    seen: set[tuple[object, ...]] = set()
    for recorded in session.candidates:
        candidate = _candidate(recorded, elapsed(recorded.at))
        if candidate is None:
            continue
        identity = (candidate.type, candidate.protocol, candidate.address, candidate.port,
                    candidate.related_address, candidate.url)
        if identity in seen:
            continue  # the same candidate for another m-line, or logged twice
        seen.add(identity)
        if candidate.type is CandidateType.HOST:
            hosts.append(candidate)
            continue
        key = _server(servers, candidate.url) if candidate.url else _only_server(
            servers, candidate)
        if key is None:
            loose.append(candidate)
        else:
            found.setdefault(key, []).append(candidate)

    errors: dict[_ServerKey, list[ErrorEvent]] = {}
    for error in session.errors:
        key = _server(servers, error.url) or _unparsed(servers, error.url)
        spec = servers[key]
        errors.setdefault(key, []).append(ErrorEvent(
            url=error.url, address=error.address, port=error.port, server_address=None,
            server_port=spec.port or None, error_code=error.code, error_text=error.text,
            cause=Cause(error.cause) if error.cause else
            _cause(error.code, error.text, connected=error.port is not None),
            elapsed_ms=elapsed(error.at)))

    results = tuple(ProbeResult(spec, tuple(found.get(key, ())), tuple(errors.get(key, ())),
                                None) for key, spec in servers.items())
    recording = Recording(
        format=session.format, ice_transport_policy=session.ice_transport_policy,
        configuration_known=session.configuration_known,
        errors_recorded=session.errors_recorded, events=session.events,
        log_missing=session.log_missing,
        states=tuple(StateChange(s.kind, s.state, elapsed(s.at)) for s in session.states),
        time_resolution_ms=session.time_resolution_ms)
    gathered = GatherReport(
        started_at=None if start is None else
        datetime.fromtimestamp(start / 1000, timezone.utc).isoformat(timespec="milliseconds"),
        duration_ms=None, host_candidates=tuple(hosts), results=results,
        unattributed=tuple(loose))
    relays = tuple(_relay_check(r, servers[_server(servers, r.url) or _unparsed(servers, r.url)])
                   for r in session.relays)
    evidence = Evidence(tuple(hosts), results, require,
                        turn_credentials=session.turn_credentials, slow_ms=slow_ms,
                        recording=recording, unattributed=tuple(loose), relays=relays)
    source = Source(session.file, session.format, session.id, session.page_url,
                    session.browser)
    return Analysis(gathered, evidence, source, require)


def _relay_check(recorded: RecordedRelay, spec: ServerSpec) -> RelayCheck:
    """The serve page's relay check as the evidence `iceprobe relay` gives: the page measures
    the time to ICE connected and to the data channel open, and the echoes (no bulk
    transfer, no TURN requests of its own, no relay pair)."""
    step = None
    if not recorded.ok and recorded.step != "setup":
        step = RelayStep(recorded.step)
    return RelayCheck(
        server=spec, duration_ms=recorded.duration_ms,
        attempted=recorded.step != "setup",
        ice_connected_ms=recorded.ice_ms, channel_open_ms=recorded.connected_ms,
        sent=recorded.sent, received=recorded.received,
        rtt=Spread.of(recorded.rtt_ms) if recorded.rtt_ms else None,
        failed_step=step, failure=recorded.failure)


def _start(session: Session) -> float | None:
    """Time zero: when gathering started, else the first thing recorded."""
    if session.gathering_started is not None:
        return session.gathering_started
    times = [t for t in (*(c.at for c in session.candidates), *(e.at for e in session.errors),
                         *(s.at for s in session.states)) if t is not None]
    return min(times) if times else None


def _key(spec: ServerSpec) -> _ServerKey:
    return (spec.scheme.value, spec.host.lower(), spec.port, spec.transport.value)


def _server(servers: dict[_ServerKey, ServerSpec], url: str | None) -> _ServerKey | None:
    if not url:
        return None
    try:
        spec = parse_server_url(url.strip())
    except UrlError:
        return None
    key = _key(spec)
    servers.setdefault(key, spec)
    return key


def _unparsed(servers: dict[_ServerKey, ServerSpec], url: str) -> _ServerKey:
    """A server for an error whose URL our parser refuses (recorded as the browser wrote it):
    the event is kept, under a server named by that text."""
    scheme = Scheme.TURN if url.lower().startswith("turn") else Scheme.STUN
    key = (scheme.value, url, 0, Transport.UDP.value)
    servers.setdefault(key, ServerSpec(url, scheme, url, 0, Transport.UDP))
    return key


def _only_server(servers: dict[_ServerKey, ServerSpec],
                 candidate: Candidate) -> _ServerKey | None:
    """The one server a candidate without a URL can have come from, if only one can."""
    wanted_turn = candidate.type is CandidateType.RELAY
    keys = [k for k, s in servers.items() if s.is_turn == wanted_turn
            and (candidate.relay_protocol is None
                 or s.transport.value == candidate.relay_protocol)]
    return keys[0] if len(keys) == 1 else None


def _candidate(recorded: RecordedCandidate, elapsed_ms: float | None) -> Candidate | None:
    line = parse_candidate_line(recorded.line)
    if line is None or line.component != 1 or line.type not in _TYPES:
        return None  # RTCP components and peer-reflexive candidates say nothing here
    kind = _TYPES[line.type]
    return Candidate(
        type=kind, protocol=line.protocol, address=line.address, port=line.port,
        foundation=line.foundation, priority=line.priority, elapsed_ms=elapsed_ms,
        related_address=line.related_address, related_port=line.related_port,
        url=recorded.url if kind is not CandidateType.HOST else None,
        relay_protocol=(recorded.relay_protocol or None) if kind is CandidateType.RELAY
        else None)


def _cause(code: int, text: str, connected: bool = False) -> Cause:
    """The cause behind an error event, from the browser's errorText for a 7xx.

    Chrome's "Failed to establish connection" (TCP or TLS to a TURN server) stays `connect`,
    which claims no single cause, unless the event carries a local port: Chromium 156 gives
    one only when the server closed a connection that was up (measured, docs/chrome.md)."""
    if not 700 <= code <= 799:
        return Cause.RESPONSE
    if not text.strip():
        return Cause.UNSPECIFIED  # Firefox's 701s: no claim about why
    info = match_text(text)
    if info is not None and info.cause == Cause.CONNECT.value and connected:
        return Cause.CLOSED
    if info is not None and info.cause is not None:
        return Cause(info.cause)
    lowered = text.lower()
    for words, cause in (("timed out", Cause.TIMEOUT), ("lookup", Cause.DNS),
                         ("socket", Cause.SOCKET), ("connect", Cause.REFUSED),
                         ("closed", Cause.CLOSED), ("tls", Cause.TLS)):
        if words in lowered:
            return cause
    return Cause.UNREACHABLE
