"""Servers reached over IPv6 literals in the lab namespace."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from iceprobe.gather import GatherOptions, gather
from iceprobe.model import CandidateType, Credentials
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
