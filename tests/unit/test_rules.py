"""The rule engine judges hand-built results: no gathering, no network."""

from __future__ import annotations

import pytest

from iceprobe import rules
from iceprobe.model import (
    SERVER_UNREACHABLE_CODE,
    Candidate,
    CandidateType,
    Cause,
    ErrorEvent,
    ProbeResult,
    Requirement,
    Role,
    Scheme,
    ServerSpec,
    Severity,
    Transport,
    Verdict,
)
from iceprobe.rules import Evidence, evaluate, gathering
from iceprobe.status import outcome

LOCAL_V4 = "192.168.1.10"
LOCAL_V6 = "2001:db8::10"
PUBLIC_V4 = "203.0.113.5"
RELAY_V4 = "198.51.100.20"

STUN_A = "stun:stun-a.example.com"
STUN_B = "stun:stun-b.example.com"
TURN_A = "turn:turn-a.example.com"
TURN_B = "turn:turn-b.example.com?transport=tcp"


# --- factories ------------------------------------------------------------------------------

def stun(url: str = STUN_A) -> ServerSpec:
    host = url.split(":", 1)[1]
    return ServerSpec(url=url, scheme=Scheme.STUN, host=host, port=3478,
                      transport=Transport.UDP)


def turn(url: str = TURN_A) -> ServerSpec:
    host = url.split(":", 1)[1].split("?", 1)[0]
    transport = Transport.TCP if url.endswith("=tcp") else Transport.UDP
    return ServerSpec(url=url, scheme=Scheme.TURN, host=host, port=3478, transport=transport)


def host_candidate(address: str = LOCAL_V4, port: int = 50000) -> Candidate:
    return Candidate(type=CandidateType.HOST, protocol="udp", address=address, port=port,
                     foundation="1", priority=2130706431, elapsed_ms=0.5)


def srflx(url: str = STUN_A, address: str = PUBLIC_V4, related: str = LOCAL_V4) -> Candidate:
    return Candidate(type=CandidateType.SRFLX, protocol="udp", address=address, port=61000,
                     foundation="2", priority=1694498815, elapsed_ms=20.0,
                     related_address=related, related_port=50000, url=url)


def relay(url: str = TURN_A, address: str = RELAY_V4, related: str = PUBLIC_V4) -> Candidate:
    return Candidate(type=CandidateType.RELAY, protocol="udp", address=address, port=49152,
                     foundation="3", priority=16777215, elapsed_ms=40.0,
                     related_address=related, related_port=61000, url=url)


def unreachable(url: str, cause: Cause = Cause.TIMEOUT, address: str | None = LOCAL_V4,
                text: str = "STUN binding request timed out") -> ErrorEvent:
    return ErrorEvent(url=url, address=address, port=50000 if address else None,
                      server_address="192.0.2.1", server_port=3478,
                      error_code=SERVER_UNREACHABLE_CODE, error_text=text, cause=cause,
                      elapsed_ms=5000.0)


def response(url: str, code: int = 401, text: str = "Unauthorized",
             cause: Cause = Cause.RESPONSE) -> ErrorEvent:
    return ErrorEvent(url=url, address=LOCAL_V4, port=50000, server_address="192.0.2.2",
                      server_port=3478, error_code=code, error_text=text, cause=cause,
                      elapsed_ms=12.0)


def result(spec: ServerSpec, *candidates: Candidate,
           errors: tuple[ErrorEvent, ...] = ()) -> ProbeResult:
    return ProbeResult(server=spec, candidates=candidates, errors=errors, duration_ms=30.0)


def evidence(*results: ProbeResult, hosts: tuple[Candidate, ...] = (host_candidate(),),
             require: Requirement = Requirement.EACH) -> Evidence:
    return Evidence(host_candidates=hosts, results=results, require=require)


def by_id(verdicts: list[Verdict], verdict_id: str) -> list[Verdict]:
    return [v for v in verdicts if v.id == verdict_id]


def one(verdicts: list[Verdict], verdict_id: str) -> Verdict:
    found = by_id(verdicts, verdict_id)
    assert len(found) == 1, f"{verdict_id}: {found}"
    return found[0]


def ids(verdicts: list[Verdict]) -> list[tuple[str, Severity]]:
    return [(v.id, v.severity) for v in verdicts]


