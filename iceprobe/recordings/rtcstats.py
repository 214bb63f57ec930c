"""rtcstats dumps (file format 3): a first line `RTCStatsDump`, a second line of JSON
metadata, then one JSON array per line, `[method, pcId, value, …extra, delta]`. The last item
is the time in milliseconds since the previous line; the first line's is absolute epoch
milliseconds. `pcId` is null for events that belong to no PeerConnection.

Two writers exist: rtcstats-js (numeric method codes, server metadata with `userAgent`,
`create` carrying the configuration as the app gave it, `username` kept, `credential`
deleted) and Chrome's own "rtcstats" download from webrtc-internals (method names as
strings, `create` followed by the page URL, values copied from the updateLog so state values
stay JSON-quoted and candidate errors keep Chrome's snake_case keys)."""

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
    browser_name,
    ice_server_urls,
    text_or_none,
)

FORMAT = "rtcstats"
MAGIC = "RTCStatsDump"

#: rtcstats' compressed method names (rtcstats-shared's table), for the methods read here.
METHOD_CODES = {
    60: "navigator.mediaDevices.getUserMedia", 61: "navigator.mediaDevices.getUserMediaOnSuccess",
    62: "navigator.mediaDevices.getUserMediaOnFailure",
    10: "addIceCandidate", 20: "onicecandidate", 21: "onicecandidateerror",
    23: "onsignalingstatechange", 24: "oniceconnectionstatechange",
    25: "onconnectionstatechange", 26: "onicegatheringstatechange", 36: "close",
    38: "setConfiguration", 39: "create",
}
_STATES = {f"on{event}": kind for event, kind in STATE_EVENTS.items()}
#: Methods of the page, not of a PeerConnection. rtcstats-js logs them with pcId null; Chrome's
#: export gives them the id `"<rid>-0"` (webrtc_internals.js, `add-media`/`update-media`),
#: which no PeerConnection has (their local ids start at 1): such rows never make a session.
_PAGE_PREFIXES = ("navigator.", "getUserMedia", "getDisplayMedia", "enumerateDevices")


def parse_rtcstats(text: str, file: str) -> list[Session]:
    lines = text.splitlines()
    try:
        metadata = json.loads(lines[1]) if len(lines) > 1 and lines[1].strip() else {}
    except ValueError as exc:
        raise RecordingError(f"rtcstats dump: line 2 is not JSON metadata ({exc})") from None
    if not isinstance(metadata, dict):
        raise RecordingError("rtcstats dump: line 2 is not a JSON metadata object")
    origin = text_or_none(metadata.get("origin"))
    path = text_or_none(metadata.get("url")) or text_or_none(metadata.get("path"))
    page = (origin + path if origin and path and path.startswith("/") else path or origin)
    browser = text_or_none(metadata.get("userAgent"))
    sessions: dict[str, Session] = {}
    clock: float | None = None
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
        delta = entry[-1] if len(entry) >= 4 else None
        if isinstance(delta, (int, float)) and not isinstance(delta, bool):
            clock = float(delta) if clock is None else clock + float(delta)
        method = entry[0]
        if isinstance(method, int) and not isinstance(method, bool):
            method = METHOD_CODES.get(method, str(method))
        pc_id = entry[1]
        if method == "create" and pc_id is None and browser is None:
            browser = _browser(entry[2])  # Chrome's export: the page's navigator facts
            for earlier in sessions.values():
                earlier.browser = earlier.browser or browser
        if not isinstance(method, str) or not isinstance(pc_id, str) or not pc_id \
                or _page_level(method):
            continue
        session = sessions.setdefault(pc_id, Session(
            format=FORMAT, file=file, id=pc_id, configuration_known=False,
            page_url=page, browser=browser))
        extra = entry[3:-1] if len(entry) >= 4 else []
        _event(session, method, entry[2], extra, clock if delta is not None else None)
    if not sessions:
        raise RecordingError("rtcstats dump: no PeerConnection events in it")
    return list(sessions.values())


def _page_level(method: str) -> bool:
    return method.startswith(_PAGE_PREFIXES)


def _unquote(value: Any) -> Any:
    """Chrome's rtcstats export keeps the updateLog's JSON-quoted strings (`"\\"failed\\""`)."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _event(session: Session, method: str, value: Any, extra: list[Any],
           at: float | None) -> None:
    value = _unquote(value)
    if method in ("create", "setConfiguration"):
        _configure(session, value)
        if method == "create" and session.page_url is None and extra \
                and isinstance(extra[0], str) and "://" in extra[0]:
            session.page_url = extra[0]
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
        _error(session, value, at)
    elif method in _STATES and isinstance(value, str):
        session.states.append(RecordedState(_STATES[method], value, at))
        if method == "onicegatheringstatechange" and value == "gathering" \
                and session.gathering_started is None:
            session.gathering_started = at


def _error(session: Session, value: dict[str, Any], at: float | None) -> None:
    """rtcstats-js logs the event's camelCase attributes; Chrome's export keeps the
    updateLog's snake_case keys."""
    code = value.get("errorCode", value.get("error_code"))
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool):
        return
    port = value.get("port")
    session.errors.append(RecordedError(
        str(value.get("url") or ""), text_or_none(value.get("address")),
        port if isinstance(port, int) and not isinstance(port, bool) and port > 0 else None,
        code, str(value.get("errorText", value.get("error_text")) or ""), at))


def _configure(session: Session, value: Any) -> None:
    if not isinstance(value, dict) or not ("iceServers" in value
                                           or "iceTransportPolicy" in value):
        return
    session.configuration_known = True
    session.ice_servers = ice_server_urls(value.get("iceServers"))
    policy = value.get("iceTransportPolicy")
    session.ice_transport_policy = policy if isinstance(policy, str) else None



def _browser(value: Any) -> str | None:
    return browser_name(value.get("userAgentData") if isinstance(value, dict) else None)
