"""TURN REST API credentials: making them, reading their expiry, and the verdicts."""

from __future__ import annotations

import pytest

from iceprobe.credentials import describe_duration, ephemeral_expiry, rest_credentials
from iceprobe.model import Candidate, CandidateType, ProbeResult, Severity
from iceprobe.rules import Evidence, evaluate
from iceprobe.urls import parse_server_url


@pytest.mark.parametrize("secret, user, ttl, separator, now, username, password", [
    # Expected passwords computed independently with
    # `echo -n USERNAME | openssl dgst -sha1 -hmac SECRET -binary | base64`.
    ("lab-rest-secret", "iceprobe", 3600, ":", 1_699_996_400.7, "1700000000:iceprobe",
     "VrJ+LicbQz1osfbD0LvwGH2lbjk="),
    ("s3cr3t", "bob", 3600, "-", 1_700_000_000, "1700003600-bob",
     "Xs4HXJ1+uf1K4M6UIIqa5MghaP0="),
    # pion/turn's NewLongTermAuthHandler: the username is the bare expiry (issue 16 item 2).
    ("lab-rest-secret", "", 3600, "", 1_699_996_400.7, "1700000000",
     "FsUGBNyBhTIuOBuE9vQHh3xLROg="),
])
def test_rest_credentials_match_coturns_formula(secret: str, user: str, ttl: int,
                                                separator: str, now: float, username: str,
                                                password: str) -> None:
    made = rest_credentials(secret, user, ttl, separator, now)
    assert (made.username, made.password) == (username, password)
    assert password not in repr(made) and secret not in repr(made)


@pytest.mark.parametrize("username, expiry", [
    ("1700000000:alice", 1700000000), ("1700000000", 1700000000),
    ("1700000000-bob", 1700000000), ("alice", None), ("12:alice", None),
    ("1700000000000:ms", None),
])
def test_ephemeral_usernames_are_recognised_by_their_leading_timestamp(
        username: str, expiry: int | None) -> None:
    found = ephemeral_expiry(username, 0)
    assert (found.expires_at if found else None) == expiry


def _turn_evidence(username: str, now: float) -> dict[str, Severity]:
    url = "turn:turn.example.com"
    relay = Candidate(CandidateType.RELAY, "udp", "45.10.20.31", 50000, "1", 1, 5.0,
                      url=url)
    result = ProbeResult(parse_server_url(url), (relay,), (), 5.0)
    evidence = Evidence((), (result,), turn_credentials=True,
                        ephemeral=ephemeral_expiry(username, now))
    return {v.id: v.severity for v in evaluate(evidence)}


def test_expired_username_is_turn_credentials_expired() -> None:
    found = _turn_evidence("1700000000:alice", 1_700_000_000 + 7200)
    assert found["turn-credentials-expired"] is Severity.FAIL


def test_far_future_username_warns_about_clock_skew() -> None:
    found = _turn_evidence("1800000000:alice", 1_700_000_000)
    assert found["turn-credentials-far-future"] is Severity.WARN
    assert "turn-credentials-expired" not in found


def test_valid_username_gives_no_expiry_verdict() -> None:
    found = _turn_evidence("1700003600:alice", 1_700_000_000)
    assert not {"turn-credentials-expired", "turn-credentials-far-future"} & set(found)


@pytest.mark.parametrize("seconds, text", [(7200, "2 hours"), (-61, "1 minute"),
                                           (1, "1 second"), (3 * 86400, "3 days")])
def test_durations_read_naturally(seconds: float, text: str) -> None:
    assert describe_duration(seconds) == text
