"""Issue 16: the rules read servers other than coturn right, from what each did in the run
(the challenge state, its SOFTWARE, its other probes). Hand-built results, no network; the
lab side is tests/lab/test_interop_lab.py."""

from __future__ import annotations

import dataclasses
from typing import Any

from iceprobe.credentials import ephemeral_expiry
from iceprobe.model import (
    SERVER_UNREACHABLE_CODE,
    Cause,
    Confidence,
    ErrorEvent,
    ProbeResult,
    Role,
    Scheme,
    ServerSpec,
    Severity,
    Transport,
    Verdict,
)
from iceprobe.rules import Evidence, evaluate
from tests.unit.test_rules import (
    LOCAL_V4,
    TURN_A,
    by_id,
    host_candidate,
    one,
    relay,
    result,
    srflx,
)

HOST = "turn.example.com"
TURN_URL = f"turn:{HOST}:3478"
TCP_URL = f"turn:{HOST}:3478?transport=tcp"
STUN_URL = f"stun:{HOST}:3478"


def turn_spec(url: str = TURN_URL, transport: Transport = Transport.UDP) -> ServerSpec:
    return ServerSpec(url, Scheme.TURN, HOST, 3478, transport)


def stun_spec() -> ServerSpec:
    return ServerSpec(STUN_URL, Scheme.STUN, HOST, 3478, Transport.UDP)


def error(code: int, text: str = "", cause: Cause = Cause.RESPONSE, *,
          after_challenge: bool | None = True, family: int | None = None,
          problem: str | None = None, url: str = TURN_URL) -> ErrorEvent:
    return ErrorEvent(url=url, address=LOCAL_V4, port=50000, server_address="192.0.2.7",
                      server_port=3478, error_code=code, error_text=text, cause=cause,
                      elapsed_ms=4.0, problem=problem, requested_family=family,
                      after_challenge=after_challenge)


def timeout(*, family: int | None = None, problem: str | None = None,
            url: str = TURN_URL) -> ErrorEvent:
    return error(SERVER_UNREACHABLE_CODE, "No answer from 192.0.2.7:3478 to the Allocate "
                 "request within 2.0 s (4 sends)", Cause.TIMEOUT, after_challenge=None,
                 family=family, problem=problem, url=url)


def judge(*results: ProbeResult, **options: Any) -> list[Verdict]:
    return evaluate(Evidence((host_candidate(),), results, **options))


def text(verdicts: list[Verdict]) -> str:
    return " ".join(f"{v.title} {v.detail} {v.hint}" for v in verdicts)


# --- item 1: pion's bare 400 ----------------------------------------------------------------

def test_bare_400_after_the_challenge_is_probably_the_credentials() -> None:
    verdicts = judge(result(turn_spec(), errors=(error(400),)))
    rejected = one(verdicts, "turn-credentials-rejected")
    assert rejected.severity is Severity.FAIL
    assert rejected.confidence is Confidence.LIKELY
    assert "probably the credentials" in rejected.detail.lower()
    assert "400 (no reason phrase)" in rejected.detail
    assert "pion/turn" in rejected.detail and "no SOFTWARE" in rejected.detail
    assert "error 400" not in text(verdicts)
    assert not by_id(verdicts, "server-incompatible")


def test_bare_400_names_the_software_the_server_gave() -> None:
    verdicts = judge(dataclasses.replace(result(turn_spec(), errors=(error(400),)),
                                         software="LiveKit-turn 1.0"))
    assert "'LiveKit-turn 1.0'" in one(verdicts, "turn-credentials-rejected").detail


def test_400_before_any_credentials_is_not_read_as_the_credentials() -> None:
    for after in (False, None):  # no credentials sent, or not known (a recording)
        verdicts = judge(result(turn_spec(), errors=(error(400, after_challenge=after),)))
        assert one(verdicts, "server-incompatible").confidence is Confidence.CERTAIN
        assert not by_id(verdicts, "turn-credentials-rejected")


def test_400_from_a_server_that_answers_401_for_bad_credentials_is_not_the_credentials() -> None:
    probe = dataclasses.replace(result(turn_spec(), errors=(error(400),)),
                                software="Coturn-4.6.1 'Gorst'")
    verdicts = judge(probe)
    assert by_id(verdicts, "server-incompatible")
    assert not by_id(verdicts, "turn-credentials-rejected")


