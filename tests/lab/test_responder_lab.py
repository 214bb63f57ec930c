"""Codes coturn cannot produce, from a scripted responder of our own."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable

import pytest
from aioice import stun

from iceprobe.gather import GatherOptions, gather
from iceprobe.model import CandidateType, Cause, Credentials, GatherReport, Severity
from iceprobe.rules import Evidence, evaluate
from iceprobe.urls import parse_server_url
from tests.lab.netns import LabNetwork
from tests.lab.responder import Script, ScriptedResponder, error_response, success_response

pytestmark = pytest.mark.lab

StartResponder = Callable[[Script], ScriptedResponder]
CREDENTIALS = Credentials("alice", "responder-pw")


def probe(url: str) -> GatherReport:
    # TURN only: the scripted responder is no STUN server (no TURN as STUN).
    return asyncio.run(gather([parse_server_url(url)], GatherOptions(
        timeout=2, credentials=CREDENTIALS, turn_as_stun=False)))


def verdicts(report: GatherReport) -> dict[str, Severity]:
    evidence = Evidence(report.host_candidates, report.results, turn_credentials=True)
    return {v.id: v.severity for v in evaluate(evidence)}


@pytest.mark.parametrize("code, reason, verdict", [
    (400, "Bad Request", "server-incompatible"), (420, "Unknown Attribute", "server-incompatible"),
    (500, "Server Error", "server-internal-error"), (430, "Stale Credentials", "server-error"),
    (431, "Integrity Check Failure", "turn-credentials-rejected"),
    (432, "Missing Username", "turn-credentials-missing"), (433, "Use TLS", "server-error"),
    (403, "Forbidden", "forbidden"), (405, "Mobility Forbidden", "forbidden"),
    (437, "Allocation Mismatch", "allocation-mismatch"),
    (441, "Wrong Credentials", "turn-credentials-rejected"),
    (487, "Role Conflict", "server-error"),
    (600, "Global Failure", "server-error"), (499, "Something New", "server-error"),
    (699, "Odd", "server-error"),
])
def test_stun_error_code_is_recorded_with_its_reason_and_verdict(
        lab: LabNetwork, responder: StartResponder, code: int, reason: str,
        verdict: str) -> None:
    server = responder(lambda request, peer: error_response(request, code, reason + "\0\0"))
    report = probe(f"stun:{server.ip}:{server.port}")
    [event] = report.errors
    assert (event.error_code, event.error_text, event.cause) == (code, reason, Cause.RESPONSE)
    assert verdicts(report)[verdict] is Severity.FAIL


def test_reason_phrase_that_is_not_utf8_still_gives_the_code(
        lab: LabNetwork, responder: StartResponder) -> None:
    def script(request: stun.Message, peer: tuple[str, int]) -> bytes:
        value = struct.pack("!HBB", 0, 4, 20) + b"Bad \xff\xfe"
        attribute = struct.pack("!HH", 0x0009, len(value)) + value + b"\0\0"
        return struct.pack("!HHI12s", 0x0111, len(attribute), stun.COOKIE,
                           request.transaction_id) + attribute

    server = responder(script)
    [event] = probe(f"stun:{server.ip}:{server.port}").errors
    assert (event.error_code, event.cause) == (420, Cause.RESPONSE)
    assert event.error_text.startswith("Bad ")


def test_stale_nonce_retried_with_new_nonce_is_recorded_and_succeeds(
        lab: LabNetwork, responder: StartResponder) -> None:
    def script(request: stun.Message, peer: tuple[str, int]) -> bytes:
        nonce = request.attributes.get("NONCE")
        if request.message_method == stun.Method.REFRESH:
            return success_response(request, LIFETIME=0)
        if nonce is None:
            return error_response(request, 401, "Unauthorized", REALM="lab", NONCE=b"first")
        if nonce == b"first":
            return error_response(request, 438, "Stale Nonce", REALM="lab", NONCE=b"second")
        return success_response(request, XOR_RELAYED_ADDRESS=(lab.ipv4, 50123),
                                XOR_MAPPED_ADDRESS=peer, LIFETIME=600)

    server = responder(script)
    report = probe(f"turn:{server.ip}:{server.port}")
    [event] = report.errors
    assert (event.error_code, event.error_text) == (438, "Stale Nonce")
    [relay] = [c for c in report.candidates if c.type is CandidateType.RELAY]
    assert (relay.address, relay.port) == (lab.ipv4, 50123)
    assert report.results[0].ok
    methods = [r.message_method for r in server.requests]
    assert methods == [stun.Method.ALLOCATE] * 3 + [stun.Method.REFRESH]
    assert server.requests[-1].attributes["NONCE"] == b"second"
    found = verdicts(report)
    assert found["stale-nonce"] is Severity.INFO
    assert "turn-credentials-rejected" not in found


def _turn_script(lab: LabNetwork, stale_ports: set[int] | None) -> Script:
    """A TURN server whose 5-tuples from `stale_ports` (the first port seen, when the set is
    empty; every port, for None) still hold an allocation: 437 there, a relay elsewhere."""
    def script(request: stun.Message, peer: tuple[str, int]) -> bytes:
        if request.message_method == stun.Method.REFRESH:
            return success_response(request, LIFETIME=0)
        if stale_ports is not None and not stale_ports:
            stale_ports.add(peer[1])
        if stale_ports is None or peer[1] in stale_ports:
            return error_response(request, 437, "Allocation Mismatch")
        if request.attributes.get("NONCE") is None:
            return error_response(request, 401, "Unauthorized", REALM="lab", NONCE=b"n")
        return success_response(request, XOR_RELAYED_ADDRESS=(lab.ipv4, 50124),
                                XOR_MAPPED_ADDRESS=peer, LIFETIME=600)
    return script


def test_a_437_on_a_reused_local_port_is_retried_from_another_port(
        lab: LabNetwork, responder: StartResponder) -> None:
    """The server still holds an allocation of the first local port's 5-tuple (an earlier
    client of that port, coturn's released allocation of about a second ago): that is
    nobody's fault, so the Allocate goes again from another port, and no 437 is reported."""
    stale: set[int] = set()
    server = responder(_turn_script(lab, stale))
    report = probe(f"turn:{server.ip}:{server.port}")
    assert report.errors == (), report.errors
    assert report.results[0].ok
    ports = {port for port in stale}
    assert len(ports) == 1
    assert "allocation-mismatch" not in verdicts(report)


