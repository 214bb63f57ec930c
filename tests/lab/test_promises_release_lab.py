"""Promise: every allocation iceprobe makes is released, on every path. Proved with coturn's
--user-quota: a leak (or a refused session left holding the quota) makes the next run get a
486. coturn frees a released allocation's quota on a 1 s timer (shared/LAB.md), so runs are
spaced by SPACING."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.lab.certs import make_ca, make_server_cert
from tests.lab.netns import LabNetwork
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn
from tests.lab.test_interrupt_lab import (
    CHANNEL_OPEN,
    QUOTA_TIMER,
    STOP_BOUND,
    Watched,
)
from tests.schema import validated

pytestmark = pytest.mark.lab

StartCoturn = Callable[..., Coturn]
SPACING = 1.3
RUNS = 3


def gather(server: Coturn, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "iceprobe", "gather", "-u", LAB_USER, "-p",
                           LAB_PASSWORD, "--timeout", "3", "--json", *args],
                          capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    document: dict[str, Any] = validated(done.stdout, "gather")
    return document


def relays(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in document["candidates"] if c["type"] == "relay"]


def codes(document: dict[str, Any]) -> list[tuple[int | None, int | None]]:
    return [(e["error_code"], e["requested_family"]) for e in document["errors"]]


def tls_coturn(coturn: StartCoturn, lab: LabNetwork, tmp_path: Path, *extra: str
               ) -> tuple[Coturn, Path]:
    ca, ca_key, ca_cert = make_ca(tmp_path)
    cert = make_server_cert(tmp_path, "server", ca_key, ca_cert, ["turn.lab.test"], [lab.ipv4])
    return coturn(*extra, tls=(str(cert.cert), str(cert.key))), ca.cert


def test_relay_family_both_gets_its_ipv4_relay_run_after_run_with_a_quota_of_one(
        lab: LabNetwork, coturn: StartCoturn) -> None:
    """The IPv4 Allocate goes first: iceprobe's own IPv6 attempt (440, whose session holds
    the quota) must not get it refused. The IPv6 one then finds the quota still on coturn's
    1 s timer (486), or a 440; never is the IPv4 one refused."""
    server = coturn("--user-quota=1")
    for run in range(RUNS):
        if run:
            time.sleep(SPACING)
        document = gather(server, "--turn", server.url(), "--relay-family", "both")
        assert [":" in r["address"] for r in relays(document)] == [False], (run, codes(document))
        assert all(family == 6 for _, family in codes(document)), (run, codes(document))


def test_an_ipv6_allocate_refused_with_440_does_not_hold_the_quota(
        lab: LabNetwork, coturn: StartCoturn) -> None:
    """coturn keeps a 440'd UDP session (and its share of the quota) ~60 s; iceprobe ends it
    (an Allocate of the default family on the same 5-tuple, released), so a run a little
    over a second later gets its relay."""
    server = coturn("--user-quota=1")
    for run in range(RUNS):
        if run:
            time.sleep(SPACING)
        refused = gather(server, "--turn", server.url(), "--relay-family", "ipv6")
        assert codes(refused) == [(440, 6)] and relays(refused) == []
        time.sleep(SPACING)
        after = gather(server, "--turn", server.url())
        assert len(relays(after)) == 1, (run, codes(after))


def test_every_cell_of_the_matrix_releases_its_allocation(
        lab: LabNetwork, coturn: StartCoturn, tmp_path: Path) -> None:
    # The cells that allocate: UDP and TCP on the listening port, TLS on the TLS port (also
    # coturn's alternate listening port, UDP and TCP). A quota of exactly that many: one
    # leaked allocation and the next run's cells get 486.
    ca, ca_key, ca_cert = make_ca(tmp_path)
    cert = make_server_cert(tmp_path, "server", ca_key, ca_cert, ["turn.lab.test"], [lab.ipv4])
    probe = coturn(tls=(str(cert.cert), str(cert.key)))

    def matrix(server: Coturn) -> dict[str, Any]:
        return gather(server, "--matrix", "--turn", f"turn:{lab.ipv4}", "--ca-file",
                      str(ca.cert), "--port", str(server.port), "--port", str(server.port + 1),
                      "--timeout", "2")

    cells = len(relays(matrix(probe)))
    assert cells >= 3
    server = coturn(f"--user-quota={cells}", tls=(str(cert.cert), str(cert.key)))
    for run in range(RUNS):
        if run:
            time.sleep(SPACING)
        document = matrix(server)
        assert len(relays(document)) == cells, (run, codes(document))
        assert 486 not in {code for code, _ in codes(document)}


@pytest.mark.parametrize("scheme, query", [("turn", "?transport=tcp"), ("turns", "")],
                         ids=["tcp", "tls"])
def test_tcp_and_tls_allocations_are_released(lab: LabNetwork, coturn: StartCoturn,
                                              tmp_path: Path, scheme: str, query: str) -> None:
    server, ca = tls_coturn(coturn, lab, tmp_path, "--user-quota=1")
    for run in range(RUNS):
        if run:
            time.sleep(SPACING)
        document = gather(server, "--turn", server.url(scheme, query=query), "--ca-file",
                          str(ca))
        assert len(relays(document)) == 1, (run, codes(document))
        assert relays(document)[0]["relay_protocol"] == ("tls" if scheme == "turns" else "tcp")


def test_sigterm_during_a_relay_check_frees_the_quota(lab: LabNetwork,
                                                      coturn: StartCoturn) -> None:
    # Three allocations (the precheck's, released, and one per peer): a quota of three
    # leaves no room for a leak.
    server = coturn("--user-quota=3")
    run = Watched("relay", "--webrtc", "--turn", server.url(), "-u", LAB_USER, "-p", LAB_PASSWORD,
                  "--duration", "20", "--timeout", "60", "--json")
    run.wait_for(CHANNEL_OPEN)
    time.sleep(2)  # in the bulk transfer
    out, err, took = run.stop(signal.SIGTERM)
    assert run.process.returncode == 143, out[-3000:] + err
    assert took < STOP_BOUND, f"stopped {took:.2f} s after the signal"
    assert validated(out, "relay")["interrupted"] is True
    time.sleep(QUOTA_TIMER)
    again = subprocess.run([sys.executable, "-m", "iceprobe", "relay", "--webrtc",
                            "--turn", server.url(),
                            "-u", LAB_USER, "-p", LAB_PASSWORD, "--duration", "0.5",
                            "--json"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr
