"""Recordings as the page of `iceprobe serve` uploads them (event log version 2), for the
serve tests: version-1 records inside the version-2 envelope (one PeerConnection per server,
as the page makes them)."""

from __future__ import annotations

import json
from typing import Any

T0 = 1_764_000_000_000


def page(browser: str = "Chromium 156") -> dict[str, Any]:
    return {"userAgent": f"Mozilla/5.0 {browser}", "browser": browser, "deadline_ms": 8000,
            "permission": "not-asked", "mdns": True, "started_at": T0}


def events(stun_url: str, turn_url: str, *, turn_error: tuple[int, str] | None = None,
           relay_ip: str = "198.18.0.10") -> list[dict[str, Any]]:
    """A STUN PeerConnection that got its srflx, and a relay-only TURN one that got a relay
    candidate or, with `turn_error`, the icecandidateerror instead."""
    found: list[dict[str, Any]] = [
        {"type": "config", "t": T0, "pc": "pc-1", "iceServers": [stun_url],
         "iceTransportPolicy": "all"},
        {"type": "icegatheringstatechange", "t": T0 + 1, "pc": "pc-1", "state": "gathering"},
        {"type": "icecandidate", "t": T0 + 20, "pc": "pc-1", "url": stun_url,
         "candidate": "candidate:1 1 udp 1686052607 203.0.113.7 50000 typ srflx "
                      "raddr 0.0.0.0 rport 0"},
        {"type": "icegatheringstatechange", "t": T0 + 30, "pc": "pc-1", "state": "complete"},
        {"type": "config", "t": T0, "pc": "pc-2", "iceServers": [turn_url],
         "iceTransportPolicy": "relay"},
        {"type": "icegatheringstatechange", "t": T0 + 1, "pc": "pc-2", "state": "gathering"},
    ]
    if turn_error is None:
        found.append({"type": "icecandidate", "t": T0 + 40, "pc": "pc-2", "url": turn_url,
                      "relayProtocol": "udp",
                      "candidate": f"candidate:2 1 udp 41885439 {relay_ip} 50001 typ relay "
                                   "raddr 0.0.0.0 rport 0"})
    else:
        found.append({"type": "icecandidateerror", "t": T0 + 40, "pc": "pc-2",
                      "url": turn_url, "address": "0.0.0.x", "port": 9,
                      "errorCode": turn_error[0], "errorText": turn_error[1]})
    found.append({"type": "icegatheringstatechange", "t": T0 + 50, "pc": "pc-2",
                  "state": "complete"})
    return found


def upload(upload_id: str, records: list[dict[str, Any]], browser: str = "Chromium 156"
           ) -> bytes:
    return json.dumps({"format": "iceprobe-events", "version": 2, "upload_id": upload_id,
                       "page": page(browser), "events": records}).encode()
