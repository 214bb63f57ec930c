"""The TURN data plane's results as values: the verdicts on them (relay-data-path-ok,
relay-lossy, relay-slow, relay-bandwidth-limited), the JSON and the table. No network: the
measurements are built by hand."""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any

from rich.console import Console

from iceprobe.model import (
    GatherReport,
    Percentiles,
    PlaneMeasurement,
    RelayCheck,
    RelayPair,
    Requirement,
    Severity,
    Spread,
    SweepStep,
    Transport,
    Verdict,
)
from iceprobe.render import Report
from iceprobe.render.json_report import render_json
from iceprobe.render.table import render_table
from iceprobe.rules import VERDICT_IDS, Evidence, evaluate
from iceprobe.urls import parse_server_url
from tests.schema import validated

URL = "turn:turn.example.com:3478"
SPEC = parse_server_url(URL)
PAIR = RelayPair("45.10.20.30", 50010, "45.10.20.30", 50020, Transport.UDP)


def plane(**changes: Any) -> PlaneMeasurement:
    made = PlaneMeasurement(
        topology="relay-relay", crossings=4, flows=1, rate_pps=50, payload_bytes=200,
        sent=100, received=100, reordered=0, duplicates=0,
        rtt_us=Percentiles(min=180.0, median=250.0, p95=700.0, p99=980.0, max=2100.0),
        jitter_us=42.0, client_cpu=0.03, client_bound=False, clock_resolution_us=0.001)
    return dataclasses.replace(made, **changes)


def check_of(measured: PlaneMeasurement) -> RelayCheck:
    rtt = measured.rtt_us
    return RelayCheck(
        server=SPEC, duration_ms=2100.0, engine="turn", plane=measured, pair=PAIR,
        sent=measured.sent, received=measured.received,
        rtt=None if rtt is None else Spread(min=rtt.min / 1000, median=rtt.median / 1000,
                                            p95=rtt.p95 / 1000, max=rtt.max / 1000))


def step(size: int, offered: float, delivered: float | None = None,
         client_bound: bool = False) -> SweepStep:
    delivered = offered if delivered is None else delivered
    return SweepStep(payload_bytes=size, offered_pps=offered, sent_pps=offered,
                     delivered_pps=delivered, mbit_s=delivered * size * 8 / 1e6,
                     loss=round(1 - delivered / offered, 5), client_bound=client_bound)


#: coturn --max-bps 150000 (bytes/s) at 1200-byte payloads: about 125 packets/s pass.
CAPPED = (step(64, 200), step(64, 400), step(64, 800), step(64, 1600), step(64, 3200),
          step(1200, 25), step(1200, 50), step(1200, 100), step(1200, 200, 124),
          step(1200, 150, 123), step(1200, 125), step(1200, 137, 124))
#: The same cap as a real sweep shows it with 2 s steps: a limiter counting bytes per whole
#: second lets a step touching three seconds pass up to half as much again.
CAPPED_BURSTY = (*CAPPED[:5], step(1200, 200, 186), step(1200, 100), step(1200, 150, 134),
                 step(1200, 125), step(1200, 138, 127), step(1200, 131, 128))


def judge(*checks: RelayCheck, **options: Any) -> dict[str, Verdict]:
    return {v.id: v for v in evaluate(Evidence((), (), relays=checks, **options))}


def test_a_clean_data_plane_is_ok_with_microseconds_and_crossings() -> None:
    found = judge(check_of(plane()))
    verdict = found["relay-data-path-ok"]
    assert verdict.severity is Severity.OK
    assert "TURN data plane" in verdict.title
    assert "median 250 µs" in verdict.detail and "p99 980 µs" in verdict.detail
    assert "crossed the server twice each way" in verdict.detail
    assert not {"relay-lossy", "relay-slow", "relay-bandwidth-limited"} & set(found)


def test_a_sweep_without_loss_says_what_it_carried_in_calls() -> None:
    swept = plane(sweep=(step(1200, 1000), step(1200, 2000)))
    detail = judge(check_of(swept))["relay-data-path-ok"].detail
    # 2000 pps of 1200 bytes: 19.2 Mbit/s = 384 voice calls or 7-12 720p streams.
    assert "19.2 Mbit/s" in detail
    assert "384 voice calls" in detail and "7-12 720p video streams" in detail
    assert "no rate where loss exceeds 1 %" in detail


def test_loss_at_the_steady_rate_is_relay_lossy_with_the_rate_where_loss_starts() -> None:
    lossy = plane(received=95, sweep=(step(1200, 100), step(1200, 200, 150)),
                  knee_pps=200.0, knee_payload_bytes=1200)
    verdict = judge(check_of(lossy))["relay-lossy"]
    assert verdict.severity is Severity.WARN
    assert "5 of 100 packets (5.0%)" in verdict.detail
    assert "50 packets/s" in verdict.detail
    assert "from 200 packets/s of 1200 bytes" in verdict.detail
    assert "voice breaks up" in verdict.detail


