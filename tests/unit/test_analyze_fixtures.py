"""`iceprobe analyze` on hand-written recordings of every browser format and Chrome era
(tests/fixtures/browser/README.md says what each one shows). No network."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from iceprobe.model import CandidateType, Requirement
from iceprobe.recordings import RecordingError, Session, analysis, read
from iceprobe.rules import evaluate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "browser"


def sessions(name: str, data: bytes | None = None) -> list[dict[str, str]]:
    """Verdict id -> severity for each PeerConnection (the worst severity per id)."""
    items = read(data if data is not None else (FIXTURES / name).read_bytes(), name)
    found = []
    for item in items:
        verdicts: dict[str, str] = {}
        for v in evaluate(analysis(item, 500.0, Requirement.EACH).evidence):
            verdicts.setdefault(v.id, v.severity.value)  # sorted most severe first
        found.append(verdicts)
    return found


def failing(verdicts: dict[str, str]) -> set[str]:
    return {k for k, v in verdicts.items() if v == "fail"}


def test_chrome_m90_camel_case_only_host_and_ice_failed() -> None:
    [found] = sessions("chrome-m90-only-host.json")
    assert {"only-host-candidates", "no-relay-candidates", "ice-failed"} <= failing(found)


def test_chrome_m90_states_and_seconds_resolution() -> None:
    [item] = read((FIXTURES / "chrome-m90-only-host.json").read_bytes(), "x")
    assert isinstance(item, Session)
    assert [s.state for s in item.states if s.kind == "ice"] == ["checking", "failed"]
    assert item.time_resolution_ms == 1000.0
    evidence = analysis(item, 500.0, Requirement.EACH).evidence
    assert evidence.recording is not None
    assert [s.elapsed_ms for s in evidence.recording.states if s.kind == "ice"] == [
        1000.0, 31000.0]
    protocols = {c.protocol for c in evidence.host_candidates}
    assert protocols == {"udp", "tcp"}


def test_chrome_m120_turn_401_with_srflx_is_credentials_rejected() -> None:
    [found] = sessions("chrome-m120-turn-401.json")
    assert failing(found) == {"turn-credentials-rejected", "no-relay-candidates"}
    [item] = read((FIXTURES / "chrome-m120-turn-401.json").read_bytes(), "x")
    gathered = analysis(item, 500.0, Requirement.EACH).gathered
    # The TURN server used as a STUN server gave a srflx under its stun: URL, as Chrome does.
    urls = {c.url for c in gathered.candidates if c.type is CandidateType.SRFLX}
    assert urls == {"stun:stun.example.com:3478", "stun:turn.example.com:3478"}
    [event] = gathered.errors
    assert (event.error_code, event.address, event.port) == (401, "192.168.1.x", 54400)


def test_chrome_m120_ipv6_701_beside_ipv4_srflx_is_harmless() -> None:
    [found] = sessions("chrome-m120-harmless-701.json")
    assert found["server-unreachable"] == "info"
    assert not failing(found)


def test_chrome_m120_mdns_hosts_are_info_and_relay_protocol_is_kept() -> None:
    [found] = sessions("chrome-m120-mdns.json")
    assert found["mdns-host-candidates"] == "info"
    assert not failing(found)
    [item] = read((FIXTURES / "chrome-m120-mdns.json").read_bytes(), "x")
    gathered = analysis(item, 500.0, Requirement.EACH).gathered
    [relay] = [c for c in gathered.candidates if c.type is CandidateType.RELAY]
    assert relay.relay_protocol == "udp"


def test_chrome_m142_json_values_relay_policy_and_failure() -> None:
    [found] = sessions("chrome-m142-ice-failed.json")
    assert {"ice-failed", "ice-policy-mismatch", "server-unreachable"} <= failing(found)
    [item] = read((FIXTURES / "chrome-m142-ice-failed.json").read_bytes(), "x")
    assert isinstance(item, Session)
    assert item.ice_transport_policy == "relay"
    assert item.ice_servers == ["turn:turn.example.com:443?transport=tcp"]
    [error] = analysis(item, 500.0, Requirement.EACH).gathered.errors
    assert error.cause.value == "timeout" and error.elapsed_ms == 39800.0


def test_chrome_m142_slow_relay_is_slow_turn() -> None:
    [found] = sessions("chrome-m142-slow-turn.json")
    assert found["slow-turn"] == "warn"
    assert "slow-server" not in found  # a recording's slowness is slow-turn, timed from gathering


def test_empty_update_log_is_only_dump_incomplete() -> None:
    assert sessions("chrome-empty-updatelog.json") == [{"dump-incomplete": "warn"}]


def test_two_peer_connections_are_judged_apart() -> None:
    healthy, failed = sessions("chrome-two-pcs.json")
    assert not failing(healthy) and healthy["all-candidates-gathered"] == "ok"
    assert {"ice-failed", "server-unreachable", "only-host-candidates"} <= failing(failed)


def test_rtcstats_create_events_and_delta_times() -> None:
    [found] = sessions("rtcstats-turn-timeout.txt")
    assert {"ice-failed", "server-unreachable", "no-relay-candidates"} <= failing(found)
    [item] = read((FIXTURES / "rtcstats-turn-timeout.txt").read_bytes(), "x")
    evidence = analysis(item, 500.0, Requirement.EACH).evidence
    [error] = [e for r in evidence.results for e in r.errors]
    assert error.error_text == "TURN allocate request timed out."
    assert error.elapsed_ms == 39798.0  # deltas summed, from gathering start
    assert isinstance(item, Session) and item.page_url == "https://meet.example.com/room/42"


def test_firefox_report_without_candidate_errors() -> None:
    [found] = sessions("firefox-relay.json")
    assert found["candidate-errors-unknown"] == "info"
    assert not failing(found)
    [only_host] = sessions("firefox-only-host.json")
    assert {"only-host-candidates", "no-relay-candidates"} <= failing(only_host)
    [item] = read((FIXTURES / "firefox-relay.json").read_bytes(), "x")
    assert isinstance(item, Session)
    assert item.turn_credentials is True and item.page_url == "https://meet.example.com/room/42"


def test_firefox_turn_without_credentials_is_credentials_missing() -> None:
    document = json.loads((FIXTURES / "firefox-only-host.json").read_bytes())
    document["reports"][0]["configuration"]["iceServers"][1]["credentialProvided"] = False
    [found] = sessions("x", json.dumps(document).encode())
    assert found["turn-credentials-missing"] == "fail"


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir()
                                        if p.suffix in (".json", ".txt")))
def test_every_fixture_reads_gzipped_and_fails_cleanly_when_truncated(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    assert sessions(name, gzip.compress(data)) == sessions(name)
    with pytest.raises(RecordingError):
        read(data[: len(data) // 2] if name.endswith(".json") else data[:40], name)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iceprobe", "analyze", *args],
                          capture_output=True, text=True, timeout=30)


def test_cli_table_has_a_header_per_peer_connection() -> None:
    done = run(str(FIXTURES / "chrome-two-pcs.json"))
    assert done.returncode == 1
    assert done.stdout.count("PeerConnection 4242-") == 2
    assert "https://meet.example.com/room/42" in done.stdout and "Chrome/131" in done.stdout
    assert "Timeline" in done.stdout and "ice failed" in done.stdout


def test_cli_json_lists_every_session_of_every_file() -> None:
    done = run(str(FIXTURES / "chrome-two-pcs.json"), str(FIXTURES / "firefox-relay.json"),
               "--json")
    document: dict[str, Any] = json.loads(done.stdout)
    assert document["ok"] is False
    formats = [s["source"]["format"] for s in document["sessions"]]
    assert formats == ["chrome-webrtc-internals"] * 2 + ["firefox-about-webrtc"]
    assert document["sessions"][2]["source"]["errors_recorded"] is False


def test_cli_ignore_lowers_a_recording_verdict() -> None:
    done = run(str(FIXTURES / "chrome-empty-updatelog.json"), "--ignore", "dump-incomplete",
               "--json")
    [session] = json.loads(done.stdout)["sessions"]
    assert [v["severity"] for v in session["verdicts"]] == ["info"]


def test_rtcstats_numeric_method_codes_are_recognised_by_their_values() -> None:
    lines = (FIXTURES / "rtcstats-turn-timeout.txt").read_text().splitlines()
    coded = lines[:2]
    for number, line in enumerate(lines[2:]):
        entry = json.loads(line)
        entry[0] = 100 + number  # an unknown per-version code for every method
        coded.append(json.dumps(entry))
    assert sessions("coded", "\n".join(coded).encode()) == sessions(
        "rtcstats-turn-timeout.txt")
