"""Interrupts and bounds, end to end on a real `iceprobe` process: SIGINT and SIGTERM in the
middle of probing a silent server stop it in an orderly way (results so far, marked as
interrupted, exit 130 or 143, within about a second); an allocation whose authenticated
Allocate is still in flight when the signal comes is released (proved with coturn's
--user-quota=1, and shown to be needed by SIGKILL); 500 silent servers are probed with
bounded descriptors and wall time."""

from __future__ import annotations

import heapq
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.lab.netns import LabNetwork
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn, SilentServer
from tests.schema import validated

pytestmark = pytest.mark.lab

#: What a stopped run may take after the signal: the release budget (1 s), the interpreter's
#: exit and the report. The issue asks for "about 1 s".
STOP_BOUND = 1.5
#: coturn frees a released allocation's quota on a 1 s timer (shared/LAB.md).
QUOTA_TIMER = 1.5
MESSAGE_INTEGRITY = 0x0008


def iceprobe(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "iceprobe", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def first_datagram(sock: socket.socket, budget: float = 15.0) -> None:
    sock.settimeout(budget)
    sock.recvfrom(2048)


class Watched:
    """An iceprobe run with -v whose trace (stderr) is read as it comes, so that a test can
    signal it at a known step instead of after a guessed sleep (a loaded machine starts
    slower: a signal before the probe began stops it before it has anything to show)."""

    def __init__(self, *args: str) -> None:
        import threading

        self.process = iceprobe(*args, "-v")
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, text: str, budget: float = 60.0) -> None:
        """Until a trace line contains `text` (fails after `budget` seconds)."""
        deadline = time.monotonic() + budget
        with self._changed:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no trace line with {text!r}:\n"
                                         + "".join(self.lines)[-3000:])
                self._changed.wait(min(left, 0.5))

    def stop(self, signum: int) -> tuple[str, str, float]:
        """Send the signal; stdout, the whole trace, and how long the process took to end."""
        self.process.send_signal(signum)
        sent = time.monotonic()
        assert self.process.stdout is not None
        out = self.process.stdout.read()
        self.process.wait(timeout=10)
        took = time.monotonic() - sent
        self._reader.join(timeout=5)
        return out, "".join(self.lines), took


#: The trace line after which both relay peers are connected (the check handles signals).
CHANNEL_OPEN = "data channel open"


def stop_with(process: subprocess.Popen[str], signum: int) -> tuple[str, str, float]:
    process.send_signal(signum)
    sent = time.monotonic()
    out, err = process.communicate(timeout=10)
    return out, err, time.monotonic() - sent


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_a_signal_stops_a_probe_of_a_silent_server_in_order(
        lab: LabNetwork, coturn: Callable[..., Coturn], silent_server: SilentServer,
        signum: int, as_json: bool) -> None:
    server = coturn()
    silent = f"stun:{lab.ipv4}:{silent_server.port}"
    process = iceprobe("gather", "--stun", silent, "--turn", server.url("turn"),
                       "-u", LAB_USER, "-p", LAB_PASSWORD, "--timeout", "30",
                       *(["--json"] if as_json else []))
    first_datagram(silent_server.sock)  # probing the silent server now
    time.sleep(0.5)  # coturn has long answered
    out, err, took = stop_with(process, signum)

    assert process.returncode == 128 + signum, err
    assert took < STOP_BOUND, f"stopped {took:.2f} s after the signal"
    assert "Traceback" not in err and LAB_PASSWORD not in out + err
    if as_json:
        document = validated(out, "gather")
        assert document["interrupted"] is True
        statuses = {s["url"]: s["status"] for s in document["servers"]}
        assert statuses == {silent: "interrupted", server.url("turn"): "ok",
                            server.url("stun"): "ok"}  # the TURN server as a STUN server
        assert "relay" in {c["type"] for c in document["candidates"]}
        assert "interrupted" in {v["id"] for v in document["verdicts"]}
    else:
        assert "INTERRUPTED (results so far)" in out
        # The servers table comes first: each server's first line is its row.
        silent_row = next(line for line in out.splitlines() if silent in line)
        assert "interrupted" in silent_row, out
        turn_row = next(line for line in out.splitlines() if server.url("turn") in line)
        assert " ok " in turn_row, out


