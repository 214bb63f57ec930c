"""The measurements of a relay check once the data channel is open: echo messages (round
trip and loss) and a bulk transfer each way (throughput). Both stop at once when the server
goes away (`gone`), so that a dead server fails the step in progress instead of passing on
what came before."""

from __future__ import annotations

import asyncio
import struct
import time
from typing import TYPE_CHECKING

from ..model import Spread

if TYPE_CHECKING:
    from .relay_peers import Peer
    from .relay_state import Check

#: Longest wait for one echo before it counts as lost.
ECHO_WAIT = 1.0
#: Bulk transfer: message size, and how much may wait in the SCTP send buffer.
BULK_CHUNK = 16 * 1024
BULK_BUFFER = 1024 * 1024
#: After the sending window, how long the receiver may still drain.
BULK_DRAIN = 1.0


async def _first(events: list[asyncio.Event], timeout: float) -> bool:
    """Wait until one of `events` is set, at most `timeout` seconds; True if one was."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)


async def echo(check: Check, a: Peer, b: Peer, keep: float) -> tuple[int, list[float]]:
    """`count` numbered messages from a, echoed by b, one at a time, keeping `keep` seconds
    of the budget; returns how many were sent and the round-trip times (ms) of those that
    came back."""
    options = check.options
    replies: asyncio.Queue[bytes] = asyncio.Queue()
    arrived = asyncio.Event()

    @b.echo.on("message")
    def bounce(message: bytes | str) -> None:
        if b.echo.readyState == "open":
            b.echo.send(message)

    @a.echo.on("message")
    def back(message: bytes | str) -> None:
        if isinstance(message, bytes):
            replies.put_nowait(message)
            arrived.set()

    padding = bytes(max(0, options.size - 4))
    rtts = check.rtts  # kept on the check: a stop shows the echoes so far
    sent = 0
    for number in range(options.count):
        budget = min(ECHO_WAIT, check.remaining(keep))
        if budget <= 0 or check.gone.is_set():
            break
        sent += 1
        check.sent = sent
        started = time.monotonic()
        a.echo.send(struct.pack("!I", number) + padding)
        while (wait := started + budget - time.monotonic()) > 0:
            if replies.empty():
                arrived.clear()
                if not await _first([arrived, check.gone], wait) or check.gone.is_set():
                    break
                continue
            reply = replies.get_nowait()
            if reply[:4] == struct.pack("!I", number):
                rtts.append(round((time.monotonic() - started) * 1000, 2))
                break
    return sent, rtts


async def bulk(check: Check, sender: Peer, receiver: Peer, field: str,
               keep: float) -> float | None:
    """Send as fast as the channel takes for `duration` seconds, let the receiver drain,
    and return the receiver's rate in bits per second (None if nothing arrived, or if the
    server went away). `field` names the measurement, for a stop in the middle."""
    from .relay_state import Bulk

    channel = sender.bulk
    chunk = bytes(BULK_CHUNK)
    receiver.bulk_bytes, receiver.bulk_last = 0, 0.0
    started = time.monotonic()
    check.bulk = Bulk(field, receiver, started)
    window = min(check.options.duration, check.remaining(keep + BULK_DRAIN))
    if window <= 0:
        return None
    end = started + window
    drained = asyncio.Event()
    channel.bufferedAmountLowThreshold = BULK_BUFFER // 2

    @channel.on("bufferedamountlow")
    def low() -> None:
        drained.set()

    while time.monotonic() < end and channel.readyState == "open" and not check.gone.is_set():
        if channel.bufferedAmount < BULK_BUFFER:
            channel.send(chunk)
            await asyncio.sleep(0)
        else:
            drained.clear()
            if not await _first([drained, check.gone], max(0.0, end - time.monotonic())):
                break
    # Let what is in flight arrive, but no longer than the drain allowance.
    settle = time.monotonic() + min(BULK_DRAIN, check.remaining(keep))
    while channel.bufferedAmount > 0 and time.monotonic() < settle \
            and not check.gone.is_set():
        await asyncio.sleep(0.01)
    if check.gone.is_set() or receiver.bulk_bytes == 0 or receiver.bulk_last <= started:
        return None
    return round(receiver.bulk_bytes * 8 / (receiver.bulk_last - started), 1)


def spread(samples: list[float]) -> Spread:
    return Spread.of(samples)
