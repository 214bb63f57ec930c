"""The relay engines benchmark (benchmarks/relay_engines.py) starts, measures every
contender and writes its report; its figures are not judged here.

The full run takes minutes and is not part of the test run: `--smoke` makes one short pass
of each contender (about 15 s) in a namespace of the benchmark's own, nested in this test's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import relay_engines
from benchmarks.run import BEGIN as RUN_BEGIN
from benchmarks.run import END as RUN_END
from tests.lab.netns import LabNetwork

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_the_options() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.relay_engines", "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    for option in ("--smoke", "--relay-threads", "--wait-load", "--results"):
        assert option in done.stdout


def test_results_are_appended_once_and_then_replaced(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    other = f"# Benchmark results\n\n{RUN_BEGIN}\nissue 8\n{RUN_END}\n\n## Analysis\nkept\n"
    results.write_text(other)
    relay_engines.write_results(results, "first")
    text = results.read_text()
    assert text.startswith(other.rstrip("\n"))
    assert text.count(relay_engines.HEADING) == 1 and "first" in text
    results.write_text(text + "\nhand-written analysis\n")
    relay_engines.write_results(results, "second")
    text = results.read_text()
    assert "first" not in text and "second" in text
    assert text.count(relay_engines.HEADING) == 1
    assert text.endswith("hand-written analysis\n") and "issue 8" in text


@pytest.mark.lab
def test_smoke_run_measures_every_contender(lab: LabNetwork) -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.relay_engines", "--smoke"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "| coturn --relay-threads |" in out
    rows = {
        "iceprobe engine": r"\| relay-relay \| 120 \| [\d,]+ round trips/s \|",
        "iceprobe aiortc path": r"\| SCTP stream \| – \| [\d.]+ ",
        "turnutils_uclient -y": r"\| relay-relay \| 120 \| [\d,]+ messages/s",
        "aioice create_turn_endpoint": r"\| relay-relay \| 1200 \| [\d,]+ round trips/s \|",
    }
    for name, figure in rows.items():
        lines = [line for line in out.splitlines() if line.startswith(f"| {name}")]
        assert lines, name
        assert any(re.search(figure, line) for line in lines), (name, lines)
    for target in ("≥ 10 × the aiortc path's", "≥ 5 × turnutils_uclient's",
                   "RTT resolution ≤ 10 µs", "client CPU < 1 core at the knee"):
        assert target in out, target
    assert "Targets met:" in out
    assert relay_engines.BEGIN not in out  # --smoke writes no results
