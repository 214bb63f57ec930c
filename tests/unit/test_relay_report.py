"""Relay data-path checks, as values: the rules that judge them, the table and JSON that
show them, and redaction. No network: the checks are built by hand."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

from rich.console import Console

from iceprobe.model import (
    Cause,
    ErrorEvent,
    GatherReport,
    RelayCheck,
    RelayPair,
    RelayStep,
    Requirement,
    Severity,
    Spread,
    Transport,
    Verdict,
)
from iceprobe.redact import redact
from iceprobe.render import Report
from iceprobe.render.json_report import render_json
from iceprobe.render.table import render_table
from iceprobe.rules import VERDICT_IDS, Evidence, evaluate
from iceprobe.urls import parse_server_url
from tests.schema import validated

URL = "turn:turn.example.com:3478"
SPEC = parse_server_url(URL)
PAIR = RelayPair("45.10.20.30", 50010, "45.10.20.30", 50020, Transport.UDP)


def healthy(**changes: Any) -> RelayCheck:
    check = RelayCheck(
        server=SPEC, duration_ms=4200.0, ice_connected_ms=60.0, dtls_connected_ms=66.0,
        channel_open_ms=70.0, pair=PAIR, sent=20, received=20,
        rtt=Spread(min=0.9, median=1.2, p95=3.0, max=4.1),
        throughput_up_bps=16e6, throughput_down_bps=12e6)
    return dataclasses.replace(check, **changes)


def forbidden() -> ErrorEvent:
    return ErrorEvent(URL, "45.10.20.30", 50010, "turn.example.com", 3478, 403,
                      "Forbidden IP (on ChannelBind)", Cause.RESPONSE, 25.0,
                      problem="ChannelBind")


def judge(*checks: RelayCheck, **options: Any) -> dict[str, Verdict]:
    evidence = Evidence((), (), relays=checks, **options)
    return {v.id: v for v in evaluate(evidence)}


def test_working_path_is_relay_data_path_ok_with_its_numbers() -> None:
    found = judge(healthy())
    verdict = found["relay-data-path-ok"]
    assert verdict.severity is Severity.OK
    assert "70 ms" in verdict.detail and "1.2 ms" in verdict.detail
    assert "16.0 Mbit/s up" in verdict.detail
    assert not {"relay-data-path-broken", "relay-slow", "relay-lossy"} & set(found)


def test_each_failed_step_is_named_in_relay_data_path_broken() -> None:
    expected = {RelayStep.ICE: "ICE checks never succeeded",
                RelayStep.DTLS: "DTLS did not complete",
                RelayStep.CHANNEL: "the data channel did not open",
                RelayStep.ECHO: "messages were lost"}
    for step, words in expected.items():
        check = healthy(failed_step=step, failure="what went wrong")
        verdict = judge(check)["relay-data-path-broken"]
        assert verdict.severity is Severity.FAIL
        assert words in verdict.title
        assert "what went wrong" in verdict.detail and step.value in verdict.detail
        assert "relay-data-path-ok" not in judge(check)


def test_403_is_relay_permission_denied_instead_of_broken() -> None:
    check = healthy(failed_step=RelayStep.ICE, failure="x", errors=(forbidden(),))
    found = judge(check)
    verdict = found["relay-permission-denied"]
    assert verdict.severity is Severity.FAIL
    assert "ChannelBind" in verdict.detail and "Forbidden IP" in verdict.detail
    assert "denied-peer-ip" in verdict.hint
    assert "relay-data-path-broken" not in found


def test_a_server_whose_allocation_failed_gets_no_relay_verdict() -> None:
    check = RelayCheck(server=SPEC, duration_ms=0.0, attempted=False,
                       failed_step=RelayStep.ALLOCATE, failure="not tried")
    assert not {"relay-data-path-ok", "relay-data-path-broken"} & set(judge(check))


def test_slow_rtt_or_low_throughput_is_relay_slow_warn_with_options() -> None:
    slow = healthy(rtt=Spread(min=300.0, median=420.0, p95=500.0, max=510.0))
    verdict = judge(slow)["relay-slow"]
    assert verdict.severity is Severity.WARN and "420 ms" in verdict.detail
    assert "relay-slow" not in judge(slow, relay_max_rtt_ms=500.0)
    thin = healthy(throughput_down_bps=400e3)
    assert "0.4 Mbit/s" in judge(thin)["relay-slow"].detail
    assert "relay-slow" not in judge(thin, relay_min_bps=300e3)


def test_some_lost_echoes_are_relay_lossy_warn() -> None:
    verdict = judge(healthy(received=17))["relay-lossy"]
    assert verdict.severity is Severity.WARN
    assert "3 of 20" in verdict.detail and "15%" in verdict.detail


def test_relay_verdict_ids_are_known_to_ignore() -> None:
    assert {"relay-data-path-ok", "relay-data-path-broken", "relay-permission-denied",
            "relay-slow", "relay-lossy"} <= set(VERDICT_IDS)
    check = healthy(failed_step=RelayStep.ICE, failure="x")
    evidence = Evidence((), (), relays=(check,))
    [verdict] = [v for v in evaluate(evidence, ignore=("relay-data-path-broken",))
                 if v.id == "relay-data-path-broken"]
    assert verdict.severity is Severity.INFO


def report(*checks: RelayCheck) -> Report:
    gathered = GatherReport("2026-11-28T00:00:00.000+00:00", 5.0, (), ())
    verdicts = tuple(evaluate(Evidence((), (), relays=checks)))
    return Report(gathered, verdicts, Requirement.EACH, relays=checks)


def rendered(r: Report, as_json: bool = False) -> str:
    out = io.StringIO()
    console = Console(file=out, width=120, color_system=None)
    if as_json:
        render_json(r, out)
    else:
        render_table(r, console)
    return out.getvalue()


def test_json_relay_section_has_every_measurement() -> None:
    document = validated(rendered(report(healthy()), as_json=True), "relay")
    [check] = document["relay"]
    assert check["ok"] is True and check["attempted"] is True
    assert check["pair"] == {"local_address": "45.10.20.30", "local_port": 50010,
                             "remote_address": "45.10.20.30", "remote_port": 50020,
                             "relay_protocol": "udp"}
    assert check["echo"] == {"sent": 20, "received": 20, "loss": 0.0,
                             "rtt_ms": {"min": 0.9, "median": 1.2, "p95": 3.0, "max": 4.1}}
    assert check["throughput_bps"] == {"up": 16e6, "down": 12e6}
    assert (check["ice_connected_ms"], check["channel_open_ms"]) == (60.0, 70.0)


def test_json_has_no_relay_section_without_checks() -> None:
    assert "relay" not in validated(rendered(report(), as_json=True), "gather")


def test_table_shows_result_pair_rtt_throughput_and_errors() -> None:
    text = rendered(report(healthy()))
    assert "Relay data path: turn:turn.example.com:3478" in text
    assert "45.10.20.30:50010 ⇄ 45.10.20.30:50020" in text
    assert "median 1.2" in text and "16.0 Mbit/s" in text and "20/20 back" in text
    denied = rendered(report(healthy(failed_step=RelayStep.ICE, failure="refused",
                                     errors=(forbidden(),))))
    assert "broken at ice: refused" in denied
    assert "Relay error events" in denied and "403" in denied


def test_redaction_covers_relay_pairs_and_events() -> None:
    safe = redact(report(healthy(errors=(forbidden(),), failure="at 45.10.20.30")))
    text = rendered(safe) + rendered(safe, as_json=True)
    assert "45.10.20.30" not in text
    assert "relay-1" in text
