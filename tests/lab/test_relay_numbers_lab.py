"""`relay`'s numbers (issue 15): Ctrl-C keeps what was measured (item 5), and a slow "ICE
connected" is explained by the retransmitted connectivity check behind it (item 6)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from tests.lab.netns import LabNetwork
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn
from tests.lab.test_interrupt_lab import CHANNEL_OPEN, Watched

pytestmark = pytest.mark.lab

#: aioice's STUN retransmission timer (stun.RETRY_RTO): a check sent again goes out 500 ms
#: after the first send at the earliest.
AIOICE_RTO_MS = 500


def test_sigint_during_the_bulk_transfer_keeps_the_measurements(
        lab: LabNetwork, coturn: Callable[..., Coturn]) -> None:
    server = coturn()
    run = Watched("relay", "--webrtc", "--turn", server.url(), "-u", LAB_USER, "-p", LAB_PASSWORD,
                  "--duration", "20", "--timeout", "60", "--json")
    run.wait_for(CHANNEL_OPEN)
    time.sleep(2)  # echoed, and some way into the bulk transfer
    out, err, _ = run.stop(signal.SIGINT)
    assert run.process.returncode == 130, err
    assert "Traceback" not in err and LAB_PASSWORD not in out + err
    [check] = json.loads(out)["relay"]
    assert check["interrupted"] is True and check["ok"] is False
    assert check["attempted"] is True
    assert check["failed_step"] == "bulk" and "interrupted" in check["failure"]
    assert 0 < check["ice_connected_ms"] <= check["dtls_connected_ms"] \
        <= check["channel_open_ms"] < check["duration_ms"]
    assert check["pair"] is not None
    echo = check["echo"]
    assert echo["sent"] == echo["received"] == 20 and echo["rtt_ms"] is not None
    # The transfer under way when the signal came: its rate so far.
    assert check["throughput_bps"]["up"] > 0
    assert check["throughput_bps"]["down"] is None


def test_ice_connected_time_is_explained_by_retransmitted_checks(
        lab: LabNetwork, coturn: Callable[..., Coturn]) -> None:
    """Measured on this lab: about one run in three connects after ~515 ms instead of
    ~40 ms, always with one retransmitted check. Each run's number must be explained: a
    run past the retransmission timer counts the retransmission and says so, and a
    retransmission can only have delayed the connection past that timer."""
    server = coturn()
    seen = []
    for run in range(8):
        if run:
            time.sleep(1.1)  # coturn frees released allocations' quota on a 1 s timer
        done = subprocess.run(
            [sys.executable, "-m", "iceprobe", "relay", "--webrtc", "--turn", server.url(), "-u",
             LAB_USER, "-p", LAB_PASSWORD, "--duration", "0.2", "--count", "3",
             "--timeout", "6", "--json"], capture_output=True, text=True, timeout=60)
        [check] = json.loads(done.stdout)["relay"]
        connected, resent = check["ice_connected_ms"], check["ice_check_retransmissions"]
        assert connected is not None, check
        seen.append((connected, resent))
        if resent:
            assert connected >= AIOICE_RTO_MS, check
            assert check["ice_note"] and "sent again" in check["ice_note"]
            assert "500 ms" in check["ice_note"]
        else:
            assert check["ice_note"] is None
        if connected >= AIOICE_RTO_MS:
            assert resent >= 1, check  # the slow run is explained
    print(f"\nICE connected (ms, checks sent again) over {len(seen)} runs: {seen}")
