"""`iceprobe relay`'s TURN data-plane options: bad values are one line on stderr and exit 2,
before any probe (the URL names a closed port on this test's own loopback)."""

from __future__ import annotations

import subprocess
import sys

import pytest

TURN = ["--turn", "turn:127.0.0.1:9", "-u", "alice", "-p", "secret"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iceprobe", "relay", *TURN, *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, option", [
    (["--rate", "0"], "--rate"), (["--rate", "nan"], "--rate"),
    (["--rate", "100001"], "--rate"), (["--flows", "0"], "--flows"),
    (["--flows", "65"], "--flows"), (["--topology", "mesh"], "--topology"),
    (["--webrtc", "--no-webrtc", "--flows", "x"], "--flows")])
def test_a_bad_data_plane_option_is_one_line_and_exit_2(args: list[str], option: str) -> None:
    done = run(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("iceprobe: error: "), done.stderr
    assert option in lines[0]
    assert "secret" not in done.stderr
