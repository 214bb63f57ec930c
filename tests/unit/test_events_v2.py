"""iceprobe event log version 2 (what the `iceprobe serve` page uploads), read by `analyze`:
one page run is one session; outcomes, deadlines and relay checks as docs/recordings.md says.
The fixtures are real uploads of the page in Chromium 156 and Firefox ESR 153 in the lab,
with the lab's addresses replaced by documentation ones (tests/fixtures/recordings/README.md).
No network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from iceprobe.model import CandidateType, Cause, Requirement
from iceprobe.recordings import RecordingError, Session, analysis, read
from iceprobe.rules import evaluate
from tests.schema import validated

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"
STUN = "stun:turn.example.com:3478"
TURN = "turn:turn.example.com:3478"


def session(name: str, data: bytes | None = None) -> Session:
    found = read(data if data is not None else (FIXTURES / name).read_bytes(), name)
    assert len(found) == 1, "one page run is one session"
    [item] = found
    assert isinstance(item, Session)
    return item


def verdicts(item: Session) -> dict[str, str]:
    found: dict[str, str] = {}
    for v in evaluate(analysis(item, 500.0, Requirement.EACH).evidence):
        found.setdefault(v.id, v.severity.value)
    return found


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return document


def with_changes(name: str, **header: Any) -> bytes:
    document = fixture(name)
    document.update(header)
    return json.dumps(document).encode()


@pytest.mark.parametrize("name", ["events-v2-chromium-healthy.json",
                                  "events-v2-firefox-healthy.json"])
def test_healthy_page_run_is_one_session_with_every_url_as_a_server(name: str) -> None:
    item = session(name)
    assert item.ice_servers == [STUN, TURN]
    assert item.ice_transport_policy == "all"
    found = verdicts(item)
    assert found["all-candidates-gathered"] == "ok"
    assert not [k for k, v in found.items() if v == "fail"]


def test_firefox_candidates_without_url_are_attributed_to_their_peer_connection() -> None:
    """Firefox leaves `url` out of every candidate: the page's one server per
    PeerConnection says where each srflx and relay came from."""
    raw = fixture("events-v2-firefox-healthy.json")["events"]
    assert all(e.get("url") is None for e in raw if e["type"] == "icecandidate")
    result = analysis(session("events-v2-firefox-healthy.json"), 500.0, Requirement.EACH)
    by_server = {r.server.url: {c.type for c in r.candidates} for r in result.gathered.results}
    assert by_server == {STUN: {CandidateType.SRFLX}, TURN: {CandidateType.RELAY}}


def test_wrong_password_401_is_judged_once_for_both_runs_of_the_turn_url() -> None:
    raw = fixture("events-v2-firefox-401.json")["events"]
    assert [e["errorCode"] for e in raw if e["type"] == "icecandidateerror"] == [401, 401]
    item = session("events-v2-firefox-401.json")
    assert [(e.url, e.code) for e in item.errors] == [(TURN, 401)]
    found = verdicts(item)
    assert found["turn-credentials-rejected"] == "fail"
    assert found["no-relay-candidates"] == "fail"


def test_deadline_outcome_is_a_timeout_error_event_on_its_url() -> None:
    result = analysis(session("events-v2-chromium-deadline.json"), 500.0, Requirement.EACH)
    assert sorted((e.url, e.error_code, e.cause, e.error_text)
                  for e in result.gathered.errors) == [
        (STUN, 701, Cause.TIMEOUT, "no answer within the page's deadline"),
        (TURN, 701, Cause.TIMEOUT, "no answer within the page's deadline")]
    found = verdicts(session("events-v2-chromium-deadline.json"))
    assert found["server-unreachable"] == "fail"
    assert found["only-host-candidates"] == "fail"


def test_a_firefox_701_without_text_claims_no_cause_it_cannot_know() -> None:
    """Firefox reports an unresolvable name as 701 with an empty errorText: the verdict says
    the server could not be used, is only `possible` about why, and offers no ICMP story."""
    item = session("events-v2-firefox-unresolvable.json")
    result = analysis(item, 500.0, Requirement.EACH)
    assert {(e.error_code, e.cause, e.error_text) for e in result.gathered.errors} == {
        (701, Cause.UNSPECIFIED, "")}
    found = [v for v in evaluate(result.evidence) if v.id == "server-unreachable"]
    assert len(found) == 2 and {v.confidence.value for v in found} == {"possible"}
    for verdict in found:
        assert "ICMP" not in verdict.hint and "Not certain which" in verdict.hint
        assert verdict.detail == ("Could not be used; the browser gave no reason (an empty "
                                  "errorText).")


def test_run_timeline_has_one_gathering_start_and_one_completion() -> None:
    item = session("events-v2-firefox-401.json")
    gathering = [s.state for s in item.states if s.kind == "gathering"]
    assert gathering == ["gathering", "complete"]


def test_browser_comes_from_the_page_object() -> None:
    assert session("events-v2-firefox-401.json").browser == "Firefox 153.0"
    data = with_changes("events-v2-firefox-401.json",
                        page={"userAgent": "Mozilla/5.0 X", "deadline_ms": 8000})
    assert session("x.json", data).browser == "Mozilla/5.0 X"


def test_analyze_json_of_a_page_run_is_one_valid_session() -> None:
    done = subprocess.run([sys.executable, "-m", "iceprobe", "analyze",
                           str(FIXTURES / "events-v2-firefox-401.json"), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    document = validated(done.stdout, "analyze")
    [one] = document["sessions"]
    assert one["source"]["browser"] == "Firefox 153.0"
    assert sorted(s["url"] for s in one["servers"]) == [STUN, TURN]


@pytest.mark.parametrize("change, message", [
    ({"page": "Firefox"}, "`page` must be an object"),
    ({"page": {"permission": "maybe"}}, "permission must be one of"),
    ({"page": {"mdns": "yes"}}, "mdns must be true or false"),
    ({"page": {"deadline_ms": "8 s"}}, "deadline_ms must be a number"),
    ({"version": 3}, "version 3 is not supported (expected 1 or 2)"),
])
def test_bad_page_object_or_version_is_one_clear_error(change: dict[str, Any],
                                                        message: str) -> None:
    with pytest.raises(RecordingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read(with_changes("events-v2-firefox-401.json", **change), "bad.json")


@pytest.mark.parametrize("record, message", [
    ({"type": "outcome", "t": 1, "pc": "pc-1", "url": TURN, "outcome": "maybe"},
     "outcome must be one of"),
    ({"type": "outcome", "t": 1, "pc": "pc-1", "outcome": "deadline"},
     "outcome needs a url string"),
    ({"type": "relaycheck", "t": 1, "url": TURN, "ok": "yes", "rtt_ms": [], "sent": 1,
      "received": 1}, "relaycheck needs a url string and ok"),
    ({"type": "relaycheck", "t": 1, "url": TURN, "ok": True, "rtt_ms": ["fast"], "sent": 1,
      "received": 1, "duration_ms": 900}, "rtt_ms must be a number"),
    ({"type": "relaycheck", "t": 1, "url": TURN, "ok": True, "rtt_ms": [], "sent": 1,
      "duration_ms": 900}, "received must be a number"),
    ({"type": "relaycheck", "t": 1, "url": TURN, "ok": True, "rtt_ms": [], "sent": 1,
      "received": 1}, "duration_ms must be a number"),
    ({"type": "relaycheck", "t": 1, "url": TURN, "ok": True, "rtt_ms": [1, 2], "sent": 1,
      "received": 1, "duration_ms": 900}, "rtt_ms must be a list of numbers, one per echo"),
    ({"type": "relaycheck", "t": 1, "url": TURN, "ok": True, "rtt_ms": [], "sent": 1,
      "received": 2, "duration_ms": 900}, "relaycheck needs whole sent >= received >= 0"),
    ({"type": "relaycheck", "t": 1, "url": TURN, "ok": False, "rtt_ms": [], "sent": 0,
      "received": 0, "duration_ms": 900, "step": "warp"}, "a failed relaycheck needs a step"),
    ({"type": "relaycheck", "t": 1, "url": TURN, "ok": True, "rtt_ms": [], "sent": 1,
      "received": 1, "duration_ms": float("nan")}, "duration_ms must be a finite number"),
])
def test_bad_v2_record_names_its_number_and_field(record: dict[str, Any],
                                                  message: str) -> None:
    document = fixture("events-v2-firefox-401.json")
    document["events"].append(record)
    number = len(document["events"])
    with pytest.raises(RecordingError, match=f"record {number}: {message}"):
        read(json.dumps(document).encode(), "bad.json")


def test_the_page_relay_check_is_judged_by_the_relay_rules() -> None:
    """A healthy run's relaycheck is the session's relay check: data flows, with the page's
    timings and echoes."""
    result = analysis(session("events-v2-chromium-healthy.json"), 500.0, Requirement.EACH)
    [check] = result.evidence.relays
    recorded = next(e for e in fixture("events-v2-chromium-healthy.json")["events"]
                    if e["type"] == "relaycheck")
    assert check.server.url == TURN and check.ok and check.attempted
    assert (check.ice_connected_ms, check.channel_open_ms, check.duration_ms) == (
        recorded["ice_ms"], recorded["connected_ms"], recorded["duration_ms"])
    assert (check.sent, check.received) == (10, 10)
    assert check.rtt is not None and check.rtt.max == max(recorded["rtt_ms"])
    assert verdicts(session("events-v2-chromium-healthy.json"))["relay-data-path-ok"] == "ok"


@pytest.mark.parametrize(("step", "title"), [
    ("ice", "ICE checks never succeeded"), ("dtls", "DTLS did not complete"),
    ("channel", "the data channel did not open"), ("echo", "messages were lost")])
def test_a_failed_page_relay_check_names_its_step(step: str, title: str) -> None:
    document = fixture("events-v2-chromium-healthy.json")
    for event in document["events"]:
        if event["type"] == "relaycheck":
            event.update(ok=False, step=step, failure=None, received=0, rtt_ms=[])
    found = [v for v in evaluate(analysis(session("x.json", json.dumps(document).encode()),
                                          500.0, Requirement.EACH).evidence)
             if v.id == "relay-data-path-broken"]
    assert [v.severity.value for v in found] == ["fail"]
    assert title in found[0].title and f"step {step}" in found[0].detail


def test_a_page_relay_check_that_could_not_start_is_not_attempted() -> None:
    document = fixture("events-v2-chromium-healthy.json")
    for event in document["events"]:
        if event["type"] == "relaycheck":
            event.update(ok=False, step="setup", failure="NotSupportedError", received=0,
                         sent=0, rtt_ms=[])
    result = analysis(session("x.json", json.dumps(document).encode()), 500.0,
                      Requirement.EACH)
    [check] = result.evidence.relays
    assert not check.attempted and check.failure == "NotSupportedError"
    assert not [v for v in evaluate(result.evidence) if v.id.startswith("relay-data-path")]


def test_v1_log_does_not_accept_v2_records() -> None:
    """`outcome` and `relaycheck` belong to version 2: a version 1 log with one is refused."""
    document = {"format": "iceprobe-events", "version": 1, "events": [
        {"type": "config", "t": 1, "pc": "pc-1", "iceServers": [TURN]},
        {"type": "outcome", "t": 2, "pc": "pc-1", "url": TURN, "outcome": "deadline"}]}
    with pytest.raises(RecordingError, match="record 2: unknown type 'outcome'"):
        read(json.dumps(document).encode(), "v1.json")

