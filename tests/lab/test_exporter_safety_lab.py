"""The exporter's safety promises (docs/exporter.md "Safety") against real coturn behind a
proxy of our own that holds coturn's answers back, like a server far away
(tests/lab/delayproxy.py):

- the per-target limit: of MAX_PER_TARGET + 1 concurrent scrapes of one target, at most
  MAX_PER_TARGET probes reach the server at once; the extra one waits for a slot within its
  own budget and probes with what is left of it, or gets 503 when no slot frees in time;
- a scraper that goes away mid-probe: the probe still runs to its end and releases its
  allocation (coturn --user-quota=1: a new Allocate by the same user then succeeds)."""

from __future__ import annotations

import concurrent.futures
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from iceprobe.exporter.app import MAX_PER_TARGET
from tests.lab.delayproxy import DelayingUdpProxy
from tests.lab.netns import LAB_IPV4, LabNetwork
from tests.lab.prometheus import Exporter, probe, sample
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn

pytestmark = pytest.mark.lab

StartCoturn = Callable[..., Coturn]
#: coturn frees a released allocation's quota on its 1 s timer (LAB.md).
QUOTA_TIMER = 1.3


@pytest.fixture
def far(lab: LabNetwork, coturn: StartCoturn, request: pytest.FixtureRequest
        ) -> Iterator[tuple[Coturn, Callable[[float], DelayingUdpProxy]]]:
    server = coturn(*getattr(request, "param", ()))
    proxies: list[DelayingUdpProxy] = []

    def proxy(delay: float) -> DelayingUdpProxy:
        started = DelayingUdpProxy(LAB_IPV4, (server.ip, server.port), delay)
        proxies.append(started)
        return started

    yield server, proxy
    for started in proxies:
        started.close()


def far_fleet(tmp_path: Path, proxy: DelayingUdpProxy) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(textwrap.dedent(f"""\
        [modules.stun]
        checks = ["binding"]
        timeout = "20s"

        [modules.turn_udp]
        checks = ["binding", "allocate"]
        timeout = "20s"

        [auth.good]
        username = "{LAB_USER}"
        password_env = "TURN_PASSWORD"

        [[targets]]
        name = "far-stun"
        url = "stun:{proxy.ip}:{proxy.port}"
        module = "stun"

        [[targets]]
        name = "far-turn"
        url = "turn:{proxy.ip}:{proxy.port}"
        module = "turn_udp"
        auth = "good"
        """))
    return path


def timed_probe(exporter: Exporter, query: str, timeout: str) -> tuple[int, str, float]:
    started = time.monotonic()
    status, body = probe(exporter, query, timeout=timeout)
    return status, body, time.monotonic() - started


def wait_until(condition: Callable[[], bool], budget: float = 10.0) -> None:
    deadline = time.monotonic() + budget
    while not condition():
        assert time.monotonic() < deadline, "not within the budget"
        time.sleep(0.01)


def test_an_extra_scrape_that_finds_no_slot_in_its_budget_is_503_and_never_probes(
        far: tuple[Coturn, Callable[[float], DelayingUdpProxy]], tmp_path: Path,
        exporters: Callable[[Path], Exporter]) -> None:
    _, start_proxy = far
    proxy = start_proxy(2.5)  # longer than every probe's budget: the slots stay taken
    exporter = exporters(far_fleet(tmp_path, proxy))
    scrapes = MAX_PER_TARGET + 1
    with concurrent.futures.ThreadPoolExecutor(scrapes) as pool:
        done = list(pool.map(lambda _: timed_probe(exporter, "target=far-stun", "1.8"),
                             range(scrapes)))
    statuses = sorted(status for status, _, _ in done)
    assert statuses == [200] * MAX_PER_TARGET + [503], done
    [(_, refused, took)] = [d for d in done if d[0] == 503]
    assert "per-target limit" in refused and refused.count("\n") == 1, refused
    assert took < 1.8, f"503 after {took:.2f} s, beyond the scrape timeout"
    assert proxy.clients_seen == MAX_PER_TARGET
    assert proxy.most_at_once == MAX_PER_TARGET
    _, own = exporter.get("/metrics")
    assert sample(own, 'iceprobe_exporter_probes_refused_total{reason="busy"}') == 1.0, own


