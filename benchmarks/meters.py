"""What limits a relay benchmark's figure: the server's CPU, and where UDP datagrams were
dropped (the server's sockets, or the clients').

- `busy_seconds` and `own_seconds`: the machine's busy CPU time and the benchmark's own
  (with its reaped children, coturn among them): their difference is other work on the
  machine during the run, which moves every figure on a machine of 2 shared cores.
- `CpuMeter`: a process's CPU seconds (user + system, from /proc/PID/stat) per wall second
  over a `with` block; used for coturn.
- `DropMeter`: the kernel's per-socket receive-buffer drops (the `drops` column of
  /proc/net/udp and /proc/net/udp6, which are per network namespace), sampled by a thread
  every INTERVAL seconds over a `with` block and split by owner: the server's listening
  port and relay port range, or anything else (the clients and peers of the benchmark).
  A socket's counter goes when the socket closes, so the last INTERVAL of a socket's drops
  may be missed; the namespace's `Udp: RcvbufErrors` total (/proc/net/snmp) is kept too.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from pathlib import Path
from types import TracebackType

INTERVAL = 0.25


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cores: float | None = None
        self._start = (0.0, 0.0)

    def __enter__(self) -> CpuMeter:
        self._start = (time.perf_counter(), _cpu_seconds(self.pid))
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        wall = time.perf_counter() - self._start[0]
        self.cores = (_cpu_seconds(self.pid) - self._start[1]) / wall if wall > 0 else None


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat: all but idle
    and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds of this process and of its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def socket_drops() -> dict[tuple[str, int], tuple[int, int]]:
    """Every UDP socket of this namespace: (table, inode) -> (local port, drops)."""
    found: dict[tuple[str, int], tuple[int, int]] = {}
    for table in ("udp", "udp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 13:
                continue
            port = int(fields[1].rsplit(":", 1)[1], 16)
            found[(table, int(fields[9]))] = (port, int(fields[-1]))
    return found


def rcvbuf_errors() -> int:
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()
             if line.startswith("Udp:")]
    if len(lines) < 2:
        return 0
    return int(dict(zip(lines[0], lines[1], strict=False)).get("RcvbufErrors", "0"))


class DropMeter:
    def __init__(self, server_ports: set[int], relay_ports: tuple[int, int]) -> None:
        self.server_ports = server_ports
        self.relay_ports = relay_ports
        self.server = 0
        self.clients = 0
        self.rcvbuf_errors = 0
        self._baseline: dict[tuple[str, int], int] = {}
        self._peak: dict[tuple[str, int], tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._errors = 0

    def _sample(self) -> None:
        for key, (port, drops) in socket_drops().items():
            old = self._peak.get(key)
            if old is None or drops > old[1]:
                self._peak[key] = (port, drops)

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            self._sample()

    def __enter__(self) -> DropMeter:
        self._baseline = {key: drops for key, (_port, drops) in socket_drops().items()}
        self._errors = rcvbuf_errors()
        self._thread = threading.Thread(target=self._run, name="bench-drops", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._sample()
        first, last = self.relay_ports
        for key, (port, drops) in self._peak.items():
            new = drops - self._baseline.get(key, 0)
            if port in self.server_ports or first <= port <= last:
                self.server += new
            else:
                self.clients += new
        self.rcvbuf_errors = rcvbuf_errors() - self._errors
