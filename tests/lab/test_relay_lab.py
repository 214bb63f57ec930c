"""`iceprobe relay` (and `gather --relay-check`) against real coturn: two aiortc peers, both
relay-only, exchanging data through the server, or failing to, within the budget."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.lab.certs import make_ca, make_server_cert
from tests.lab.netns import LAB_NAME, LabNetwork, relay_firewall
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn
from tests.schema import validated

pytestmark = pytest.mark.lab

StartCoturn = Callable[..., Coturn]
#: Short runs: half a second of bulk each way; a budget that leaves 2 s to connect.
QUICK = ("--duration", "0.5", "--timeout", "7")


def relay(*args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "iceprobe", "relay", "--webrtc", "-u", LAB_USER,
                           "-p", LAB_PASSWORD, "--json", *args],
                          capture_output=True, text=True, timeout=90, env=dict(os.environ))
    assert done.stderr == "", done.stderr  # no warning, no traceback, nothing leaked
    return done.returncode, validated(done.stdout, "relay")


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    return {v["id"]: v["severity"] for v in report["verdicts"]}


def assert_data_flows(check: dict[str, Any], server: Coturn, protocol: str) -> None:
    assert check["ok"] and check["failed_step"] is None
    # The steps complete in order, each within the budget.
    assert 0 < check["ice_connected_ms"] <= check["dtls_connected_ms"] \
        <= check["channel_open_ms"] < check["duration_ms"]
    pair = check["pair"]
    first, last = server.relay_ports
    assert pair["relay_protocol"] == protocol
    assert pair["local_address"] == pair["remote_address"] == server.ip
    assert first <= pair["local_port"] <= last and first <= pair["remote_port"] <= last
    assert pair["local_port"] != pair["remote_port"]
    echo = check["echo"]
    assert echo["sent"] == echo["received"] == 20 and echo["loss"] == 0
    rtt = echo["rtt_ms"]
    # Loopback through coturn: well under 100 ms, and a consistent spread.
    assert 0 < rtt["min"] <= rtt["median"] <= rtt["p95"] <= rtt["max"] < 100
    # Python SCTP over loopback moves megabits, not kilobits.
    assert check["throughput_bps"]["up"] > 1e6 and check["throughput_bps"]["down"] > 1e6


@pytest.mark.parametrize("protocol, query", [("udp", ""), ("tcp", "?transport=tcp")])
def test_healthy_relay_carries_data(lab: LabNetwork, coturn: StartCoturn, protocol: str,
                                    query: str) -> None:
    server = coturn()
    code, report = relay("--turn", server.url("turn", query=query), *QUICK)
    assert code == 0, report["verdicts"]
    [check] = report["relay"]
    assert_data_flows(check, server, protocol)
    assert verdicts(report)["relay-data-path-ok"] == "ok"
    assert check["duration_ms"] < 7000


def test_denied_peers_are_relay_permission_denied_with_the_403(
        lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn(f"--denied-peer-ip={lab.ipv4}")
    code, report = relay("--turn", server.url("turn"), *QUICK)
    assert code == 1
    [check] = report["relay"]
    assert not check["ok"] and check["failed_step"] == "ice"
    assert check["duration_ms"] < 7000
    [event, *_] = check["errors"]
    assert event["error_code"] == 403 and "Forbidden" in event["error_text"]
    assert event["problem"] in ("ChannelBind", "CreatePermission")
    found = verdicts(report)
    assert found["relay-permission-denied"] == "fail"
    assert "relay-data-path-broken" not in found  # one diagnosis, the precise one
    # The allocations themselves worked: gathering is not blamed.
    assert "no-relay-candidates" not in found


def test_firewalled_relay_ports_are_relay_data_path_broken(
        lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn()
    with relay_firewall(*server.relay_ports):
        code, report = relay("--turn", server.url("turn"), *QUICK)
    assert code == 1
    [check] = report["relay"]
    assert check["failed_step"] == "ice" and check["errors"] == []
    assert check["duration_ms"] < 7000  # the budget, not aioice's minute of retransmissions
    assert check["pair"] is not None  # the relay addresses that could not reach each other
    assert verdicts(report)["relay-data-path-broken"] == "fail"


def test_wrong_password_gets_the_gather_diagnosis_without_connecting(
        lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn()
    done = subprocess.run([sys.executable, "-m", "iceprobe", "relay", "--webrtc", "--turn",
                           server.url("turn"), "-u", LAB_USER, "-p", "wrong-password",
                           "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    report = validated(done.stdout, "relay")
    [check] = report["relay"]
    assert check["attempted"] is False and check["failed_step"] == "allocate"
    assert check["duration_ms"] == 0
    found = verdicts(report)
    assert found["turn-credentials-rejected"] == "fail"
    assert "relay-data-path-broken" not in found
    assert "wrong-password" not in done.stdout + done.stderr


def test_gather_relay_check_adds_the_data_path(lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn()
    done = subprocess.run([sys.executable, "-m", "iceprobe", "gather", "--turn",
                           server.url("turn"), "-u", LAB_USER, "-p", LAB_PASSWORD,
                           "--relay-check", "--json"], capture_output=True, text=True,
                          timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    report = validated(done.stdout, "gather")
    [check] = report["relay"]
    assert_data_flows(check, server, "udp")
    assert verdicts(report)["relay-data-path-ok"] == "ok"


def test_gather_never_imports_aiortc(lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn()
    code = ("import sys\nfrom iceprobe.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('AIORTC', sorted(m for m in sys.modules if m.split('.')[0] == 'aiortc'))\n")
    done = subprocess.run([sys.executable, "-c", code, "gather", "--turn", server.url("turn"),
                           "-u", LAB_USER, "-p", LAB_PASSWORD, "--json"],
                          capture_output=True, text=True, timeout=60)
    validated(done.stdout.split("AIORTC")[0], "gather")
    assert '"relay"' in done.stdout  # it did gather a relay candidate
    assert "AIORTC []" in done.stdout


def test_table_output_names_the_steps(lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn()
    done = subprocess.run([sys.executable, "-m", "iceprobe", "relay", "--webrtc", "--turn",
                           server.url("turn"), "-u", LAB_USER, "-p", LAB_PASSWORD, *QUICK],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "120"})
    assert done.returncode == 0, done.stdout + done.stderr
    for text in ("Relay data path", "data flows", "round trip", "throughput",
                 "relay-data-path-ok", "PASS"):
        assert text in done.stdout
    assert LAB_PASSWORD not in done.stdout + done.stderr


def test_turns_relay_uses_the_ca_file(lab: LabNetwork, coturn: StartCoturn,
                                      tmp_path: Path) -> None:
    ca, ca_key, ca_cert = make_ca(tmp_path)
    cert = make_server_cert(tmp_path, "server", ca_key, ca_cert, [LAB_NAME], [lab.ipv4])
    server = coturn(tls=(str(cert.cert), str(cert.key)))
    code, report = relay("--turn", server.url("turns", host=LAB_NAME), "--ca-file",
                         str(ca.cert), *QUICK)
    assert code == 0, report["verdicts"]
    [check] = report["relay"]
    assert_data_flows(check, server, "tls")


def test_every_run_releases_its_allocations(lab: LabNetwork, coturn: StartCoturn) -> None:
    """A run needs three allocations (the check before, then one per peer); with a quota of
    three per user, a run that left any behind would make the next one fail with 486. coturn
    frees a released allocation's quota on a 1 s timer, hence the spacing."""
    server = coturn("--user-quota=3")
    for run in range(3):
        if run:
            time.sleep(1.2)
        code, report = relay("--turn", server.url("turn"), "--duration", "0.2",
                             "--timeout", "6", "--count", "3")
        assert code == 0, report["verdicts"]
        assert report["errors"] == []


