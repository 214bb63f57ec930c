"""Firefox about:webrtc "Copy Report": one PeerConnection's RTCStatsReportInternal as JSON
(older tooling wrapped several in a list or under `reports`; both are accepted).

- Local candidates come from `iceCandidateStats` (`type: local-candidate`, with
  `candidateType`, `address`, `port`, `protocol`, `priority`, and `relayProtocol` for relays).
- `rawLocalCandidates` are nICEr labels, not candidate lines:
  `srflx(IP4:192.168.1.23:54321/UDP|stun.example.com:3478)`; the part after `|` names the
  server a srflx or relay came from, which is how its candidate is tied to a server.
- `configuration.iceServers` has the URLs and `credentialProvided` / `userNameProvided`.
- The report has no ICE state and no candidate error: the outcome is read from the candidate
  pairs (a selected, succeeded pair: connected; pairs that all failed: failed), and the
  evidence says errors are unknown, not that there were none.
"""

from __future__ import annotations

import re
from typing import Any

from ..urls import UrlError, parse_server_url
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
#: `srflx(IP4:192.168.1.23:54321/UDP|stun.example.com:3478)`, TCP hosts with " active" etc.
_LABEL = re.compile(r"^(?P<type>host|srflx|prflx|relay)\((?P<base>[^|)]*)"
                    r"(?:\|(?P<server>[^)]*))?\)")
_PAGE = re.compile(r"\burl=(?P<url>.*?)\)?\s*$")


def is_report(value: Any) -> bool:
    return bool(_reports(value))


def _is_one(value: Any) -> bool:
    return isinstance(value, dict) and any(k in value for k in _KEYS)


def _reports(value: Any) -> list[dict[str, Any]]:
    """The per-PeerConnection reports in a document: the report itself (what "Copy Report"
    gives), or a list of them, bare or under a key."""
    if _is_one(value):
        return [value]
    if isinstance(value, dict):
        for inner in value.values():
            if isinstance(inner, list) and inner and all(_is_one(r) for r in inner):
                return list(inner)
        return []
    if isinstance(value, list) and value and all(_is_one(r) for r in value):
        return list(value)
    return []


def parse_report(document: Any, file: str) -> list[Session]:
    reports = _reports(document)
    if not reports:
        raise RecordingError("Firefox about:webrtc report: no PeerConnection report in it")
    return [_session(report, number, file) for number, report in enumerate(reports, 1)]


def _session(report: dict[str, Any], number: int, file: str) -> Session:
    pc_id = text_or_none(report.get("pcid")) or f"pc-{number}"
    # "<handle uuid> <µs> (id=<window id> url=<page URL>)"
    page = _PAGE.search(pc_id)
    config = report.get("configuration")
    session = Session(format=FORMAT, file=file, id=pc_id.split(" ")[0], errors_recorded=False,
                      configuration_known=isinstance(config, dict),
                      page_url=page.group("url") if page else None, browser="Firefox")
    _configure(session, config if isinstance(config, dict) else {})
    stats = [s for s in _dicts(report.get("iceCandidateStats"))
             if s.get("type") == "local-candidate"]
    servers = _label_servers(report.get("rawLocalCandidates"))
    for entry in stats:
        line = _line(entry)
        if line is None:
            continue
        kind = str(entry.get("candidateType"))
        protocol = text_or_none(entry.get("relayProtocol"))
        session.candidates.append(RecordedCandidate(
            line, _url(session, kind, servers.get(kind, set()), protocol), protocol, None))
    pairs = _dicts(report.get("iceCandidatePairStats"))
    session.events = len(stats) + len(pairs)
    if any(p.get("selected") and p.get("state") == "succeeded" for p in pairs):
        session.states.append(RecordedState("ice", "connected", None))
    elif pairs and all(p.get("state") == "failed" for p in pairs):
        session.states.append(RecordedState("ice", "failed", None))
    if report.get("closed") is True:
        session.states.append(RecordedState("connection", "closed", None))
    return session


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _label_servers(labels: Any) -> dict[str, set[str]]:
    """Candidate type -> the `host:port` of the servers nICEr's labels name for it."""
    found: dict[str, set[str]] = {}
    for label in labels if isinstance(labels, list) else []:
        match = _LABEL.match(label) if isinstance(label, str) else None
        if match and match.group("server"):
            found.setdefault(match.group("type"), set()).add(match.group("server").strip())
    return found


def _url(session: Session, kind: str, servers: set[str], protocol: str | None) -> str | None:
    """The configured URL a srflx or relay candidate came from, when the labels name exactly
    one server for its type; otherwise None (the evidence then attributes it if only one
    configured server can have produced it)."""
    if kind not in ("srflx", "relay") or len(servers) != 1:
        return None
    [where] = servers
    for url in session.ice_servers:
        try:
            spec = parse_server_url(url)
        except UrlError:
            continue
        if f"{spec.host}:{spec.port}".lower() != where.lower():
            continue
        if kind == "relay" and spec.is_turn and (protocol is None
                                                 or spec.transport.value == protocol):
            return url
        if kind == "srflx":
            return url if not spec.is_turn else f"stun:{where}"
    return None


def _line(stats: dict[str, Any]) -> str | None:
    """A candidate line rebuilt from a candidate's stats."""
    address, port = stats.get("address"), stats.get("port")
    kind = stats.get("candidateType")
    if not isinstance(address, str) or not isinstance(port, int) or kind not in (
            "host", "srflx", "prflx", "relay"):
        return None
    priority = stats.get("priority")
    line = (f"candidate:{stats.get('foundation') or 0} 1 {stats.get('protocol') or 'udp'} "
            f"{priority if isinstance(priority, int) else 0} {address} {port} typ {kind}")
    tcp_type = stats.get("tcpType")
    return line + (f" tcptype {tcp_type}" if isinstance(tcp_type, str) else "")


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
