"""What Chrome would have said: for each failure iceprobe diagnoses, the `icecandidateerror`
a Chromium browser fires for the same failure (errorCode, errorText, whether its address and
port are null) and about when.

Pure code. Every rule below was measured with headless Chromium 156 against coturn 4.6 in
the lab (tests/lab/test_browser_parity_lab.py and the table in tests/lab/browser.py; the
user-facing table is docs/chrome.md). libwebrtc's source was not at hand: where a rule is an
inference rather than a measurement, it says so.

Over UDP:
- libwebrtc ignores ICMP errors and anything it cannot parse: a closed port, a silent server,
  a garbled answer all end as a timeout, after its whole retransmission schedule. A STUN
  request is sent at 0 ms and retransmitted after an RTO of 250 ms that doubles up to 8 s;
  the request times out 39.75 s after it was first sent (250 + 500 + 1000 + 2000 + 4000 +
  4 × 8000 ms); measured 39.9-39.97 s after gathering started. A TURN Allocate follows the
  same schedule. The event carries the (masked) local address and port.

Over TCP and TLS (`turn:…?transport=tcp`, `turns:`), the connection is the first step, and
libwebrtc reports its failure as soon as the socket fails, not on the STUN schedule:
- Refused, closed by the server (before or after the Allocate), or a TLS handshake that fails
  (untrusted certificate, wrong name, any alert): 701 "Failed to establish connection" at
  once (measured 0.1-1.3 s). Address and port are null when the connection never came up
  (refused, any TLS failure, closed at accept); they are set when the server closed an
  established TCP connection.
- A TLS handshake that gets no answer (a silent listener, or a plain TURN port reached with
  `turns:`): the same event after Chromium's TLS connect timeout, about 30 s (measured
  30.1-30.3 s), address and port null.
- Connected, but the Allocate is never answered: 701 "TURN allocate request timed out." with
  address and port, after 39.75 s like UDP (measured 40.2 s). libwebrtc does not retransmit
  over TCP, but it gives up at the same point.
- A TCP connect whose SYNs are dropped: Chromium fired nothing, and its gathering never
  completed, in 310 s (measured). No prediction.

Everywhere:
- A name that does not resolve fails as soon as the lookup does.
- An error response to a TURN Allocate is reported with the server's code but libwebrtc's
  own text when it arrives: "Unauthorized." for a 401 after the credentials were sent, "TURN
  allocate error." for the others (measured: 442, 486). A 300 (followed) or a 438 (retried
  with the new nonce) fires nothing. An error response to a STUN Binding keeps the server's
  reason phrase (not measured: servers rarely send one).
- Chrome has no STUN over TLS: it treats `stuns:host:port` as `stun:host:port` over UDP
  (default port 3478, not 5349), and its events name `stun:`. iceprobe probed over TLS, so
  its events say nothing about that UDP request: no prediction.
- Chrome never sends REQUESTED-ADDRESS-FAMILY: an Allocate that carried it
  (`--relay-family ipv6|both`) has no Chrome counterpart, and no prediction.
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
#: When Chromium gives up on a TLS handshake that gets no answer (measured 30.1-30.3 s).
TLS_CONNECT_TIMEOUT_MS = 30000
#: libwebrtc's text for a TCP or TLS connection to a TURN server that failed or was closed.
CONNECTION_FAILED_TEXT = "Failed to establish connection"

_TIMEOUT_TEXT = {Scheme.STUN: "STUN binding request timed out.",
                 Scheme.TURN: "TURN allocate request timed out.",
                 Scheme.TURNS: "TURN allocate request timed out."}
_LOOKUP_TEXT = {Scheme.STUN: "STUN host lookup received error.",
                Scheme.TURN: "TURN host lookup received error.",
                Scheme.TURNS: "TURN host lookup received error."}
#: Causes after which libwebrtc, blind to ICMP and to what it cannot parse, keeps
#: retransmitting until its schedule ends.
_SILENT = (Cause.TIMEOUT, Cause.UNREACHABLE, Cause.REFUSED, Cause.MALFORMED, Cause.CLOSED,
           # Inferred, not measured: libwebrtc drops a response of the wrong type.
           Cause.WRONG_METHOD)


#: TURN error responses libwebrtc handles without an event: it follows a 300 Try Alternate
#: and retries a 438 Stale Nonce with the new nonce.
_HANDLED = (300, 438)


@dataclass(frozen=True)
class BrowserView:
    """The icecandidateerror Chrome would fire, and when (ms after gathering started)."""

    error_code: int
    error_text: str
    after_ms: float
    #: The event's address and port are null (the TCP/TLS connection never came up); else
    #: they are the (masked) local address and port the request was sent from.
    address_null: bool = False


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
    Chrome does not support, a request Chrome never sends, or a failure of iceprobe
    itself)."""
    if event.requested_family is not None:
        return None  # Chrome never sends REQUESTED-ADDRESS-FAMILY
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
    if spec.transport is not Transport.UDP:
        return _over_stream(event, spec.scheme, elapsed)
    if event.cause in _SILENT or event.cause is Cause.TLS:
        return BrowserView(701, _TIMEOUT_TEXT[spec.scheme], float(TIMEOUT_MS))
    return None


def _over_stream(event: ErrorEvent, scheme: Scheme, elapsed: float) -> BrowserView | None:
    """TURN over TCP or TLS: the connection fails at once, or its Allocate times out.

    iceprobe's event has a local port only once its TCP connection was up (the gatherer
    leaves it None when the connect or the TLS handshake failed)."""
    connected = event.port is not None
    if event.cause in (Cause.REFUSED, Cause.UNREACHABLE):
        return BrowserView(701, CONNECTION_FAILED_TEXT, elapsed, address_null=True)
    if event.cause is Cause.TLS:
        # iceprobe's own wording for a handshake that got no answer (gather/stream.py).
        silent = event.error_text.endswith("timed out") or event.problem == "not-tls"
        return BrowserView(701, CONNECTION_FAILED_TEXT,
                           float(TLS_CONNECT_TIMEOUT_MS) if silent else elapsed,
                           address_null=True)
    if event.cause is Cause.CLOSED:
        return BrowserView(701, CONNECTION_FAILED_TEXT, elapsed, address_null=not connected)
    if event.cause is Cause.TIMEOUT:
        if not connected:
            return None  # SYNs dropped: Chromium waits for the OS, beyond any budget
        return BrowserView(701, _TIMEOUT_TEXT[scheme], float(TIMEOUT_MS))
    if event.cause in (Cause.MALFORMED, Cause.WRONG_METHOD):
        # Not measured alone: libwebrtc skips what it cannot parse and waits for an answer;
        # if the server then closes the connection (an HTTP server does), it is a close.
        return BrowserView(701, _TIMEOUT_TEXT[scheme], float(TIMEOUT_MS))
    return None
