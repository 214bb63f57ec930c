"""Hostile servers end to end: a UDP server that floods unrelated replies, a TCP server that
accepts and never answers, and one that drips its reply a byte at a time. Each probe ends as
an error event within its budget (the issue's bound: --timeout plus 1 s)."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from iceprobe.gather import GatherOptions, gather
from iceprobe.model import Cause, GatherReport
from iceprobe.urls import parse_server_url
from tests.lab.netns import LabNetwork

pytestmark = pytest.mark.lab

BUDGET = 1.0


def probe(url: str) -> tuple[GatherReport, float]:
    started = time.monotonic()
    report = asyncio.run(gather([parse_server_url(url)], GatherOptions(timeout=BUDGET)))
    return report, time.monotonic() - started


@contextmanager
def serving(target: Callable[[socket.socket], None], kind: int,
            ip: str) -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind((ip, 0))
    if kind == socket.SOCK_STREAM:
        sock.listen()
    stop = threading.Event()

    def run() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                target(sock)
            except OSError:
                continue

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()


def test_a_flood_of_unrelated_replies_ends_in_a_timeout_that_counts_them(
        lab: LabNetwork) -> None:
    def flood(sock: socket.socket) -> None:
        _, peer = sock.recvfrom(2048)
        for number in range(2000):
            foreign = struct.pack("!HHI12s", 0x0101, 0, 0x2112A442, number.to_bytes(12, "big"))
            sock.sendto(foreign, peer)

    with serving(flood, socket.SOCK_DGRAM, lab.ipv4) as port:
        report, took = probe(f"stun:{lab.ipv4}:{port}")
    [event] = report.errors
    assert event.cause is Cause.TIMEOUT
    # Replies came, all with ids of their own: counted and named, not read as silence.
    assert event.problem == "mismatched-transaction-ids"
    assert "STUN replies from it with transaction ids that match no request" in event.error_text
    assert took < BUDGET + 1


def test_a_tcp_server_that_accepts_and_never_answers_is_a_timeout(lab: LabNetwork) -> None:
    held: list[socket.socket] = []

    def accept(sock: socket.socket) -> None:
        connection, _ = sock.accept()
        held.append(connection)

    with serving(accept, socket.SOCK_STREAM, lab.ipv4) as port:
        report, took = probe(f"turn:{lab.ipv4}:{port}?transport=tcp")
    for connection in held:
        connection.close()
    [event] = report.errors
    assert event.cause is Cause.TIMEOUT
    assert took < BUDGET + 1


def test_a_server_dripping_its_reply_cannot_stretch_the_budget(lab: LabNetwork) -> None:
    def drip(sock: socket.socket) -> None:
        connection, _ = sock.accept()
        with connection:
            request = connection.recv(2048)
            reply = struct.pack("!HH", 0x0113, 0) + request[4:20]
            for byte in reply * 20:  # one byte every 0.1 s: a naive timer would never fire
                connection.send(bytes([byte]))
                time.sleep(0.1)

    with serving(drip, socket.SOCK_STREAM, lab.ipv4) as port:
        report, took = probe(f"turn:{lab.ipv4}:{port}?transport=tcp")
    [event] = report.errors
    assert event.cause is Cause.TIMEOUT
    assert took < BUDGET + 1
