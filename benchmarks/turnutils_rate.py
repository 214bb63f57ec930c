"""coturn's own load client, `turnutils_uclient`, timed for benchmarks/relay_engines.py.

turnutils_uclient prints a progress line about once a second (`N: : start_mclient: msz=…,
tot_send_msgs=S, tot_recv_msgs=R, …`) and a summary whose times are whole seconds and whole
milliseconds. Its message rate is therefore measured here from the progress lines, each
timestamped on arrival with perf_counter: the messages received between the first and the
last line that show progress, over the time between those lines. Its start-up (about 4 s of
its own timers) does not count. With a single line of progress (a short run), the rate is
the lower bound "every message since the last line without any".
"""

from __future__ import annotations

import re
import resource
import subprocess
import time
from dataclasses import dataclass

PROGRESS = re.compile(r"msz=\d+, tot_send_msgs=(\d+), tot_recv_msgs=(\d+)")
SUMMARY_RTT = re.compile(r"Average round trip delay ([\d.]+) ms; min = (\d+) ms, max = (\d+) ms")
LOST = re.compile(r"Total lost packets (\d+)")
#: Once sending is done, lines without progress before the run is cut short (it waits for
#: lost packets for up to ~10 s otherwise).
IDLE_LINES = 2
#: The whole run is bounded by this, seconds.
BUDGET = 90.0


@dataclass(frozen=True)
class UclientRun:
    argv: tuple[str, ...]
    messages: int
    #: Messages received per second (both clients with -y; echoes with a peer).
    messages_per_s: float | None
    #: "slope" between progress lines, or "lower bound" from a single one.
    method: str
    sent: int
    received: int
    lost: int | None
    rtt_average_ms: float | None
    rtt_min_ms: int | None
    rtt_max_ms: int | None
    #: CPU seconds of the uclient process per second of its transmitting time.
    client_cpu: float | None
    wall_seconds: float


def run_uclient(server_ip: str, port: int, username: str, password: str, size: int,
                messages: int, peer: tuple[str, int] | None) -> UclientRun:
    """`turnutils_uclient -c -z 0 -n MESSAGES -l SIZE` with `-y` (client to client, two
    allocations) or, with `peer`, against that turnutils_peer (one allocation, echoed)."""
    argv = ["turnutils_uclient", "-c", "-z", "0", "-n", str(messages), "-l", str(size),
            "-u", username, "-w", password, "-p", str(port)]
    argv += ["-e", peer[0], "-r", str(peer[1])] if peer else ["-y"]
    argv.append(server_ip)
    shown = tuple(a if a != password else "…" for a in argv)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    assert process.stdout is not None
    points: list[tuple[float, int, int]] = []  # (arrival, sent, received)
    summary: list[str] = []
    idle = 0
    try:
        for line in process.stdout:
            now = time.perf_counter()
            match = PROGRESS.search(line)
            if match:
                sent, received = int(match.group(1)), int(match.group(2))
                if points and received == points[-1][2] and received > 0:
                    idle += 1
                points.append((now, sent, received))
                if idle >= IDLE_LINES:
                    break
            elif "Total" in line or "Average" in line:
                summary.append(line)
            if now - started > BUDGET:
                break
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = "".join(summary)
    rtt, lost = SUMMARY_RTT.search(text), LOST.search(text)
    final = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", text)
    moving = [p for i, p in enumerate(points) if p[2] > 0 and
              (i == 0 or p[2] > points[i - 1][2])]
    rate: float | None = None
    method = "none"
    window = 0.0
    if len(moving) >= 2:
        window = moving[-1][0] - moving[0][0]
        rate = (moving[-1][2] - moving[0][2]) / window if window > 0 else None
        method = "slope"
    elif moving:
        quiet = [p for p in points if p[2] == 0]
        if quiet:
            window = moving[0][0] - quiet[-1][0]
            rate = moving[0][2] / window if window > 0 else None
            method = "lower bound"
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    sent_total = int(final[-1][0]) if final else (points[-1][1] if points else 0)
    received_total = int(final[-1][1]) if final else (points[-1][2] if points else 0)
    return UclientRun(
        argv=shown, messages=messages, messages_per_s=rate, method=method, sent=sent_total,
        received=received_total, lost=int(lost.group(1)) if lost else None,
        rtt_average_ms=float(rtt.group(1)) if rtt else None,
        rtt_min_ms=int(rtt.group(2)) if rtt else None,
        rtt_max_ms=int(rtt.group(3)) if rtt else None,
        client_cpu=cpu / window if window > 0 else None, wall_seconds=wall)


def start_peer(ip: str, port: int) -> subprocess.Popen[bytes]:
    """coturn's echo peer, `turnutils_peer -L IP -p PORT`."""
    process = subprocess.Popen(["turnutils_peer", "-L", ip, "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    if process.poll() is not None:
        raise RuntimeError(f"turnutils_peer exited with {process.returncode}")
    return process