def stun_ok(url: str = STUN_A) -> ProbeResult:
    return result(stun(url), srflx(url))


def turn_ok(url: str = TURN_A) -> ProbeResult:
    return result(turn(url), srflx(url), relay(url))


def stun_dead(url: str = STUN_B, cause: Cause = Cause.TIMEOUT) -> ProbeResult:
    return result(stun(url), errors=(unreachable(url, cause),))


def turn_dead(url: str = TURN_A, cause: Cause = Cause.TIMEOUT) -> ProbeResult:
    return result(turn(url), errors=(unreachable(url, cause),))


# --- everything works -----------------------------------------------------------------------

def test_every_server_yielding_its_candidate_gives_only_all_candidates_gathered_ok() -> None:
    verdicts = evaluate(evidence(stun_ok(), turn_ok()))
    assert ids(verdicts) == [("all-candidates-gathered", Severity.OK)]
    verdict = verdicts[0]
    assert verdict.urls == (STUN_A, TURN_A)
    assert "relay, srflx" in verdict.detail
    assert outcome(verdicts).ok


def test_stun_only_run_that_works_lists_srflx_only() -> None:
    verdicts = evaluate(evidence(stun_ok()))
    verdict = one(verdicts, "all-candidates-gathered")
    assert verdict.urls == (STUN_A,)
    assert "(srflx)" in verdict.detail
    assert outcome(verdicts).ok


# --- nothing but host candidates ------------------------------------------------------------

def test_every_server_failing_gives_only_host_candidates_fail_naming_all_urls() -> None:
    verdicts = evaluate(evidence(stun_dead(STUN_A), stun_dead(STUN_B)))
    verdict = one(verdicts, "only-host-candidates")
    assert verdict.severity is Severity.FAIL
    assert verdict.urls == (STUN_A, STUN_B)
    assert not by_id(verdicts, "all-candidates-gathered")
    assert not outcome(verdicts).ok


def test_one_working_server_means_no_only_host_candidates_verdict() -> None:
    verdicts = evaluate(evidence(stun_ok(STUN_A), stun_dead(STUN_B)))
    assert not by_id(verdicts, "only-host-candidates")


# --- no relay -------------------------------------------------------------------------------

def test_turn_configured_without_relay_gives_no_relay_candidates_fail_naming_turn_urls() -> None:
    verdicts = evaluate(evidence(stun_ok(STUN_A), turn_dead(TURN_A)))
    verdict = one(verdicts, "no-relay-candidates")
    assert verdict.severity is Severity.FAIL
    assert verdict.urls == (TURN_A,)  # the TURN server only, not the working STUN one
    assert not by_id(verdicts, "only-host-candidates")  # the srflx came through
    assert not outcome(verdicts).ok


def test_no_relay_candidates_names_every_turn_server() -> None:
    verdicts = evaluate(evidence(turn_dead(TURN_A), turn_dead(TURN_B)))
    assert one(verdicts, "no-relay-candidates").urls == (TURN_A, TURN_B)


def test_turn_server_giving_srflx_but_no_relay_still_has_no_relay_candidates() -> None:
    verdicts = evaluate(evidence(result(turn(TURN_A), srflx(TURN_A))))
    assert one(verdicts, "no-relay-candidates").urls == (TURN_A,)
    silent = one(verdicts, "server-no-candidate")
    assert silent.severity is Severity.FAIL
    assert silent.urls == (TURN_A,)
    assert "relay" in silent.title


def test_stun_only_run_has_no_no_relay_candidates_verdict() -> None:
    verdicts = evaluate(evidence(stun_dead(STUN_A)))
    assert not by_id(verdicts, "no-relay-candidates")


def test_one_working_turn_server_is_enough_for_relay() -> None:
    verdicts = evaluate(evidence(turn_ok(TURN_A), turn_dead(TURN_B)))
    assert not by_id(verdicts, "no-relay-candidates")


# --- unreachable servers --------------------------------------------------------------------

UNREACHABLE_CAUSES = [Cause.DNS, Cause.SOCKET, Cause.UNREACHABLE, Cause.REFUSED, Cause.TLS,
                      Cause.CLOSED, Cause.TIMEOUT]