def test_a_flat_delivered_rate_at_large_packets_only_is_relay_bandwidth_limited() -> None:
    verdict = judge(check_of(plane(sweep=CAPPED, knee_pps=137.0,
                                   knee_payload_bytes=1200)))["relay-bandwidth-limited"]
    assert verdict.severity is Severity.WARN
    assert "1.2 Mbit/s" in verdict.title
    assert "max-bps" in verdict.hint
    # 125 packets/s of 1200 bytes passed cleanly: 1.2 Mbit/s, 24 voice calls.
    assert "125 packets/s passed cleanly" in verdict.detail
    assert "between 123 and 124" in verdict.detail
    assert "24 voice calls" in verdict.detail and "0 720p video streams" in verdict.detail
    assert "relay-bandwidth-limited" in VERDICT_IDS


def test_a_cap_seen_through_per_second_bursts_is_still_relay_bandwidth_limited() -> None:
    found = judge(check_of(plane(sweep=CAPPED_BURSTY)))
    assert "relay-bandwidth-limited" in found
    assert "131" not in found["relay-bandwidth-limited"].title


def test_a_step_barely_past_the_knee_shows_no_shape() -> None:
    marginal = (*CAPPED[:5], step(1200, 100), step(1200, 200, 195), step(1200, 150, 148))
    assert "relay-bandwidth-limited" not in judge(check_of(plane(sweep=marginal)))


def test_the_same_packet_rate_at_every_size_is_not_a_bandwidth_cap() -> None:
    # A server that forwards ~125 packets/s whatever their size: a packet limit.
    packets = (step(64, 50), step(64, 100), step(64, 200, 124), step(64, 150, 124),
               step(1200, 50), step(1200, 100), step(1200, 200, 124), step(1200, 150, 124))
    found = judge(check_of(plane(sweep=packets)))
    assert "relay-bandwidth-limited" not in found


def test_delivery_collapsing_past_the_knee_is_not_a_cap() -> None:
    collapsing = (*CAPPED[:5], step(1200, 100), step(1200, 200, 20), step(1200, 150, 60))
    assert "relay-bandwidth-limited" not in judge(check_of(plane(sweep=collapsing)))


def test_a_slow_round_trip_is_relay_slow() -> None:
    slow = plane(rtt_us=Percentiles(min=400e3, median=450e3, p95=500e3, p99=510e3,
                                    max=520e3))
    verdict = judge(check_of(slow))["relay-slow"]
    assert "450 ms" in verdict.detail


def report_of(*checks: RelayCheck) -> Report:
    return Report(GatherReport(started_at=None, results=(), host_candidates=(), duration_ms=1.0),
                  tuple(evaluate(Evidence((), (), relays=checks))), Requirement.EACH,
                  relays=checks)


def relay_json(*checks: RelayCheck) -> list[dict[str, Any]]:
    out = io.StringIO()
    render_json(report_of(*checks), out)
    return list(validated(out.getvalue(), "relay")["relay"])


def test_json_has_the_engine_and_its_figures() -> None:
    swept = plane(sweep=CAPPED, knee_pps=137.0, knee_payload_bytes=1200, client_cpu=0.4)
    (entry,) = relay_json(check_of(swept))
    assert entry["engine"] == "turn" and entry["flows"] == 1
    assert entry["topology"] == "relay-relay" and entry["crossings"] == 4
    assert entry["rtt_us"] == {"min": 180.0, "median": 250.0, "p95": 700.0, "p99": 980.0,
                               "max": 2100.0}
    assert entry["jitter_us"] == 42.0 and entry["loss"] == 0
    assert entry["reordered"] == 0 and entry["duplicates"] == 0
    assert entry["client_cpu"] == 0.4 and entry["client_bound"] is False
    assert entry["knee_pps"] == 137.0 and entry["knee_payload_bytes"] == 1200
    assert len(entry["sweep"]) == len(CAPPED)
    assert set(entry["sweep"][0]) == {"payload_bytes", "offered_pps", "sent_pps",
                                      "delivered_pps", "mbit_s", "loss", "client_bound"}


def test_the_webrtc_check_is_labelled_and_its_throughput_is_the_clients_limit() -> None:
    webrtc = RelayCheck(server=SPEC, duration_ms=4000.0, sent=20, received=20,
                        rtt=Spread(min=0.9, median=1.2, p95=3.0, max=4.1),
                        throughput_up_bps=16e6, throughput_down_bps=12e6)
    (entry,) = relay_json(webrtc)
    assert entry["engine"] == "webrtc"
    assert entry["client_bound"] is True
    assert entry["rtt_us"] is None and entry["sweep"] == [] and entry["knee_pps"] is None


def test_the_table_shows_microseconds_the_sweep_and_the_client_cpu() -> None:
    swept = plane(sweep=CAPPED, knee_pps=137.0, knee_payload_bytes=1200, client_cpu=0.4)
    console = Console(file=io.StringIO(), width=140, color_system=None)
    render_table(report_of(check_of(swept)), console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "TURN data plane" in text
    assert "median 250 µs" in text and "p99 980 µs" in text
    assert "4 server crossings" in text
    assert "knee (loss > 1 %)" in text and "137 pps at 1200 B" in text
    assert "0.40 s per s" in text
    json.dumps(text)  # plain text, no control characters left
