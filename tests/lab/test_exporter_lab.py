"""`iceprobe exporter` against real coturn and a real Prometheus (Debian's, unpacked by
scripts/test): Prometheus scrapes the exporter on the lab address every second, and its HTTP
API must show probe_success 1 for a healthy server and 0, with the why, for a 401; promtool
accepts the examples; 200 scrapes in a row leave no allocation behind; a broken fleet file
on reload keeps the old config; no secret reaches any output."""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import hmac
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.lab.netns import LAB_IPV4, LabNetwork
from tests.lab.prometheus import (
    ENV,
    REST_SECRET,
    Exporter,
    binary,
    probe,
    sample,
    start_prometheus,
)
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn, free_port
from tests.lab.udpserver import UdpThreadServer

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
StartCoturn = Callable[..., Coturn]


def fleet_file(path: Path, server: Coturn, extra: str = "") -> Path:
    path.write_text(textwrap.dedent(f"""\
        [modules.turn_udp]
        checks = ["binding", "allocate"]
        timeout = "3s"

        [auth.good]
        username = "{LAB_USER}"
        password_env = "TURN_PASSWORD"

        [auth.wrong]
        username = "{LAB_USER}"
        password_env = "WRONG_PASSWORD"

        [[targets]]
        name = "healthy"
        url = "{server.url()}"
        module = "turn_udp"
        auth = "good"
        labels = {{ region = "lab" }}

        [[targets]]
        name = "rejected"
        url = "{server.url()}"
        module = "turn_udp"
        auth = "wrong"
        """) + textwrap.dedent(extra))
    return path


def test_prometheus_scrapes_success_for_healthy_and_the_why_for_a_401(
        lab: LabNetwork, coturn: StartCoturn, tmp_path: Path,
        exporters: Callable[[Path], Exporter]) -> None:
    server = coturn()
    exporter = exporters(fleet_file(tmp_path / "fleet.toml", server))
    address = exporter.base.removeprefix("http://")
    prometheus = start_prometheus(textwrap.dedent(f"""\
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
        scrape_configs:
          - job_name: iceprobe
            metrics_path: /probe
            static_configs:
              - targets: [healthy, rejected]
            relabel_configs:
              - source_labels: [__address__]
                target_label: __param_target
              - source_labels: [__param_target]
                target_label: instance
              - target_label: __address__
                replacement: {address}
        """))
    try:
        found = prometheus.wait_for('probe_success{job="iceprobe"}', 2)
        values = {s["metric"]["instance"]: s["value"][1] for s in found}
        assert values == {"healthy": "1", "rejected": "0"}, found
        why = prometheus.wait_for('probe_ice_failure_info{verdict="turn-credentials-rejected"}')
        assert {s["metric"]["instance"] for s in why} == {"rejected"}, why
        assert why[0]["metric"]["cause"] == "response"
        assert {s["metric"]["instance"]: s["value"][1]
                for s in prometheus.query("probe_ice_error_code")} == {
                    "healthy": "0", "rejected": "401"}
        allocate = prometheus.wait_for(
            'probe_ice_phase_duration_seconds{instance="healthy", phase="allocate"}')
        assert 0 < float(allocate[0]["value"][1]) < 1
        up = {s["metric"]["instance"]: s["value"][1] for s in prometheus.query("up")}
        assert up == {"healthy": "1", "rejected": "1"}  # a failing probe is still a scrape
        durations = [float(s["value"][1]) for s in
                     prometheus.query('scrape_duration_seconds{job="iceprobe"}')]
        print(f"scrape_duration_seconds: {durations}")  # for the report (pytest -s)
    finally:
        prometheus.stop()
    assert LAB_PASSWORD not in exporter.stderr()


