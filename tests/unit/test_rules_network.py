"""Network rules and --ignore, on hand-built results."""

from __future__ import annotations

from iceprobe.model import (
    Candidate,
    CandidateType,
    Cause,
    ErrorEvent,
    ProbeResult,
    Severity,
    Verdict,
)
from iceprobe.rules import Evidence, evaluate
from iceprobe.status import outcome
from iceprobe.urls import parse_server_url

# Addresses here are data only; 45.10.20.30 stands for any global server address.
HOST = Candidate(CandidateType.HOST, "udp", "192.168.1.10", 5000, "1", 1, 0.1)


def srflx(url: str, address: str = "203.0.113.7", elapsed: float = 20.0) -> Candidate:
    return Candidate(CandidateType.SRFLX, "udp", address, 6000, "2", 2, elapsed,
                     "192.168.1.10", 5000, url)


def relay(url: str, address: str) -> Candidate:
    return Candidate(CandidateType.RELAY, "udp", address, 50000, "3", 3, 30.0,
                     "203.0.113.7", 6000, url)


def timeout(url: str) -> ErrorEvent:
    return ErrorEvent(url, "192.168.1.10", 5001, "203.0.113.9", 3478, 701, "no answer",
                      Cause.TIMEOUT, 5000.0)


def result(url: str, *candidates: Candidate, errors: tuple[ErrorEvent, ...] = (),
           addresses: tuple[str, ...] = ("45.10.20.30",)) -> ProbeResult:
    return ProbeResult(parse_server_url(url), candidates, errors, 10.0, addresses)


def verdicts(*results: ProbeResult, **options: object) -> dict[str, Verdict]:
    evidence = Evidence((HOST,), results, **options)  # type: ignore[arg-type]
    return {v.id: v for v in evaluate(evidence)}


def test_srflx_equal_to_host_address_is_no_nat_info() -> None:
    url = "stun:stun.example.com"
    found = verdicts(result(url, srflx(url, address="192.168.1.10")))
    assert found["no-nat"].severity is Severity.INFO
    assert found["no-nat"].urls == (url,)


def test_srflx_behind_a_nat_gives_no_no_nat_verdict() -> None:
    url = "stun:stun.example.com"
    assert "no-nat" not in verdicts(result(url, srflx(url)))


def test_first_candidate_after_threshold_is_slow_server_warn() -> None:
    url = "stun:stun.example.com"
    found = verdicts(result(url, srflx(url, elapsed=900.0)))
    assert found["slow-server"].severity is Severity.WARN
    assert "900 ms" in found["slow-server"].detail
    assert "slow-server" not in verdicts(result(url, srflx(url, elapsed=900.0)), slow_ms=1000)
    assert "slow-server" not in verdicts(result(url, srflx(url, elapsed=100.0)))


def test_private_relay_from_public_server_is_relay_address_private() -> None:
    url = "turn:turn.example.com"
    for address, kind in (("10.0.0.5", "private"), ("100.64.1.2", "carrier-grade"),
                          ("127.0.0.1", "loopback"), ("fd00::5", "unique local")):
        [verdict] = [v for v in verdicts(result(url, relay(url, address))).values()
                     if v.id == "relay-address-private"]
        assert verdict.severity is Severity.FAIL
        assert kind in verdict.title
        assert "external-ip" in verdict.hint


def test_private_relay_from_private_server_is_fine() -> None:
    url = "turn:10.0.0.1"
    found = verdicts(result(url, relay(url, "10.0.0.1"), addresses=("10.0.0.1",)))
    assert "relay-address-private" not in found
    assert "relay-address-private" not in verdicts(result(url, relay(url, "45.10.20.31")))


def test_udp_timing_out_while_tcp_works_is_udp_blocked() -> None:
    udp, tcp = "turn:turn.example.com", "turn:turn.example.com?transport=tcp"
    found = verdicts(result(udp, errors=(timeout(udp),)), result(tcp, relay(tcp, "198.51.100.4")))
    assert found["udp-blocked"].severity is Severity.WARN
    assert found["udp-blocked"].urls == (udp,)


def test_udp_failing_without_a_working_tcp_is_not_udp_blocked() -> None:
    udp = "turn:turn.example.com"
    assert "udp-blocked" not in verdicts(result(udp, errors=(timeout(udp),)))


def test_turn_credentials_missing_only_when_known_missing() -> None:
    url = "turn:turn.example.com"
    found = verdicts(result(url), turn_credentials=False)
    assert found["turn-credentials-missing"].severity is Severity.FAIL
    assert "turn-credentials-missing" not in verdicts(result(url), turn_credentials=True)
    assert "turn-credentials-missing" not in verdicts(result(url))


def test_ignore_lowers_a_failing_verdict_to_info_and_keeps_it() -> None:
    url = "stun:stun.example.com"
    evidence = Evidence((HOST,), (result(url, errors=(timeout(url),)),))
    before = evaluate(evidence)
    assert not outcome(before).ok
    after = evaluate(evidence, ignore={"server-unreachable", "only-host-candidates"})
    assert outcome(after).ok
    ignored = {v.id: v for v in after}
    assert ignored["server-unreachable"].severity is Severity.INFO
    assert "--ignore server-unreachable" in ignored["server-unreachable"].detail


def test_verdict_ids_list_every_id_the_rules_can_produce() -> None:
    import re
    from pathlib import Path

    from iceprobe import rules

    source = "".join(p.read_text() for p in Path(rules.__file__).parent.glob("*.py"))
    produced = set(re.findall(r'\bid="([a-z0-9-]+)"', source))
    produced |= set(re.findall(r'verdict="([a-z0-9-]+)"', source))
    assert produced <= set(rules.VERDICT_IDS)


def test_ipv4_relay_when_ipv6_was_asked_is_relay_family_ignored() -> None:
    url = "turn:turn.example.com"
    v4 = result(url, relay(url, "45.10.20.31"))
    assert verdicts(v4, relay_family="ipv6")["relay-family-ignored"].severity is Severity.WARN
    assert "relay-family-ignored" not in verdicts(v4)
    v6 = result(url, relay(url, "2a01:4f8::5"))
    assert "relay-family-ignored" not in verdicts(v6, relay_family="ipv6")


def test_ipv6_relay_nobody_asked_for_is_flagged_warn() -> None:
    url = "turn:turn.example.com"
    [verdict] = [v for v in verdicts(result(url, relay(url, "2a01:4f8::7"))).values()
                 if v.id == "relay-address-private"]
    assert verdict.severity is Severity.WARN
    assert "IPv6" in verdict.title
    assert "relay-address-private" not in verdicts(result(url, relay(url, "2a01:4f8::7")),
                                                   relay_family="ipv6")
