"""The code table: every required code, correct names and references, sane fallbacks."""

from __future__ import annotations

import pytest

from iceprobe import codes
from iceprobe.model import Cause
from iceprobe.rules import VERDICT_IDS

REQUIRED = {
    300: ("Try Alternate", "RFC 8489"), 400: ("Bad Request", "RFC 8489"),
    401: ("Unauthenticated", "RFC 8489"), 420: ("Unknown Attribute", "RFC 8489"),
    438: ("Stale Nonce", "RFC 8489"), 500: ("Server Error", "RFC 8489"),
    403: ("Forbidden", "RFC 8656"), 437: ("Allocation Mismatch", "RFC 8656"),
    440: ("Address Family not Supported", "RFC 8656"), 441: ("Wrong Credentials", "RFC 8656"),
    442: ("Unsupported Transport Protocol", "RFC 8656"),
    443: ("Peer Address Family Mismatch", "RFC 8656"),
    486: ("Allocation Quota Reached", "RFC 8656"), 508: ("Insufficient Capacity", "RFC 8656"),
    430: ("Stale Credentials", "RFC 3489"), 431: ("Integrity Check Failure", "RFC 3489"),
    432: ("Missing Username", "RFC 3489"), 433: ("Use TLS", "RFC 3489"),
    600: ("Global Failure", "RFC 3489"), 405: ("Mobility Forbidden", "RFC 8016"),
    446: ("Connection Already Exists", "RFC 6062"),
    447: ("Connection Timeout or Failure", "RFC 6062"), 487: ("Role Conflict", "RFC 8445"),
    701: ("Server not reachable", "W3C WebRTC"),
}


@pytest.mark.parametrize("code", sorted(REQUIRED))
def test_required_code_has_its_entry(code: int) -> None:
    info = codes.lookup(code)
    name, rfc = REQUIRED[code]
    assert (info.code, info.name, info.generic) == (code, name, False)
    assert rfc in info.reference
    assert info.meaning and info.remedy and info.emitted_by


def test_table_is_sorted_unique_and_every_verdict_exists() -> None:
    numbers = [i.code for i in codes.CODES]
    assert numbers == sorted(set(numbers))
    for info in (*codes.CODES, *codes.CAUSES_701):
        assert info.verdict in VERDICT_IDS, info


@pytest.mark.parametrize("cause", [c for c in Cause if c is not Cause.RESPONSE])
def test_every_701_cause_has_its_own_entry(cause: Cause) -> None:
    info = codes.for_cause(cause)
    assert (info.code, info.cause) == (701, cause.value)
    assert codes.match_text(cause.value) == info


def test_a_response_has_no_701_entry() -> None:
    with pytest.raises(ValueError):
        codes.for_cause(Cause.RESPONSE)


@pytest.mark.parametrize("code", [-1, 1000])
def test_lookup_refuses_what_is_not_a_code(code: int) -> None:
    with pytest.raises(ValueError):
        codes.lookup(code)


@pytest.mark.parametrize("text, code", [("Unauthorized", 401), ("stale nonce", 438),
                                        ("Forbidden IP", 403),
                                        ("Allocation Quota Reached.", 486)])
def test_reason_phrases_match_their_code(text: str, code: int) -> None:
    info = codes.match_text(text)
    assert info is not None and info.code == code


@pytest.mark.parametrize("text", ["", "nonsense", "701 maybe"])
def test_unknown_text_matches_nothing(text: str) -> None:
    assert codes.match_text(text) is None
