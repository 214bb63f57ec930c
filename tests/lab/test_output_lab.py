"""`--output FILE` on a real run that is interrupted (issue 15 item 13): the results so far
land in FILE whole, stdout stays empty, and no temporary file is left behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.netns import LabNetwork
from tests.lab.servers import SilentServer

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "table"])
def test_an_interrupted_run_writes_its_results_so_far_to_the_file_whole(
        lab: LabNetwork, silent_server: SilentServer, tmp_path: Path, as_json: bool) -> None:
    target = tmp_path / "report.out"
    target.write_text("the previous report\n")
    silent = f"stun:{lab.ipv4}:{silent_server.port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "iceprobe", "gather", "--stun", silent, "--timeout", "30",
         "--output", str(target), *(["--json"] if as_json else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    silent_server.sock.settimeout(15)
    silent_server.sock.recvfrom(2048)  # probing now
    assert target.read_text() == "the previous report\n"  # untouched while probing
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)

    assert process.returncode == 130, err
    assert out == ""
    assert "results so far" in err
    text = target.read_text()
    if as_json:
        document = json.loads(text)
        assert document["interrupted"] is True
        assert [s["url"] for s in document["servers"]] == [silent]
    else:
        assert "INTERRUPTED" in text and silent in text
    assert [p.name for p in tmp_path.iterdir()] == ["report.out"]


def test_a_killed_run_leaves_the_previous_file_and_no_temporary(
        lab: LabNetwork, silent_server: SilentServer, tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("the previous report\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "iceprobe", "gather", "--stun",
         f"stun:{lab.ipv4}:{silent_server.port}", "--timeout", "30", "--json", "-o",
         str(target)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    silent_server.sock.settimeout(15)
    try:
        silent_server.sock.recvfrom(2048)
    except TimeoutError:
        pytest.fail("iceprobe never probed the silent server")
    process.kill()
    process.wait(timeout=10)
    assert target.read_text() == "the previous report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
