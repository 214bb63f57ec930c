"""What Chrome would have said (iceprobe.browser) and which STUN servers a browser adds for
TURN servers (TURN as STUN). Pure code, no network."""

from __future__ import annotations

import itertools
import json

import pytest

from iceprobe.browser import (
    CONNECTION_FAILED_TEXT,
    TIMEOUT_MS,
    TLS_CONNECT_TIMEOUT_MS,
    BrowserView,
    chrome_view,
    retransmission_schedule,
)
from iceprobe.gather.run import implied_stun_servers
from iceprobe.model import Cause, ErrorEvent
from iceprobe.urls import parse_server_url


def event(url: str, cause: Cause, code: int = 701, text: str = "x",
          elapsed: float = 2.0, port: int | None = 50000, problem: str | None = None,
          family: int | None = None) -> ErrorEvent:
    return ErrorEvent(url=url, address="192.0.2.1", port=port, server_address="192.0.2.9",
                      server_port=3478, error_code=code, error_text=text, cause=cause,
                      elapsed_ms=elapsed, problem=problem, requested_family=family)


def test_libwebrtc_schedule_doubles_from_250_ms_to_8_s_and_gives_up_at_39_75_s() -> None:
    sends = retransmission_schedule()
    assert sends[:7] == [0, 250, 750, 1750, 3750, 7750, 15750]
    assert sends[-1] == 31750 and sends[-1] + 8000 == TIMEOUT_MS == 39750
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert max(gaps) == 8000


@pytest.mark.parametrize("url, cause, code, text, after", [
    # ICMP and garbage are invisible to libwebrtc: it retransmits until its schedule ends.
    ("stun:192.0.2.9:3478", Cause.UNREACHABLE, 701, "STUN binding request timed out.", 39750),
    ("stun:192.0.2.9:3478", Cause.TIMEOUT, 701, "STUN binding request timed out.", 39750),
    ("stun:192.0.2.9:3478", Cause.MALFORMED, 701, "STUN binding request timed out.", 39750),
    ("turn:192.0.2.9:3478", Cause.UNREACHABLE, 701, "TURN allocate request timed out.", 39750),
    # A failed lookup is reported as soon as it fails.
    ("stun:nowhere.example:3478", Cause.DNS, 701, "STUN host lookup received error.", 2),
    ("turn:nowhere.example:3478", Cause.DNS, 701, "TURN host lookup received error.", 2),
    ("turns:nowhere.example:5349", Cause.DNS, 701, "TURN host lookup received error.", 2),
    # A TURN error response: the server's code, libwebrtc's text, when it came.
    ("turn:192.0.2.9:3478", Cause.RESPONSE, 401, "Unauthorized.", 2),
])
def test_each_failure_maps_to_the_event_chrome_fires(url: str, cause: Cause, code: int,
                                                      text: str, after: float) -> None:
    view = chrome_view(event(url, cause, 401 if cause is Cause.RESPONSE else 701,
                             "Unauthorized" if cause is Cause.RESPONSE else "iceprobe's text"))
    assert view is not None
    assert (view.error_code, view.error_text, view.after_ms) == (code, text, after)


TCP = "turn:192.0.2.9:3478?transport=tcp"
TLS = "turns:192.0.2.9:5349"


@pytest.mark.parametrize("url, cause, port, text, problem, expected", [
    # Issue 15 item 1: the connection's failure is reported at once, address and port null.
    (TCP, Cause.REFUSED, None, "connection refused", None,
     BrowserView(701, CONNECTION_FAILED_TEXT, 2.0, address_null=True)),
    (TLS, Cause.REFUSED, None, "connection refused", None,
     BrowserView(701, CONNECTION_FAILED_TEXT, 2.0, address_null=True)),
    (TCP, Cause.UNREACHABLE, None, "No route to host", None,
     BrowserView(701, CONNECTION_FAILED_TEXT, 2.0, address_null=True)),
    (TLS, Cause.TLS, None, "TLS certificate of x rejected: self-signed", "certificate-untrusted",
     BrowserView(701, CONNECTION_FAILED_TEXT, 2.0, address_null=True)),
    (TLS, Cause.TLS, None, "TLS certificate of x rejected: mismatch", "hostname-mismatch",
     BrowserView(701, CONNECTION_FAILED_TEXT, 2.0, address_null=True)),
    (TLS, Cause.TLS, None, "TLS handshake with x failed: alert", "handshake",
     BrowserView(701, CONNECTION_FAILED_TEXT, 2.0, address_null=True)),
    # A handshake that gets no answer: Chromium's TLS connect timeout, about 30 s.
    (TLS, Cause.TLS, None, "TLS handshake with x (192.0.2.9:5349) timed out", "handshake",
     BrowserView(701, CONNECTION_FAILED_TEXT, TLS_CONNECT_TIMEOUT_MS, address_null=True)),
    # Closed by the server: the address is known once the connection was up.
    (TCP, Cause.CLOSED, 50000, "closed the connection before answering", None,
     BrowserView(701, CONNECTION_FAILED_TEXT, 2.0, address_null=False)),
    (TCP, Cause.CLOSED, None, "Connection reset by peer", None,
     BrowserView(701, CONNECTION_FAILED_TEXT, 2.0, address_null=True)),
    # Connected, the Allocate unanswered: the STUN timeout, with the address.
    (TCP, Cause.TIMEOUT, 50000, "No answer to the Allocate request", None,
     BrowserView(701, "TURN allocate request timed out.", TIMEOUT_MS)),
    (TLS, Cause.TIMEOUT, 50000, "No answer to the Allocate request", None,
     BrowserView(701, "TURN allocate request timed out.", TIMEOUT_MS)),
])
def test_turn_over_tcp_and_tls_fails_as_chromium_156_reports_it(
        url: str, cause: Cause, port: int | None, text: str, problem: str | None,
        expected: BrowserView) -> None:
    assert chrome_view(event(url, cause, text=text, port=port, problem=problem)) == expected