@pytest.mark.parametrize("example", ["alerts.yml", "prometheus.yml"])
def test_promtool_accepts_the_examples(example: str) -> None:
    kind = "rules" if example == "alerts.yml" else "config"
    done = subprocess.run([binary("promtool"), "check", kind, str(ROOT / "examples" / example)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT / "examples")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_would_reject_a_broken_rule(tmp_path: Path) -> None:
    # The check above can fail: promtool does reject a rule with a bad expression.
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n"
                      "        expr: probe_success ==\n")
    done = subprocess.run([binary("promtool"), "check", "rules", str(broken)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0


def test_200_scrapes_in_a_row_leave_no_allocation_behind(
        lab: LabNetwork, coturn: StartCoturn, tmp_path: Path,
        exporters: Callable[[Path], Exporter]) -> None:
    server = coturn("--user-quota=2")
    exporter = exporters(fleet_file(tmp_path / "fleet.toml", server))
    outcomes: dict[float | None, int] = {}
    codes: set[float | None] = set()
    for _ in range(200):
        status, body = probe(exporter, "target=healthy")
        assert status == 200, body
        value = sample(body, "probe_success")
        outcomes[value] = outcomes.get(value, 0) + 1
        codes.add(sample(body, "probe_ice_error_code"))
    # Back to back, most find the quota still held by the release before (coturn frees it
    # on a 1 s timer): 486, never anything else.
    assert codes <= {0.0, 486.0}, codes
    # Concurrent scrapes of one target, more than the per-target limit allows at once.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: probe(exporter, "target=healthy")[0], range(16)))
    assert set(statuses) <= {200, 503}, statuses
    assert outcomes.get(1.0, 0) > 0, outcomes
    # coturn frees a released allocation's quota on its 1 s timer: after that, two
    # allocations at once (the whole quota) must both succeed, which a single allocation
    # left behind by any of the scrapes would prevent (486).
    time.sleep(1.5)
    done = subprocess.run(
        [sys.executable, "-m", "iceprobe", "gather", "--turn", server.url(), "--turn",
         server.url(query="?transport=tcp"), "--no-turn-as-stun", "-u", LAB_USER, "-p",
         LAB_PASSWORD, "--json", "--timeout", "3"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    print(f"200 scrapes: {outcomes}; concurrent: {statuses}")


def test_reload_with_a_broken_file_keeps_the_old_config(
        lab: LabNetwork, coturn: StartCoturn, tmp_path: Path,
        exporters: Callable[[Path], Exporter]) -> None:
    server = coturn()
    config = fleet_file(tmp_path / "fleet.toml", server)
    exporter = exporters(config)
    good = config.read_text()
    config.write_text(good + "\n[[targets]]\nname = \"typo\"\nurl = \"turn:x\"\nmodul = 1\n")
    status, body = exporter.get("/-/reload", method="POST")
    assert status == 500
    assert "fleet.toml" in body and "modul" in body, body
    status, body = probe(exporter, "target=healthy")
    assert status == 200 and sample(body, "probe_success") == 1.0, body
    _, own = exporter.get("/metrics")
    assert sample(own, "iceprobe_exporter_config_last_reload_successful") == 0.0
    # SIGHUP with a good file: the new target is there, the gauge back to 1.
    config.write_text(good + textwrap.dedent(f"""
        [[targets]]
        name = "added"
        url = "{server.url()}"
        module = "turn_udp"
        auth = "good"
        """))
    exporter.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        _, own = exporter.get("/metrics")
        if sample(own, "iceprobe_exporter_config_last_reload_successful") == 1.0:
            break
        time.sleep(0.1)
    status, body = probe(exporter, "target=added")
    assert status == 200 and sample(body, "probe_success") == 1.0, body
    assert "reload failed, keeping the previous config" in exporter.stderr()


def test_bad_requests_are_400_and_credentials_never_come_in_the_query(
        lab: LabNetwork, coturn: StartCoturn, tmp_path: Path,
        exporters: Callable[[Path], Exporter]) -> None:
    server = coturn()
    exporter = exporters(fleet_file(tmp_path / "fleet.toml", server))
    for query in ("target=nonexistent", "target=healthy&module=nope",
                  f"target={server.url()}&module=turn_udp",  # a bare TURN URL without auth
                  f"target={server.url()}&module=turn_udp&auth=good&password=x",
                  "target=healthy&username=alice"):
        status, body = probe(exporter, query)
        assert status == 400, (query, body)
        assert body.count("\n") == 1, body
    status, body = probe(exporter, f"target={server.url()}&module=turn_udp&auth=good")
    assert status == 200 and sample(body, "probe_success") == 1.0, body


def test_rest_credentials_export_their_expiry_and_debug_shows_no_secret(
        lab: LabNetwork, coturn: StartCoturn, tmp_path: Path,
        exporters: Callable[[Path], Exporter]) -> None:
    server = coturn("--use-auth-secret", f"--static-auth-secret={REST_SECRET}")
    config = fleet_file(tmp_path / "fleet.toml", server, f"""
        [auth.rest]
        secret_env = "REST_SECRET"
        user = "exporter"
        ttl = "10m"

        [[targets]]
        name = "rest"
        url = "{server.url()}"
        module = "turn_udp"
        auth = "rest"
        """)
    exporter = exporters(config)
    before = time.time()
    status, body = probe(exporter, "target=rest")
    assert status == 200 and sample(body, "probe_success") == 1.0, body
    expiry = sample(body, "probe_turn_credential_expiry_timestamp_seconds")
    assert expiry is not None and before + 590 <= expiry <= time.time() + 610
    status, debug = probe(exporter, "target=rest&debug=true")
    assert status == 200
    assert "Logs for the probe:" in debug and "Allocate" in debug
    assert "secret: <secret>" in debug
    username = f"{int(expiry)}:exporter"
    derived = base64.b64encode(hmac.new(REST_SECRET.encode(), username.encode(),
                                        hashlib.sha1).digest()).decode()
    _, page = exporter.get("/")
    everything = debug + body + page + exporter.stderr()
    for secret in (REST_SECRET, derived, LAB_PASSWORD, ENV["WRONG_PASSWORD"]):
        assert secret not in everything
    status, static_debug = probe(exporter, "target=healthy&debug=true")
    assert "password: <secret>" in static_debug and LAB_PASSWORD not in static_debug


def test_a_bad_fleet_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "fleet.toml"
    config.write_text("[modules.x]\nchecks = [\"binding\"]\ntimeout = 3\nbogus = 1\n")
    done = subprocess.run([sys.executable, "-m", "iceprobe", "exporter", "-c", str(config)],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "fleet.toml" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_silent_server_within_the_scrape_budget_is_a_timeout_not_a_mystery(
        lab: LabNetwork, coturn: StartCoturn, tmp_path: Path,
        exporters: Callable[[Path], Exporter]) -> None:
    """A server that never answers: the gathering ends by itself within the scrape budget
    (room left for releasing and judging), so the why is a timeout (701), not an
    interruption with no error event."""
    silent = UdpThreadServer(LAB_IPV4, free_port(), lambda data, peer: None, "silent")
    try:
        config = fleet_file(tmp_path / "fleet.toml", coturn(), f"""
            [modules.stun_udp]
            checks = ["binding"]
            timeout = "10s"

            [[targets]]
            name = "silent-stun"
            url = "stun:{LAB_IPV4}:{silent.port}"
            module = "stun_udp"

            [[targets]]
            name = "silent-turn"
            url = "turn:{LAB_IPV4}:{silent.port}"
            module = "turn_udp"
            auth = "good"
            """)
        exporter = exporters(config)
        for target in ("silent-stun", "silent-turn"):
            started = time.monotonic()
            status, text = probe(exporter, f"target={target}", timeout="3")
            took = time.monotonic() - started
            assert status == 200, text
            assert sample(text, "probe_success") == 0
            assert sample(text, "probe_ice_error_code") == 701, text
            assert ('probe_ice_failure_info{cause="timeout",verdict="server-unreachable"} 1.0'
                    in text), text
            assert took < 3.0, f"{target}: {took:.2f} s, beyond the scrape timeout"
    finally:
        silent.close()
