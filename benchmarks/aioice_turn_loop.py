"""aioice's own TURN client as a data plane, for benchmarks/relay_engines.py: two allocations
made with aioice's public `create_turn_endpoint`, each `sendto` the other's relayed address
(aioice binds a channel on the first send and then frames ChannelData), an echo on the far
one, and a closed loop of `--window` packets in flight for `--seconds`.

`python -m benchmarks.aioice_turn_loop --server IP:PORT --username U --password-env VAR
--size 120 --seconds 3 --window 64` prints one JSON object: round trips, round trips/s, the
median round trip (timed here with perf_counter_ns: aioice reports none), and this process's
CPU seconds per wall second while measuring. Run inside the benchmark's namespace; it talks
to nothing but the server it is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as `python benchmarks/aioice_turn_loop.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aioice import turn

HEADER = struct.Struct("!IQ")  # sequence number, send time (perf_counter_ns)
#: Set-up and release bounds, seconds (aioice's own transactions can retry for 63.5 s).
SETUP_BUDGET = 10.0
CLOSE_BUDGET = 2.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Echo(asyncio.DatagramProtocol):
    """The far allocation: sends every datagram back to where it came from."""

    def __init__(self) -> None:
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)


class Sender(asyncio.DatagramProtocol):
    """The near allocation: keeps `window` packets in flight once `start` is called, and
    counts the echoes of the measured phase."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.target: tuple[str, int] = ("", 0)
        self.payload = b""
        self.sequence = 0
        self.measuring = False
        self.rtts_ns: list[int] = []
        self.primed = asyncio.Event()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def send(self) -> None:
        self.sequence += 1
        self.transport.sendto(HEADER.pack(self.sequence, time.perf_counter_ns()) +
                              self.payload, self.target)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.primed.set()
        if len(data) < HEADER.size:
            return
        _sequence, sent_ns = HEADER.unpack_from(data)
        if sent_ns == 0:  # a priming packet
            return
        if self.measuring:
            self.rtts_ns.append(time.perf_counter_ns() - sent_ns)
        self.send()


async def measure(server: tuple[str, int], username: str, password: str, size: int,
                  seconds: float, window: int) -> dict[str, Any]:
    near_transport, near = await asyncio.wait_for(turn.create_turn_endpoint(
        Sender, server_addr=server, username=username, password=password), SETUP_BUDGET)
    far_transport, _far = await asyncio.wait_for(turn.create_turn_endpoint(
        Echo, server_addr=server, username=username, password=password), SETUP_BUDGET)
    try:
        near_relay = near_transport.get_extra_info("sockname")
        far_relay = far_transport.get_extra_info("sockname")
        near.target = far_relay
        near.payload = bytes(max(0, size - HEADER.size))
        # Each side's first send binds its channel, which also installs the permission the
        # other side's data needs; prime until an echo comes back.
        deadline = time.monotonic() + SETUP_BUDGET
        while not near.primed.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError("no echo through the relays")
            far_transport.sendto(HEADER.pack(0, 0), near_relay)
            near_transport.sendto(HEADER.pack(0, 0), far_relay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(near.primed.wait(), 0.2)
        for _ in range(window):
            near.send()
        await asyncio.sleep(min(0.5, seconds / 4))  # warm-up: the loop reaches its pace
        near.measuring = True
        wall, cpu = time.perf_counter(), cpu_seconds()
        await asyncio.sleep(seconds)
        near.measuring = False
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    finally:
        for transport in (near_transport, far_transport):
            transport.close()
        await asyncio.sleep(0.1)  # the releases (Refresh, lifetime 0) go out
    rtts = near.rtts_ns
    return {"size": size, "window": window, "round_trips": len(rtts),
            "round_trips_per_s": len(rtts) / wall, "mbit_s": len(rtts) * size * 8 / wall / 1e6,
            "rtt_median_us": statistics.median(rtts) / 1000 if rtts else None,
            "client_cpu": cpu / wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="IP:PORT of the TURN server (UDP)")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password-env", required=True,
                        help="the environment variable holding the password")
    parser.add_argument("--size", type=int, default=120, help="payload bytes")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--window", type=int, default=64, help="packets in flight")
    args = parser.parse_args()
    host, _, port = args.server.rpartition(":")
    result = asyncio.run(asyncio.wait_for(measure(
        (host, int(port)), args.username, os.environ[args.password_env], args.size,
        args.seconds, args.window), SETUP_BUDGET * 2 + args.seconds + 5))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