def test_a_tcp_connect_whose_syns_are_dropped_has_no_prediction() -> None:
    """Chromium 156 fired nothing and never completed gathering within 310 s."""
    assert chrome_view(event(TCP, Cause.TIMEOUT, text="TCP connection timed out",
                             port=None)) is None


def test_udp_failures_keep_the_address_and_the_retransmission_schedule() -> None:
    for cause in (Cause.UNREACHABLE, Cause.TIMEOUT, Cause.CLOSED):
        view = chrome_view(event("turn:192.0.2.9:3478", cause))
        assert view == BrowserView(701, "TURN allocate request timed out.", TIMEOUT_MS)


def test_an_allocate_with_requested_address_family_has_no_chrome_counterpart() -> None:
    """Issue 15 item 1: Chrome never sends REQUESTED-ADDRESS-FAMILY, so the 440 of an IPv6
    Allocate (--relay-family ipv6|both), or any failure of that attempt, fires nothing."""
    assert chrome_view(event("turn:192.0.2.9:3478", Cause.RESPONSE, 440,
                             "Address Family not Supported", family=6)) is None
    assert chrome_view(event(TCP, Cause.REFUSED, port=None, family=6)) is None
    view = chrome_view(event("turn:192.0.2.9:3478", Cause.RESPONSE, 440, "x"))
    assert view is not None and view.error_code == 440  # the same failure without it


@pytest.mark.parametrize("code", [442, 486, 403, 508])
def test_other_turn_error_responses_are_a_turn_allocate_error(code: int) -> None:
    view = chrome_view(event("turn:192.0.2.9:3478", Cause.RESPONSE, code, "Quota reached"))
    assert view is not None and (view.error_code, view.error_text) == (code,
                                                                       "TURN allocate error.")


def test_redirects_and_stale_nonces_are_handled_by_chrome_without_an_event() -> None:
    for code in (300, 438):
        assert chrome_view(event("turn:192.0.2.9:3478", Cause.RESPONSE, code, "x")) is None
    view = chrome_view(event("stun:192.0.2.9:3478", Cause.RESPONSE, 400, "Bad Request"))
    assert view is not None and view.error_text == "Bad Request"


def test_chrome_fires_nothing_for_stuns_or_for_iceprobe_s_own_failures() -> None:
    assert chrome_view(event("stuns:192.0.2.9:5349", Cause.TIMEOUT)) is None
    assert chrome_view(event("turn:192.0.2.9:3478", Cause.INTERNAL)) is None


def specs(*urls: str) -> list[str]:
    return [spec.url for spec, _ in implied_stun_servers([parse_server_url(u) for u in urls])]


def test_every_udp_turn_server_is_a_stun_server_too_once() -> None:
    assert specs("turn:turn.example.com:3478") == ["stun:turn.example.com:3478"]
    assert specs("turn:turn.example.com:3478", "turn:turn.example.com:3478?transport=udp",
                 "turn:TURN.example.com:3478") == ["stun:turn.example.com:3478"]
    assert specs("turn:[2001:db8::1]:3478") == ["stun:[2001:db8::1]:3478"]
    [(_, origin)] = implied_stun_servers([parse_server_url("turn:t.example.com")])
    assert origin == "turn:t.example.com"


def test_tcp_and_tls_turn_and_named_stun_servers_add_nothing() -> None:
    assert specs("turn:t.example.com:3478?transport=tcp", "turns:t.example.com:5349") == []
    assert specs("stun:t.example.com:3478", "turn:t.example.com:3478") == []
    assert specs("stun:t.example.com:19302", "turn:t.example.com:3478") == [
        "stun:t.example.com:3478"]


def test_a_saved_report_keeps_the_requested_family_so_analyze_predicts_nothing_for_it() -> None:
    from iceprobe.recordings.report import _error as read_error
    from iceprobe.render.json_report import _error as write_error

    asked = event("turn:192.0.2.9:3478", Cause.RESPONSE, 440, "Address Family not Supported",
                  family=6)
    back = read_error(json.loads(json.dumps(write_error(asked))))
    assert back.requested_family == 6 and chrome_view(back) is None
    plain = read_error(json.loads(json.dumps(write_error(event("turn:192.0.2.9:3478",
                                                               Cause.TIMEOUT)))))
    assert plain.requested_family is None and chrome_view(plain) is not None