@pytest.mark.parametrize("cause", UNREACHABLE_CAUSES, ids=lambda c: c.value)
def test_unreachable_server_fails_under_require_each_with_a_hint_for_the_cause(
    cause: Cause,
) -> None:
    verdicts = evaluate(evidence(stun_ok(STUN_A), stun_dead(STUN_B, cause)))
    verdict = one(verdicts, "server-unreachable")
    assert verdict.severity is Severity.FAIL
    assert verdict.urls == (STUN_B,)
    assert STUN_B in verdict.title
    assert f"701 {cause.value}" in verdict.title
    assert verdict.hint == gathering.unreachable_hint(cause, stun(STUN_B))
    assert verdict.detail.startswith("Could not be used: ")
    assert not outcome(verdicts).ok


def test_unreachable_turn_server_is_the_cause_of_no_relay_candidates() -> None:
    verdicts = evaluate(evidence(turn_dead(TURN_A)))
    verdict = one(verdicts, "server-unreachable")
    assert verdict.urls == (TURN_A,)
    assert verdict.role is Role.CAUSE
    no_relay = one(verdicts, "no-relay-candidates")
    assert no_relay.caused_by == (verdict.key,)
    assert verdicts.index(verdict) < verdicts.index(no_relay)


def test_several_causes_are_all_named_once_in_order() -> None:
    events = (unreachable(STUN_A, Cause.TIMEOUT, text="timed out"),
              unreachable(STUN_A, Cause.UNREACHABLE, text="port unreachable"),
              unreachable(STUN_A, Cause.TIMEOUT, text="timed out"))
    verdicts = evaluate(evidence(result(stun(STUN_A), errors=events)))
    verdict = one(verdicts, "server-unreachable")
    assert "701 timeout, unreachable" in verdict.title
    assert verdict.detail == "Could not be used: timed out; port unreachable."
    assert verdict.hint.startswith(gathering.unreachable_hint(Cause.TIMEOUT, stun(STUN_A)))
    assert gathering.unreachable_hint(Cause.UNREACHABLE, stun(STUN_A)) in verdict.hint


def test_harmless_701_from_ipv6_with_srflx_from_ipv4_is_info_and_says_harmless() -> None:
    event = unreachable(STUN_A, Cause.UNREACHABLE, address=LOCAL_V6,
                        text="network unreachable")
    verdicts = evaluate(evidence(result(stun(STUN_A), srflx(STUN_A, related=LOCAL_V4),
                                        errors=(event,))))
    verdict = one(verdicts, "server-unreachable")
    assert verdict.severity is Severity.INFO
    assert verdict.urls == (STUN_A,)
    assert STUN_A in verdict.title
    assert "harmless" in verdict.detail
    assert LOCAL_V6 in verdict.detail  # where the 701 came from
    assert LOCAL_V4 in verdict.detail  # where the srflx came from
    # An unreachable IPv6 path says nothing about the name's AAAA record (issue 15 item 2).
    assert "AAAA" not in verdict.detail
    assert "no working IPv6 path" in verdict.detail
    assert one(verdicts, "all-candidates-gathered").severity is Severity.OK
    assert outcome(verdicts).ok
    assert not [v for v in verdicts if v.severity in (Severity.FAIL, Severity.WARN)]


def test_harmless_701_from_ipv4_does_not_blame_an_aaaa_record() -> None:
    event = unreachable(STUN_A, Cause.TIMEOUT, address="10.0.0.2")
    verdicts = evaluate(evidence(result(stun(STUN_A), srflx(STUN_A), errors=(event,))))
    verdict = one(verdicts, "server-unreachable")
    assert verdict.severity is Severity.INFO
    assert "harmless" in verdict.detail
    assert "AAAA" not in verdict.detail


# --- require each / any ---------------------------------------------------------------------

def test_two_stun_servers_one_dead_under_each_fails_naming_the_dead_url() -> None:
    verdicts = evaluate(evidence(stun_ok(STUN_A), stun_dead(STUN_B)))
    fails = [v for v in verdicts if v.severity is Severity.FAIL]
    assert [v.id for v in fails] == ["server-unreachable"]
    assert fails[0].urls == (STUN_B,)
    assert STUN_B in fails[0].title
    assert STUN_A not in fails[0].title
    assert not outcome(verdicts).ok