def test_a_437_that_comes_again_from_another_port_is_reported(
        lab: LabNetwork, responder: StartResponder) -> None:
    server = responder(_turn_script(lab, None))
    report = probe(f"turn:{server.ip}:{server.port}")
    assert [(e.error_code, e.error_text) for e in report.errors] == [
        (437, "Allocation Mismatch")]
    allocates = [r for r in server.requests if r.message_method == stun.Method.ALLOCATE]
    assert len(allocates) == 2, "one Allocate from each of two local ports"
    assert verdicts(report)["allocation-mismatch"] is Severity.FAIL


def test_an_answer_after_600_ms_is_slow_server(lab: LabNetwork,
                                               responder: StartResponder) -> None:
    def script(request: stun.Message, peer: tuple[str, int]) -> bytes:
        time.sleep(0.6)
        return success_response(request, XOR_MAPPED_ADDRESS=peer)

    server = responder(script)
    report = probe(f"stun:{server.ip}:{server.port}")
    assert report.errors == ()
    assert verdicts(report)["slow-server"] is Severity.WARN


def test_server_ignoring_the_ipv6_relay_request_is_reported(
        lab: LabNetwork, responder: StartResponder) -> None:
    def script(request: stun.Message, peer: tuple[str, int]) -> bytes:
        if request.message_method == stun.Method.REFRESH:
            return success_response(request, LIFETIME=0)
        if "NONCE" not in request.attributes:
            return error_response(request, 401, "Unauthorized", REALM="lab", NONCE=b"n")
        return success_response(request, XOR_RELAYED_ADDRESS=(lab.ipv4, 50124),
                                XOR_MAPPED_ADDRESS=peer, LIFETIME=600)

    server = responder(script)
    report = asyncio.run(gather([parse_server_url(f"turn:{server.ip}:{server.port}")],
                                GatherOptions(timeout=2, credentials=CREDENTIALS,
                                              turn_as_stun=False, relay_families=(6,))))
    assert report.errors == ()
    evidence = Evidence(report.host_candidates, report.results, turn_credentials=True,
                        relay_family="ipv6")
    found = {v.id: v.severity for v in evaluate(evidence)}
    assert found["relay-family-ignored"] is Severity.WARN