def test_400_with_a_specific_reason_is_not_the_credentials() -> None:
    verdicts = judge(result(turn_spec(), errors=(error(400, "Missing REQUESTED-TRANSPORT"),)))
    assert "400 Missing REQUESTED-TRANSPORT" in one(verdicts, "server-incompatible").detail
    assert not by_id(verdicts, "turn-credentials-rejected")


def test_400_while_the_same_credentials_got_a_relay_from_the_same_host_is_not_them() -> None:
    udp = result(turn_spec(), errors=(error(400),))
    tcp = result(turn_spec(TCP_URL, Transport.TCP), relay(TCP_URL))
    verdicts = judge(udp, tcp)
    incompatible = one(verdicts, "server-incompatible")
    assert "Not the credentials" in incompatible.detail and TCP_URL in incompatible.detail
    assert not by_id(verdicts, "turn-credentials-rejected")


def test_expired_credentials_quote_the_400_the_server_really_answered() -> None:
    expired = ephemeral_expiry("1000000000:alice", 1000007200.0)
    verdicts = judge(result(turn_spec(), errors=(error(400),)), ephemeral=expired)
    detail = one(verdicts, "turn-credentials-expired").detail
    assert "answered 400 (no reason phrase)" in detail
    assert "401" not in detail


def test_expired_credentials_quote_a_401_when_that_is_what_came() -> None:
    expired = ephemeral_expiry("1000000000:alice", 1000007200.0)
    verdicts = judge(result(turn_spec(), errors=(error(401, "Unauthorized"),)),
                     ephemeral=expired)
    assert "answered 401 Unauthorized" in one(verdicts, "turn-credentials-expired").detail


# --- item 3: a STUN server behind turn: ------------------------------------------------------

def wrong_method(url: str = TURN_URL) -> ErrorEvent:
    return error(SERVER_UNREACHABLE_CODE, "192.0.2.7:3478 answered the Allocate request with a "
                 "Binding success response (same transaction id)", Cause.WRONG_METHOD,
                 after_challenge=None, problem="binding-success", url=url)


def test_binding_success_to_an_allocate_is_not_a_turn_server() -> None:
    implied = result(stun_spec(), srflx(STUN_URL))
    verdicts = judge(result(turn_spec(), errors=(wrong_method(),)), implied)
    verdict = one(verdicts, "not-a-turn-server")
    assert verdict.severity is Severity.FAIL and verdict.role is Role.CAUSE
    assert "answers STUN but is not a TURN server" in verdict.detail
    assert STUN_URL in verdict.hint  # it works as stun:, and the hint says so
    assert not by_id(verdicts, "server-error") and not by_id(verdicts, "server-unreachable")


def test_wrong_method_reply_to_a_stun_binding_is_a_server_error() -> None:
    event = dataclasses.replace(wrong_method(STUN_URL), problem="allocate-success")
    verdicts = judge(result(stun_spec(), errors=(event,)))
    assert by_id(verdicts, "server-error")
    assert not by_id(verdicts, "not-a-turn-server")


# --- item 4: mismatched transaction ids ----------------------------------------------------

def test_replies_with_mismatched_ids_are_not_unreachable_nor_a_firewall() -> None:
    event = timeout(problem="mismatched-transaction-ids", url=STUN_URL)
    verdicts = judge(result(stun_spec(), errors=(event,)))
    verdict = one(verdicts, "mismatched-transaction-ids")
    assert verdict.severity is Severity.FAIL
    assert "transaction id" in verdict.detail
    assert "middlebox" in verdict.hint and "firewall" not in verdict.hint.replace(
        "Not a firewall", "").replace("NAT, firewall,", "")
    assert not by_id(verdicts, "server-unreachable")


def test_a_plain_timeout_is_still_unreachable() -> None:
    verdicts = judge(result(stun_spec(), errors=(timeout(url=STUN_URL),)))
    assert by_id(verdicts, "server-unreachable")
    assert not by_id(verdicts, "mismatched-transaction-ids")


# --- item 7: an Allocate with REQUESTED-ADDRESS-FAMILY never answered ------------------------