def has_integrity(data: bytes) -> bool:
    """A STUN message carrying MESSAGE-INTEGRITY: the authenticated Allocate."""
    offset = 20
    while offset + 4 <= len(data):
        kind, length = struct.unpack_from("!HH", data, offset)
        if kind == MESSAGE_INTEGRITY:
            return True
        offset += 4 + length + (-length % 4)
    return False


class DelayProxy:
    """A UDP relay between one client and a server that holds every datagram for `delay`
    seconds each way, so that a request is still in flight when the test acts; sets
    `authenticated` when the client's authenticated Allocate passes."""

    def __init__(self, ip: str, server: tuple[str, int], delay: float) -> None:
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((ip, 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind((ip, 0))
        self.port = int(self.front.getsockname()[1])
        self.server, self.delay = server, delay
        self.client: tuple[str, int] | None = None
        self.authenticated = threading.Event()
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        queue: list[tuple[float, int, bool, bytes]] = []  # due, order, to the server?, data
        order = 0
        while not self.closing.is_set():
            wait = min([0.05, *(max(0.0, q[0] - time.monotonic()) for q in queue[:1])])
            readable, _, _ = select.select([self.front, self.back], [], [], wait)
            for sock in readable:
                data, peer = sock.recvfrom(4096)
                upstream = sock is self.front
                if upstream:
                    self.client = peer
                    if has_integrity(data) and data[:2] == b"\x00\x03":
                        self.authenticated.set()
                order += 1
                heapq.heappush(queue, (time.monotonic() + self.delay, order, upstream, data))
            while queue and queue[0][0] <= time.monotonic():
                _, _, upstream, data = heapq.heappop(queue)
                if upstream:
                    self.back.sendto(data, self.server)
                elif self.client is not None:
                    self.front.sendto(data, self.client)
        # Deliver what is still queued (a release sent just before the client exited).
        for _, _, upstream, data in sorted(queue):
            if upstream:
                self.back.sendto(data, self.server)

    def close(self) -> None:
        self.closing.set()
        self.thread.join(timeout=5)
        self.front.close()
        self.back.close()


def quota_free(server: Coturn) -> bool:
    """Whether the lab user can allocate on `server` again (its quota is one)."""
    time.sleep(QUOTA_TIMER)
    done = subprocess.run([sys.executable, "-m", "iceprobe", "gather", "--turn", server.url(),
                           "-u", LAB_USER, "-p", LAB_PASSWORD, "--timeout", "3", "--json"],
                          capture_output=True, text=True, timeout=30)
    document = validated(done.stdout, "gather")
    codes = [e["error_code"] for e in document["errors"]]
    relays = [c for c in document["candidates"] if c["type"] == "relay"]
    assert relays or codes == [486], (codes, done.stderr)
    return bool(relays)


@pytest.mark.parametrize("signum, released", [
    (signal.SIGINT, True), (signal.SIGTERM, True),
    # The control: a process killed outright cannot release, and the quota check sees it.
    (signal.SIGKILL, False)], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_an_allocation_in_flight_when_the_signal_comes_is_released(
        lab: LabNetwork, coturn: Callable[..., Coturn], signum: int, released: bool) -> None:
    server = coturn("--user-quota=1")
    proxy = DelayProxy(lab.ipv4, (server.ip, server.port), delay=0.3)
    try:
        process = iceprobe("gather", "--turn", f"turn:{lab.ipv4}:{proxy.port}",
                           "-u", LAB_USER, "-p", LAB_PASSWORD, "--timeout", "20", "--json")
        assert proxy.authenticated.wait(15), "the authenticated Allocate never went out"
        # It is in the proxy now: coturn allocates 0.3 s later, after the signal.
        out, err, took = stop_with(process, signum)
    finally:
        time.sleep(0.7)  # let the proxy deliver what is in flight
        proxy.close()
    if signum != signal.SIGKILL:
        assert process.returncode == 128 + signum, err
        assert took < STOP_BOUND, f"stopped {took:.2f} s after the signal"
        assert validated(out, "gather")["interrupted"] is True
    assert quota_free(server) is released


@contextmanager
def silent_servers(ip: str, count: int) -> Iterator[list[SilentServer]]:
    with ExitStack() as stack:
        servers = []
        for _ in range(count):
            server = SilentServer(ip)
            stack.callback(server.close)
            servers.append(server)
        yield servers


def descriptors(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def peak_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@pytest.mark.parametrize("concurrency", [50, 500])
def test_five_hundred_silent_servers_stay_bounded(lab: LabNetwork, concurrency: int,
                                                  tmp_path: Path) -> None:
    timeout = 2.0
    with silent_servers(lab.ipv4, 500) as servers, open(tmp_path / "out", "w+") as out:
        urls = [f"stun:{lab.ipv4}:{s.port}" for s in servers]
        args = [arg for url in urls for arg in ("--stun", url)]
        started = time.monotonic()
        # The report is large: a file, not a pipe nobody reads while the process runs.
        process = subprocess.Popen(
            [sys.executable, "-m", "iceprobe", "gather", *args, "--timeout", str(timeout),
             "--concurrency", str(concurrency), "--json"],
            stdout=out, stderr=subprocess.STDOUT, text=True)
        most, rss = 0, 0.0
        while process.poll() is None and time.monotonic() - started < 60:
            most = max(most, descriptors(process.pid))
            rss = max(rss, peak_rss_mb(process.pid))
            time.sleep(0.01)
        took = time.monotonic() - started
        process.wait(timeout=10)
        out.seek(0)
        text = out.read()
    assert "Traceback" not in text
    document = validated(text, "gather")
    statuses = [s["status"] for s in document["servers"]]
    probed = statuses.count("failed")
    assert probed + statuses.count("not-probed") == 500
    # Every probe that got a slot timed out at the one deadline; the rest never got one.
    assert probed >= concurrency and (probed == 500 or concurrency < 500)
    assert most <= concurrency + 64, f"{most} descriptors open at once"
    assert document["duration_ms"] <= (timeout + 1) * 1000  # the bound, gathering
    assert took <= timeout + 2  # and the whole process, with Python's start-up and the report
    print(f"\n500 silent servers, --concurrency {concurrency}: {took:.2f} s wall, "
          f"report {document['duration_ms']:.0f} ms, {probed} probed, at most {most} "
          f"descriptors, peak RSS {rss:.1f} MB")


def test_a_signal_during_a_relay_check_closes_both_peers_and_frees_the_quota(
        lab: LabNetwork, coturn: Callable[..., Coturn]) -> None:
    # The check makes three allocations (the precheck's, released, whose quota coturn frees a
    # second later, and one per peer): a quota of three leaves no room for any leak.
    server = coturn("--user-quota=3")
    run = Watched("relay", "--webrtc", "--turn", server.url(), "-u", LAB_USER, "-p", LAB_PASSWORD,
                  "--duration", "20", "--timeout", "60", "--json")
    run.wait_for(CHANNEL_OPEN)
    time.sleep(2)  # in the middle of the bulk transfer
    out, err, took = run.stop(signal.SIGINT)
    assert run.process.returncode == 130, out[-3000:] + err
    assert took < STOP_BOUND, f"stopped {took:.2f} s after the signal"
    document = validated(out, "relay")
    assert document["interrupted"] is True
    [check] = document["relay"]
    assert check["ok"] is False and "interrupted" in check["failure"]
    time.sleep(QUOTA_TIMER)
    again = subprocess.run([sys.executable, "-m", "iceprobe", "relay", "--webrtc",
                            "--turn", server.url(),
                            "-u", LAB_USER, "-p", LAB_PASSWORD, "--duration", "0.5",
                            "--json"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr


def test_an_allocation_answered_after_the_deadline_is_released(
        lab: LabNetwork, coturn: Callable[..., Coturn]) -> None:
    server = coturn("--user-quota=1")
    # 0.35 s each way: the 401 comes at 0.7 s, the authenticated Allocate reaches coturn at
    # 1.05 s and its answer would come at 1.4 s, after the 1 s budget.
    proxy = DelayProxy(lab.ipv4, (server.ip, server.port), delay=0.35)
    try:
        done = subprocess.run([sys.executable, "-m", "iceprobe", "gather", "--turn",
                               f"turn:{lab.ipv4}:{proxy.port}", "-u", LAB_USER, "-p",
                               LAB_PASSWORD, "--timeout", "1", "--json"],
                              capture_output=True, text=True, timeout=30)
        time.sleep(0.5)
    finally:
        proxy.close()
    document = validated(done.stdout, "gather")
    assert [e["cause"] for e in document["errors"]] == ["timeout"], document["errors"]
    assert proxy.authenticated.is_set()
    assert document["duration_ms"] <= 2000  # the budget, plus the release's second
    assert quota_free(server)
