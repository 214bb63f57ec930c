"""`iceprobe analyze` on inputs built in the test: format detection, unreadable input, and
the event-log and SDP readers. No network. (The fixtures of every browser format are in
test_analyze_fixtures.py.)"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from iceprobe.model import CandidateType, Cause, Requirement
from iceprobe.recordings import RecordingError, Session, analysis, read
from iceprobe.recordings.candidates import parse_candidate_line
from iceprobe.rules import evaluate
from tests.schema import validated

T0 = 1_764_330_000_000


def record(kind: str, dt: int, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "t": T0 + dt, "pc": fields.pop("pc", "pc-1"), **fields}


def event_log(*records: dict[str, Any]) -> bytes:
    return json.dumps({"format": "iceprobe-events", "version": 1,
                       "events": list(records)}).encode()


CONFIG = record("config", 0, iceServers=["stun:stun.example.com",
                                         "turn:turn.example.com:3478?transport=udp"],
                iceTransportPolicy="all", page="https://app.example.com/call",
                userAgent="Mozilla/5.0 Chrome/131")
HOST = "candidate:1 1 udp 2122260223 192.168.1.10 54321 typ host generation 0"
SRFLX = "candidate:2 1 udp 1686052607 203.0.113.5 61000 typ srflx raddr 192.168.1.10 rport 54321"
RELAY = ("candidate:3 1 udp 41885439 198.51.100.7 50010 typ relay raddr 203.0.113.5 "
         "rport 61000")


def judge(data: bytes) -> dict[str, str]:
    [item] = read(data, "test")
    found = analysis(item, 500.0, Requirement.EACH)
    return {v.id: v.severity.value for v in evaluate(found.evidence)}


def test_candidate_lines_parse_with_or_without_prefixes() -> None:
    for text in (SRFLX, "a=" + SRFLX, SRFLX.removeprefix("candidate:")):
        line = parse_candidate_line(text)
        assert line is not None
        assert (line.type, line.address, line.port) == ("srflx", "203.0.113.5", 61000)
        assert (line.related_address, line.related_port) == ("192.168.1.10", 54321)
    assert parse_candidate_line("candidate:1 1 udp x 1.2.3.4 5 typ host") is None
    assert parse_candidate_line("a=ice-ufrag:abcd") is None
    mdns = parse_candidate_line("candidate:9 1 udp 2122260223 0b4c-11.local 5000 typ host")
    assert mdns is not None and mdns.address == "0b4c-11.local"


def test_event_log_with_a_401_judges_like_gather() -> None:
    found = judge(event_log(
        CONFIG, record("icegatheringstatechange", 5, state="gathering"),
        record("icecandidate", 6, candidate=HOST, url=None),
        record("icecandidate", 40, candidate=SRFLX, url="stun:stun.example.com"),
        record("icecandidateerror", 60, url="turn:turn.example.com:3478?transport=udp",
               address="192.168.1.x", port=54321, errorCode=401, errorText="Unauthorized")))
    assert found["turn-credentials-rejected"] == "fail"
    assert found["no-relay-candidates"] == "fail"
    assert "only-host-candidates" not in found


def test_event_log_healthy_passes_and_slow_relay_is_slow_turn() -> None:
    healthy = [CONFIG, record("icegatheringstatechange", 0, state="gathering"),
               record("icecandidate", 2, candidate=HOST),
               record("icecandidate", 30, candidate=SRFLX, url="stun:stun.example.com"),
               record("icecandidate", 60, candidate=RELAY,
                      url="turn:turn.example.com:3478?transport=udp", relayProtocol="udp"),
               record("iceconnectionstatechange", 90, state="connected")]
    found = judge(event_log(*healthy))
    assert found["all-candidates-gathered"] == "ok"
    assert not [v for v in found.values() if v == "fail"]
    slow = [*healthy[:4], record("icecandidate", 1200, candidate=RELAY,
                                 url="turn:turn.example.com:3478?transport=udp")]
    assert judge(event_log(*slow))["slow-turn"] == "warn"


def test_event_log_jsonl_with_two_peer_connections() -> None:
    lines = [{"format": "iceprobe-events", "version": 1}, CONFIG,
             record("icecandidate", 2, candidate=HOST),
             record("config", 3, pc="pc-2", iceServers=[], iceTransportPolicy="relay"),
             record("iceconnectionstatechange", 9, pc="pc-2", state="failed")]
    items = read("\n".join(json.dumps(line) for line in lines).encode(), "log.jsonl")
    assert [i.id for i in items if isinstance(i, Session)] == ["pc-1", "pc-2"]


def test_relay_policy_without_relay_is_a_policy_mismatch() -> None:
    config = {**CONFIG, "iceTransportPolicy": "relay"}
    found = judge(event_log(
        config, record("icecandidateerror", 40, url="turn:turn.example.com:3478?transport=udp",
                       address=None, port=None, errorCode=701,
                       errorText="TURN allocate request timed out."),
        record("iceconnectionstatechange", 100, state="failed")))
    assert found["ice-policy-mismatch"] == "fail"
    assert found["ice-failed"] == "fail"
    assert found["server-unreachable"] == "fail"


def test_browser_701_texts_map_to_causes() -> None:
    texts = {"STUN host lookup received error.": Cause.DNS,
             "TURN host lookup received error.": Cause.DNS,
             "Failed to create TURN client socket.": Cause.SOCKET,
             "TURN allocate request timed out.": Cause.TIMEOUT,
             "STUN binding request timed out.": Cause.TIMEOUT}
    for text, cause in texts.items():
        [item] = read(event_log(CONFIG, record(
            "icecandidateerror", 5, url="stun:stun.example.com", address="[2001:db8:x:x:x:x:x:x]",
            port=5000, errorCode=701, errorText=text)), "t")
        [event] = analysis(item, 500.0, Requirement.EACH).gathered.errors
        assert event.cause is cause, text


def test_harmless_ipv6_701_next_to_ipv4_srflx() -> None:
    found = judge(event_log(
        CONFIG, record("icecandidate", 2, candidate=HOST),
        record("icecandidate", 30, candidate=SRFLX, url="stun:stun.example.com"),
        record("icecandidate", 60, candidate=RELAY,
               url="turn:turn.example.com:3478?transport=udp"),
        record("icecandidateerror", 50, url="stun:stun.example.com",
               address="[2001:db8:x:x:x:x:x:x]", port=5001, errorCode=701,
               errorText="STUN host lookup received error.")))
    assert found["server-unreachable"] == "info"
    assert "fail" not in found.values()


def test_sdp_candidates_without_servers() -> None:
    sdp = ("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nm=application 9 UDP/DTLS/SCTP "
           f"webrtc-datachannel\r\na={HOST}\r\na={SRFLX}\r\na=end-of-candidates\r\n")
    [item] = read(sdp.encode(), "offer.sdp")
    found = analysis(item, 500.0, Requirement.EACH)
    assert [c.type for c in found.gathered.host_candidates] == [CandidateType.HOST]
    assert [c.type for c in found.evidence.unattributed] == [CandidateType.SRFLX]
    verdicts = {v.id: v.severity.value for v in evaluate(found.evidence)}
    assert verdicts == {"candidate-errors-unknown": "info"}
    host_only = judge(f"{HOST}\n".encode())
    assert host_only["only-host-candidates"] == "fail"


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"\x00\x01\x02\xff\xfe garbage", "binary"),
    (b'{"PeerConnections": {"1-1": {"updateLog": [',
     "chrome://webrtc-internals dump that is cut off"),
    (b'{"hello": 1}', "not a recording iceprobe knows"),
    (b"just some words", "not a format iceprobe reads"),
    (gzip.compress(b'{"PeerConnections": {}}')[:-8], "gzip"),
    (b'{"format": "iceprobe-events", "version": 2, "events": []}', "version 2"),
    (b'{"format": "iceprobe-events", "version": 1, "events": [{"type": "boom"}]}',
     "unknown type 'boom'"),
    (b'{"format": "iceprobe-events", "version": 1, "events": [{"type": "icecandidateerror",'
     b' "url": "stun:x", "errorCode": "701"}]}', "errorCode must be a number"),
    (b'{"PeerConnections": {}}', "no PeerConnection"),
    (b"RTCStatsDump\nnot json\n", "line 2"),
    (b"a=candidate:1 1 udp 1 1.2.3.4 5 typ host\na=candidate:broken\n", "line 2"),
])
def test_unreadable_input_is_one_clear_error(data: bytes, words: str) -> None:
    with pytest.raises(RecordingError) as caught:
        read(data, "x")
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_gzip_is_detected_from_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "dump.txt"
    path.write_bytes(gzip.compress(event_log(CONFIG, record("icecandidate", 1,
                                                            candidate=HOST))))
    [item] = read(path.read_bytes(), str(path))
    assert isinstance(item, Session) and len(item.candidates) == 1


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "iceprobe", "analyze", *args],
                          input=stdin, capture_output=True, timeout=30)


def test_cli_reads_stdin_and_exits_by_verdicts() -> None:
    done = run("-", "--json", stdin=event_log(
        CONFIG, record("icecandidate", 2, candidate=HOST),
        record("icecandidate", 30, candidate=SRFLX, url="stun:stun.example.com"),
        record("icecandidate", 60, candidate=RELAY,
               url="turn:turn.example.com:3478?transport=udp")))
    assert done.returncode == 0, done.stderr
    document = validated(done.stdout, "analyze")
    [session] = document["sessions"]
    assert session["source"]["file"] == "stdin"
    assert session["source"]["page_url"] == "https://app.example.com/call"
    assert document["ok"] is True


@pytest.mark.parametrize("args, stdin, words", [
    (["/nonexistent/dump.json"], b"", "No such file"),
    (["-"], b"\x89PNG\r\n\x1a\n\x00\x00", "binary data"),
    (["-"], b'{"PeerConnections": {"1": {"updateLog": [{"type"', "cut off"),
    ([], b"", "FILE"),
])
def test_cli_unreadable_input_is_one_line_and_exit_2(args: list[str], stdin: bytes,
                                                     words: str) -> None:
    done = run(*args, stdin=stdin)
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("iceprobe: error: ")
    assert words in lines[0]
    assert done.stdout == b""


def test_redact_hides_addresses_and_page(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    path.write_bytes(event_log(CONFIG, record("icecandidate", 2, candidate=HOST),
                               record("icecandidate", 30, candidate=SRFLX,
                                      url="stun:stun.example.com")))
    done = run(str(path), "--redact=all", "--json")
    text = done.stdout.decode()
    validated(text, "analyze")
    for secret in ("192.168.1.10", "203.0.113.5", "app.example.com", "stun.example.com"):
        assert secret not in text


def test_analyze_imports_neither_aioice_nor_aiortc(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    path.write_bytes(event_log(CONFIG, record("icecandidate", 2, candidate=HOST)))
    code = ("import sys\nfrom iceprobe.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('aioice', 'aiortc')))\n")
    done = subprocess.run([sys.executable, "-c", code, "analyze", str(path)],
                          capture_output=True, text=True, timeout=30)
    assert "PeerConnection pc-1" in done.stdout
    assert "HEAVY []" in done.stdout
