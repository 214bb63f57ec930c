"""A machine with no usable interface at all (issue 16 item 9): iceprobe runs in a network
namespace of its own that has only a loopback interface, so it has no host candidate and no
address to reach any server from; nothing is sent anywhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.lab.netns import LabNetwork
from tests.schema import validated

pytestmark = pytest.mark.lab


def test_no_interface_at_all_says_no_candidates_not_only_host_candidates(
        lab: LabNetwork) -> None:
    unshare = shutil.which("unshare")
    assert unshare is not None, "unshare (util-linux) is needed for this lab test"
    done = subprocess.run(
        [unshare, "-n", sys.executable, "-m", "iceprobe", "gather", "--stun",
         f"stun:{lab.ipv4}:3478", "--timeout", "1", "--json"],
        capture_output=True, text=True, timeout=30, env=os.environ.copy())
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1, done.stderr
    document = validated(done.stdout, "gather")
    assert document["candidates"] == []
    found = {v["id"]: v for v in document["verdicts"]}
    assert "only-host-candidates" not in found
    assert found["no-host-candidates"]["severity"] == "fail"
    assert found["no-host-candidates"]["title"] == "No candidates at all"
    assert [e["cause"] for e in document["errors"]] == ["socket"]
