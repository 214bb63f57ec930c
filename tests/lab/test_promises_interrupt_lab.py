"""Promises: a second Ctrl-C quits at once; a large --concurrency raises the open-files
limit instead of running out of descriptors."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.lab.netns import LabNetwork
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn
from tests.lab.test_interrupt_lab import DelayProxy, iceprobe, silent_servers
from tests.schema import validated

pytestmark = pytest.mark.lab

#: A second signal ends the process at once: the interpreter's exit, no release, no report.
AT_ONCE = 0.5


def test_a_second_ctrl_c_quits_at_once(lab: LabNetwork, coturn: Callable[..., Coturn]) -> None:
    # A slow server (0.8 s each way): after the first SIGINT, the release of the allocation
    # in flight would take its whole 1 s budget. The second SIGINT must not wait for it.
    server = coturn()
    proxy = DelayProxy(lab.ipv4, (server.ip, server.port), delay=0.8)
    try:
        process = iceprobe("gather", "--turn", f"turn:{lab.ipv4}:{proxy.port}",
                           "-u", LAB_USER, "-p", LAB_PASSWORD, "--timeout", "20", "--json")
        assert proxy.authenticated.wait(15), "the authenticated Allocate never went out"
        process.send_signal(signal.SIGINT)
        time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, err = process.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        proxy.close()
    assert process.returncode == 130, err
    assert took < AT_ONCE, f"quit {took:.2f} s after the second SIGINT"
    assert "stopping at once" in err and "Traceback" not in err


def low_open_files_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))


def test_a_concurrency_above_the_open_files_limit_raises_it(lab: LabNetwork,
                                                            tmp_path: Path) -> None:
    count = 300
    with silent_servers(lab.ipv4, count) as servers, open(tmp_path / "out", "w+") as out:
        args = [arg for s in servers for arg in ("--stun", f"stun:{lab.ipv4}:{s.port}")]
        process = subprocess.run(
            [sys.executable, "-m", "iceprobe", "gather", *args, "--timeout", "1",
             "--concurrency", str(count), "--json"],
            stdout=out, stderr=subprocess.STDOUT, text=True, timeout=60,
            preexec_fn=low_open_files_limit)
        out.seek(0)
        text = out.read()
    assert process.returncode == 1, text[-2000:]
    assert "Too many open files" not in text and "Traceback" not in text
    document = validated(text, "gather")
    # Every server was probed at once and timed out; none failed for want of a socket.
    assert [s["status"] for s in document["servers"]] == ["failed"] * count
    assert {e["cause"] for e in document["errors"]} == {"timeout"}
