"""`iceprobe capacity` against real coturn: it stops at the first 486 (--user-quota) or 508
(a two-port relay range) after exactly as many allocations as the server grants, releases
every one (proved by a fresh run of the same user getting the whole quota or range again
after coturn's 1 s quota timer), releases on SIGINT mid-run, and never prints the password."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn, relay_range
from tests.lab.test_interrupt_lab import QUOTA_TIMER, STOP_BOUND, Watched
from tests.schema import validated

pytestmark = pytest.mark.lab

StartCoturn = Callable[..., Coturn]


def capacity(server: Coturn, count: int, *args: str, query: str = ""
             ) -> tuple[int, dict[str, Any], str]:
    """Run `iceprobe capacity --json`: exit code, the document, stderr."""
    done = subprocess.run([sys.executable, "-m", "iceprobe", "capacity", "--turn",
                           server.url(query=query), "-u", LAB_USER, "-p", LAB_PASSWORD,
                           "--max-allocations", str(count), "--json", *args],
                          capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    assert LAB_PASSWORD not in done.stdout + done.stderr
    return done.returncode, validated(done.stdout, "capacity"), done.stderr


@pytest.mark.parametrize("query", ["", "?transport=tcp"], ids=["udp", "tcp"])
def test_a_quota_of_ten_stops_at_486_after_exactly_ten_and_releases_all(
        coturn: StartCoturn, query: str) -> None:
    server = coturn("--user-quota=10")
    code, document, _ = capacity(server, 30, query=query)
    assert code == 1
    assert document["allocations_ok"] == 10
    assert document["first_error"] == {"error_code": 486,
                                       "error_text": "Allocation Quota Reached",
                                       "cause": "response", "after": 10}
    assert document["released"] == 10
    assert document["allocations_per_s"] > 0
    assert 0 < document["allocate_ms"]["p50"] <= document["allocate_ms"]["p99"]
    # Released: after coturn's quota timer the same user gets the whole quota again.
    time.sleep(QUOTA_TIMER)
    code, again, _ = capacity(server, 10, query=query)
    assert (code, again["allocations_ok"], again["first_error"]) == (0, 10, None)


def test_a_two_port_relay_range_stops_at_508_after_two_and_releases_them(
        coturn: StartCoturn) -> None:
    server = coturn(relay_ports=relay_range(2))
    code, document, _ = capacity(server, 10)
    assert code == 1
    assert document["allocations_ok"] == 2
    first = document["first_error"]
    # coturn 4.6.1's reason phrase for a full relay range is "Cannot create socket".
    assert (first["error_code"], first["error_text"], first["after"]) == (
        508, "Cannot create socket", 2)
    assert document["released"] == 2
    # Both ports are free again once coturn's timer has run.
    time.sleep(QUOTA_TIMER)
    code, again, _ = capacity(server, 2)
    assert (code, again["allocations_ok"], again["first_error"]) == (0, 2, None)


def test_the_session_a_508_leaves_does_not_keep_a_unit_of_quota(coturn: StartCoturn) -> None:
    # Three Allocates against a quota of three and two relay ports: two granted, the third
    # refused with 508. coturn 4.6.1 keeps that 5-tuple's session holding one unit of the
    # user's quota (for about a minute) unless iceprobe ends it; the same run again would then
    # get a 486 for its third Allocate instead of the 508. (With more than three in flight,
    # which of 486 and 508 comes first is a race in the server.)
    server = coturn("--user-quota=3", relay_ports=relay_range(2))
    for _ in range(2):
        code, document, _ = capacity(server, 3)
        assert code == 1
        assert document["allocations_ok"] == 2 and document["released"] == 2
        assert document["first_error"]["error_code"] == 508, document
        time.sleep(QUOTA_TIMER)


def test_reaching_max_allocations_is_exit_0_and_the_table_says_so(
        coturn: StartCoturn) -> None:
    server = coturn(relay_ports=relay_range(40))
    done = subprocess.run([sys.executable, "-m", "iceprobe", "capacity", "--turn",
                           server.url(), "-u", LAB_USER, "-p", LAB_PASSWORD,
                           "--max-allocations", "25", "-v"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "120", "NO_COLOR": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "REACHED 25 allocations" in done.stdout
    assert "25 of 25" in done.stdout  # released
    # The trace names the user, never the password (nor the key derived from it).
    assert f"USERNAME {LAB_USER!r}" in done.stderr
    assert LAB_PASSWORD not in done.stdout + done.stderr


@contextmanager
def lossy_replies(port: int, percent: int) -> Iterator[None]:
    """Drop `percent` % of the UDP datagrams coturn sends from `port` (its answers), inside
    the lab's namespace: Allocates then take retransmissions, and some are granted by the
    server while their answers are lost."""
    table = "iceprobe_capacity_loss"

    def nft(command: str) -> None:
        subprocess.run(["nft", *command.split()], check=True, capture_output=True, text=True)

    nft(f"add table inet {table}")
    try:
        nft(f"add chain inet {table} output {{ type filter hook output priority 0 ; }}")
        nft(f"add rule inet {table} output udp sport {port} numgen random mod 100 < "
            f"{percent} drop")
        yield
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_releases_every_allocation(coturn: StartCoturn,
                                                    signum: int) -> None:
    quota = 30
    server = coturn(f"--user-quota={quota}", relay_ports=relay_range(64))
    with lossy_replies(server.port, 70):
        run = Watched("capacity", "--turn", server.url(), "-u", LAB_USER, "-p", LAB_PASSWORD,
                      "--max-allocations", str(quota), "--timeout", "30", "--json")
        run.wait_for("< Allocate success response")
    # Answers flow again, so that the releases (and the Allocates in flight, which delete
    # what the server may have granted them) are answered.
    out, trace, took = run.stop(signum)
    assert run.process.returncode == 128 + signum, trace[-3000:]
    assert took < STOP_BOUND + 0.5, f"stopped {took:.2f} s after the signal"
    assert LAB_PASSWORD not in out + trace
    document = validated(out, "capacity")
    assert document["interrupted"] is True
    assert 1 <= document["allocations_ok"] < quota
    assert document["released"] >= document["allocations_ok"]
    assert f"interrupted ({signal.Signals(signum).name})" in trace
    # Nothing leaked: after the quota timer the same user gets its whole quota.
    time.sleep(QUOTA_TIMER)
    code, again, _ = capacity(server, quota)
    assert (code, again["allocations_ok"], again["first_error"]) == (0, quota, None), again


def test_a_wrong_password_is_a_401_after_none(coturn: StartCoturn) -> None:
    server = coturn()
    done = subprocess.run([sys.executable, "-m", "iceprobe", "capacity", "--turn",
                           server.url(), "-u", LAB_USER, "-p", "not-" + LAB_PASSWORD,
                           "--max-allocations", "5", "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    document = validated(done.stdout, "capacity")
    assert document["allocations_ok"] == 0
    assert document["first_error"]["error_code"] == 401
    assert document["first_error"]["after"] == 0
    assert document["allocations_per_s"] is None
    assert "not-" + LAB_PASSWORD not in done.stdout + done.stderr
