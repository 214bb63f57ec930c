"""Firefox about:webrtc reports ("Copy Report"): per PeerConnection, `rawLocalCandidates`
(candidate lines), `iceCandidateStats` (with relayProtocol) and `configuration.iceServers`
(URLs, with `credentialProvided` / `userNameProvided` instead of the secrets). Firefox records
no candidate errors: the evidence says they are unknown, not that there were none."""

from __future__ import annotations

import re
from typing import Any

from .candidates import parse_candidate_line
from .session import (
    RecordedCandidate,
    RecordedState,
    RecordingError,
    Session,
    ice_server_urls,
    text_or_none,
)

FORMAT = "firefox-about-webrtc"
_KEYS = ("iceCandidateStats", "rawLocalCandidates")
_STATES = {"iceConnectionState": "ice", "connectionState": "connection",
           "iceGatheringState": "gathering"}


def is_report(value: Any) -> bool:
    return bool(_reports(value))


def _reports(value: Any) -> list[dict[str, Any]]:
    """The per-PeerConnection reports in a document: the report itself, a list of them, or
    an object holding a list of them (under any key)."""
    if isinstance(value, dict):
        if any(k in value for k in _KEYS):
            return [value]
        for inner in value.values():
            if isinstance(inner, list) and inner and all(
                    isinstance(r, dict) and any(k in r for k in _KEYS) for r in inner):
                return list(inner)
        return []
    if isinstance(value, list) and value and all(
            isinstance(r, dict) and any(k in r for k in _KEYS) for r in value):
        return list(value)
    return []


def parse_report(document: Any, file: str) -> list[Session]:
    reports = _reports(document)
    if not reports:
        raise RecordingError("Firefox about:webrtc report: no PeerConnection report in it")
    return [_session(report, number, file) for number, report in enumerate(reports, 1)]


def _session(report: dict[str, Any], number: int, file: str) -> Session:
    pc_id = str(report.get("pcid") or f"pc-{number}")
    # Firefox names a PeerConnection "<hex> (id=<n> url=<page>)".
    page = re.search(r"url=(\S+?)\)?$", pc_id)
    session = Session(format=FORMAT, file=file, id=pc_id.split(" ")[0], errors_recorded=False,
                      configuration_known=isinstance(report.get("configuration"), dict),
                      page_url=page.group(1) if page else None)
    config = report.get("configuration")
    _configure(session, config if isinstance(config, dict) else {})
    stats = [s for s in report.get("iceCandidateStats") or [] if isinstance(s, dict)]
    local = [s for s in stats if s.get("type") == "local-candidate"]
    protocols = {(s.get("address"), s.get("port")): s.get("relayProtocol") for s in local}
    times = {(s.get("address"), s.get("port")): s.get("timestamp") for s in local}
    lines = [c for c in report.get("rawLocalCandidates") or [] if isinstance(c, str)]
    if not lines:  # older reports: only the stats
        lines = [_line(s) for s in local]
    for line in lines:
        parsed = parse_candidate_line(line)
        if parsed is None:
            continue
        stamp = times.get((parsed.address, parsed.port))
        session.candidates.append(RecordedCandidate(
            line, None, text_or_none(protocols.get((parsed.address, parsed.port))),
            float(stamp) if isinstance(stamp, (int, float)) else None))
    session.events = len(lines) + len(stats)
    for key, kind in _STATES.items():
        state = report.get(key)
        if isinstance(state, str):
            session.states.append(RecordedState(kind, state, None))
    return session


def _configure(session: Session, config: dict[str, Any]) -> None:
    urls: list[str] = []
    provided: list[bool] = []
    for server in config.get("iceServers") or []:
        if not isinstance(server, dict):
            continue
        server_urls = ice_server_urls([server])
        urls.extend(server_urls)
        if any(u.lower().startswith("turn") for u in server_urls) and (
                "credentialProvided" in server or "userNameProvided" in server):
            provided.append(bool(server.get("credentialProvided"))
                            and bool(server.get("userNameProvided")))
    session.ice_servers = urls
    session.turn_credentials = all(provided) if provided else None
    policy = config.get("iceTransportPolicy")
    session.ice_transport_policy = policy if isinstance(policy, str) else None


def _line(stats: dict[str, Any]) -> str:
    """A candidate line rebuilt from a candidate's stats."""
    return (f"candidate:{stats.get('foundation', 0)} 1 {stats.get('protocol', 'udp')} "
            f"{stats.get('priority', 0)} {stats.get('address')} {stats.get('port')} "
            f"typ {stats.get('candidateType', 'host')}")