def test_an_extra_scrape_waits_for_a_slot_and_probes_within_what_is_left_of_its_budget(
        far: tuple[Coturn, Callable[[float], DelayingUdpProxy]], tmp_path: Path,
        exporters: Callable[[Path], Exporter]) -> None:
    _, start_proxy = far
    delay = 2.5
    proxy = start_proxy(delay)
    exporter = exporters(far_fleet(tmp_path, proxy))
    with concurrent.futures.ThreadPoolExecutor(MAX_PER_TARGET + 1) as pool:
        first = [pool.submit(timed_probe, exporter, "target=far-stun", "5")
                 for _ in range(MAX_PER_TARGET)]
        wait_until(lambda: proxy.clients_waiting() == MAX_PER_TARGET)
        # The extra one: 4 s of budget, about 2.5 s of it spent waiting for a slot; with
        # the full 4 s after the wait it would answer after its scrape timeout of 4.5 s.
        extra = pool.submit(timed_probe, exporter, "target=far-stun", "4.5").result()
        done = [f.result() for f in first]
    for status, body, took in done:
        assert status == 200 and sample(body, "probe_success") == 1.0, body
        assert took >= delay
    status, body, took = extra
    assert status == 200, body
    assert delay - 0.1 <= took < 4.5, f"answered after {took:.2f} s"
    # What was left (about 1.5 s) is less than the server takes: a timeout, found honestly.
    assert sample(body, "probe_ice_error_code") == 701, body
    assert proxy.clients_seen == MAX_PER_TARGET + 1
    assert proxy.most_at_once == MAX_PER_TARGET


@pytest.mark.parametrize("far", [("--user-quota=1",)], indirect=True)
def test_a_scraper_that_goes_away_mid_probe_leaves_no_allocation_behind(
        far: tuple[Coturn, Callable[[float], DelayingUdpProxy]], tmp_path: Path,
        exporters: Callable[[Path], Exporter]) -> None:
    server, start_proxy = far
    # coturn's answers come 0.4 s late (under the client's first retransmission at 0.5 s):
    # the allocation exists for a while before the exporter knows it has it.
    proxy = start_proxy(0.4)
    exporter = exporters(far_fleet(tmp_path, proxy))
    host, port = urllib.parse.urlsplit(exporter.base).hostname, exporter.base.rsplit(":", 1)[1]
    assert host is not None
    with socket.create_connection((host, int(port)), timeout=5) as scraper:
        scraper.sendall(b"GET /probe?target=far-turn HTTP/1.1\r\nHost: lab\r\n"
                        b"X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n")
        assert proxy.allocated.wait(10), "coturn never allocated"
        # The scraper goes away while the allocation is held.
    gone_at = time.monotonic()

    def in_flight() -> float | None:
        return sample(exporter.get("/metrics")[1], "iceprobe_exporter_probes_in_flight")

    wait_until(lambda: in_flight() == 0.0)
    # It ran to its end: it is in the history, as a success (the relay was had).
    _, log = exporter.get("/logs?id=1")
    assert log.startswith("probe 1 of far-turn") and ": success" in log.splitlines()[0], log
    assert time.monotonic() - gone_at < 10
    time.sleep(QUOTA_TIMER)
    # With a quota of one, this Allocate gets 486 if the probe left its allocation behind.
    again = subprocess.run(
        [sys.executable, "-m", "iceprobe", "gather", "--turn", server.url(),
         "--no-turn-as-stun", "-u", LAB_USER, "-p", LAB_PASSWORD, "--timeout", "3"],
        capture_output=True, text=True, timeout=30)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
