"""What a recording holds, format-neutral: one `Session` per PeerConnection, as the parsers
read it, before it becomes evidence for the rules. Times are epoch milliseconds when the
recording has them, else None."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model import GatherReport, Requirement

#: The state-change events of an RTCPeerConnection, and the kind of state each reports.
STATE_EVENTS = {"icegatheringstatechange": "gathering", "iceconnectionstatechange": "ice",
                "connectionstatechange": "connection"}


class RecordingError(Exception):
    """The input cannot be read: the message says which format was expected and what is
    wrong, in one line."""


@dataclass
class RecordedCandidate:
    #: The candidate line (with or without "a=" / "candidate:" prefix).
    line: str
    url: str | None = None
    relay_protocol: str | None = None
    at: float | None = None


@dataclass
class RecordedError:
    url: str
    address: str | None
    port: int | None
    code: int
    text: str
    at: float | None = None
    #: The cause when the recording states it (a Cause value), else derived from code and text.
    cause: str | None = None


@dataclass
class RecordedState:
    #: ice, connection or gathering.
    kind: str
    state: str
    at: float | None = None


@dataclass(frozen=True)
class RecordedRelay:
    """A relay data check the serve page made (event log version 2): two relay-only
    PeerConnections through one TURN server, echoes over a data channel."""

    url: str
    ok: bool
    #: The first step that did not complete (ice, dtls, channel, echo; setup when the page
    #: could not even start), None when it passed; what went wrong, in the page's words.
    step: str | None
    failure: str | None
    ice_ms: float | None
    connected_ms: float | None
    duration_ms: float
    rtt_ms: tuple[float, ...]
    sent: int
    received: int


@dataclass
class Session:
    """One PeerConnection of a recording."""

    format: str
    file: str
    id: str
    page_url: str | None = None
    browser: str | None = None
    ice_servers: list[str] = field(default_factory=list)
    configuration_known: bool = True
    ice_transport_policy: str | None = None
    #: TURN credentials were configured (Firefox says so); None when the format does not say.
    turn_credentials: bool | None = None
    candidates: list[RecordedCandidate] = field(default_factory=list)
    errors: list[RecordedError] = field(default_factory=list)
    states: list[RecordedState] = field(default_factory=list)
    #: How many events the recording has for this PeerConnection.
    events: int = 0
    errors_recorded: bool = True
    log_missing: bool = False
    time_resolution_ms: float = 1.0
    gathering_started: float | None = None
    #: The page's relay data checks (event log version 2).
    relays: list[RecordedRelay] = field(default_factory=list)


@dataclass(frozen=True)
class SavedReport:
    """iceprobe's own JSON report (`gather --json`), read back."""

    file: str
    gathered: GatherReport
    require: Requirement
    matrix: bool


Input = Session | SavedReport


def ice_server_urls(servers: Any) -> list[str]:
    """The URLs of an RTCConfiguration.iceServers list (each `urls` a string or a list, or
    the legacy `url`); plain strings are taken as URLs."""
    urls: list[str] = []
    for server in servers if isinstance(servers, list) else []:
        if isinstance(server, str):
            urls.append(server)
            continue
        if not isinstance(server, dict):
            continue
        found = server.get("urls", server.get("url", []))
        if isinstance(found, str):
            urls.append(found)
        elif isinstance(found, list):
            urls.extend(u for u in found if isinstance(u, str))
    return urls


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def browser_name(data: Any) -> str | None:
    """"Google Chrome 142.0.7444.60" from a navigator.userAgentData record (its
    `fullVersionList` when there, else `brands`), leaving out the GREASE brand and the
    engine when a browser brand is there; None when there is nothing to name."""
    if not isinstance(data, dict):
        return None
    brands = data.get("fullVersionList") or data.get("brands")
    names = [f"{b.get('brand')} {b.get('version')}" for b in
             (brands if isinstance(brands, list) else [])
             if isinstance(b, dict) and isinstance(b.get("brand"), str)
             and "brand" not in b["brand"].lower()]
    if len(names) > 1:
        names = [n for n in names if not n.startswith("Chromium ")] or names
    platform = data.get("platform")
    suffix = f" on {platform}" if isinstance(platform, str) and platform else ""
    return ", ".join(names) + suffix if names else None
