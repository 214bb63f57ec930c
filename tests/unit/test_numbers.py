"""Pure parts of issue 15's numbers: TCP candidate priorities and foundations (item 4), a
matrix cell's duration (item 6), and the username in a redacted report (item 11)."""

from __future__ import annotations

from iceprobe.gather.candidates import foundation, priority
from iceprobe.matrix import cell_duration_ms
from iceprobe.model import (
    Candidate,
    CandidateType,
    Cause,
    ErrorEvent,
    GatherReport,
    ProbeResult,
    Requirement,
)
from iceprobe.redact import redact
from iceprobe.render import Report
from iceprobe.render.json_report import report_document
from iceprobe.urls import parse_server_url

TURN = parse_server_url("turn:192.0.2.2:3478")


def test_a_tcp_srflx_ranks_below_the_udp_one_with_the_same_type_preference() -> None:
    for address in ("198.51.100.1", "2001:db8::1"):
        udp = priority(CandidateType.SRFLX, address)
        tcp = priority(CandidateType.SRFLX, address, "tcp")
        assert tcp < udp and tcp >> 24 == udp >> 24 == 100
        # RFC 6544 section 4.2: local preference = 2^13 * direction-pref + other-pref, with
        # direction-pref 4 for an active srflx.
        assert ((tcp >> 8) & 0xFFFF) >> 13 == 4
    assert ((priority(CandidateType.HOST, "198.51.100.1", "tcp") >> 8) & 0xFFFF) >> 13 == 6


def test_the_foundation_depends_on_the_transport() -> None:
    assert foundation(CandidateType.SRFLX, "198.51.100.1", "stun.example.com") != foundation(
        CandidateType.SRFLX, "198.51.100.1", "stun.example.com", "tcp")
    assert foundation(CandidateType.HOST, "198.51.100.1") == foundation(
        CandidateType.HOST, "198.51.100.1", protocol="udp")


def event(elapsed_ms: float) -> ErrorEvent:
    return ErrorEvent(TURN.url, "192.0.2.10", 5000, "192.0.2.2", 3478, 701, "unreachable",
                      Cause.UNREACHABLE, elapsed_ms)


def relay(elapsed_ms: float) -> Candidate:
    return Candidate(CandidateType.RELAY, "udp", "192.0.2.2", 50000, "1", 1, elapsed_ms,
                     url=TURN.url)


def test_a_cell_is_timed_from_its_first_packet_to_its_outcome() -> None:
    failed = ProbeResult(TURN, (), (event(48.0),), 48.5, first_sent_ms=47.0)
    assert cell_duration_ms(failed) == 1.0
    # Several attempts: the cell failed when its last attempt did.
    twice = ProbeResult(TURN, (), (event(48.0), event(60.0)), 60.2, first_sent_ms=47.0)
    assert cell_duration_ms(twice) == 13.0
    # A working cell is done at its relay candidate, not after the release that follows.
    ok = ProbeResult(TURN, (relay(12.5),), (), 14.0, first_sent_ms=10.0)
    assert cell_duration_ms(ok) == 2.5
    # Nothing sent (a DNS failure): from the run's start.
    dns = ProbeResult(TURN, (), (event(3.0),), 3.1)
    assert cell_duration_ms(dns) == 3.0


def report_with(username: str | None, text: str = "") -> Report:
    result = ProbeResult(TURN, (), (ErrorEvent(TURN.url, "192.0.2.10", 5000, "192.0.2.2", 3478,
                                               401, f"Unauthorized {text}".strip(),
                                               Cause.RESPONSE, 2.0),), 3.0, realm="lab")
    return Report(GatherReport(None, 4.0, (), (result,), username=username), (),
                  Requirement.EACH)


def test_redact_replaces_the_username_everywhere_and_keeps_a_rest_expiry() -> None:
    redacted = redact(report_with("alice", "for alice"))
    assert redacted.gather.username == "user-1"
    assert redacted.gather.results[0].errors[0].error_text == "Unauthorized for user-1"
    assert redact(report_with("1700000000:alice")).gather.username == "1700000000:user-1"
    assert redact(report_with(None)).gather.username is None


def test_a_short_username_is_replaced_as_a_word_only() -> None:
    redacted = redact(report_with("ice", "by iceprobe for ice"))
    assert redacted.gather.results[0].errors[0].error_text == "Unauthorized by iceprobe for user-1"


def test_json_carries_the_username_and_each_servers_realm() -> None:
    document = report_document(report_with("alice"))
    assert document["username"] == "alice"
    assert document["servers"][0]["realm"] == "lab"
