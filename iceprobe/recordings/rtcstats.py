"""rtcstats dumps: a first line `RTCStatsDump`, a second line of JSON metadata, then one
JSON array per line, `[method, pcId, value, …, time]`, where the last item is the time:
absolute epoch milliseconds, or (in delta-compressed files) milliseconds since the previous
line. `create` carries the RTCConfiguration (maybe with a username, never a credential).
Method names may be numeric codes; those methods are recognised by their values."""

from __future__ import annotations

import json
from typing import Any

from .session import (
    STATE_EVENTS,
    RecordedCandidate,
    RecordedError,
    RecordedState,
    RecordingError,
    Session,
    ice_server_urls,
    text_or_none,
)

FORMAT = "rtcstats"
MAGIC = "RTCStatsDump"
_STATES = {f"on{event}": kind for event, kind in STATE_EVENTS.items()}
#: States that name their kind; the others (new, connected, failed, …) could be either.
_GATHERING_STATES = {"gathering", "complete"}
_CONNECTION_ONLY_STATES = {"connecting"}
#: Below this a time is a delta from the previous line, above it epoch milliseconds.
_EPOCH_MS = 1e11


def parse_rtcstats(text: str, file: str) -> list[Session]:
    lines = text.splitlines()
    try:
        metadata = json.loads(lines[1]) if len(lines) > 1 and lines[1].strip() else {}
    except ValueError as exc:
        raise RecordingError(f"rtcstats dump: line 2 is not JSON metadata ({exc})") from None
    if not isinstance(metadata, dict):
        metadata = {}
    page = metadata.get("url") or metadata.get("path")
    browser = metadata.get("userAgent")
    sessions: dict[str, Session] = {}
    clock = 0.0
    for number, raw in enumerate(lines[2:], 3):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            if number == len(lines):
                break  # a last line cut short by a crash: keep what came before
            raise RecordingError(f"rtcstats dump: line {number} is not JSON") from None
        if not isinstance(entry, list) or len(entry) < 3:
            continue
        method = entry[0]
        if not isinstance(method, str):
            method = _method_of(entry[2])
        stamp = entry[-1] if len(entry) >= 4 else None
        if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
            clock = float(stamp) if stamp > _EPOCH_MS else clock + float(stamp)
        at = clock if stamp is not None else None
        pc_id = entry[1]
        if not isinstance(pc_id, str) or not pc_id:
            continue
        session = sessions.setdefault(pc_id, Session(
            format=FORMAT, file=file, id=pc_id, configuration_known=False,
            page_url=page if isinstance(page, str) else None,
            browser=browser if isinstance(browser, str) else None))
        _event(session, str(method), entry[2], at)
    if not sessions:
        raise RecordingError("rtcstats dump: no PeerConnection events in it")
    return list(sessions.values())


def _event(session: Session, method: str, value: Any, at: float | None) -> None:
    if method == "create":
        _configure(session, value)
        return
    if method.startswith("on"):
        session.events += 1
    if method == "onicecandidate":
        if isinstance(value, dict) and isinstance(value.get("candidate"), str) \
                and value["candidate"]:
            session.candidates.append(RecordedCandidate(
                value["candidate"], text_or_none(value.get("url")),
                text_or_none(value.get("relayProtocol")), at))
    elif method == "onicecandidateerror" and isinstance(value, dict):
        code = value.get("errorCode")
        port = value.get("port")
        if isinstance(code, int):
            session.errors.append(RecordedError(
                str(value.get("url") or ""), text_or_none(value.get("address")),
                port if isinstance(port, int) else None, code,
                str(value.get("errorText") or ""), at))
    elif method in _STATES and isinstance(value, str):
        session.states.append(RecordedState(_STATES[method], value, at))
        if method == "onicegatheringstatechange" and value == "gathering" \
                and session.gathering_started is None:
            session.gathering_started = at


def _method_of(value: Any) -> str:
    """The method behind a numeric method code (newer rtcstats versions compress the names
    with a per-version table), recognised by its value: candidates, candidate errors, the
    configuration and state names look like nothing else."""
    if isinstance(value, dict):
        if "errorCode" in value:
            return "onicecandidateerror"
        if "candidate" in value:
            return "onicecandidate"
        if "iceServers" in value:
            return "create"
    if isinstance(value, str):
        if value in _GATHERING_STATES:
            return "onicegatheringstatechange"
        if value in _CONNECTION_ONLY_STATES:
            return "onconnectionstatechange"
        if value in ("new", "checking", "connected", "completed", "disconnected", "failed",
                     "closed"):
            return "oniceconnectionstatechange"
    return "unknown"


def _configure(session: Session, value: Any) -> None:
    if not isinstance(value, dict):
        return
    session.configuration_known = True
    urls = ice_server_urls(value.get("iceServers"))
    session.ice_servers = urls
    policy = value.get("iceTransportPolicy")
    session.ice_transport_policy = policy if isinstance(policy, str) else None

