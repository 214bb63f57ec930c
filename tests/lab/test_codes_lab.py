"""Error codes that real coturn produces, as the gatherer records them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest

from iceprobe.codes import lookup
from iceprobe.gather import GatherOptions, gather, probes
from iceprobe.gather.channel import ProbeFailure
from iceprobe.gather.udp import UdpChannel, open_udp
from iceprobe.model import CandidateType, Cause, Credentials, GatherReport, Severity
from iceprobe.rules import Evidence, evaluate
from iceprobe.urls import parse_server_url
from tests.lab.netns import LabNetwork, public_address
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn

pytestmark = pytest.mark.lab

GOOD = Credentials(LAB_USER, LAB_PASSWORD)
StartCoturn = Callable[..., Coturn]


def verdict_severities(report: GatherReport) -> dict[str, Severity]:
    evidence = Evidence(report.host_candidates, report.results, turn_credentials=True)
    return {v.id: v.severity for v in evaluate(evidence)}


def probe(*urls: str) -> GatherReport:
    specs = [parse_server_url(u) for u in urls]
    return asyncio.run(gather(specs, GatherOptions(timeout=3, credentials=GOOD)))


async def _hold(server: Coturn, count: int) -> list[UdpChannel]:
    """Allocations held open (never released) for the duration of a test."""
    held = []
    for _ in range(count):
        channel = await open_udp(server.ip, (server.ip, server.port))
        await probes.allocate(channel, GOOD, time.monotonic() + 3)
        held.append(channel)
    return held


def probe_while_holding(server: Coturn, count: int) -> GatherReport:
    async def run() -> GatherReport:
        held = await _hold(server, count)
        try:
            return await gather([parse_server_url(server.url("turn"))],
                                GatherOptions(timeout=3, credentials=GOOD))
        finally:
            for channel in held:
                channel.close()
    return asyncio.run(run())


def test_user_quota_reached_is_486(lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn("--user-quota=1")
    report = probe_while_holding(server, 1)
    [event] = report.errors
    assert (event.error_code, event.cause) == (486, Cause.RESPONSE)
    assert "Quota" in event.error_text
    assert verdict_severities(report)["allocation-quota-reached"] is Severity.FAIL


def test_relay_ports_exhausted_is_508(lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn("--min-port=59000", "--max-port=59001")
    report = probe_while_holding(server, 2)
    [event] = report.errors
    assert (event.error_code, event.cause) == (508, Cause.RESPONSE)
    assert verdict_severities(report)["server-at-capacity"] is Severity.FAIL


def test_no_udp_relay_is_442(lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn("--no-udp-relay")
    report = probe(server.url("turn"))
    [event] = report.errors
    assert (event.error_code, event.cause) == (442, Cause.RESPONSE)
    assert verdict_severities(report)["transport-not-supported"] is Severity.FAIL


def test_second_allocate_on_one_5_tuple_is_437_even_without_integrity(
        lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn()

    async def run() -> ProbeFailure:
        channel = await open_udp(server.ip, (server.ip, server.port))
        try:
            await probes.allocate(channel, GOOD, time.monotonic() + 3)
            with pytest.raises(ProbeFailure) as failure:
                await probes.allocate(channel, GOOD, time.monotonic() + 3)
            return failure.value
        finally:
            channel.close()

    start = time.monotonic()
    failure = asyncio.run(run())
    assert (failure.code, failure.cause) == (437, Cause.RESPONSE)
    assert time.monotonic() - start < 2  # answered, not a timeout


def test_try_alternate_is_followed_once_and_both_are_reported(
        lab: LabNetwork, coturn: StartCoturn) -> None:
    target = coturn()
    redirecting = coturn(f"--alternate-server={target.ip}:{target.port}")
    url = redirecting.url("turn")
    report = probe(url)

    [redirect] = report.errors
    assert (redirect.error_code, redirect.cause) == (300, Cause.RESPONSE)
    assert redirect.server_port == redirecting.port
    assert f"{target.ip}:{target.port}" in redirect.error_text
    relays = [c for c in report.candidates if c.type is CandidateType.RELAY]
    assert len(relays) == 1 and relays[0].url == url
    assert report.results[0].ok
    assert verdict_severities(report)["alternate-server"] is Severity.INFO


def test_permission_to_a_denied_peer_is_403_forbidden(lab: LabNetwork,
                                                      coturn: StartCoturn) -> None:
    denied = "198.18.0.99"
    server = coturn(f"--denied-peer-ip={denied}")

    async def run() -> ProbeFailure:
        channel = await open_udp(server.ip, (server.ip, server.port))
        try:
            allocation = await probes.allocate(channel, GOOD, time.monotonic() + 3)
            with pytest.raises(ProbeFailure) as failure:
                await probes.create_permission(channel, allocation, (denied, 5000),
                                               time.monotonic() + 3)
            await probes.release(channel, allocation, GOOD)
            return failure.value
        finally:
            channel.close()

    failure = asyncio.run(run())
    assert (failure.code, failure.cause, failure.text) == (403, Cause.RESPONSE, "Forbidden IP")
    assert lookup(failure.code).verdict == "forbidden"


def test_release_after_the_nonce_went_stale_recovers_from_438(
        lab: LabNetwork, coturn: StartCoturn, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="iceprobe")
    server = coturn("--stale-nonce=1", "--user-quota=1")

    async def run() -> bool:
        channel = await open_udp(server.ip, (server.ip, server.port))
        try:
            allocation = await probes.allocate(channel, GOOD, time.monotonic() + 3)
            await asyncio.sleep(2.2)  # the nonce is now stale: the Refresh meets a 438
            return await probes.release(channel, allocation, GOOD)
        finally:
            channel.close()

    assert asyncio.run(run()) is True
    assert "438 stale nonce on release" in caplog.text
    time.sleep(1.3)  # coturn frees the quota on its 1 s timer
    report = probe(server.url("turn"))  # quota 1: only possible if the release worked
    assert report.errors == ()



def test_private_relay_behind_a_public_listener_is_relay_address_private(
        lab: LabNetwork, coturn: StartCoturn) -> None:
    """The classic cloud mistake: listening on a public address, relaying on a private one,
    and no external-ip to map the one onto the other."""
    with public_address() as public:
        server = coturn(ip=public, relay_ip=lab.ipv4)
        report = probe(server.url("turn"))
    relays = {c.address for c in report.candidates if c.type is CandidateType.RELAY}
    assert relays == {lab.ipv4}
    assert verdict_severities(report)["relay-address-private"] is Severity.FAIL


def test_external_ip_mapping_clears_relay_address_private(
        lab: LabNetwork, coturn: StartCoturn) -> None:
    with public_address() as public:
        server = coturn(f"--external-ip={public}/{lab.ipv4}", ip=public, relay_ip=lab.ipv4)
        report = probe(server.url("turn"))
    relays = {c.address for c in report.candidates if c.type is CandidateType.RELAY}
    assert relays == {public}
    assert "relay-address-private" not in verdict_severities(report)
