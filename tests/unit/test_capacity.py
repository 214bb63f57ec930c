"""`iceprobe capacity`'s pure parts: the percentiles, the exit code, the table and the JSON
document (valid against its schema), and the refusal of more than 100 allocations."""

from __future__ import annotations

import copy
import io
import subprocess
import sys

import pytest
from rich.console import Console

from iceprobe.capacity_model import (
    MAX_ALLOCATIONS,
    CapacityError,
    CapacityResult,
    percentile,
)
from iceprobe.cli import capacity as capacity_cli
from iceprobe.constants import Cause
from iceprobe.render.capacity import headline, render_capacity_table
from iceprobe.render.capacity_json import capacity_document, render_capacity_json
from tests.schema import errors, validated


def result(latencies: tuple[float, ...] = (1.0, 2.0, 3.0), error: CapacityError | None = None,
           released: int | None = None, asked: int = 3, seconds: float = 0.5,
           interrupted: bool = False) -> CapacityResult:
    return CapacityResult(
        url="turn:198.18.0.10:3478", server_address="198.18.0.10",
        started_at="2026-12-01T10:00:00.000+00:00", duration_ms=600.0, max_allocations=asked,
        allocate_ms=latencies, allocating_seconds=seconds, first_error=error,
        released=len(latencies) if released is None else released, interrupted=interrupted)


QUOTA = CapacityError(486, "Allocation Quota Reached", Cause.RESPONSE, 10)


# --- percentiles ---------------------------------------------------------------------------

def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([7.0], 0.99) == 7.0
    # Order does not matter; a p99 of ten values is the largest.
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0, 9.0, 8.0, 7.0, 6.0, 10.0], 0.99) == 10.0
    assert percentile([5.0, 1.0, 3.0, 2.0], 0.5) == 2.0


def test_no_values_have_no_percentile_and_a_bad_fraction_is_refused() -> None:
    assert percentile([], 0.5) is None
    with pytest.raises(ValueError):
        percentile([1.0], 0)
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


# --- the result ----------------------------------------------------------------------------

def test_rate_and_latency_come_from_the_granted_allocations() -> None:
    found = result((1.0, 4.0, 2.0, 3.0), asked=4, seconds=0.002)
    assert found.allocations_ok == 4
    assert found.allocations_per_s == pytest.approx(2000.0)
    assert (found.p50_ms, found.p99_ms) == (2.0, 4.0)
    none = result((), error=QUOTA, seconds=0.0)
    assert (none.allocations_per_s, none.p50_ms, none.p99_ms) == (None, None, None)


@pytest.mark.parametrize("found, stopped_by, code", [
    (result(asked=3), None, 0),
    (result(asked=3, error=QUOTA), None, 1),
    (result(asked=5), None, 1),  # fewer than asked for, yet no error: not reached
    (result(asked=5, interrupted=True), 2, 130),
    (result(asked=5, interrupted=True), 15, 143),
], ids=["reached", "stopped-by-486", "short", "sigint", "sigterm"])
def test_exit_codes(found: CapacityResult, stopped_by: int | None, code: int) -> None:
    assert found.exit_code(stopped_by) == code


# --- the table -----------------------------------------------------------------------------

def table(found: CapacityResult) -> str:
    buffer = io.StringIO()
    render_capacity_table(found, Console(file=buffer, width=100, color_system=None))
    return buffer.getvalue()


def test_the_table_shows_rate_latency_error_and_releases() -> None:
    found = result(tuple(float(v) for v in range(1, 11)), error=QUOTA, asked=30,
                   seconds=0.005)
    text = table(found)
    assert "10 of 30 asked for" in text
    assert "2,000 allocations/s" in text
    assert "p50 5 ms · p99 10 ms" in text
    assert "486 Allocation Quota Reached (after 10 allocations)" in text
    assert "released          10 of 10" in text
    assert text.rstrip().endswith("STOPPED by 486 Allocation Quota Reached after 10 "
                                  "allocations")


def test_the_table_says_when_releases_were_not_confirmed() -> None:
    text = table(result(released=1))
    assert "1 of 3 (2 not confirmed" in text


def test_headlines() -> None:
    assert headline(result()).plain == "REACHED 3 allocations (--max-allocations) with no error"
    assert headline(result(interrupted=True)).plain == "INTERRUPTED after 3 allocations"
    assert headline(result(asked=5)).plain == "STOPPED after 3 allocations"


# --- JSON ----------------------------------------------------------------------------------

def test_the_json_document_is_valid_and_has_every_figure() -> None:
    buffer = io.StringIO()
    found = result(tuple(float(v) for v in range(1, 11)), error=QUOTA, asked=30,
                   seconds=0.005)
    render_capacity_json(found, buffer)
    document = validated(buffer.getvalue(), "capacity")
    assert document["allocations_ok"] == 10
    assert document["allocations_per_s"] == 2000.0
    assert document["allocate_ms"] == {"p50": 5.0, "p99": 10.0}
    assert document["first_error"] == {"error_code": 486,
                                       "error_text": "Allocation Quota Reached",
                                       "cause": "response", "after": 10}
    assert document["released"] == 10 and document["interrupted"] is False


def test_nothing_granted_is_valid_with_nulls() -> None:
    document = validated(capacity_document(result((), error=QUOTA, seconds=0.0)), "capacity")
    assert document["allocations_per_s"] is None
    assert document["allocate_ms"] == {"p50": None, "p99": None}


@pytest.mark.parametrize("change", [
    lambda d: d.update(extra=1),
    lambda d: d.pop("released"),
    lambda d: d.update(max_allocations=101),
    lambda d: d["first_error"].pop("after"),
    lambda d: d["allocate_ms"].update(p95=1.0),
], ids=["unknown-key", "missing-released", "over-100", "error-without-after", "p95"])
def test_the_capacity_schema_rejects(change: object) -> None:
    document = copy.deepcopy(capacity_document(result(error=QUOTA)))
    assert callable(change)
    change(document)
    assert errors(document, "capacity")


# --- the command line ----------------------------------------------------------------------

def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iceprobe", "capacity", *args],
                          capture_output=True, text=True, timeout=30)


def test_more_than_100_allocations_is_one_line_and_exit_2() -> None:
    assert capacity_cli.MAX_ALLOCATIONS == MAX_ALLOCATIONS
    done = run("--turn", "turn:127.0.0.1:9", "-u", "a", "-p", "secret-9q", "--max-allocations",
               "101")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "101 is more than 100" in done.stderr and "secret-9q" not in done.stderr


@pytest.mark.parametrize("args, names", [
    (["--turn", "turn:127.0.0.1:9", "-u", "a", "-p", "b"], "--max-allocations"),
    (["--turn", "turn:127.0.0.1:9", "-u", "a", "-p", "b", "--max-allocations", "0"],
     "at least 1"),
    (["--turn", "stun:127.0.0.1:9", "-u", "a", "-p", "b", "--max-allocations", "5"],
     "is not a TURN URL"),
    (["--turn", "turn:127.0.0.1:9", "--max-allocations", "5"], "turn-credentials-missing"),
], ids=["no-max", "zero", "stun-url", "no-credentials"])
def test_bad_usage_is_one_line_and_exit_2(args: list[str], names: str) -> None:
    done = run(*args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and names in done.stderr, done.stderr


def test_help_says_it_is_a_load_test_for_your_own_servers() -> None:
    done = run("--help")
    assert done.returncode == 0
    assert "A load test: run it only against TURN servers you operate." in done.stdout