def test_a_quota_too_small_for_both_peers_is_named(lab: LabNetwork,
                                                   coturn: StartCoturn) -> None:
    """coturn frees a released allocation's quota only about 1 s later, so with a quota of
    two the second peer's Allocate gets 486 (which aioice drops): a clear allocate step."""
    server = coturn("--user-quota=2")
    code, report = relay("--turn", server.url("turn"), *QUICK)
    assert code == 1
    [check] = report["relay"]
    assert check["attempted"] and check["failed_step"] == "allocate"
    assert "quota" in check["failure"]
    found = verdicts(report)
    assert found["relay-data-path-broken"] == "fail"
    assert check["duration_ms"] < 7000


def test_thresholds_turn_a_working_path_into_relay_slow(lab: LabNetwork,
                                                        coturn: StartCoturn) -> None:
    """The lab is too fast to be slow: thresholds above what it measures must warn, with
    the measured numbers, and a warning alone still exits 0."""
    server = coturn()
    code, report = relay("--turn", server.url("turn"), *QUICK, "--max-rtt", "0.01",
                         "--min-throughput", "100000")
    assert code == 0
    [slow] = [v for v in report["verdicts"] if v["id"] == "relay-slow"]
    assert slow["severity"] == "warn"
    assert "median round trip" in slow["detail"] and "throughput" in slow["detail"]
    assert verdicts(report)["relay-data-path-ok"] == "ok"
