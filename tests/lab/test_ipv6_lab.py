"""Servers reached over IPv6 literals in the lab namespace."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from iceprobe.gather import GatherOptions, gather
from iceprobe.model import CandidateType, Cause, Credentials, GatherReport, Severity
from iceprobe.rules import Evidence, evaluate
from iceprobe.urls import parse_server_url
from tests.lab.netns import LabNetwork
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn

pytestmark = pytest.mark.lab


def test_stun_and_turn_over_an_ipv6_literal(lab: LabNetwork,
                                            coturn: Callable[..., Coturn]) -> None:
    # Listening on IPv6, relaying on IPv4 too: browsers ask for an IPv4 relay by default.
    server = coturn(f"--relay-ip={lab.ipv4}", ip=lab.ipv6)
    stun, turn = server.url("stun"), server.url("turn")
    assert stun.startswith(f"stun:[{lab.ipv6}]:")
    specs = [parse_server_url(stun), parse_server_url(turn)]
    report = asyncio.run(gather(specs, GatherOptions(
        timeout=3, credentials=Credentials(LAB_USER, LAB_PASSWORD))))

    assert report.errors == ()
    srflx = {(c.url, c.address) for c in report.candidates if c.type is CandidateType.SRFLX}
    assert (stun, lab.ipv6) in srflx
    [relay] = [c for c in report.candidates if c.type is CandidateType.RELAY]
    assert relay.address == lab.ipv4
    assert relay.related_address == lab.ipv6


def _gather_turn(server: Coturn, families: tuple[int | None, ...]) -> GatherReport:
    spec = parse_server_url(server.url("turn"))
    return asyncio.run(gather([spec], GatherOptions(
        timeout=3, credentials=Credentials(LAB_USER, LAB_PASSWORD), relay_families=families)))


def test_relay_family_both_gives_an_ipv4_and_an_ipv6_relay(
        lab: LabNetwork, coturn: Callable[..., Coturn]) -> None:
    server = coturn(f"--relay-ip={lab.ipv6}")  # relays on both families
    report = _gather_turn(server, (None, 6))
    assert report.errors == ()
    relays = sorted(c.address for c in report.candidates if c.type is CandidateType.RELAY)
    assert relays == sorted([lab.ipv4, lab.ipv6])


def test_ipv6_relay_from_an_ipv4_only_server_is_440_and_harmless_with_both(
        lab: LabNetwork, coturn: Callable[..., Coturn]) -> None:
    server = coturn()  # relays on IPv4 only
    only_v6 = _gather_turn(server, (6,))
    [event] = only_v6.errors
    assert (event.error_code, event.cause) == (440, Cause.RESPONSE)
    both = _gather_turn(server, (None, 6))
    [event] = both.errors
    assert event.error_code == 440
    evidence = Evidence(both.host_candidates, both.results, turn_credentials=True,
                        relay_family="both")
    found = {v.id: v.severity for v in evaluate(evidence)}
    assert found["address-family-not-supported"] is Severity.INFO
    assert "relay-family-ignored" not in found
