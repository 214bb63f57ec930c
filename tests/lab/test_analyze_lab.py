"""A report `gather --json` saved in the lab, analysed again: the same verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.lab.netns import MISSING_NAME, LabNetwork
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn, free_port
from tests.schema import validated

pytestmark = pytest.mark.lab

StartCoturn = Callable[..., Coturn]


def iceprobe(*args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "iceprobe", *args, "--json"],
                          capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, validated(done.stdout, "analyze" if args[0] == "analyze" else "gather")


def verdicts(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((v["id"], v["severity"], v["title"]) for v in document["verdicts"])


@pytest.mark.parametrize("password, extra", [
    (LAB_PASSWORD, ()),                       # healthy STUN + TURN
    ("wrong-password", ()),                   # 401
    (LAB_PASSWORD, ("closed",)),              # a closed port: 701 unreachable
    (LAB_PASSWORD, ("nxdomain",)),            # a name that does not resolve: 701 dns
])
def test_analysing_a_saved_report_gives_the_same_verdicts(
        lab: LabNetwork, coturn: StartCoturn, tmp_path: Path, password: str,
        extra: tuple[str, ...]) -> None:
    server = coturn()
    args = ["gather", "--stun", server.url("stun"), "--turn", server.url("turn"),
            "-u", LAB_USER, "-p", password, "--timeout", "2"]
    if "closed" in extra:
        args += ["--stun", f"stun:{lab.ipv4}:{free_port()}"]
    if "nxdomain" in extra:
        args += ["--stun", f"stun:{MISSING_NAME}"]
    code, gathered = iceprobe(*args)
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(gathered))
    analysed_code, analysed = iceprobe("analyze", str(saved))
    assert analysed_code == code
    [session] = analysed["sessions"]
    assert session["source"]["format"] == "iceprobe-report"
    assert verdicts(session) == verdicts(gathered)
    assert session["candidates"] == gathered["candidates"]
    assert session["errors"] == gathered["errors"]
