"""examples/collect-ice-events.js, run in Node against a stand-in RTCPeerConnection that fires
the events a browser fires: its output must be an event log `iceprobe analyze` reads, and it
must never copy a credential."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from iceprobe.model import Requirement
from iceprobe.recordings import Session, analysis, read
from iceprobe.rules import evaluate

SNIPPET = Path(__file__).resolve().parents[2] / "examples" / "collect-ice-events.js"

HARNESS = r"""
class FakePeerConnection extends EventTarget {
  constructor(configuration) { super(); this.configuration = configuration;
    this.iceGatheringState = "new"; this.iceConnectionState = "new";
    this.connectionState = "new"; }
  static generateCertificate() { return "cert"; }
}
function fire(pc, type, fields) {
  const event = new Event(type); Object.assign(event, fields); pc.dispatchEvent(event);
}
function state(pc, property, type, value) { pc[property] = value; fire(pc, type, {}); }
globalThis.window = globalThis;
globalThis.RTCPeerConnection = FakePeerConnection;
globalThis.location = {origin: "https://app.example.com", pathname: "/call"};
Object.defineProperty(globalThis, "navigator", {value: {userAgent: "TestBrowser/1.0"}});
require(process.argv[2]);
const pc = new RTCPeerConnection({iceServers: [
  {urls: "stun:stun.example.com"},
  {urls: ["turn:turn.example.com:3478?transport=udp"], username: "alice",
   credential: "s3cret-Credential"}]});
if (!(pc instanceof FakePeerConnection) || RTCPeerConnection.generateCertificate() !== "cert")
  throw new Error("the wrapper changed the API");
state(pc, "iceGatheringState", "icegatheringstatechange", "gathering");
fire(pc, "icecandidate", {candidate: {candidate:
  "candidate:1 1 udp 2122260223 192.168.1.10 54321 typ host", url: null}});
fire(pc, "icecandidate", {candidate: {candidate:
  "candidate:2 1 udp 1686052607 203.0.113.5 61000 typ srflx raddr 192.168.1.10 rport 54321",
  url: "stun:stun.example.com"}});
fire(pc, "icecandidateerror", {url: "turn:turn.example.com:3478?transport=udp",
  address: "192.168.1.x", port: 54321, errorCode: 401, errorText: "Unauthorized"});
fire(pc, "icecandidate", {candidate: null});
state(pc, "iceGatheringState", "icegatheringstatechange", "complete");
state(pc, "iceConnectionState", "iceconnectionstatechange", "failed");
process.stdout.write(window.iceprobeEvents.dump());
"""


@pytest.fixture
def node() -> str:
    found = shutil.which("node") or shutil.which("nodejs")
    if found is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("node is needed to test examples/collect-ice-events.js "
                        "(scripts/test installs nodejs)")
        pytest.skip("node not installed (apt-get install nodejs)")
    return found


def test_snippet_output_is_an_event_log_analyze_reads(node: str, tmp_path: Path) -> None:
    harness = tmp_path / "harness.js"
    harness.write_text(HARNESS)
    done = subprocess.run([node, str(harness), str(SNIPPET)], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert "s3cret-Credential" not in done.stdout and "alice" not in done.stdout
    log = json.loads(done.stdout)
    assert log["format"] == "iceprobe-events" and log["version"] == 1
    [item] = read(done.stdout.encode(), "snippet")
    assert isinstance(item, Session)
    assert item.page_url == "https://app.example.com/call" and item.browser == "TestBrowser/1.0"
    assert item.ice_servers == ["stun:stun.example.com",
                                "turn:turn.example.com:3478?transport=udp"]
    verdicts = {v.id: v.severity.value
                for v in evaluate(analysis(item, 500.0, Requirement.EACH).evidence)}
    assert verdicts["turn-credentials-rejected"] == "fail"
    assert verdicts["ice-failed"] == "fail"
