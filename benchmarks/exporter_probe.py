"""The exporter's benchmark (issue 18): the cost of one /probe, the probes/s one
`iceprobe exporter` process sustains against the lab's coturn, and its peak RSS.

`sudo python3 -m benchmarks.exporter_probe [--seconds 20] [--clients 8]` from the checkout.
Like benchmarks/run.py it moves into network and mount namespaces of its own
(benchmarks/lab.py), starts coturn on 198.18.0.10 (no user quota: every probe allocates and
releases) and the exporter with a fleet file of one TURN/UDP target (binding + allocate), and
sends no traffic outside the namespace.

1. One /probe at a time, `--runs` times after a warm-up: the median, p95 and max wall time of
   a whole HTTP request (what Prometheus's scrape_duration_seconds sees), and the exporter's
   own CPU time per probe (from /proc).
2. `--clients` concurrent clients for `--seconds`, each on its own target of the same server
   with an auth of its own (the per-target limit of 2, which counts a server and an auth,
   would otherwise be the bottleneck): probes/s, how many passed,
   and the exporter's CPU use in cores.
3. The exporter's peak RSS (VmHWM) after both.

Prints a Markdown table. The machine has 2 cores shared with other work: run it twice.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

if not __package__:  # run as `python benchmarks/exporter_probe.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import lab
from tests.lab import servers

TARGETS = 32


def fleet(path: Path, url: str) -> None:
    # The per-target limit counts a server with one auth, however the target is named: each
    # target has an auth of its own (the same user), so that the clients are not all queued
    # behind one limit of 2.
    auths = "".join(f'\n[auth.bench{i}]\nusername = "{lab.USER}"\n'
                    f'password_env = "BENCH_PASSWORD"\n' for i in range(TARGETS))
    targets = "".join(f'\n[[targets]]\nname = "t{i}"\nurl = "{url}"\nmodule = "turn_udp"\n'
                      f'auth = "bench{i}"\n' for i in range(TARGETS))
    path.write_text(f'[modules.turn_udp]\nchecks = ["binding", "allocate"]\ntimeout = "3s"\n'
                    f"{auths}{targets}")


def get(url: str) -> str:
    request = urllib.request.Request(url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"})
    with urllib.request.urlopen(request, timeout=15) as response:
        return str(response.read().decode())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    network = lab.enter_namespace()
    # A wide relay range: coturn frees a released relay port on its 1 s timer, and a range
    # as narrow as the tests' would run out (508) at these rates.
    coturn = servers.start_coturn(network.ipv4, user=lab.USER, password=lab.PASSWORD,
                                  relay_ports=(50000, 59999))
    workdir = Path(tempfile.mkdtemp(prefix="exporter-bench-"))
    config = workdir / "fleet.toml"
    fleet(config, coturn.url())
    process = subprocess.Popen(
        [sys.executable, "-m", "iceprobe", "exporter", "-c", str(config), "--listen",
         f"{network.ipv4}:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, "BENCH_PASSWORD": lab.PASSWORD})
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        base = re.search(r"(http://\S+)", line)
        if base is None:
            print(f"exporter did not start: {line!r}", file=sys.stderr)
            return 1
        probe = f"{base.group(1)}/probe?target="
        for _ in range(20):  # warm-up: imports, first TLS-free allocation, caches
            get(probe + "t0")

        walls = []
        cpu_before = cpu_seconds(process.pid)
        for _ in range(args.runs):
            started = time.perf_counter()
            body = get(probe + "t0")
            walls.append(time.perf_counter() - started)
            if "probe_success 1.0" not in body:
                print("a sequential probe failed", file=sys.stderr)
        cpu_per_probe = (cpu_seconds(process.pid) - cpu_before) / args.runs

        done: list[bool] = []
        reasons: dict[str, int] = {}
        lock = threading.Lock()
        stop_at = time.monotonic() + args.seconds

        def client(index: int) -> None:
            target = f"t{index % TARGETS}"
            while time.monotonic() < stop_at:
                body = get(probe + target)
                ok = "probe_success 1.0" in body
                with lock:
                    done.append(ok)
                    for why in re.findall(r'verdict="([^"]+)"', body):
                        reasons[why] = reasons.get(why, 0) + 1

        cpu_before, wall_before = cpu_seconds(process.pid), time.monotonic()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - wall_before
        cores = (cpu_seconds(process.pid) - cpu_before) / elapsed
        rss = peak_rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)
        coturn.stop()
    walls.sort()
    print(f"| figure | value |\n|---|---|\n"
          f"| one /probe, sequential (median of {args.runs}) | "
          f"{statistics.median(walls) * 1e3:.1f} ms |\n"
          f"| one /probe, p95 / max | {walls[int(len(walls) * 0.95) - 1] * 1e3:.1f} ms / "
          f"{walls[-1] * 1e3:.1f} ms |\n"
          f"| exporter CPU per probe | {cpu_per_probe * 1e3:.1f} ms |\n"
          f"| probes/s, {args.clients} concurrent clients, {args.seconds:g} s | "
          f"{len(done) / elapsed:.0f} ({sum(done)} of {len(done)} passed) |\n"
          f"| exporter CPU while loaded | {cores:.2f} cores |\n"
          f"| exporter peak RSS | {rss:.1f} MB |\n"
          f"| failing verdicts under load | {reasons or 'none'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
