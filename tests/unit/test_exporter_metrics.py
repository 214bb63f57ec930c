"""iceprobe.exporter.metrics: a Report, judged by the real rules, as Prometheus metrics.
Pure: the reports are built by hand, the exposition is read back with prometheus_client's
own parser."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from iceprobe.exporter.metrics import PHASES, ProbeContext, probe_registry
from iceprobe.model import (
    Candidate,
    CandidateType,
    Cause,
    ErrorEvent,
    GatherReport,
    PhaseTimes,
    ProbeResult,
    RelayCheck,
    Requirement,
    Spread,
    TurnExchange,
)
from iceprobe.render import Report
from iceprobe.rules import Evidence, evaluate
from iceprobe.urls import parse_server_url

TURN = parse_server_url("turn:198.18.0.10:3478")
TURNS = parse_server_url("turns:turn.lab.test:5349")
STUN = parse_server_url("stun:198.18.0.10:3478")
HOST = Candidate(CandidateType.HOST, "udp", "198.18.0.10", 5000, "1", 2, 0.1)
SRFLX = Candidate(CandidateType.SRFLX, "udp", "198.18.0.10", 5000, "2", 1, 1.0,
                  "198.18.0.10", 5000, STUN.url)
RELAY = Candidate(CandidateType.RELAY, "udp", "198.18.0.10", 50001, "3", 0, 2.0,
                  "198.18.0.10", 5001, TURN.url, relay_protocol="udp")
CONTEXT = ProbeContext("eu-1", "turn_udp", 0.25, (("region", "eu"), ("bad-name", "x")))
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def report(results: tuple[ProbeResult, ...], relays: tuple[RelayCheck, ...] = ()) -> Report:
    gathered = GatherReport("2026-12-01T00:00:00.000+00:00", 5.0, (HOST,), results)
    evidence = Evidence((HOST,), results, Requirement.EACH, turn_credentials=True,
                        relays=relays)
    return Report(gathered, tuple(evaluate(evidence)), Requirement.EACH, relays=relays)


def samples(built: Report, context: ProbeContext = CONTEXT) -> Samples:
    text = generate_latest(probe_registry(built, context)).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def healthy() -> Report:
    stun = ProbeResult(STUN, (SRFLX,), (), 1.5, ("198.18.0.10",), implied_by=TURN.url,
                       phases=PhaseTimes(dns_ms=0.01, binding_ms=0.8))
    turn = ProbeResult(TURN, (RELAY,), (), 2.5, ("198.18.0.10",),
                       phases=PhaseTimes(dns_ms=0.02, challenge_ms=0.9, allocate_ms=1.1))
    return report((turn, stun))


def rejected() -> Report:
    event = ErrorEvent(TURN.url, "198.18.0.10", 5001, "198.18.0.10", 3478, 401,
                       "Unauthorized", Cause.RESPONSE, 1.0, after_challenge=True)
    turn = ProbeResult(TURN, (), (event,), 2.0, ("198.18.0.10",),
                       phases=PhaseTimes(dns_ms=0.02, challenge_ms=0.9))
    return report((turn,))


def test_a_healthy_probe_is_success_1_with_its_phases_in_seconds() -> None:
    found = samples(healthy())
    assert found[("probe_success", ())] == 1.0
    assert found[("probe_duration_seconds", ())] == 0.25
    phases = {labels[0][1]: value for (name, labels), value in found.items()
              if name == "probe_ice_phase_duration_seconds"}
    # From the first server that has each phase (report order), in base units.
    assert phases == {"dns": 0.00002, "binding": 0.0008, "challenge": 0.0009,
                      "allocate": 0.0011}
    assert found[("probe_ice_error_code", ())] == 0.0
    assert not [k for k in found if k[0] == "probe_ice_failure_info"]


def test_candidates_are_counted_by_type_with_zeroes() -> None:
    found = samples(rejected())
    assert {labels[0][1]: value for (name, labels), value in found.items()
            if name == "probe_ice_candidates"} == {"host": 1.0, "srflx": 0.0, "relay": 0.0}


def test_a_401_is_success_0_error_code_401_and_the_verdict_with_its_cause() -> None:
    found = samples(rejected())
    assert found[("probe_success", ())] == 0.0
    assert found[("probe_ice_error_code", ())] == 401.0
    why = {dict(labels)["verdict"]: dict(labels)["cause"] for (name, labels), _ in found.items()
           if name == "probe_ice_failure_info"}
    assert why["turn-credentials-rejected"] == "response"
    assert all(value == 1.0 for (name, _), value in found.items()
               if name == "probe_ice_failure_info")


def test_an_unreachable_server_is_701_with_cause_timeout() -> None:
    event = ErrorEvent(TURN.url, "198.18.0.10", 5001, "198.18.0.10", 3478, 701,
                       "No answer", Cause.TIMEOUT, 3000.0)
    found = samples(report((ProbeResult(TURN, (), (event,), 3000.0, ("198.18.0.10",)),)))
    assert found[("probe_ice_error_code", ())] == 701.0
    causes = {dict(labels)["cause"] for (name, labels), _ in found.items()
              if name == "probe_ice_failure_info"}
    assert causes == {"timeout"}


def test_the_last_error_code_is_the_latest_in_time() -> None:
    early = ErrorEvent(TURN.url, "198.18.0.10", 5001, "198.18.0.10", 3478, 438,
                       "Stale Nonce", Cause.RESPONSE, 1.0)
    late = ErrorEvent(TURN.url, "198.18.0.10", 5001, "198.18.0.10", 3478, 486,
                      "Allocation Quota Reached", Cause.RESPONSE, 9.0)
    found = samples(report((ProbeResult(TURN, (), (late, early), 10.0),)))
    assert found[("probe_ice_error_code", ())] == 486.0


def test_phases_that_did_not_happen_have_no_sample() -> None:
    found = samples(rejected())
    phases = {labels[0][1] for (name, labels), _ in found.items()
              if name == "probe_ice_phase_duration_seconds"}
    assert phases == {"dns", "challenge"}
    assert phases <= set(PHASES)


def test_tls_certificate_expiry_is_the_earliest_and_absent_without_tls() -> None:
    first = ProbeResult(TURNS, (), (), 5.0, certificate_expires=1_900_000_000.0)
    second = ProbeResult(TURNS, (), (), 6.0, certificate_expires=1_800_000_000.0)
    found = samples(report((first, second)))
    assert found[("probe_tls_cert_expiry_timestamp_seconds", ())] == 1_800_000_000.0
    assert ("probe_tls_cert_expiry_timestamp_seconds", ()) not in samples(healthy())


def test_rest_credential_expiry_comes_from_the_context() -> None:
    context = ProbeContext("eu-1", "turn_udp", 0.1, credential_expires=1_800_000_600.0)
    found = samples(healthy(), context)
    assert found[("probe_turn_credential_expiry_timestamp_seconds", ())] == 1_800_000_600.0
    assert ("probe_turn_credential_expiry_timestamp_seconds", ()) not in samples(healthy())


def test_relay_check_gives_rtt_loss_and_the_permission_and_relay_phases() -> None:
    bind = TurnExchange("offerer", "ChannelBind", 10.0, 1, 1, "success", rtt_ms=0.7)
    check = RelayCheck(TURN, 4000.0, sent=20, received=19,
                       rtt=Spread(min=0.5, median=1.5, p95=3.0, max=4.0),
                       turn_requests=(bind,))
    turn = ProbeResult(TURN, (RELAY,), (), 2.5, phases=PhaseTimes(allocate_ms=1.0))
    found = samples(report((turn,), (check,)))
    assert found[("probe_turn_relay_rtt_seconds", ())] == 0.0015
    assert found[("probe_turn_relay_loss_ratio", ())] == 0.05
    assert found[("probe_ice_phase_duration_seconds", (("phase", "permission"),))] == 0.0007
    assert found[("probe_ice_phase_duration_seconds", (("phase", "relay"),))] == 0.0015
    assert ("probe_turn_relay_rtt_seconds", ()) not in samples(healthy())


def test_target_info_carries_the_fleet_labels_as_valid_label_names() -> None:
    found = samples(healthy())
    info = [dict(labels) for (name, labels), value in found.items()
            if name == "probe_target_info" and value == 1.0]
    assert info == [{"target": "eu-1", "module": "turn_udp", "region": "eu",
                     "bad_name": "x"}]


def test_each_call_is_a_fresh_registry() -> None:
    first = probe_registry(healthy(), CONTEXT)
    second = probe_registry(rejected(), CONTEXT)
    assert first is not second
    assert first.get_sample_value("probe_success") == 1.0
    assert second.get_sample_value("probe_success") == 0.0
