"""The benchmark (benchmarks/run.py) starts and measures; its figures are not judged here.

The full benchmark takes minutes and is not part of the test run: `--smoke` runs each quick
measurement once in a namespace of the benchmark's own (nested in this test's), which proves
that the lab, the contenders' command lines and their checks, and the report all work.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from aioice import stun

from benchmarks import lab as bench_lab
from benchmarks.run import BEGIN, END, write_results
from tests.lab.netns import LabNetwork

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_the_modes() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.run", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    for option in ("--runs", "--smoke", "--fast", "--results"):
        assert option in done.stdout


@pytest.mark.parametrize("peer", [("198.18.0.10", 40001), ("fd00:b::10", 3478)])
def test_the_stun_responder_answers_a_binding_with_the_peer_address(
        peer: tuple[str, int]) -> None:
    request = stun.Message(message_method=stun.Method.BINDING,
                           message_class=stun.Class.REQUEST)
    reply = bench_lab.binding_reply(bytes(request), peer)
    assert reply is not None
    response = stun.parse_message(reply)
    assert response.message_class is stun.Class.RESPONSE
    assert response.transaction_id == request.transaction_id
    assert response.attributes["XOR-MAPPED-ADDRESS"] == peer


def test_the_dns_responder_says_nxdomain_to_the_same_question() -> None:
    query = bytes.fromhex("abcd01000001000000000000") + b"\x03foo\x04test\x00\x00\x01\x00\x01"
    reply = bench_lab.nxdomain_reply(query, ("127.0.0.1", 5353))
    assert reply is not None
    assert reply[:2] == query[:2] and reply[12:] == query[12:]
    assert reply[3] & 0x0F == 3 and reply[2] & 0x80  # RCODE NXDOMAIN, QR set
    assert bench_lab.binding_reply(query, ("127.0.0.1", 1)) is None  # not STUN: no answer


def test_results_keep_the_hand_written_analysis(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    write_results(results, "first")
    assert BEGIN in results.read_text() and "first" in results.read_text()
    results.write_text(f"# intro\n\n{BEGIN}\nfirst\n{END}\n\n## Analysis\nkept\n")
    write_results(results, "second")
    assert results.read_text() == f"# intro\n\n{BEGIN}\nsecond\n{END}\n\n## Analysis\nkept\n"


@pytest.mark.lab
def test_smoke_run_measures_every_section(lab: LabNetwork) -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.run", "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for needle in ("| 1 healthy |", "| 2 dead |", "| 3 scale |", "| 4 start-up |",
                   "Targets met:", "-X importtime"):
        assert needle in done.stdout, needle
