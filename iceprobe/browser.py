"""What Chrome would have said: for each failure iceprobe diagnoses, the `icecandidateerror`
a Chromium browser fires for the same failure (errorCode and errorText) and about when.

Pure code. The rules follow libwebrtc (p2p/base/stun_port.cc, turn_port.cc), checked against
headless Chromium in the lab (tests/lab/test_browser_parity_lab.py):

- libwebrtc ignores ICMP errors and anything it cannot parse: a closed port, a silent server,
  a refused or garbled answer all end as a timeout, after its whole retransmission schedule.
  A STUN request is sent at 0 ms and retransmitted after an RTO of 250 ms that doubles up to
  8 s; the request times out 39.75 s after it was first sent (250 + 500 + 1000 + 2000 + 4000 +
  4 × 8000 ms). A TURN Allocate follows the same schedule.
- A name that does not resolve fails as soon as the lookup does.
- An error response to a TURN Allocate is reported with the server's code but libwebrtc's
  own text when it arrives: "Unauthorized." for a 401 after the credentials were sent, "TURN
  allocate error." for the others (measured: 442, 486). A 300 (followed) or a 438 (retried
  with the new nonce) fires nothing. An error response to a STUN Binding keeps the server's
  reason phrase (not measured: servers rarely send one).
- Chrome has no `stuns:` (and no STUN over TCP): such URLs get no event from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Cause, ErrorEvent, Scheme, Transport
from .urls import UrlError, parse_server_url

#: libwebrtc's STUN retransmission schedule (ms): the initial RTO, its cap, the total.
INITIAL_RTO_MS = 250
MAX_RTO_MS = 8000
#: When libwebrtc gives up on a request that never got an answer.
TIMEOUT_MS = 39750

_TIMEOUT_TEXT = {Scheme.STUN: "STUN binding request timed out.",
                 Scheme.TURN: "TURN allocate request timed out.",
                 Scheme.TURNS: "TURN allocate request timed out."}
_LOOKUP_TEXT = {Scheme.STUN: "STUN host lookup received error.",
                Scheme.TURN: "TURN host lookup received error.",
                Scheme.TURNS: "TURN host lookup received error."}
#: Causes after which libwebrtc, blind to ICMP and to what it cannot parse, keeps
#: retransmitting until its schedule ends.
_SILENT = (Cause.TIMEOUT, Cause.UNREACHABLE, Cause.REFUSED, Cause.MALFORMED, Cause.CLOSED)


#: TURN error responses libwebrtc handles without an event: it follows a 300 Try Alternate
#: and retries a 438 Stale Nonce with the new nonce.
_HANDLED = (300, 438)


@dataclass(frozen=True)
class BrowserView:
    """The icecandidateerror Chrome would fire, and when (ms after gathering started)."""

    error_code: int
    error_text: str
    after_ms: float


def retransmission_schedule() -> list[int]:
    """When libwebrtc (re)sends a STUN request, in ms after the first send: 0, 250, 750, …"""
    times, at, rto = [0], 0, INITIAL_RTO_MS
    while at + rto < TIMEOUT_MS:
        at += rto
        times.append(at)
        rto = min(rto * 2, MAX_RTO_MS)
    return times


def chrome_view(event: ErrorEvent) -> BrowserView | None:
    """The event Chrome would fire for this failure; None when it fires none (a URL scheme
    Chrome does not support, or a failure of iceprobe itself)."""
    try:
        spec = parse_server_url(event.url)
    except UrlError:
        return None
    if spec.scheme is Scheme.STUNS or (spec.scheme is Scheme.STUN
                                       and spec.transport is not Transport.UDP):
        return None
    elapsed = event.elapsed_ms or 0.0
    if event.cause is Cause.RESPONSE:
        if not spec.is_turn:
            return BrowserView(event.error_code, event.error_text, elapsed)
        if event.error_code in _HANDLED:
            return None
        text = "Unauthorized." if event.error_code == 401 else "TURN allocate error."
        return BrowserView(event.error_code, text, elapsed)
    if event.cause is Cause.DNS:
        return BrowserView(701, _LOOKUP_TEXT[spec.scheme], elapsed)
    if event.cause is Cause.SOCKET:
        # No local address of the server's family: libwebrtc says so at once.
        text = ("STUN server address is incompatible." if spec.scheme is Scheme.STUN
                else "TURN server address is incompatible.")
        return BrowserView(701, text, elapsed)
    if event.cause in _SILENT:
        return BrowserView(701, _TIMEOUT_TEXT[spec.scheme], float(TIMEOUT_MS))
    if event.cause is Cause.TLS:
        return BrowserView(701, _TIMEOUT_TEXT[spec.scheme], float(TIMEOUT_MS))
    return None
