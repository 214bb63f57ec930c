"""`iceprobe analyze` on recordings of every browser format and Chrome era, written to match
what the browsers and libraries really write (tests/fixtures/recordings/README.md says what
each file shows and which sources were checked). No network."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from iceprobe.codes import match_text
from iceprobe.model import CandidateType, Requirement
from iceprobe.recordings import Analysis, RecordingError, Session, analysis, read
from iceprobe.rules import evaluate
from tests.schema import validated

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"
RECORDINGS = sorted(p.name for p in FIXTURES.iterdir()
                    if p.suffix in (".json", ".jsonl", ".txt", ".sdp")
                    and not p.name.startswith("truncated"))


def items(name: str, data: bytes | None = None) -> list[Session]:
    found = read(data if data is not None else (FIXTURES / name).read_bytes(), name)
    assert all(isinstance(i, Session) for i in found)
    return [i for i in found if isinstance(i, Session)]


def analysed(name: str) -> list[Analysis]:
    return [analysis(i, 500.0, Requirement.EACH) for i in items(name)]


def sessions(name: str, data: bytes | None = None) -> list[dict[str, str]]:
    """Verdict id -> severity for each PeerConnection (the worst severity per id)."""
    found = []
    for item in items(name, data):
        verdicts: dict[str, str] = {}
        for v in evaluate(analysis(item, 500.0, Requirement.EACH).evidence):
            verdicts.setdefault(v.id, v.severity.value)  # sorted most severe first
        found.append(verdicts)
    return found


def failing(verdicts: dict[str, str]) -> set[str]:
    return {k for k, v in verdicts.items() if v == "fail"}


# Chrome webrtc-internals, era 1 (up to ~M93)

def test_chrome_m90_camel_case_only_host_and_ice_failed() -> None:
    [found] = sessions("chrome-m90-only-host.json")
    assert failing(found) == {"only-host-candidates", "no-relay-candidates", "ice-failed",
                              "server-unreachable"}


def test_chrome_m90_states_seconds_resolution_and_old_timeout_text() -> None:
    [item] = items("chrome-m90-only-host.json")
    assert item.time_resolution_ms == 1000.0
    [result] = analysed("chrome-m90-only-host.json")
    assert result.evidence.recording is not None
    assert [(s.state, s.elapsed_ms) for s in result.evidence.recording.states
            if s.kind == "ice"] == [("checking", 1000.0), ("failed", 31000.0)]
    assert {c.protocol for c in result.gathered.host_candidates} == {"udp", "tcp"}
    # Older libwebrtc says "STUN allocate request timed out." for a binding timeout.
    assert [(e.error_text, e.cause.value, e.elapsed_ms) for e in result.gathered.errors] == [
        ("STUN allocate request timed out.", "timeout", 40000.0),
        ("TURN allocate request timed out.", "timeout", 40000.0)]


def test_old_stun_timeout_text_is_a_known_timeout_alias() -> None:
    info = match_text("STUN allocate request timed out.")
    assert info is not None and info.cause == "timeout"


# era 2 (~M94 to ~M141)

def test_chrome_m120_turn_401_beside_a_srflx_from_the_turn_server() -> None:
    [found] = sessions("chrome-m120-turn-401.json")
    assert failing(found) == {"turn-credentials-rejected", "no-relay-candidates"}
    # libwebrtc kept only the TURN server's srflx (the same address): not a failure of the
    # STUN server, which left no candidate and no error.
    assert found["srflx-from-another-server"] == "info"
    assert "server-no-candidate" not in found
    [result] = analysed("chrome-m120-turn-401.json")
    [srflx] = [c for c in result.gathered.candidates if c.type is CandidateType.SRFLX]
    assert srflx.url == "stun:turn.example.com:3478"
    [event] = result.gathered.errors
    assert (event.error_code, event.error_text, event.address) == (
        401, "Unauthorized", "192.168.1.x")
    assert event.port is not None
    assert result.source.page_url == "https://app.example.com/call?room=standup"


def test_chrome_m120_ipv6_701_beside_ipv4_srflx_is_harmless() -> None:
    [found] = sessions("chrome-m120-harmless-701.json")
    assert found["server-unreachable"] == "info"
    assert not failing(found)
    [result] = analysed("chrome-m120-harmless-701.json")
    [event] = result.gathered.errors
    assert (event.cause.value, event.address) == ("dns", "2001:db8:1:x:x:x:x:x")


def test_chrome_m120_mdns_hosts_are_info_and_relay_protocol_is_kept() -> None:
    [found] = sessions("chrome-m120-mdns.json")
    assert found["mdns-host-candidates"] == "info"
    assert not failing(found)
    [result] = analysed("chrome-m120-mdns.json")
    assert all(c.address.endswith(".local") for c in result.gathered.host_candidates)
    [relay] = [c for c in result.gathered.candidates if c.type is CandidateType.RELAY]
    assert (relay.relay_protocol, relay.url) == ("udp", "turn:turn.example.com:3478?transport=udp")


def test_empty_update_log_is_only_dump_incomplete() -> None:
    assert sessions("chrome-empty-updatelog.json") == [{"dump-incomplete": "warn"}]
    [result] = analysed("chrome-empty-updatelog.json")
    [verdict] = evaluate(result.evidence)
    assert "chrome://webrtc-internals before starting the call" in verdict.hint


def test_two_peer_connections_en_gb_times_and_no_url_suffix() -> None:
    healthy, failed = sessions("chrome-two-pcs.json")
    # ~M112 wrote no ", url:" yet: each candidate is tied to the one server it can be from.
    assert not failing(healthy) and healthy["all-candidates-gathered"] == "ok"
    assert failing(failed) == {"ice-failed", "server-unreachable", "only-host-candidates",
                               "no-relay-candidates"}
    first, second = analysed("chrome-two-pcs.json")
    assert second.source.page_url is not None
    assert second.source.page_url.startswith("https://widget.example.org/")
    assert first.gathered.started_at == "2023-04-18T14:03:04.000+00:00"  # 18/04/2023, day first


def test_stats_candidates_are_read_when_the_update_log_is_empty() -> None:
    [found] = sessions("chrome-m122-stats-only.json")
    assert found["dump-incomplete"] == "warn"  # no errors, no states: said once, plainly
    assert "candidate-errors-unknown" not in found
    assert failing(found) == {"no-relay-candidates", "server-no-candidate"}
    [result] = analysed("chrome-m122-stats-only.json")
    got = [(c.type.value, c.address, c.port, c.url) for c in result.gathered.candidates]
    assert got == [("host", "192.168.1.23", 54400, None),
                   ("srflx", "203.0.113.7", 61000, "stun:stun.example.com:3478")]


def test_stats_candidates_already_in_the_update_log_are_not_counted_twice() -> None:
    document = json.loads((FIXTURES / "chrome-m120-turn-401.json").read_bytes())
    stats_only = json.loads((FIXTURES / "chrome-m122-stats-only.json").read_bytes())
    [pc] = document["PeerConnections"].values()
    [other] = stats_only["PeerConnections"].values()
    pc["stats"] = other["stats"]  # the same host, 192.168.1.23:54400, and a second srflx
    [result] = [analysis(i, 500.0, Requirement.EACH) for i in items(
        "x", json.dumps(document).encode())]
    hosts = [(c.address, c.port) for c in result.gathered.host_candidates]
    assert hosts == [("192.168.1.23", 54400)]
    assert result.evidence.recording is not None
    assert not result.evidence.recording.log_missing


# era 3 (~M142 on)

def test_chrome_m142_json_values_relay_policy_and_failure() -> None:
    [found] = sessions("chrome-m142-ice-failed.json")
    assert failing(found) == {"ice-failed", "ice-policy-mismatch", "server-unreachable",
                              "no-relay-candidates"}
    [item] = items("chrome-m142-ice-failed.json")
    assert item.ice_transport_policy == "relay"
    assert item.ice_servers == ["turn:turn.example.com:443?transport=tcp"]
    [result] = analysed("chrome-m142-ice-failed.json")
    [error] = result.gathered.errors
    assert (error.cause.value, error.elapsed_ms) == ("timeout", 39800.3)


def test_chrome_m142_slow_relay_is_slow_turn_and_full_version_is_named() -> None:
    [found] = sessions("chrome-m142-slow-turn.json")
    assert found["slow-turn"] == "warn"
    assert "slow-server" not in found  # a recording's slowness is slow-turn, timed from gathering
    [result] = analysed("chrome-m142-slow-turn.json")
    [relay] = [c for c in result.gathered.candidates if c.type is CandidateType.RELAY]
    assert relay.elapsed_ms == 1200.0
    # UserAgent is frozen at 142.0.0.0; UserAgentData has the real version.
    assert result.source.browser is not None
    assert result.source.browser.startswith("Google Chrome 142.0.")
    assert "142.0.0.0" in result.source.browser


def test_chrome_failed_to_establish_connection_claims_no_cause_unless_it_was_connected(
        ) -> None:
    """Issue 15 item 1: this text used to become `refused` by keyword, even on turns:,
    where the certificate is the usual cause. Without a local port the connection never
    came up (refused or TLS: Chrome does not say); with one, the server closed it."""
    [result] = analysed("chrome-m156-tcp-tls-failed.json")
    causes = {e.url: e.cause.value for e in result.gathered.errors}
    assert causes == {"turn:turn.example.com:443?transport=tcp": "connect",
                      "turns:turn.example.com:5349?transport=tcp": "connect",
                      "turn:relay.example.com:3478?transport=tcp": "closed"}
    hints = {v.urls[0]: v.hint for v in evaluate(result.evidence)
             if v.id == "server-unreachable"}
    turns = hints["turns:turn.example.com:5349"]
    assert "Not certain" in turns and "certificate" in turns and "refused" in turns
    assert "Not certain" in hints["turn:turn.example.com:443?transport=tcp"]
    assert "Not certain" not in hints["turn:relay.example.com:3478?transport=tcp"]


# rtcstats

def test_rtcstats_js_numeric_codes_remote_candidates_and_delta_times() -> None:
    [found] = sessions("rtcstats-turn-timeout.txt")
    assert failing(found) == {"ice-failed", "server-unreachable", "no-relay-candidates"}
    [item] = items("rtcstats-turn-timeout.txt")
    assert item.id == "PC_0"  # the null-pcId lines (client facts, websocket) are no PC
    assert item.page_url == "https://app.example.com/call"
    [result] = analysed("rtcstats-turn-timeout.txt")
    # addIceCandidate (10) is the remote peer's candidate: not one of ours.
    assert [c.address for c in result.gathered.host_candidates] == [
        "57ecbfc8-746b-4a75-8d0a-a7d4cc621290.local"]
    assert [(e.url, e.elapsed_ms) for e in result.gathered.errors] == [
        ("turn:turn.example.com:3478?transport=udp", 39753.0),
        ("turn:turn.example.com:3478?transport=tcp", 39762.0)]
    assert result.evidence.recording is not None
    assert [(s.kind, s.state) for s in result.evidence.recording.states
            if s.state == "failed"] == [("ice", "failed"), ("connection", "failed")]
    # The first line's delta is absolute epoch ms: the dump's own start time, 2025-11-20.
    assert result.gathered.started_at is not None
    assert result.gathered.started_at.startswith("2025-11-20T")


def test_rtcstats_never_keeps_the_turn_username() -> None:
    done = run(str(FIXTURES / "rtcstats-turn-timeout.txt"), "--json")
    validated(done.stdout, "analyze")
    assert "alice" not in done.stdout


def test_rtcstats_chrome_export_quoted_states_and_page_from_create() -> None:
    [found] = sessions("rtcstats-healthy.txt")
    assert not failing(found) and found["all-candidates-gathered"] == "ok"
    [result] = analysed("rtcstats-healthy.txt")
    assert result.evidence.recording is not None
    assert [(s.kind, s.state) for s in result.evidence.recording.states][-2:] == [
        ("ice", "connected"), ("connection", "connected")]
    assert result.source.page_url == "https://app.example.com/call"
    assert result.source.browser == "Google Chrome 143 on Linux"
    assert len(result.gathered.candidates) == 3  # the addIceCandidate srflx is the peer's


def test_rtcstats_page_level_rows_of_chrome_156_make_no_phantom_session() -> None:
    """Issue 15 item 7: Chrome's export files getUserMedia under `"<rid>-0"`, an id no
    PeerConnection has; it used to become an empty session with a dump-incomplete warning."""
    [item] = items("rtcstats-chrome156-getusermedia.txt")
    assert item.id == "52-1"
    [found] = sessions("rtcstats-chrome156-getusermedia.txt")
    assert not failing(found) and "dump-incomplete" not in found
    done = run(str(FIXTURES / "rtcstats-chrome156-getusermedia.txt"), "--json")
    assert [d["source"]["session"] for d in json.loads(done.stdout)["sessions"]] == ["52-1"]


def test_rtcstats_dump_with_only_page_level_rows_has_no_peerconnection() -> None:
    lines = (FIXTURES / "rtcstats-chrome156-getusermedia.txt").read_text().splitlines()
    page_only = [line for line in lines if '"52-1"' not in line]
    assert any('"52-0"' in line for line in page_only)
    with pytest.raises(RecordingError, match="no PeerConnection"):
        items("x", "\n".join(page_only).encode())


def test_rtcstats_unknown_codes_are_ignored_not_guessed() -> None:
    lines = (FIXTURES / "rtcstats-turn-timeout.txt").read_text().splitlines()
    recoded = lines[:2] + [line.replace("[24,", "[99,", 1) for line in lines[2:]]
    [found] = sessions("x", "\n".join(recoded).encode())
    assert "ice-failed" in found  # connection state 25 still says failed
    [item] = items("x", "\n".join(recoded).encode())
    assert [s.kind for s in item.states if s.state == "failed"] == ["connection"]


# Firefox about:webrtc

def test_firefox_candidates_come_from_stats_not_raw_labels() -> None:
    [found] = sessions("firefox-relay.json")
    assert found["candidate-errors-unknown"] == "info"
    [result] = analysed("firefox-relay.json")
    got = [(c.type.value, c.address, c.url, c.relay_protocol) for c in result.gathered.candidates]
    assert got == [
        ("host", "192.168.1.23", None, None),
        ("srflx", "203.0.113.7", "stun:stun.example.com:3478", None),
        ("relay", "198.51.100.40", "turn:turn.example.com:3478?transport=udp", "udp")]
    # Only the TCP TURN URL yielded nothing, and Firefox does not say why.
    assert failing(found) == {"server-no-candidate"}
    assert result.source.page_url == "https://app.example.com/call?room=standup"
    assert result.evidence.recording is not None
    assert [s.state for s in result.evidence.recording.states] == ["connected"]


def test_firefox_only_host_and_failed_pairs() -> None:
    [found] = sessions("firefox-only-host.json")
    assert {"only-host-candidates", "no-relay-candidates", "ice-failed"} <= failing(found)
    [item] = items("firefox-only-host.json")
    assert item.turn_credentials is True and not item.errors_recorded


def test_firefox_turn_without_credentials_is_credentials_missing() -> None:
    document = json.loads((FIXTURES / "firefox-only-host.json").read_bytes())
    document["configuration"]["iceServers"][1]["credentialProvided"] = False
    [found] = sessions("x", json.dumps(document).encode())
    assert found["turn-credentials-missing"] == "fail"


def test_firefox_reports_in_a_list_read_like_one() -> None:
    one = (FIXTURES / "firefox-relay.json").read_bytes()
    wrapped = json.dumps({"reports": [json.loads(one), json.loads(one)]}).encode()
    assert sessions("x", wrapped) == sessions("firefox-relay.json") * 2


# iceprobe's own event log

def test_event_log_401_on_both_turn_transports() -> None:
    [found] = sessions("events-401.json")
    assert failing(found) == {"turn-credentials-rejected", "no-relay-candidates"}
    [result] = analysed("events-401.json")
    assert sorted(e.url for e in result.gathered.errors) == [
        "turn:turn.example.com:3478?transport=tcp", "turn:turn.example.com:3478?transport=udp"]


def test_event_log_healthy_with_turns_relay() -> None:
    [found] = sessions("events-healthy.jsonl")
    assert not failing(found) and found["all-candidates-gathered"] == "ok"
    [result] = analysed("events-healthy.jsonl")
    assert sorted(str(c.relay_protocol) for c in result.gathered.candidates
                  if c.type is CandidateType.RELAY) == ["tls", "udp"]


def test_event_log_unused_peer_connection_is_not_blamed_on_webrtc_internals() -> None:
    unused, failed = analysed("events-ice-failed.jsonl")
    [verdict] = evaluate(unused.evidence)
    assert verdict.id == "dump-incomplete" and "webrtc-internals" not in verdict.hint
    assert {v.id for v in evaluate(failed.evidence) if v.severity.value == "fail"} == {
        "ice-failed", "ice-policy-mismatch", "server-unreachable", "no-relay-candidates"}


# SDP and candidate lines

@pytest.mark.parametrize("name, kinds", [
    ("offer.sdp", ["host", "host", "host", "srflx", "relay"]),
    ("candidates.txt", ["host"] * 4 + ["srflx"] * 2)])
def test_sdp_and_candidate_lines_keep_every_candidate_in_the_json(name: str,
                                                                  kinds: list[str]) -> None:
    done = run(str(FIXTURES / name), "--json")
    [session] = validated(done.stdout, "analyze")["sessions"]
    # srflx and relay candidates name no server, yet the report lists them.
    assert [c["type"] for c in session["candidates"]] == kinds
    assert session["servers"] == []
    assert "candidate-errors-unknown" in {v["id"] for v in session["verdicts"]}


# every file

@pytest.mark.parametrize("name", RECORDINGS)
def test_every_fixture_reads_gzipped_and_fails_cleanly_when_truncated(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    assert sessions(name, gzip.compress(data)) == sessions(name)
    if name.endswith(".json"):
        with pytest.raises(RecordingError):
            read(data[: len(data) // 2], name)


def test_truncated_download_is_one_clear_line() -> None:
    with pytest.raises(RecordingError, match="webrtc-internals dump that is cut off"):
        read((FIXTURES / "truncated-chrome.json").read_bytes(), "x")
    done = run(str(FIXTURES / "truncated-chrome.json"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iceprobe", "analyze", *args],
                          capture_output=True, text=True, timeout=30)


def test_cli_table_has_a_header_per_peer_connection() -> None:
    done = run(str(FIXTURES / "chrome-two-pcs.json"))
    assert done.returncode == 1
    assert "PeerConnection 7-1" in done.stdout and "PeerConnection 7-2" in done.stdout
    assert "https://widget.example.org/" in done.stdout and "Chrome/112" in done.stdout
    assert "Timeline" in done.stdout and "ice failed" in done.stdout


def test_cli_json_lists_every_session_of_every_file() -> None:
    done = run(str(FIXTURES / "chrome-two-pcs.json"), str(FIXTURES / "firefox-relay.json"),
               str(FIXTURES / "rtcstats-healthy.txt"), "--json")
    document: dict[str, Any] = validated(done.stdout, "analyze")
    assert document["ok"] is False
    formats = [s["source"]["format"] for s in document["sessions"]]
    assert formats == ["chrome-webrtc-internals"] * 2 + ["firefox-about-webrtc", "rtcstats"]
    assert document["sessions"][2]["source"]["errors_recorded"] is False


def test_cli_healthy_recording_exits_zero() -> None:
    done = run(str(FIXTURES / "rtcstats-healthy.txt"), str(FIXTURES / "chrome-m120-mdns.json"))
    assert done.returncode == 0, done.stdout


def test_cli_ignore_lowers_a_recording_verdict() -> None:
    done = run(str(FIXTURES / "chrome-empty-updatelog.json"), "--ignore", "dump-incomplete",
               "--json")
    [session] = validated(done.stdout, "analyze")["sessions"]
    assert [v["severity"] for v in session["verdicts"]] == ["info"]