def test_two_stun_servers_one_dead_under_any_warns_for_the_dead_one_and_passes() -> None:
    verdicts = evaluate(evidence(stun_ok(STUN_A), stun_dead(STUN_B),
                                 require=Requirement.ANY))
    assert ids(verdicts) == [("server-unreachable", Severity.WARN)]
    assert verdicts[0].urls == (STUN_B,)
    assert outcome(verdicts).ok


def test_all_stun_servers_dead_under_any_fails() -> None:
    verdicts = evaluate(evidence(stun_dead(STUN_A), stun_dead(STUN_B),
                                 require=Requirement.ANY))
    unreachable_verdicts = by_id(verdicts, "server-unreachable")
    assert [v.severity for v in unreachable_verdicts] == [Severity.FAIL, Severity.FAIL]
    assert [v.urls for v in unreachable_verdicts] == [(STUN_A,), (STUN_B,)]
    assert one(verdicts, "only-host-candidates").severity is Severity.FAIL
    assert not outcome(verdicts).ok


def test_working_stun_does_not_excuse_a_dead_turn_under_any() -> None:
    verdicts = evaluate(evidence(stun_ok(STUN_A), turn_dead(TURN_A),
                                 require=Requirement.ANY))
    verdict = one(verdicts, "server-unreachable")
    assert verdict.severity is Severity.FAIL
    assert verdict.urls == (TURN_A,)
    assert not outcome(verdicts).ok


def test_one_turn_server_dead_under_any_warns_when_another_turn_works() -> None:
    verdicts = evaluate(evidence(turn_ok(TURN_A), turn_dead(TURN_B),
                                 require=Requirement.ANY))
    assert ids(verdicts) == [("server-unreachable", Severity.WARN)]
    assert verdicts[0].urls == (TURN_B,)
    assert outcome(verdicts).ok


def test_silent_server_under_any_warns_when_a_peer_works() -> None:
    verdicts = evaluate(evidence(stun_ok(STUN_A), result(stun(STUN_B)),
                                 require=Requirement.ANY))
    verdict = one(verdicts, "server-no-candidate")
    assert verdict.severity is Severity.WARN
    assert verdict.urls == (STUN_B,)


# --- error responses ------------------------------------------------------------------------

def test_wrong_password_gives_turn_credentials_rejected_fail_and_no_relay() -> None:
    verdicts = evaluate(evidence(result(turn(TURN_A), errors=(response(TURN_A, 401),))))
    error = one(verdicts, "turn-credentials-rejected")
    assert error.severity is Severity.FAIL
    assert error.urls == (TURN_A,)
    assert TURN_A in error.title
    assert "401 Unauthenticated" in error.title
    assert "The server answered: 401 Unauthorized" in error.detail
    assert "username and credential" in error.hint
    # The local address is not the server's: it is never named as if it were (item 2).
    assert LOCAL_V4 not in error.detail
    no_relay = one(verdicts, "no-relay-candidates")
    assert no_relay.severity is Severity.FAIL
    assert no_relay.urls == (TURN_A,)
    assert not by_id(verdicts, "server-unreachable")  # a 401 is an answer, not a 701
    assert not by_id(verdicts, "server-error")  # the code is known: a specific verdict
    assert not outcome(verdicts).ok


@pytest.mark.parametrize(("code", "text", "verdict_id", "words"), [
    (401, "Unauthorized", "turn-credentials-rejected", "username and credential"),
    (431, "Integrity Check Failure", "turn-credentials-rejected", "credential"),
    (441, "Wrong Credentials", "turn-credentials-rejected", "same username"),
    (432, "Missing Username", "turn-credentials-missing", "username"),
    (403, "Forbidden IP", "forbidden", "denied-peer-ip"),
    (405, "Mobility Forbidden", "forbidden", "mobility"),
    (437, "Allocation Mismatch", "allocation-mismatch", "allocation"),
    (438, "Stale Nonce", "stale-nonce", "nonce"),
    (442, "Unsupported Transport Protocol", "transport-not-supported", "UDP"),
    (486, "Allocation Quota Reached", "allocation-quota-reached", "leave allocations behind"),
    (508, "Insufficient Capacity", "server-at-capacity", "relay port range"),
    (300, "Try Alternate", "alternate-server", "redirect"),
    (400, "Bad Request", "server-incompatible", "protocol"),
    (420, "Unknown Attribute", "server-incompatible", "update the server"),
    (500, "Server Error", "server-internal-error", "logs"),
    (600, "Global Failure", "server-error", "modern STUN server"),
    (487, "Role Conflict", "server-error", "role"),
    (699, "Odd", "server-error", "different server"),
    (470, "Whatever", "server-error", "credentials"),
])
def test_error_response_gives_the_verdict_of_its_code_with_its_remedy(
    code: int, text: str, verdict_id: str, words: str,
) -> None:
    verdicts = evaluate(evidence(result(turn(TURN_A), errors=(response(TURN_A, code, text),))))
    verdict = one(verdicts, verdict_id)
    assert f"{code} " in verdict.title
    assert f"{code} {text}" in verdict.detail
    assert words in verdict.hint
    assert verdict.urls == (TURN_A,)
    assert verdict.severity is Severity.FAIL


