"""Issue 15: verdicts a user can trust. Causes before consequences and linked to them,
identical findings grouped, hints that point the right way, claims no stronger than the
evidence, and one status derived in one place. Pure code: hand-built results, no network."""

from __future__ import annotations

import signal

from iceprobe.constants import Status
from iceprobe.model import (
    SERVER_UNREACHABLE_CODE,
    Cause,
    Confidence,
    ErrorEvent,
    GatherReport,
    ProbeResult,
    Recording,
    Requirement,
    Role,
    ServerSpec,
    Severity,
    StateChange,
)
from iceprobe.render.report import Report
from iceprobe.rules import Evidence, evaluate, group_verdicts
from iceprobe.status import combined, outcome
from iceprobe.urls import parse_server_url
from tests.unit.test_rules import (
    LOCAL_V4,
    LOCAL_V6,
    STUN_A,
    TURN_A,
    evidence,
    host_candidate,
    one,
    relay,
    result,
    srflx,
    turn_dead,
    unreachable,
)


def spec(url: str) -> ServerSpec:
    return parse_server_url(url)


def icmp(url: str, server: str) -> ErrorEvent:
    return ErrorEvent(url=url, address=LOCAL_V4, port=50000, server_address=server,
                      server_port=3478, error_code=SERVER_UNREACHABLE_CODE,
                      error_text=f"{server}:3478 is unreachable: ICMP port unreachable "
                                 "(nothing listens on that UDP port)",
                      cause=Cause.UNREACHABLE, elapsed_ms=1.0)


def unreachable_servers(count: int) -> list[ProbeResult]:
    results = []
    for index in range(count):
        url = f"stun:198.51.100.{index + 1}:3478"
        results.append(ProbeResult(spec(url), (), (icmp(url, f"198.51.100.{index + 1}"),),
                                   2.0))
    return results


# --- item 9: causes first, consequences linked, identical findings grouped ----------------

def test_two_hundred_unreachable_servers_are_one_cause_and_its_consequences() -> None:
    verdicts = evaluate(Evidence((host_candidate(),), tuple(unreachable_servers(200))))
    groups = group_verdicts(verdicts)
    cause = groups[0]
    assert cause.first.role is Role.CAUSE
    assert len(cause.members) == 200
    assert cause.title == "200 servers unreachable (701 unreachable)"
    assert len(cause.urls) == 200
    assert [g.first.id for g in groups] == ["server-unreachable", "only-host-candidates"]
    assert groups[1].causes == (cause.title,)
    # JSON keeps one entry per verdict, each with the group key.
    assert len({v.group for v in verdicts if v.id == "server-unreachable"}) == 1
    assert len({v.key for v in verdicts}) == len(verdicts)


def test_different_causes_are_not_grouped_together() -> None:
    timeout = result(spec("stun:198.51.100.9"), errors=(
        unreachable("stun:198.51.100.9", Cause.TIMEOUT, text="no answer within 5 s"),))
    verdicts = evaluate(Evidence((host_candidate(),), (*unreachable_servers(3), timeout)))
    titles = [g.title for g in group_verdicts(verdicts)]
    assert "3 servers unreachable (701 unreachable)" in titles
    assert "stun:198.51.100.9 unreachable (701 timeout)" in titles


def test_a_closed_turn_port_is_one_cause_before_its_consequences() -> None:
    turn_url, stun_url = "turn:198.51.100.1:3478?transport=udp", "stun:198.51.100.1:3478"
    results = (ProbeResult(spec(turn_url), (), (icmp(turn_url, "198.51.100.1"),), 2.0),
               ProbeResult(spec(stun_url), (), (icmp(stun_url, "198.51.100.1"),), 2.0,
                           implied_by=turn_url))
    verdicts = evaluate(Evidence((host_candidate(),), results, turn_credentials=True))
    groups = group_verdicts(verdicts)
    assert [g.first.role for g in groups] == [Role.CAUSE, Role.CONSEQUENCE, Role.CONSEQUENCE]
    assert groups[0].title == "2 servers unreachable (701 unreachable)"
    for consequence in groups[1:]:
        assert consequence.causes == (groups[0].title,)


