"""The README's first command runs as written (inside the lab network)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.lab.netns import LabNetwork

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_shows_a_healthy_run_then_a_401(lab: LabNetwork) -> None:
    done = subprocess.run([str(ROOT / "examples" / "quickstart.sh")], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"})
    assert done.returncode == 0, done.stdout + done.stderr
    healthy, wrong = done.stdout.split("wrong TURN password")
    assert "relay" in healthy and "PASS" in healthy
    assert "401" in wrong and "FAIL" in wrong
    assert "demo-password" not in done.stdout + done.stderr