@pytest.mark.parametrize(("cause", "words"), [
    (Cause.MALFORMED, "really listens"),
    (Cause.INTERNAL, "--verbose"),
])
def test_malformed_and_internal_events_are_server_errors_named_by_cause(
    cause: Cause, words: str,
) -> None:
    event = response(STUN_A, code=SERVER_UNREACHABLE_CODE, text="garbage", cause=cause)
    verdicts = evaluate(evidence(result(stun(STUN_A), errors=(event,))))
    verdict = one(verdicts, "server-error")
    assert cause.value in verdict.title
    assert words in verdict.hint
    assert verdict.urls == (STUN_A,)
    assert not by_id(verdicts, "server-unreachable")


def test_recovered_stale_nonce_is_info_and_does_not_blame_authentication() -> None:
    stale = response(TURN_A, 438, "Stale Nonce")
    verdicts = evaluate(evidence(result(turn(TURN_A), srflx(TURN_A), relay(TURN_A),
                                        errors=(stale,))))
    verdict = one(verdicts, "stale-nonce")
    assert verdict.severity is Severity.INFO
    assert "authentication did not fail" in verdict.detail
    assert not by_id(verdicts, "turn-credentials-rejected")
    assert outcome(verdicts).ok


def test_followed_redirect_is_info() -> None:
    redirect = response(TURN_A, 300, "Try Alternate")
    verdicts = evaluate(evidence(result(turn(TURN_A), srflx(TURN_A), relay(TURN_A),
                                        errors=(redirect,))))
    assert one(verdicts, "alternate-server").severity is Severity.INFO


def test_error_response_from_a_server_that_still_worked_is_only_a_warning() -> None:
    forbidden = response(TURN_A, 403, "Forbidden")
    verdicts = evaluate(evidence(result(turn(TURN_A), srflx(TURN_A), relay(TURN_A),
                                        errors=(forbidden,))))
    verdict = one(verdicts, "forbidden")
    assert verdict.severity is Severity.WARN
    assert verdict.urls == (TURN_A,)
    assert not by_id(verdicts, "no-relay-candidates")
    assert outcome(verdicts).ok


def test_server_error_under_any_warns_when_another_server_of_its_kind_works() -> None:
    verdicts = evaluate(evidence(turn_ok(TURN_A),
                                 result(turn(TURN_B), errors=(response(TURN_B, 401),)),
                                 require=Requirement.ANY))
    verdict = one(verdicts, "turn-credentials-rejected")
    assert verdict.severity is Severity.WARN
    assert verdict.urls == (TURN_B,)
    assert outcome(verdicts).ok


# --- no servers, no host candidates ---------------------------------------------------------

def test_no_results_gives_no_servers_info_only() -> None:
    verdicts = evaluate(evidence())
    assert ids(verdicts) == [("no-servers", Severity.INFO)]
    assert verdicts[0].urls == ()
    assert outcome(verdicts).ok


def test_no_results_and_no_host_candidates_warns_and_informs() -> None:
    verdicts = evaluate(evidence(hosts=()))
    assert ids(verdicts) == [("no-host-candidates", Severity.WARN),
                             ("no-servers", Severity.INFO)]
    assert outcome(verdicts).ok


def test_no_host_candidates_warns_even_when_servers_work() -> None:
    verdicts = evaluate(evidence(stun_ok(), hosts=()))
    assert ids(verdicts) == [("no-host-candidates", Severity.WARN),
                             ("all-candidates-gathered", Severity.OK)]
    assert verdicts[0].urls == ()
    assert outcome(verdicts).ok


