"""`iceprobe relay`'s TURN data plane against real coturn: clean paths over UDP, TCP and TLS
(several flows) with round trips in microseconds, a loss knee made by coturn's --max-bps,
loss injected on the relay ports with nftables, reordering and duplicates from a misbehaving
proxy of our own, SIGINT in the middle of a sweep releasing every allocation, and the
refresh timers against short-lived permissions, channels, allocation and nonce."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from iceprobe.gather.plane import PlaneOptions, measure
from iceprobe.model import Credentials
from iceprobe.urls import parse_server_url
from tests.lab.certs import make_ca, make_server_cert
from tests.lab.netns import LAB_NAME, LabNetwork
from tests.lab.plane_proxy import MisbehavingProxy
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn
from tests.lab.test_interrupt_lab import QUOTA_TIMER, STOP_BOUND, Watched
from tests.schema import validated

pytestmark = pytest.mark.lab

StartCoturn = Callable[..., Coturn]


def relay(*args: str, timeout: float = 150, trace: bool = False) -> tuple[int, dict[str, Any]]:
    """`iceprobe relay --no-webrtc --json` with `args`; with `trace` (and -v among the
    args) the trace is kept in the document's "_trace", else stderr must be empty."""
    done = subprocess.run([sys.executable, "-m", "iceprobe", "relay", "-u", LAB_USER,
                           "-p", LAB_PASSWORD, "--no-webrtc", "--json", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ))
    if not trace:
        assert done.stderr == "", done.stderr
    assert "Traceback" not in done.stderr and LAB_PASSWORD not in done.stderr + done.stdout
    document = dict(validated(done.stdout, "relay"))
    if trace:
        document["_trace"] = done.stderr
    return done.returncode, document


def engine_entry(document: dict[str, Any]) -> dict[str, Any]:
    [entry] = document["relay"]
    assert entry["engine"] == "turn"
    return dict(entry)


def verdicts(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["id"]: v for v in document["verdicts"]}


@pytest.mark.parametrize("query, topology", [
    ("", "relay-relay"), ("?transport=tcp", "relay-relay"), ("", "relay-peer")],
    ids=["udp", "tcp", "udp-peer"])
def test_a_clean_path_loses_nothing_at_a_modest_rate_with_rtt_in_microseconds(
        coturn: StartCoturn, query: str, topology: str) -> None:
    server = coturn()
    code, document = relay("--turn", server.url(query=query), "--rate", "200",
                           "--duration", "1", "--topology", topology)
    assert code == 0, document["verdicts"]
    entry = engine_entry(document)
    assert entry["ok"] and entry["failed_step"] is None
    assert entry["topology"] == topology
    assert entry["crossings"] == (4 if topology == "relay-relay" else 2)
    assert entry["echo"]["sent"] == entry["echo"]["received"] == 200
    assert entry["loss"] == 0 and entry["reordered"] == 0 and entry["duplicates"] == 0
    rtt = entry["rtt_us"]
    # Microseconds, not milliseconds rounded to zero: coturn on this machine answers in
    # tens to thousands of them, and the clock resolves far below that.
    assert 10 < rtt["min"] <= rtt["median"] <= rtt["p95"] <= rtt["p99"] <= rtt["max"] < 100_000
    assert rtt["median"] != round(rtt["median"], -3) or rtt["min"] != round(rtt["min"], -3)
    assert entry["clock_resolution_us"] <= 10
    assert entry["jitter_us"] is not None and entry["jitter_us"] >= 0
    assert 0 < entry["client_cpu"] < 1 and entry["client_bound"] is False
    first, last = server.relay_ports
    assert first <= entry["pair"]["local_port"] <= last
    assert entry["pair"]["relay_protocol"] == ("tcp" if query else "udp")
    ok = verdicts(document)["relay-data-path-ok"]
    assert "µs" in ok["detail"]
    if topology == "relay-relay":
        assert "twice each way" in ok["detail"]