def test_ice_failed_in_a_recording_follows_from_the_server_failure() -> None:
    tcp = "turn:198.51.100.1:443?transport=tcp"
    event = ErrorEvent(tcp, None, None, None, None, 701, "TURN allocate request timed out.",
                       Cause.TIMEOUT, 39000.0)
    recording = Recording("chrome-webrtc-internals", ice_transport_policy="relay", events=5,
                          states=(StateChange("ice", "checking", 416.0),
                                  StateChange("ice", "failed", 39800.0)))
    verdicts = evaluate(Evidence((host_candidate(),), (result(spec(tcp), errors=(event,)),),
                                 turn_credentials=True, recording=recording))
    first = verdicts[0]
    assert first.id == "server-unreachable"
    assert first.role is Role.CAUSE
    consequences = [v for v in verdicts[1:] if v.role is Role.CONSEQUENCE]
    assert {v.id for v in consequences} == {"ice-failed", "ice-policy-mismatch",
                                            "no-relay-candidates", "only-host-candidates"}
    for later in consequences:
        assert first.key in later.caused_by
    # No relay was gathered: the hint does not send the reader to the other side.
    ice = one(verdicts, "ice-failed")
    assert "fix the causes above" in ice.hint
    assert "other side" not in ice.hint


# --- item 2: hints that point the right way --------------------------------------------------

def test_an_ipv6_lookup_error_says_the_name_has_no_aaaa_record() -> None:
    dns = unreachable(STUN_A, Cause.DNS, address=LOCAL_V6, text="DNS lookup failed")
    verdicts = evaluate(evidence(result(spec(STUN_A), srflx(STUN_A), errors=(dns,))))
    harmless = one(verdicts, "server-unreachable")
    assert harmless.severity is Severity.INFO
    assert "has no IPv6 (AAAA) address" in harmless.detail
    assert "reached only over IPv4" not in harmless.detail


def test_a_tcp_443_timeout_does_not_advise_tcp_on_443() -> None:
    url = "turn:turn.example.org:443?transport=tcp"
    verdicts = evaluate(evidence(result(spec(url), errors=(
        unreachable(url, Cause.TIMEOUT, text="TCP connection timed out"),))))
    hint = one(verdicts, "server-unreachable").hint
    assert "443" not in hint.replace("TCP 443", "")
    assert "UDP" not in hint
    assert "TCP 443" in hint


def test_a_udp_timeout_advises_tcp_or_tls_on_443() -> None:
    url = "turn:turn.example.org:3478?transport=udp"
    verdicts = evaluate(evidence(result(spec(url), errors=(unreachable(url),))))
    hint = one(verdicts, "server-unreachable").hint
    assert "UDP 3478" in hint
    assert "TCP or TLS on port 443" in hint


def test_tls_to_a_plain_turn_port_says_the_port_speaks_plain_turn_not_the_certificate(
) -> None:
    tls = "turns:turn.example.org:3478?transport=tcp"
    tcp = "turn:turn.example.org:3478?transport=tcp"
    handshake = ErrorEvent(tls, LOCAL_V4, 50000, "192.0.2.1", 3478, 701,
                           "TLS handshake failed: wrong version number", Cause.TLS, 3.0,
                           problem="handshake")
    plain = result(spec(tcp), srflx(tcp), relay(tcp))
    verdicts = evaluate(Evidence((host_candidate(),), (result(spec(tls), errors=(handshake,)),
                                                       plain), Requirement.ANY, matrix=True))
    hint = one(verdicts, "server-unreachable").hint
    assert "certificate" not in hint.lower().replace("no certificate was judged", "")
    assert "speaks plain TURN over TCP, not TLS" in hint


def test_a_budget_too_short_to_start_says_raise_timeout_not_concurrency() -> None:
    unstarted = ProbeResult(spec(STUN_A), (), (), 0.1, unfinished=(
        "not probed from 1 of 1 local address: the 0.0001 s budget (--timeout) ran out "
        "before the probe could start"))
    hint = one(evaluate(evidence(unstarted)), "not-probed").hint
    assert "--timeout" in hint
    assert "--concurrency" not in hint


