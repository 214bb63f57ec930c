"""iceprobe event log version 2: one run of the `iceprobe serve` page, judged as ONE session.

The page gathers with one PeerConnection per server URL (policy "all", and again "relay" for
a TURN URL), so every record can be attributed to its server even where the browser leaves
`url` out (Firefox, Safari). The run's PeerConnections are merged into one session whose
servers are all the URLs, which is how an engineer reads a customer's result: one table, one
row per server. Merging:

- a candidate without `url` gets its PeerConnection's URL; a srflx from a TURN URL's
  PeerConnection (browsers use a UDP TURN server as a STUN server too) gets `stun:host:port`,
  as Chromium names it itself;
- an error that a later PeerConnection of the same URL repeats (the relay-only run of a TURN
  URL meets the same 401) is kept once;
- an `outcome` of `deadline` (nothing within the page's deadline) becomes an error event on
  that URL: code 701, cause timeout, "no answer within the page's deadline";
- each `relaycheck` record becomes a relay check of the session (the evidence of
  `iceprobe relay`, as far as a page can measure it): judged by the same relay rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .events import FORMAT, as_number, parse_records
from .session import (
    RecordedCandidate,
    RecordedError,
    RecordedRelay,
    RecordedState,
    RecordingError,
    Session,
    text_or_none,
)

OUTCOMES = ("candidate", "error", "deadline", "complete-without-candidate")
DEADLINE_TEXT = "no answer within the page's deadline"
#: The code a browser gives a server that did not answer (RFC 8445's 701 range, as Chrome).
DEADLINE_CODE = 701
_PERMISSIONS = ("granted", "denied", "not-asked")
#: What the page's relay check names as the first step that did not complete.
RELAY_STEPS = ("setup", "ice", "dtls", "channel", "echo")


def parse_page_run(header: dict[str, Any], records: Sequence[Any], file: str) -> Session:
    page = header.get("page")
    if not isinstance(page, dict):
        raise RecordingError("iceprobe event log version 2: `page` must be an object")
    _check_page(page)
    outcomes: dict[str, tuple[str, str, float | None]] = {}
    relays: list[RecordedRelay] = []

    def own(record: dict[str, Any], where: str) -> bool:
        kind = record.get("type")
        if kind == "outcome":
            pc, url, outcome, at = _outcome(record, where)
            outcomes[pc] = (url, outcome, at)
            return True
        if kind == "relaycheck":
            relays.append(_relaycheck(record, where))
            return True
        return False

    sessions = parse_records(records, file, own)
    merged = _merge(sessions, outcomes, page, file)
    merged.relays = relays
    return merged


def _check_page(page: dict[str, Any]) -> None:
    where = "iceprobe event log version 2, page"
    for name in ("userAgent", "browser"):
        if page.get(name) is not None and not isinstance(page.get(name), str):
            raise RecordingError(f"{where}: {name} must be a string")
    for name in ("deadline_ms", "started_at"):
        as_number(page.get(name), where, name, optional=True)
    permission = page.get("permission")
    if permission is not None and permission not in _PERMISSIONS:
        raise RecordingError(f"{where}: permission must be one of {', '.join(_PERMISSIONS)}")
    if page.get("mdns") is not None and not isinstance(page.get("mdns"), bool):
        raise RecordingError(f"{where}: mdns must be true or false")


def _outcome(record: dict[str, Any], where: str) -> tuple[str, str, str, float | None]:
    pc, url, outcome = record.get("pc"), record.get("url"), record.get("outcome")
    if not isinstance(pc, str) or not pc:
        raise RecordingError(f"{where}: outcome needs a pc string")
    if not isinstance(url, str) or not url:
        raise RecordingError(f"{where}: outcome needs a url string")
    if outcome not in OUTCOMES:
        raise RecordingError(f"{where}: outcome must be one of {', '.join(OUTCOMES)}")
    return pc, url, str(outcome), as_number(record.get("t"), where, "t", optional=True)


def _relaycheck(record: dict[str, Any], where: str) -> RecordedRelay:
    url, ok = record.get("url"), record.get("ok")
    if not isinstance(url, str) or not url or not isinstance(ok, bool):
        raise RecordingError(f"{where}: relaycheck needs a url string and ok true or false")
    as_number(record.get("t"), where, "t", optional=True)
    ice, connected = (as_number(record.get(name), where, name, optional=True)
                      for name in ("ice_ms", "connected_ms"))
    duration, sent, received = (as_number(record.get(name), where, name)
                                for name in ("duration_ms", "sent", "received"))
    if not (sent is not None and received is not None and 0 <= received <= sent <= 10_000
            and sent == int(sent) and received == int(received)):
        raise RecordingError(f"{where}: relaycheck needs whole sent >= received >= 0")
    rtt = record.get("rtt_ms")
    if not isinstance(rtt, list) or len(rtt) > sent:
        raise RecordingError(f"{where}: rtt_ms must be a list of numbers, one per echo")
    samples = tuple(as_number(value, where, "rtt_ms") or 0.0 for value in rtt)
    step = record.get("step")
    if not ok and step not in RELAY_STEPS:
        raise RecordingError(f"{where}: a failed relaycheck needs a step, one of "
                             f"{', '.join(RELAY_STEPS)}")
    failure = record.get("failure")
    return RecordedRelay(url, ok, None if ok else step,
                         failure[:300] if isinstance(failure, str) else None, ice, connected,
                         duration or 0.0, samples, int(sent), int(received))


def _merge(sessions: dict[str, Session], outcomes: dict[str, tuple[str, str, float | None]],
           page: dict[str, Any], file: str) -> Session:
    merged = Session(format=FORMAT, file=file, id="page run",
                     browser=text_or_none(page.get("browser")) or
                     text_or_none(page.get("userAgent")))
    policies: list[str] = []
    seen_errors: dict[str, set[tuple[int, str]]] = {}
    for pc, session in sessions.items():
        url = _pc_url(session, outcomes.get(pc))
        for server in session.ice_servers or ([url] if url else []):
            if server not in merged.ice_servers:
                merged.ice_servers.append(server)
        merged.configuration_known &= session.configuration_known
        if session.ice_transport_policy:
            policies.append(session.ice_transport_policy)
        merged.candidates.extend(_attributed(c, url) for c in session.candidates)
        errors = list(session.errors)
        outcome = outcomes.get(pc)
        if outcome is not None and outcome[1] == "deadline" and url is not None:
            errors.append(RecordedError(url, None, None, DEADLINE_CODE, DEADLINE_TEXT,
                                        outcome[2], cause="timeout"))
        earlier = seen_errors.setdefault(url or pc, set())
        mine = set()
        for error in errors:
            identity = (error.code, error.text)
            if identity in earlier:
                continue  # the relay-only run of the same URL met the same error
            mine.add(identity)
            merged.errors.append(error)
        earlier |= mine
        merged.states.extend(session.states)
        merged.events += session.events
        starts = [t for t in (merged.gathering_started, session.gathering_started)
                  if t is not None]
        merged.gathering_started = min(starts) if starts else None
    merged.ice_transport_policy = ("all" if "all" in policies or not policies
                                   else policies[0])
    merged.states = _run_states(merged.states)
    if sessions:
        ids = list(sessions)
        merged.id = (f"{ids[0]}…{ids[-1]} (one page run)" if len(ids) > 1
                     else f"{ids[0]} (one page run)")
    return merged


def _run_states(states: list[RecordedState]) -> list[RecordedState]:
    """The run's timeline: gathering starts at the first PeerConnection's start and ends
    at the last one's completion (one line each, not one per PeerConnection); the other
    state changes as recorded."""
    ordered = sorted(states, key=lambda s: s.at if s.at is not None else 0.0)
    gathering = [s for s in ordered if s.kind == "gathering"]
    started = [s for s in gathering if s.state == "gathering"][:1]
    completed = [s for s in gathering if s.state == "complete"][-1:]
    kept = [s for s in ordered if s.kind != "gathering"] + started + completed
    return sorted(kept, key=lambda s: s.at if s.at is not None else 0.0)


def _pc_url(session: Session, outcome: tuple[str, str, float | None] | None) -> str | None:
    """The one server URL of a PeerConnection of the page."""
    if len(session.ice_servers) == 1:
        return session.ice_servers[0]
    return outcome[0] if outcome is not None else None


def _attributed(candidate: RecordedCandidate, url: str | None) -> RecordedCandidate:
    if candidate.url or url is None:
        return candidate
    kind = candidate.line.split(" typ ", 1)[1].split()[0] if " typ " in candidate.line else ""
    if kind == "host":
        return candidate
    if kind == "srflx" and url.lower().startswith("turn"):
        url = "stun:" + url.split(":", 1)[1].split("?", 1)[0]
    return RecordedCandidate(candidate.line, url, candidate.relay_protocol, candidate.at)
