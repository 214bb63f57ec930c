"""The relay check's own TURN transactions (issue 16 items 6 and 9): the recorder reading
real STUN bytes, the rules that name the server's behaviour instead of a firewall, the
not-tls hint, and the whole run's duration. No network: messages are built with aioice's
encoder, checks and results by hand."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from typing import Any

from aioice import stun

from iceprobe.gather.turn_recorder import TurnRecorder
from iceprobe.gather.wire import read_turn_message
from iceprobe.model import (
    Candidate,
    CandidateType,
    Cause,
    Confidence,
    ErrorEvent,
    GatherReport,
    ProbeResult,
    RelayCheck,
    RelayStep,
    Requirement,
    TurnExchange,
    Verdict,
)
from iceprobe.render import Report
from iceprobe.render.json_report import render_json
from iceprobe.rules import Evidence, evaluate
from iceprobe.urls import parse_server_url
from tests.schema import validated

URL = "turn:198.18.0.10:3478"
SPEC = parse_server_url(URL)
KEY = b"0123456789abcdef"
RELAY = ("198.18.0.10", 61000)


def channel_bind() -> stun.Message:
    request = stun.Message(message_method=stun.Method.CHANNEL_BIND,
                           message_class=stun.Class.REQUEST)
    request.attributes["CHANNEL-NUMBER"] = 0x4000
    request.attributes["XOR-PEER-ADDRESS"] = ("198.18.0.10", 61001)
    request.attributes["USERNAME"] = "alice"
    request.attributes["REALM"] = "lab"
    request.attributes["NONCE"] = b"nonce"
    request.add_message_integrity(KEY)
    return request


def answer(request: stun.Message, kind: stun.Class = stun.Class.RESPONSE,
           key: bytes | None = None, error: tuple[int, str] | None = None) -> bytes:
    response = stun.Message(message_method=request.message_method, message_class=kind,
                            transaction_id=request.transaction_id)
    if error is not None:
        response.attributes["ERROR-CODE"] = error
    if key is not None:
        response.add_message_integrity(key)
    response.add_fingerprint()
    return bytes(response)


def recorder() -> TurnRecorder:
    async def make() -> TurnRecorder:
        return TurnRecorder(SPEC, 0.0)
    return asyncio.run(make())


def test_read_turn_message_tells_whether_the_integrity_matches() -> None:
    request = channel_bind()
    signed = read_turn_message(answer(request, key=KEY), KEY)
    assert signed is not None and (signed.method, signed.kind) == ("ChannelBind", "success")
    assert signed.integrity is True
    wrong = read_turn_message(answer(request, key=b"another key....."), KEY)
    assert wrong is not None and wrong.integrity is False
    bare = read_turn_message(answer(request), KEY)
    assert bare is not None and bare.integrity is None
    assert read_turn_message(b"\x40\x00\x00\x04data") is None  # ChannelData, not STUN


def test_a_success_without_message_integrity_is_recorded_as_discarded() -> None:
    request = channel_bind()
    seen = recorder()
    seen.sent("offerer", bytes(request), KEY, RELAY)
    seen.received("offerer", answer(request))
    seen.sent("offerer", bytes(request), KEY, RELAY)
    seen.received("offerer", answer(request))
    [found] = seen.exchanges()
    assert (found.request, found.sends, found.answers, found.outcome, found.problem) == (
        "ChannelBind", 2, 2, "discarded", "no-message-integrity")
    [event] = seen.error_events(failed=True)
    assert event.problem == "ChannelBind" and event.cause is Cause.MALFORMED
    assert "carried no MESSAGE-INTEGRITY" in event.error_text
    assert "client discarded it" in event.error_text and "2 answers to 2 sends" in event.error_text


def test_a_signed_success_is_a_success_and_no_event() -> None:
    seen = recorder()
    request = channel_bind()
    seen.sent("answerer", bytes(request), KEY, RELAY)
    seen.received("answerer", answer(request, key=KEY))
    [found] = seen.exchanges()
    assert (found.outcome, found.problem, found.peer) == ("success", None, "answerer")
    assert found.rtt_ms is not None
    assert seen.error_events(failed=True) == []


def test_a_signed_403_sets_denied_and_is_an_error_event() -> None:
    seen = recorder()
    request = channel_bind()
    seen.sent("offerer", bytes(request), KEY, RELAY)
    seen.received("offerer", answer(request, stun.Class.ERROR, KEY, (403, "Forbidden IP")))
    assert seen.denied.is_set()
    [event] = seen.error_events(failed=False)
    assert (event.error_code, event.error_text) == (403, "Forbidden IP (on ChannelBind)")


def test_an_unanswered_request_is_an_event_only_when_the_check_failed() -> None:
    seen = recorder()
    seen.sent("offerer", bytes(channel_bind()), KEY, RELAY)
    assert seen.error_events(failed=False) == []
    [event] = seen.error_events(failed=True)
    assert event.cause is Cause.TIMEOUT and "no answer to the ChannelBind" in event.error_text


def test_channel_data_is_counted_both_ways() -> None:
    seen = recorder()
    seen.sent("offerer", b"\x40\x00\x00\x04ping", KEY, RELAY)
    seen.received("offerer", b"\x40\x00\x00\x04pong")
    assert (seen.channel_data_sent, seen.channel_data_received) == (1, 1)


# --- rules -----------------------------------------------------------------------------

def failed_at_ice(**changes: Any) -> RelayCheck:
    check = RelayCheck(server=SPEC, duration_ms=1400.0, failed_step=RelayStep.ICE,
                       failure="ICE connectivity checks between the two relay addresses "
                               "did not finish: no data passes the relays")
    return dataclasses.replace(check, **changes)


def discarded(peer: str = "offerer") -> TurnExchange:
    return TurnExchange(peer=peer, request="ChannelBind", elapsed_ms=14.0, sends=2,
                        answers=2, outcome="discarded", problem="no-message-integrity")


def broken(check: RelayCheck) -> Verdict:
    [verdict] = [v for v in evaluate(Evidence((), (), relays=(check,)))
                 if v.id == "relay-data-path-broken"]
    return verdict


def test_discarded_channel_bind_answers_are_named_and_no_firewall_is_blamed() -> None:
    verdict = broken(failed_at_ice(turn_requests=(discarded(), discarded("answerer"))))
    assert "ChannelBind answers were discarded" in verdict.title
    assert "carried no MESSAGE-INTEGRITY" in verdict.detail
    assert "4 answers to 4 sends" in verdict.detail
    assert "firewall" not in (verdict.detail + verdict.hint).lower()
    # Nothing was ever sent through the relay: the discarded answers are why.
    assert verdict.confidence is Confidence.CERTAIN


def test_discarded_answers_after_data_was_sent_are_only_likely_the_cause() -> None:
    verdict = broken(failed_at_ice(turn_requests=(discarded(),), channel_data_sent=3))
    assert verdict.confidence is Confidence.LIKELY


def test_bound_channels_with_nothing_coming_back_may_be_the_server_dropping_channel_data(
        ) -> None:
    bound = dataclasses.replace(discarded(), outcome="success", problem=None)
    verdict = broken(failed_at_ice(turn_requests=(bound,), channel_data_sent=4))
    assert verdict.title.endswith("no data came back through the channel")
    assert "drops ChannelData" in verdict.hint
    assert verdict.confidence is Confidence.POSSIBLE


def test_without_turn_evidence_the_ice_hint_is_unchanged() -> None:
    verdict = broken(failed_at_ice())
    assert "firewall" in verdict.hint and verdict.confidence is Confidence.CERTAIN


def test_a_server_that_went_away_fails_the_step_in_progress_by_name() -> None:
    lost = ErrorEvent(URL, "198.18.0.10", 61000, "198.18.0.10", 3478, 701,
                      "ICMP port unreachable from 198.18.0.10:3478: nothing listens on the "
                      "TURN server's port any more", Cause.UNREACHABLE, 2900.0,
                      problem="server-lost")
    check = RelayCheck(server=SPEC, duration_ms=3000.0, failed_step=RelayStep.BULK,
                       failure="the TURN server went away during the bulk step",
                       errors=(lost,), channel_open_ms=900.0)
    verdict = broken(check)
    assert verdict.title.endswith("the server went away during the bulk step")
    assert "ICMP port unreachable" in verdict.detail
    assert "firewall" not in verdict.hint.lower()


def test_not_tls_gets_the_plain_port_hint_for_certain() -> None:
    spec = parse_server_url("turns:198.18.0.10:3478")
    event = ErrorEvent(spec.url, "198.18.0.10", None, "198.18.0.10", 3478, 701,
                       "TLS handshake with 198.18.0.10 (198.18.0.10:3478) unanswered after "
                       "0.5 s, while the port answered a plain STUN Binding over TCP: this "
                       "port speaks plain STUN/TURN over TCP, not TLS", Cause.TLS, 510.0,
                       problem="not-tls")
    result = ProbeResult(spec, (), (event,), 510.0)
    host = Candidate(CandidateType.HOST, "udp", "198.18.0.10", 50000, "1", 1, 0.0)
    [verdict] = [v for v in evaluate(Evidence((host,), (result,)))
                 if v.id == "server-unreachable"]
    assert "speaks plain TURN over TCP, not TLS" in verdict.hint
    assert verdict.confidence is Confidence.CERTAIN


# --- the whole run's duration ----------------------------------------------------------

def relay_document(report: Report) -> dict[str, Any]:
    out = io.StringIO()
    render_json(report, out)
    document: dict[str, Any] = validated(out.getvalue(), "relay")
    return document


def test_relay_json_duration_is_the_whole_run() -> None:
    gathered = GatherReport(started_at=None, duration_ms=5.0, host_candidates=(),
                            results=(), username="alice")
    check = dataclasses.replace(failed_at_ice(turn_requests=(discarded(),)),
                                channel_data_sent=0)
    report = Report(gathered, (), Requirement.EACH, relays=(check,), run_ms=1900.0)
    document = relay_document(report)
    assert document["duration_ms"] == 1900.0
    [relay] = document["relay"]
    assert relay["turn_requests"][0]["outcome"] == "discarded"
    assert relay["channel_data"] == {"sent": 0, "received": 0}
    # Without a measured run, the gathering and the checks add up.
    unmeasured = Report(gathered, (), Requirement.EACH, relays=(check,))
    assert relay_document(unmeasured)["duration_ms"] == 1405.0
    assert json.dumps(document)  # serialisable as a whole
