"""The code table: every required code with its RFC name, reference and verdict; the class
fallbacks; the 701 causes; text matching; and that importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

from iceprobe import codes
from iceprobe.codes import CodeInfo
from iceprobe.model import Cause
from iceprobe.rules import VERDICT_IDS

#: code: (name, RFC that the reference must name, verdict)
REQUIRED: dict[int, tuple[str, str, str]] = {
    300: ("Try Alternate", "RFC 8489", "alternate-server"),
    400: ("Bad Request", "RFC 8489", "server-incompatible"),
    401: ("Unauthenticated", "RFC 8489", "turn-credentials-rejected"),
    403: ("Forbidden", "RFC 8656", "forbidden"),
    405: ("Mobility Forbidden", "RFC 8016", "forbidden"),
    420: ("Unknown Attribute", "RFC 8489", "server-incompatible"),
    430: ("Stale Credentials", "RFC 3489", "server-error"),
    431: ("Integrity Check Failure", "RFC 3489", "turn-credentials-rejected"),
    432: ("Missing Username", "RFC 3489", "turn-credentials-missing"),
    433: ("Use TLS", "RFC 3489", "server-error"),
    437: ("Allocation Mismatch", "RFC 8656", "allocation-mismatch"),
    438: ("Stale Nonce", "RFC 8489", "stale-nonce"),
    440: ("Address Family not Supported", "RFC 8656", "address-family-not-supported"),
    441: ("Wrong Credentials", "RFC 8656", "turn-credentials-rejected"),
    442: ("Unsupported Transport Protocol", "RFC 8656", "transport-not-supported"),
    443: ("Peer Address Family Mismatch", "RFC 8656", "server-error"),
    446: ("Connection Already Exists", "RFC 6062", "server-error"),
    447: ("Connection Timeout or Failure", "RFC 6062", "server-error"),
    486: ("Allocation Quota Reached", "RFC 8656", "allocation-quota-reached"),
    487: ("Role Conflict", "RFC 8445", "server-error"),
    500: ("Server Error", "RFC 8489", "server-internal-error"),
    508: ("Insufficient Capacity", "RFC 8656", "server-at-capacity"),
    600: ("Global Failure", "RFC 3489", "server-error"),
    701: ("Server not reachable", "W3C WebRTC", "server-unreachable"),
}

#: TURN codes first registered by RFC 5766 or RFC 6156, which RFC 8656 obsoleted.
PREDECESSOR = {403: "RFC 5766", 437: "RFC 5766", 441: "RFC 5766", 442: "RFC 5766",
               486: "RFC 5766", 508: "RFC 5766", 440: "RFC 6156", 443: "RFC 6156"}

ALL_ENTRIES = (*codes.CODES, *codes.CAUSES_701)
EMITTERS = {"STUN server", "TURN server", "browser"}


@pytest.mark.parametrize("code", sorted(REQUIRED))
def test_required_code_has_its_entry(code: int) -> None:
    name, rfc, verdict = REQUIRED[code]
    info = codes.lookup(code)
    assert (info.code, info.name, info.verdict) == (code, name, verdict)
    assert not info.generic and info.cause is None
    assert info.reference.startswith(rfc), info.reference
    assert info in codes.CODES


@pytest.mark.parametrize("code", sorted(PREDECESSOR))
def test_turn_references_name_the_rfc_before_8656(code: int) -> None:
    reference = codes.lookup(code).reference
    assert reference.startswith("RFC 8656 section 19 (")
    assert PREDECESSOR[code] in reference


def test_401_mentions_its_old_name() -> None:
    assert "Unauthorized" in codes.lookup(401).meaning


def test_486_explains_allocations_left_behind() -> None:
    remedy = codes.lookup(486).remedy
    assert "600 s" in remedy and "coturn" in remedy and "expire" in remedy


def test_701_is_a_browser_code_from_the_w3c_event() -> None:
    info = codes.lookup(701)
    assert info.reference == "W3C WebRTC, RTCPeerConnectionIceErrorEvent"
    assert info.emitted_by == ("browser",)


def test_codes_are_sorted_and_unique() -> None:
    numbers = [info.code for info in codes.CODES]
    assert numbers == sorted(set(numbers))
    assert all(info.cause is None and not info.generic for info in codes.CODES)


@pytest.mark.parametrize("info", ALL_ENTRIES, ids=lambda i: f"{i.code}-{i.cause or i.name}")
def test_every_entry_is_complete(info: CodeInfo) -> None:
    assert info.name.strip() and info.reference.strip()
    assert info.meaning.strip() and info.remedy.strip()
    assert info.emitted_by and set(info.emitted_by) <= EMITTERS
    assert info.verdict in VERDICT_IDS


@pytest.mark.parametrize("code, name, verdict", [
    (0, "Not a valid STUN error code", "server-error"),
    (299, "Not a valid STUN error code", "server-error"),
    (301, "Unknown 3xx (redirect)", "server-error"),
    (399, "Unknown 3xx (redirect)", "server-error"),
    (404, "Unknown 4xx (client-side problem)", "server-error"),
    (499, "Unknown 4xx (client-side problem)", "server-error"),
    (501, "Unknown 5xx (server problem)", "server-error"),
    (699, "Unknown 6xx (global failure)", "server-error"),
    (700, "Unknown 7xx (browser-side failure)", "server-unreachable"),
    (799, "Unknown 7xx (browser-side failure)", "server-unreachable"),
    (800, "Not a valid STUN error code", "server-error"),
    (999, "Not a valid STUN error code", "server-error"),
])
def test_codes_missing_from_the_table_fall_back_to_their_class(code: int, name: str,
                                                               verdict: str) -> None:
    info = codes.lookup(code)
    assert (info.code, info.name, info.verdict, info.generic) == (code, name, verdict, True)
    assert info.meaning and info.remedy and info.verdict in VERDICT_IDS


def test_7xx_fallback_is_the_browsers() -> None:
    info = codes.lookup(702)
    assert info.emitted_by == ("browser",) and "W3C WebRTC" in info.reference
    assert "browser" in info.meaning.lower()


@pytest.mark.parametrize("code", [-1, 1000, -701, 10_000])
def test_lookup_refuses_what_is_not_a_code(code: int) -> None:
    with pytest.raises(ValueError):
        codes.lookup(code)


@pytest.mark.parametrize("cause", [c for c in Cause if c is not Cause.RESPONSE])
def test_every_701_cause_has_its_own_entry(cause: Cause) -> None:
    info = codes.for_cause(cause)
    assert (info.code, info.cause, info.generic) == (701, cause.value, False)
    assert info in codes.CAUSES_701
    expected = {Cause.MALFORMED: "server-error", Cause.INTERNAL: "server-error",
                # A Binding success to an Allocate: the server speaks STUN, not TURN.
                Cause.WRONG_METHOD: "not-a-turn-server"}
    assert info.verdict == expected.get(cause, "server-unreachable")


def test_causes_701_follow_cause_order_and_differ() -> None:
    assert [i.cause for i in codes.CAUSES_701] == [c.value for c in Cause
                                                   if c is not Cause.RESPONSE]
    assert len({i.meaning for i in codes.CAUSES_701}) == len(codes.CAUSES_701)
    assert all(i.code == 701 for i in codes.CAUSES_701)


def test_unreachable_and_timeout_say_how_they_differ() -> None:
    assert "ICMP" in codes.for_cause(Cause.UNREACHABLE).meaning
    timeout = codes.for_cause(Cause.TIMEOUT).meaning
    assert "budget" in timeout and "40 s" in timeout


def test_a_response_has_no_701_entry() -> None:
    with pytest.raises(ValueError):
        codes.for_cause(Cause.RESPONSE)


@pytest.mark.parametrize("text, cause", [
    ("STUN host lookup received error.", "dns"),
    ("TURN host lookup received error.", "dns"),
    ("Failed to create TURN client socket.", "socket"),
    ("STUN server address is incompatible.", "socket"),
    ("TURN allocate request timed out.", "timeout"),
    ("STUN binding request timed out.", "timeout"),
    ("Failed to connect to TURN server.", "refused"),
    ("Failed to establish connection", "connect"),
    ("failed to establish connection.", "connect"),
    ("TURN server connection closed", "closed"),
    ("TURN server connection closed.", "closed"),
    ("  stun   HOST lookup received error  ", "dns"),
    ("turn allocate request timed out...", "timeout"),
])
def test_browser_error_texts_match_their_cause(text: str, cause: str) -> None:
    info = codes.match_text(text)
    assert info is not None
    assert (info.code, info.cause) == (701, cause)


@pytest.mark.parametrize("cause", [c for c in Cause if c is not Cause.RESPONSE])
def test_cause_names_match_their_entry(cause: Cause) -> None:
    assert codes.match_text(cause.value) == codes.for_cause(cause)
    assert codes.match_text(cause.value.upper()) == codes.for_cause(cause)


@pytest.mark.parametrize("text, code", [
    ("Unauthorized", 401), ("Unauthenticated", 401), ("unauthorized.", 401),
    ("Stale Nonce", 438), ("stale  nonce", 438), ("Forbidden IP", 403), ("Forbidden", 403),
    ("Allocation Quota Reached.", 486), ("allocation mismatch", 437),
    ("Wrong Credentials", 441), ("Insufficient Capacity", 508), ("Try Alternate", 300),
    ("Server Error", 500), ("Role Conflict", 487), ("Server not reachable", 701),
])
def test_reason_phrases_and_names_match_their_code(text: str, code: int) -> None:
    info = codes.match_text(text)
    assert info is not None
    assert (info.code, info.cause, info.generic) == (code, None, False)


@pytest.mark.parametrize("text", ["", "   ", ".", "nonsense", "701 maybe", "response",
                                  "Unauthorized please", "lookup received error"])
def test_unknown_text_matches_nothing(text: str) -> None:
    assert codes.match_text(text) is None


def test_importing_codes_stays_light() -> None:
    script = ("import sys, iceprobe.codes\n"
              "heavy = [m for m in ('aioice', 'aiortc', 'rich', 'click') if m in sys.modules]\n"
              "print(','.join(heavy))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == ""
