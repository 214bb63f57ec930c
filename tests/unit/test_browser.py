"""What Chrome would have said (iceprobe.browser) and which STUN servers a browser adds for
TURN servers (TURN as STUN). Pure code, no network."""

from __future__ import annotations

import itertools

import pytest

from iceprobe.browser import TIMEOUT_MS, chrome_view, retransmission_schedule
from iceprobe.gather.run import implied_stun_servers
from iceprobe.model import Cause, ErrorEvent
from iceprobe.urls import parse_server_url


def event(url: str, cause: Cause, code: int = 701, text: str = "x",
          elapsed: float = 2.0) -> ErrorEvent:
    return ErrorEvent(url=url, address="192.0.2.1", port=50000, server_address="192.0.2.9",
                      server_port=3478, error_code=code, error_text=text, cause=cause,
                      elapsed_ms=elapsed)


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
    ("turn:192.0.2.9:3478?transport=tcp", Cause.REFUSED, 701,
     "TURN allocate request timed out.", 39750),
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