def test_no_error_events_means_no_pointer_to_error_events() -> None:
    silent = result(spec(STUN_A))  # no candidate, no error (a recording that holds none)
    recording = Recording("firefox-about-webrtc", errors_recorded=False, events=3)
    verdicts = evaluate(Evidence((host_candidate(),), (silent,), recording=recording))
    for verdict in verdicts:
        assert "error events" not in verdict.hint.replace("no error event", ""), verdict


# --- item 3: claims no stronger than the evidence --------------------------------------------

def test_only_host_and_no_relay_say_what_is_at_risk_not_what_is_certain() -> None:
    verdicts = evaluate(evidence(turn_dead(TURN_A)))
    for verdict_id in ("only-host-candidates", "no-relay-candidates"):
        detail = one(verdicts, verdict_id).detail
        assert "could not reach" not in detail and "will not connect" not in detail
        assert "at risk" in detail
        assert "relay" in detail


# --- item 4: stuns: ---------------------------------------------------------------------------

def test_a_passing_stuns_server_warns_that_browsers_use_plain_udp_stun_instead() -> None:
    url = "stuns:stun.example.org:5349"
    mapped = srflx(url)
    verdicts = evaluate(evidence(result(spec(url), mapped)))
    warning = one(verdicts, "stuns-not-tls-in-browsers")
    assert warning.severity is Severity.WARN
    assert warning.urls == (url,)
    assert "stun:host:port" in warning.hint
    assert "over UDP" in warning.detail and "3478" in warning.detail


# --- item 5: one status --------------------------------------------------------------------

def _report(results: tuple[ProbeResult, ...], recording: Recording | None = None,
            stopped_by: int | None = None) -> Report:
    found = Evidence((host_candidate(),), results, recording=recording)
    gathered = GatherReport(None, 1.0, (host_candidate(),), results)
    return Report(gathered, tuple(evaluate(found)), Requirement.EACH, recording=recording,
                  stopped_by=stopped_by)


def test_a_recording_with_no_events_is_inconclusive_and_its_servers_not_recorded() -> None:
    empty = Recording("chrome-webrtc-internals", events=0)
    report = _report((result(spec(STUN_A)), result(spec(TURN_A))), recording=empty)
    assert report.outcome.status is Status.INCONCLUSIVE
    assert not report.ok
    assert report.outcome.exit_code == 1
    assert [report.status_of(r) for r in report.gather.results] == ["not-recorded"] * 2


def test_an_interrupted_run_is_never_ok_and_exits_with_the_signal() -> None:
    report = _report((result(spec(STUN_A), srflx(STUN_A)),), stopped_by=signal.SIGINT)
    assert report.outcome.status is Status.INTERRUPTED
    assert not report.ok
    assert report.outcome.exit_code == 130


def test_a_server_that_only_an_info_verdict_mentions_is_unconfirmed_not_failed() -> None:
    other = result(spec("stun:198.51.100.7"))  # no candidate, no error, other srflx seen
    recording = Recording("chrome-webrtc-internals", events=4)
    report = _report((result(spec(STUN_A), srflx(STUN_A)), other), recording=recording)
    assert one(list(report.verdicts), "srflx-from-another-server").severity is Severity.INFO
    assert report.status_of(other) == "unconfirmed"
    assert report.ok


def test_a_failed_server_row_always_has_a_warn_or_fail_verdict() -> None:
    report = _report((turn_dead(TURN_A),))
    assert report.status_of(report.gather.results[0]) == "failed"
    assert report.outcome.status is Status.FAIL


def test_the_worst_session_decides_the_combined_outcome() -> None:
    passing = outcome(())
    failing = outcome(evaluate(evidence(turn_dead(TURN_A))))
    assert combined([passing, failing]).status is Status.FAIL
    assert combined([passing]).ok
    assert combined([passing, outcome((), judged=False)]).status is Status.INCONCLUSIVE


# --- item 6: numbers ---------------------------------------------------------------------

