"""iceprobe's own event log. Version 1 is what a web app records with
examples/collect-ice-events.js: a JSON document `{"format": "iceprobe-events", "version": 1,
"events": [...]}`, or JSONL whose first line is that header without `events` and whose
other lines are one record each. Every record has `type`, `t` (epoch ms) and `pc`.

Version 2 is what the page of `iceprobe serve` uploads: the same records, one PeerConnection
per server URL, plus a `page` object in the header and `outcome` / `relaycheck` records. One
page run becomes ONE session whose servers are all its URLs (docs/recordings.md)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from .session import (
    STATE_EVENTS,
    RecordedCandidate,
    RecordedError,
    RecordedState,
    RecordingError,
    Session,
    text_or_none,
)

FORMAT = "iceprobe-events"
_STATES = STATE_EVENTS
_TYPES = {"config", "icecandidate", "icecandidateerror", *_STATES}


def is_header(value: Any) -> bool:
    return isinstance(value, dict) and value.get("format") == FORMAT


def parse_events(header: dict[str, Any], records: Sequence[Any], file: str) -> list[Session]:
    version = header.get("version")
    if version == 2:
        from .events_v2 import parse_page_run

        return [parse_page_run(header, records, file)]
    if version != 1:
        raise RecordingError(f"iceprobe event log: version {version!r} is not supported "
                             "(expected 1 or 2)")
    return list(parse_records(records, file).values())


def parse_records(records: Sequence[Any], file: str,
                  skip: Callable[[dict[str, Any], str], bool] | None = None
                  ) -> dict[str, Session]:
    """One session per `pc` of these records; `skip(record, where)` takes the records it
    returns True for out of the v1 reading (version 2's own types)."""
    sessions: dict[str, Session] = {}
    for number, record in enumerate(records, 1):
        if skip is not None and isinstance(record, dict) and skip(
                record, f"iceprobe event log, record {number}"):
            continue
        _record(sessions, record, number, file)
    if not sessions:
        raise RecordingError("iceprobe event log: no records")
    return sessions


def _record(sessions: dict[str, Session], record: Any, number: int, file: str) -> None:
    where = f"iceprobe event log, record {number}"
    if not isinstance(record, dict):
        raise RecordingError(f"{where}: expected an object, got {type(record).__name__}")
    kind = record.get("type")
    if kind not in _TYPES:
        raise RecordingError(f"{where}: unknown type {kind!r} (expected one of "
                             f"{', '.join(sorted(_TYPES))})")
    pc = str(record.get("pc") or "pc-1")
    session = sessions.setdefault(pc, Session(format=FORMAT, file=file, id=pc,
                                              configuration_known=False))
    at = as_number(record.get("t"), where, "t", optional=True)
    if kind == "config":
        servers = record.get("iceServers", [])
        if not isinstance(servers, list) or not all(isinstance(u, str) for u in servers):
            raise RecordingError(f"{where}: iceServers must be a list of URL strings")
        session.ice_servers = list(servers)
        session.configuration_known = True
        policy = record.get("iceTransportPolicy")
        session.ice_transport_policy = policy if isinstance(policy, str) else None
        session.page_url = text_or_none(record.get("page"))
        session.browser = text_or_none(record.get("userAgent"))
        return
    session.events += 1
    if kind == "icecandidate":
        line = record.get("candidate")
        if line is None or line == "":
            return  # end of candidates
        if not isinstance(line, str):
            raise RecordingError(f"{where}: candidate must be a string or null")
        session.candidates.append(RecordedCandidate(
            line, text_or_none(record.get("url")), text_or_none(record.get("relayProtocol")), at))
    elif kind == "icecandidateerror":
        url = record.get("url")
        if not isinstance(url, str):
            raise RecordingError(f"{where}: icecandidateerror needs a url string")
        code = as_number(record.get("errorCode"), where, "errorCode")
        port = as_number(record.get("port"), where, "port", optional=True)
        session.errors.append(RecordedError(
            url, text_or_none(record.get("address")), None if port is None else int(port),
            int(code or 0), str(record.get("errorText") or ""), at))
    else:
        state = record.get("state")
        if not isinstance(state, str):
            raise RecordingError(f"{where}: {kind} needs a state string")
        session.states.append(RecordedState(_STATES[kind], state, at))
        if kind == "icegatheringstatechange" and state == "gathering" \
                and session.gathering_started is None:
            session.gathering_started = at


def as_number(value: Any, where: str, name: str, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordingError(f"{where}: {name} must be a number, got {value!r}"[:200])
    if not math.isfinite(value):  # json.loads takes NaN and Infinity
        raise RecordingError(f"{where}: {name} must be a finite number, got {value!r}")
    return float(value)