def test_host_candidates_present_gives_no_no_host_candidates_verdict() -> None:
    verdicts = evaluate(evidence(stun_ok(), hosts=(host_candidate(), host_candidate(LOCAL_V6))))
    assert not by_id(verdicts, "no-host-candidates")


# --- passed() and ordering ------------------------------------------------------------------

def _verdict(severity: Severity, verdict_id: str = "x") -> Verdict:
    return Verdict(id=verdict_id, severity=severity, title="t", detail="d", hint="h")


@pytest.mark.parametrize("severities", [
    [],
    [Severity.OK],
    [Severity.INFO, Severity.WARN, Severity.OK],
    [Severity.FAIL],
    [Severity.OK, Severity.FAIL],
    [Severity.WARN, Severity.INFO, Severity.FAIL, Severity.FAIL],
])
def test_passed_is_false_exactly_when_a_verdict_fails(severities: list[Severity]) -> None:
    verdicts = [_verdict(s) for s in severities]
    assert outcome(verdicts).ok is (Severity.FAIL not in severities)


def test_evaluate_orders_fail_warn_info_ok_keeping_rule_order_within_a_severity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    produced = [_verdict(Severity.OK, "ok-1"), _verdict(Severity.INFO, "info-1"),
                _verdict(Severity.FAIL, "fail-1"), _verdict(Severity.WARN, "warn-1"),
                _verdict(Severity.OK, "ok-2"), _verdict(Severity.FAIL, "fail-2"),
                _verdict(Severity.INFO, "info-2"), _verdict(Severity.WARN, "warn-2")]

    def first_rule(_: Evidence) -> list[Verdict]:
        return produced[:4]

    def second_rule(_: Evidence) -> list[Verdict]:
        return produced[4:]

    monkeypatch.setattr(rules, "RULES", (first_rule, second_rule))
    verdicts = evaluate(evidence())
    assert [v.id for v in verdicts] == ["fail-1", "fail-2", "warn-1", "warn-2",
                                        "info-1", "info-2", "ok-1", "ok-2"]


def test_real_mixed_run_puts_causes_first_then_consequences_then_findings() -> None:
    harmless = unreachable(STUN_A, Cause.UNREACHABLE, address=LOCAL_V6)
    verdicts = evaluate(evidence(
        result(stun(STUN_A), srflx(STUN_A), errors=(harmless,)),  # info
        stun_dead(STUN_B),  # warn under any: STUN_A works
        turn_dead(TURN_A),  # fail: no TURN works
        require=Requirement.ANY,
    ))
    roles = [v.role for v in verdicts]
    assert roles == sorted(roles, key=[Role.CAUSE, Role.CONSEQUENCE, Role.FINDING].index)
    order = {Severity.FAIL: 0, Severity.WARN: 1, Severity.INFO: 2, Severity.OK: 3}
    causes = [order[v.severity] for v in verdicts if v.role is Role.CAUSE]
    assert causes == sorted(causes)
    no_relay = next(v for v in verdicts if v.id == "no-relay-candidates")
    assert no_relay.role is Role.CONSEQUENCE
    assert no_relay.caused_by == ("server-unreachable@" + TURN_A,)
    assert {v.severity for v in verdicts} == {Severity.FAIL, Severity.WARN, Severity.INFO}
    by_url = {(v.id, v.urls): v.severity for v in verdicts}
    assert by_url[("server-unreachable", (STUN_A,))] is Severity.INFO
    assert by_url[("server-unreachable", (STUN_B,))] is Severity.WARN
    assert by_url[("server-unreachable", (TURN_A,))] is Severity.FAIL
    assert by_url[("no-relay-candidates", (TURN_A,))] is Severity.FAIL


def test_every_verdict_names_only_configured_urls() -> None:
    results = (stun_ok(STUN_A), stun_dead(STUN_B), turn_dead(TURN_A),
               result(turn(TURN_B), errors=(response(TURN_B, 403, "Forbidden"),)))
    configured = {r.server.url for r in results}
    for require in Requirement:
        for verdict in evaluate(evidence(*results, require=require)):
            assert verdict.urls, verdict
            assert set(verdict.urls) <= configured, verdict