def test_ignored_family_request_next_to_a_working_binding_is_not_unreachable() -> None:
    verdicts = judge(result(turn_spec(), errors=(timeout(family=6),)),
                     result(stun_spec(), srflx(STUN_URL)), relay_family="ipv6")
    verdict = one(verdicts, "relay-family-request-ignored")
    assert verdict.severity is Severity.FAIL
    assert verdict.confidence is Confidence.LIKELY  # only the Binding says the server works
    assert "STUN Binding on the same port" in verdict.detail
    assert not by_id(verdicts, "server-unreachable")


def test_ignored_family_request_next_to_a_relay_is_a_warning_and_not_relay_family_ignored(
) -> None:
    probe = result(turn_spec(), relay(TURN_URL), errors=(timeout(family=6),))
    verdicts = judge(probe, relay_family="both")
    verdict = one(verdicts, "relay-family-request-ignored")
    assert verdict.severity is Severity.WARN and verdict.confidence is Confidence.CERTAIN
    assert not by_id(verdicts, "relay-family-ignored")
    assert not by_id(verdicts, "server-unreachable")
    assert "without a 440" not in text(verdicts)


def test_family_request_to_a_server_silent_to_everything_is_unreachable() -> None:
    verdicts = judge(result(turn_spec(), errors=(timeout(family=6),)), relay_family="ipv6")
    assert by_id(verdicts, "server-unreachable")
    assert not by_id(verdicts, "relay-family-request-ignored")


def test_family_request_answered_with_an_ipv4_relay_is_still_relay_family_ignored() -> None:
    verdicts = judge(result(turn_spec(), relay(TURN_URL)), relay_family="ipv6")
    assert one(verdicts, "relay-family-ignored").severity is Severity.WARN


# --- item 8: an open relay -------------------------------------------------------------------

def test_allocation_without_credentials_is_an_open_relay_warning() -> None:
    probe = dataclasses.replace(result(turn_spec(), relay(TURN_URL)),
                                unauthenticated_allocation=True)
    verdicts = judge(probe, no_auth=True, turn_credentials=False)
    verdict = one(verdicts, "open-relay")
    assert verdict.severity is Severity.WARN and verdict.role is Role.CAUSE
    assert "--no-auth" in verdict.detail
    assert not by_id(verdicts, "turn-credentials-missing")


def test_a_challenged_allocation_is_no_open_relay() -> None:
    assert not by_id(judge(result(turn_spec(), relay(TURN_URL))), "open-relay")


def test_no_auth_against_a_server_that_challenges_says_it_requires_credentials() -> None:
    probe = result(turn_spec(), errors=(error(401, "Unauthorized", after_challenge=False),))
    verdicts = judge(probe, no_auth=True, turn_credentials=False)
    verdict = one(verdicts, "turn-credentials-missing")
    assert "requires credentials" in verdict.title
    assert "not an open relay" in verdict.detail
    assert not by_id(verdicts, "turn-credentials-rejected")


def test_a_challenge_without_realm_is_not_read_as_missing_credentials_without_no_auth() -> None:
    probe = result(turn_spec(), errors=(error(401, "Unauthorized", after_challenge=False),))
    assert by_id(judge(probe), "turn-credentials-rejected")


# --- item 9: no usable interface at all ------------------------------------------------------

def test_no_interface_at_all_says_no_candidates_not_only_host_candidates() -> None:
    no_address = error(SERVER_UNREACHABLE_CODE, "this machine has no IPv4 address to reach "
                       "turn-a.example.com from", Cause.SOCKET, after_challenge=None,
                       url=TURN_A)
    verdicts = evaluate(Evidence((), (result(turn_spec(TURN_A), errors=(no_address,)),)))
    assert not by_id(verdicts, "only-host-candidates")
    verdict = one(verdicts, "no-host-candidates")
    assert verdict.severity is Severity.FAIL and verdict.title == "No candidates at all"


def test_no_host_candidates_but_a_relay_is_still_only_a_warning() -> None:
    verdicts = evaluate(Evidence((), (result(turn_spec(), relay(TURN_URL)),)))
    assert one(verdicts, "no-host-candidates").severity is Severity.WARN
