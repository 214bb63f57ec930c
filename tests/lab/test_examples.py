"""The README's commands run as written (inside the lab network): the quickstart, and each
example that needs a server, against a coturn on 127.0.0.1 as `examples/quickstart.sh serve`
starts one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs import Example, readme_examples
from tests.lab.netns import LabNetwork
from tests.lab.servers import Coturn, start_coturn

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


#: The README's examples talk to `examples/quickstart.sh serve`'s coturn.
README_PORT, README_USER, README_PASSWORD = 34780, "demo", "demo-password"


@pytest.fixture
def readme_coturn(lab: LabNetwork) -> Iterator[Coturn]:
    """A coturn on 127.0.0.1:34780 with the README's user, inside the lab's namespace (so the
    fixed port collides with nothing outside it)."""
    server = start_coturn("127.0.0.1", user=README_USER, password=README_PASSWORD,
                          port=README_PORT)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("example", [e for e in readme_examples() if e.needs_server],
                         ids=lambda e: e.line[:70])
def test_readme_example_gives_its_pasted_output(readme_coturn: Coturn,
                                                example: Example) -> None:
    done = subprocess.run([sys.executable, "-m", "iceprobe", *example.args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "NO_COLOR": "1", "COLUMNS": "130",
                               **example.environment})
    assert done.returncode == example.expected_exit, done.stdout + done.stderr
    for verdict in example.verdict_ids:
        assert f"[{verdict}]" in done.stdout, verdict
    headline = "PASS" if example.expected_exit == 0 else "FAIL"
    assert any(line.startswith(headline) for line in done.stdout.splitlines())
    assert README_PASSWORD not in done.stdout + done.stderr


def test_readme_examples_that_need_a_server_are_there() -> None:
    commands = {e.args[0] for e in readme_examples() if e.needs_server}
    assert commands == {"gather", "relay", "check"}