def test_a_sub_millisecond_slow_ms_threshold_is_shown_as_given() -> None:
    late = result(spec(STUN_A), srflx(STUN_A))  # srflx at 20 ms
    verdicts = evaluate(Evidence((host_candidate(),), (late,), slow_ms=0.5))
    assert "(threshold 0.5 ms)" in one(verdicts, "slow-server").detail


# --- item 11: wording ---------------------------------------------------------------------

def test_verdict_texts_have_clean_grammar_in_every_scenario() -> None:
    chrome_timeout = ErrorEvent(TURN_A, None, None, None, None, 701,
                                "TURN allocate request timed out.", Cause.TIMEOUT, 39750.0)
    scenarios = [
        evidence(result(spec(TURN_A), errors=(chrome_timeout,))),
        evidence(turn_dead(TURN_A), result(spec(STUN_A), srflx(STUN_A))),
        Evidence((host_candidate(),), tuple(unreachable_servers(3))),
        evidence(result(spec(STUN_A), srflx(STUN_A), errors=(
            unreachable(STUN_A, Cause.DNS, address=LOCAL_V6, text="lookup failed."),))),
    ]
    for found in scenarios:
        for verdict in evaluate(found):
            for text in (verdict.title, verdict.detail, verdict.hint):
                assert ".." not in text.replace("…", ""), text
                assert "(s)" not in text and "(es)" not in text, text
                assert "  " not in text, text


# --- every verdict says how sure it is -------------------------------------------------------

def test_an_inferred_verdict_says_likely_and_an_ambiguous_cause_says_possible() -> None:
    other = result(spec("stun:198.51.100.7"))
    recording = Recording("chrome-webrtc-internals", events=4)
    inferred = evaluate(Evidence((host_candidate(),), (result(spec(STUN_A), srflx(STUN_A)),
                                                       other), recording=recording))
    assert one(inferred, "srflx-from-another-server").confidence is Confidence.LIKELY
    tls = "turns:turn.example.org:5349?transport=tcp"
    failed = ErrorEvent(tls, None, None, None, None, 701, "Failed to establish connection",
                        Cause.CONNECT, 300.0)
    ambiguous = evaluate(Evidence((host_candidate(),), (result(spec(tls), errors=(failed,)),),
                                  recording=recording))
    verdict = one(ambiguous, "server-unreachable")
    assert verdict.confidence is Confidence.POSSIBLE
    assert verdict.hint.startswith("Not certain which")
    assert "certificate" in verdict.hint
    shown = evaluate(evidence(turn_dead(TURN_A)))
    assert {v.confidence for v in shown} == {Confidence.CERTAIN}


def test_a_matrix_with_a_way_out_leads_with_it_and_folds_each_row_of_blocked_ports() -> None:
    from iceprobe.matrix import matrix_specs

    results = []
    for grid_spec in matrix_specs(["turn.example.org"], [3478, 443, 5349]):
        if grid_spec.transport.value == "tcp" and grid_spec.port == 443:
            url = grid_spec.url
            results.append(ProbeResult(grid_spec, (srflx(url), relay(url)), (), 9.0))
            continue
        cause = Cause.UNREACHABLE if grid_spec.transport.value == "udp" else Cause.REFUSED
        failure = unreachable(grid_spec.url, cause, text="nothing listens there")
        results.append(ProbeResult(grid_spec, (), (failure,), 3.0))
    verdicts = evaluate(Evidence((host_candidate(),), tuple(results), Requirement.ANY,
                                 turn_credentials=True, matrix=True))
    groups = group_verdicts(verdicts)
    assert groups[0].first.id == "transport-matrix"
    assert groups[0].first.severity is Severity.OK
    # The grid already shows each cell: no warning repeats it, and each row is one entry.
    assert not [v for v in verdicts if v.severity in (Severity.WARN, Severity.FAIL)]
    titles = [g.title for g in groups]
    assert "3 UDP ports of the grid unreachable (701 unreachable)" in titles
    assert "2 TCP ports of the grid unreachable (701 refused)" in titles
    udp = next(g for g in groups if g.title.startswith("3 UDP"))
    assert "UDP 3478, 443 and 5349" in udp.first.hint
