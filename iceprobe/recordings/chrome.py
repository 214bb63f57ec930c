"""chrome://webrtc-internals dumps ("Download the PeerConnection updates and stats data"),
in the three eras of their updateLog:

- up to about M93: camel-case event types (`onIceCandidate`, `iceConnectionStateChange`),
  state values such as `ICEConnectionStateFailed`;
- about M94 to M141: lower-case types (`icecandidate`, `icecandidateerror`, …) with values in
  Chrome's own "key: value" text, and `rtcConfiguration` as a non-JSON string;
- from about M142: types prefixed with `on`, values as JSON objects or JSON strings, JSON
  `rtcConfiguration`, and `timestamp` in epoch milliseconds.

Dumps never hold TURN credentials, error addresses are partly masked (192.168.1.x) and host
candidates may be mDNS names; all of that is kept as recorded."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from .candidates import parse_candidate_line
from .session import (
    STATE_EVENTS,
    RecordedCandidate,
    RecordedError,
    RecordedState,
    RecordingError,
    Session,
    browser_name,
    ice_server_urls,
)

FORMAT = "chrome-webrtc-internals"
_STATES = STATE_EVENTS
_STATE_PREFIXES = ("iceconnectionstate", "icegatheringstate", "peerconnectionstate",
                   "connectionstate")
#: Locale time strings Chrome wrote (`new Date().toLocaleString()`), most common first.
_TIME_FORMATS = ("%m/%d/%Y, %I:%M:%S %p", "%d/%m/%Y, %H:%M:%S", "%m/%d/%Y, %H:%M:%S",
                 "%d.%m.%Y, %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S",
                 "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%H:%M:%S")


def is_dump(value: Any) -> bool:
    return isinstance(value, dict) and "PeerConnections" in value


def parse_dump(document: dict[str, Any], file: str) -> list[Session]:
    connections = document.get("PeerConnections")
    if not isinstance(connections, dict):
        raise RecordingError("chrome://webrtc-internals dump: PeerConnections is not an "
                             "object")
    agent = document.get("UserAgent") if isinstance(document.get("UserAgent"), str) else None
    # Newer dumps add UserAgentData, with the full version the frozen UserAgent hides.
    named = browser_name(document.get("UserAgentData"))
    browser = f"{named} ({agent})" if named and agent else named or agent
    sessions = []
    for pc_id, pc in connections.items():
        if not isinstance(pc, dict):
            raise RecordingError(f"chrome://webrtc-internals dump: PeerConnection {pc_id!r} "
                                 "is not an object")
        sessions.append(_connection(str(pc_id), pc, browser, file))
    if not sessions:
        raise RecordingError("chrome://webrtc-internals dump: no PeerConnection in it (was a "
                             "call running when the dump was downloaded?)")
    return sessions


def _connection(pc_id: str, pc: dict[str, Any], browser: str | None, file: str) -> Session:
    session = Session(format=FORMAT, file=file, id=pc_id, browser=browser,
                      page_url=pc.get("url") if isinstance(pc.get("url"), str) else None)
    servers, policy = _configuration(pc.get("rtcConfiguration"))
    session.ice_servers, session.ice_transport_policy = servers, policy
    log = pc.get("updateLog", [])
    if not isinstance(log, list):
        raise RecordingError(f"chrome://webrtc-internals dump: updateLog of {pc_id!r} is not "
                             "a list")
    session.events = len(log)
    for entry in log:
        if isinstance(entry, dict):
            _entry(session, entry)
    stats = pc.get("stats")
    found = _stats_candidates(stats if isinstance(stats, dict) else {})
    known = {_identity(c.line) for c in session.candidates}
    extra = [c for c in found if _identity(c.line) not in known]
    session.candidates.extend(extra)
    if not log and extra:
        # The tab was opened during the call: getStats() saw the candidates in use, but no
        # event (error, state) was logged.
        session.events, session.log_missing, session.errors_recorded = len(extra), True, False
    return session


def _stats_candidates(stats: dict[str, Any]) -> list[RecordedCandidate]:
    """Local candidates from the stats: keys `<statsId>-<attribute>`, `statsType`
    `local-candidate`, `values` a JSON-encoded array (one entry per poll; the last is kept)."""
    attributes: dict[str, dict[str, Any]] = {}
    for key, series in stats.items():
        if not isinstance(series, dict) or series.get("statsType") != "local-candidate":
            continue
        stats_id, sep, name = str(key).rpartition("-")
        values = _decoded(series.get("values"))
        if sep and isinstance(values, list) and values:
            attributes.setdefault(stats_id, {})[name] = values[-1]
    found = []
    for item in attributes.values():
        line = _stats_line(item)
        if line is not None:
            url, protocol = item.get("url"), item.get("relayProtocol")
            found.append(RecordedCandidate(line, url if isinstance(url, str) and url else None,
                                           protocol if isinstance(protocol, str) and protocol
                                           else None, None))
    return found


def _stats_line(item: dict[str, Any]) -> str | None:
    """A candidate line rebuilt from an RTCIceCandidateStats (older versions say `ip`)."""
    address = item.get("address") or item.get("ip")
    port, kind = item.get("port"), item.get("candidateType")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(address, str) or not address or not isinstance(port, int) or \
            kind not in ("host", "srflx", "prflx", "relay"):
        return None  # without an address and a port there is nothing to judge
    priority = item.get("priority")
    line = (f"candidate:{item.get('foundation') or 0} 1 {item.get('protocol') or 'udp'} "
            f"{priority if isinstance(priority, int) else 0} {address} {port} typ {kind}")
    related, related_port = item.get("relatedAddress"), item.get("relatedPort")
    if isinstance(related, str) and related and isinstance(related_port, int):
        line += f" raddr {related} rport {related_port}"
    tcp_type = item.get("tcpType")
    return line + (f" tcptype {tcp_type}" if isinstance(tcp_type, str) and tcp_type else "")


def _identity(line: str) -> tuple[object, ...] | None:
    parsed = parse_candidate_line(line)
    if parsed is None:
        return None
    return (parsed.type, parsed.protocol.lower(), parsed.address, parsed.port)


def _entry(session: Session, entry: dict[str, Any]) -> None:
    kind = _event_type(entry.get("type"))
    at = _time(session, entry)
    value = _decoded(entry.get("value"))
    if kind == "icecandidate":
        candidate = _fields(value)
        line = candidate.get("candidate")
        if line:
            session.candidates.append(RecordedCandidate(
                line, candidate.get("url") or None, candidate.get("relayprotocol") or None, at))
    elif kind == "icecandidateerror":
        _error(session, _fields(value), at)
    elif kind in _STATES:
        state = _state(value)
        session.states.append(RecordedState(_STATES[kind], state, at))
        if kind == "icegatheringstatechange" and state == "gathering" \
                and session.gathering_started is None:
            session.gathering_started = at


def _event_type(raw: Any) -> str:
    """icecandidate, icecandidateerror, iceconnectionstatechange, … in every era."""
    kind = str(raw or "").lower()
    if kind.startswith("on") and kind[2:] in ("icecandidate", "icecandidateerror",
                                              *_STATES):
        kind = kind[2:]
    return kind


def _decoded(value: Any) -> Any:
    """A JSON-encoded value (M142+) decoded; other values as they are."""
    if isinstance(value, str) and value[:1] in ('{', '"', '['):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _fields(value: Any) -> dict[str, str]:
    """The fields of an event value, keys lower-cased without underscores: from a JSON
    object, or from Chrome's "key: value" text (comma-separated on one line for candidates,
    one per line for errors)."""
    if isinstance(value, dict):
        return {_norm(k): "" if v is None else str(v) for k, v in value.items()}
    text = str(value or "")
    fields: dict[str, str] = {}
    # Errors: one "key: value" per line. Candidates: "sdpMid: 0, sdpMLineIndex: 0,
    # candidate: candidate:1 1 udp …, url: stun:…" on one line.
    parts = (text.splitlines() if "\n" in text
             else re.split(r",\s*(?=[A-Za-z_]+: )", text))
    for part in parts:
        key, sep, rest = part.partition(": ")
        if sep:
            fields[_norm(key)] = rest.strip()
    return fields


def _norm(key: str) -> str:
    return key.strip().lower().replace("_", "")


def _error(session: Session, fields: dict[str, str], at: float | None) -> None:
    code = fields.get("errorcode", "")
    try:
        number = int(code)
    except ValueError:
        return
    port = fields.get("port", "")
    address = fields.get("address") or None
    if address is None and fields.get("hostcandidate"):
        host, _, host_port = fields["hostcandidate"].rpartition(":")
        address, port = host or None, port or host_port
    session.errors.append(RecordedError(
        fields.get("url", ""), address.strip("[]") if address else None,
        int(port) if port.isdigit() else None, number, fields.get("errortext", ""), at))


def _state(value: Any) -> str:
    state = str(value or "").strip().strip('"').lower()
    for prefix in _STATE_PREFIXES:
        if state.startswith(prefix):
            return state[len(prefix):]
    return state


def _time(session: Session, entry: dict[str, Any]) -> float | None:
    stamp = entry.get("timestamp")
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
        return float(stamp)
    if isinstance(stamp, str) and stamp.replace(".", "", 1).isdigit():
        return float(stamp)
    text = entry.get("time")
    if not isinstance(text, str):
        return None
    session.time_resolution_ms = 1000.0  # whole seconds, and no time zone
    # Chrome writes a narrow no-break space before AM/PM in newer versions.
    text = text.replace("\u202f", " ").replace("\u00a0", " ").strip()
    for layout in _TIME_FORMATS:
        try:
            parsed = datetime.strptime(text, layout)
        except ValueError:
            continue
        return parsed.replace(tzinfo=timezone.utc).timestamp() * 1000
    return None


def _configuration(raw: Any) -> tuple[list[str], str | None]:
    """ICE server URLs and iceTransportPolicy from rtcConfiguration: JSON (M142+, as an
    object or a string) or Chrome's "{ iceServers: [stun:a, turn:b], … }" text."""
    value = _decoded(raw)
    if isinstance(value, dict):
        urls = ice_server_urls(value.get("iceServers"))
        policy = value.get("iceTransportPolicy")
        return urls, policy if isinstance(policy, str) else None
    text = str(value or "")
    servers = re.search(r"iceServers:\s*\[(.*?)\]", text, re.S)
    urls = [u.strip() for u in servers.group(1).split(",") if u.strip()] if servers else []
    policy_match = re.search(r"iceTransportPolicy:\s*(\w+)", text)
    return urls, policy_match.group(1) if policy_match else None