def test_tls_with_several_flows_passes_everything_on_every_flow(
        lab: LabNetwork, coturn: StartCoturn, tmp_path: Path) -> None:
    ca, ca_key, ca_cert = make_ca(tmp_path)
    cert = make_server_cert(tmp_path, "server", ca_key, ca_cert, [LAB_NAME], [lab.ipv4])
    server = coturn(tls=(str(cert.cert), str(cert.key)))
    code, document = relay("--turn", server.url("turns", host=LAB_NAME), "--ca-file",
                           str(ca.cert), "--flows", "3", "--rate", "100", "--duration", "1",
                           "-v", trace=True)
    entry = engine_entry(document)
    assert code == 0 and entry["ok"], entry["failure"]
    assert entry["flows"] == 3 and entry["pair"]["relay_protocol"] == "tls"
    # --rate is per flow: 100 packets/s on each of the three for one second.
    assert entry["echo"]["sent"] == entry["echo"]["received"] == 300
    assert entry["loss"] == 0 and entry["rtt_us"]["median"] > 0
    # Six allocations (two per flow), each released, and one Refresh(0) per allocation.
    assert document["_trace"].count(" released") >= 7


def test_a_max_bps_cap_is_the_knee_within_20_percent_and_named(coturn: StartCoturn) -> None:
    cap = 150_000  # bytes per second per session
    server = coturn(f"--max-bps={cap}")
    code, document = relay("--turn", server.url(), "--sweep")
    entry = engine_entry(document)
    assert entry["ok"], entry["failure"]
    assert entry["knee_payload_bytes"] == 1200, entry["sweep"]
    # coturn counts the ChannelData message: 4 header bytes and the payload.
    expected_pps = cap / (1200 + 4)
    assert abs(entry["knee_pps"] - expected_pps) <= 0.2 * expected_pps, entry["sweep"]
    sizes = {step["payload_bytes"] for step in entry["sweep"]}
    assert sizes == {64, 1200}
    found = verdicts(document)
    shape = [(s["payload_bytes"], s["offered_pps"], s["delivered_pps"]) for s in entry["sweep"]]
    assert "relay-bandwidth-limited" in found, str(shape[5:])
    limited = found["relay-bandwidth-limited"]
    assert limited["severity"] == "warn" and "max-bps" in limited["hint"]
    assert "voice call" in limited["detail"] and "720p" in limited["detail"]
    assert code == 0  # a warning, not a failure


@contextmanager
def random_drop(first: int, last: int, percent: int) -> Iterator[None]:
    """Drop `percent` % of the UDP datagrams to the relay ports, at random (nftables)."""
    def nft(*words: str) -> None:
        subprocess.run(["nft", *words], check=True, capture_output=True, text=True)

    nft("add", "table", "inet", "iceprobe_plane_drop")
    try:
        nft("add", "chain", "inet", "iceprobe_plane_drop", "input",
            "{ type filter hook input priority 0 ; }")
        nft("add", "rule", "inet", "iceprobe_plane_drop", "input", "udp", "dport",
            f"{first}-{last}", "numgen", "random", "mod", "100", "lt", str(percent), "drop")
        yield
    finally:
        nft("delete", "table", "inet", "iceprobe_plane_drop")


def test_five_percent_dropped_on_the_relay_ports_is_measured_as_five_percent(
        coturn: StartCoturn) -> None:
    server = coturn()
    first, last = server.relay_ports
    # relay-peer: each round trip reaches a relay port once (the peer's echo), so the loss
    # per round trip is the rule's 5 %. 3000 packets: a standard deviation of 0.4 %.
    with random_drop(first, last, 5):
        code, document = relay("--turn", server.url(), "--topology", "relay-peer",
                               "--rate", "1500", "--duration", "2")
    entry = engine_entry(document)
    assert entry["ok"], entry["failure"]
    assert entry["echo"]["sent"] == 3000
    assert 0.03 <= entry["loss"] <= 0.07, entry["loss"]
    lossy = verdicts(document)["relay-lossy"]
    assert lossy["severity"] == "warn" and "1500 packets/s" in lossy["detail"]
    assert code == 0


def test_reordering_and_duplicates_from_a_proxy_are_counted(lab: LabNetwork,
                                                            coturn: StartCoturn) -> None:
    server = coturn()
    proxy = MisbehavingProxy(lab.ipv4, (server.ip, server.port), duplicate_every=10,
                             reorder_every=7)
    try:
        code, document = relay("--turn", f"turn:{lab.ipv4}:{proxy.port}", "--topology",
                               "relay-peer", "--rate", "200", "--duration", "1")
    finally:
        proxy.close()
    entry = engine_entry(document)
    assert entry["ok"], entry["failure"]
    assert entry["echo"]["received"] == entry["echo"]["sent"] == 200
    assert proxy.channel_data >= 200 and proxy.duplicated >= 15 and proxy.reordered >= 20
    assert entry["reordered"] == proxy.reordered
    # A copy of the very last echo may come after the receiver has every packet.
    assert proxy.duplicated - 1 <= entry["duplicates"] <= proxy.duplicated
    assert entry["loss"] == 0
    assert code == 0


