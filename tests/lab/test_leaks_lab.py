"""No leaked allocations: every probe releases its allocation (Refresh, LIFETIME 0), so a
user with a quota of one allocation can probe again and again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from iceprobe.gather import GatherOptions, gather
from iceprobe.model import CandidateType, Credentials
from iceprobe.urls import parse_server_url
from tests.lab.netns import LabNetwork
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn

pytestmark = pytest.mark.lab

PROBES = 50
#: coturn frees a released allocation's quota on a 1 s timer (shared/LAB.md): probes are
#: spaced by a little more, so that only a leak, never the timer, can cause a 486.
SPACING = 1.1


def test_fifty_probes_with_a_quota_of_one_all_get_a_relay(lab: LabNetwork,
                                                           coturn: Callable[..., Coturn]) -> None:
    server = coturn("--user-quota=1")
    specs = [parse_server_url(server.url("turn"))]
    options = GatherOptions(timeout=3, credentials=Credentials(LAB_USER, LAB_PASSWORD))
    relays = []
    for probe in range(PROBES):
        if probe:
            time.sleep(SPACING)
        report = asyncio.run(gather(specs, options))
        assert report.errors == (), (probe, report.errors)
        relays.append(sum(c.type is CandidateType.RELAY for c in report.candidates))
    assert relays == [1] * PROBES