def test_sigint_mid_sweep_exits_130_and_releases_every_allocation(
        coturn: StartCoturn) -> None:
    # relay-relay holds two allocations: a quota of two leaves no room for a leak.
    server = coturn("--user-quota=2")
    run = Watched("relay", "--turn", server.url(), "-u", LAB_USER, "-p", LAB_PASSWORD,
                  "--no-webrtc", "--sweep", "--json")
    run.wait_for("sweep 64 B at 400 pps")
    out, err, took = run.stop(signal.SIGINT)
    assert run.process.returncode == 130, out[-3000:] + err[-3000:]
    assert took < STOP_BOUND + 0.5, f"stopped {took:.2f} s after the signal"
    document = validated(out, "relay")
    assert document["interrupted"] is True
    entry = engine_entry(document)
    assert entry["interrupted"] is True and entry["failed_step"] == "sweep"
    assert entry["sweep"], "the steps measured before the signal are kept"
    # The allocation check's release, then the data plane's two.
    assert err.count(" released") >= 3, err[-3000:]
    time.sleep(QUOTA_TIMER)
    # Both allocations at once again: only possible if neither was left behind.
    started = time.monotonic()
    code, again = relay("--turn", server.url(), "--duration", "0.5")
    assert code == 0, again["verdicts"]
    assert engine_entry(again)["ok"]
    print(f"\nSIGINT mid-sweep: stopped in {took:.2f} s; a fresh run took "
          f"{time.monotonic() - started:.1f} s")


SHORT_LIVED = ("--max-allocate-lifetime=3", "--channel-lifetime=2", "--permission-lifetime=2",
               "--stale-nonce=2")


@pytest.mark.parametrize("refresh_every, received", [(0.7, 600), (None, None)],
                         ids=["refreshed", "control-default-timers"])
def test_permissions_channels_and_the_allocation_are_refreshed_on_their_own_timers(
        coturn: StartCoturn, caplog: pytest.LogCaptureFixture, refresh_every: float | None,
        received: int | None) -> None:
    # coturn lets permissions and channels live 2 s, the allocation 3 s, and a nonce 2 s:
    # a 6 s run keeps flowing only if every one of them is refreshed, the stale nonce
    # answered (438) on the way. The control, at the real-world intervals, stops after 2 s.
    server = coturn(*SHORT_LIVED)
    options = PlaneOptions(credentials=Credentials(LAB_USER, LAB_PASSWORD), rate_pps=100,
                           duration=6, topology="relay-peer")
    if refresh_every is not None:
        options = dataclasses.replace(options, permission_every=refresh_every,
                                      channel_every=refresh_every)
    caplog.set_level(logging.DEBUG, logger="iceprobe.plane")
    check = measure(parse_server_url(server.url()), options, threading.Event())
    assert check.plane is not None and check.plane.sent == 600
    trace = caplog.text
    if received is not None:
        assert check.ok and check.plane.received == received, check.failure
        for request in ("CreatePermission", "ChannelBind", "Refresh"):
            assert trace.count(f"{request} refreshed") >= 3, trace[-3000:]
        assert "refused: 438" in trace  # and answered with the new nonce
    else:
        assert check.plane.received < 400
        assert "CreatePermission refreshed" not in trace
        assert "ChannelBind refreshed" not in trace


def test_a_quota_of_one_fits_relay_peer_but_not_relay_relay(coturn: StartCoturn) -> None:
    # The allocation check's own allocation still counts for about 1 s after its release:
    # relay-peer's one allocation gets a 486 first and succeeds once coturn's timer freed
    # it; relay-relay's second one cannot fit, and the verdict says why.
    server = coturn("--user-quota=1")
    code, document = relay("--turn", server.url(), "--topology", "relay-peer",
                           "--duration", "0.5")
    assert code == 0 and engine_entry(document)["ok"], document["verdicts"]
    time.sleep(QUOTA_TIMER)
    code, document = relay("--turn", server.url(), "--duration", "0.5")
    entry = engine_entry(document)
    assert code == 1 and entry["failed_step"] == "allocate"
    assert "allocation 2 of the 2" in entry["failure"] and "486" in entry["failure"]
    assert [e["error_code"] for e in entry["errors"]] == [486]
    broken = verdicts(document)["relay-data-path-broken"]
    assert "quota" in broken["hint"]
