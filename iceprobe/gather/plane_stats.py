"""What the data plane's receiver makes of the packets it got back: pure arithmetic, no I/O.

Every payload carries its flow, its phase, a sequence number and the time it was sent
(`time.perf_counter_ns`, the same clock as the receiver's, since both ends live in this
process). From those, per flow: round-trip times, loss, reordering (a packet older than one
already received), duplicates, and the interarrival jitter of RFC 3550 section 6.4.1. The
flows of a phase are then merged into one `Tally`, and the steps of a rate sweep judged for
their knee.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..model import Percentiles, SweepStep

#: A step where the client sent less than this share of the offered rate was limited by the
#: client itself (its CPU, its socket), not by the server.
CLIENT_SHORTFALL = 0.9
#: A sweep that finds loss at every rate goes no lower than this (packets/s).
MIN_RATE = 5.0


class FlowTally:
    """The receiver's count of one flow in one phase. `add` is on the hot path: it keeps
    plain lists and integers, and leaves every summary to the end."""

    __slots__ = ("_transit", "duplicates", "highest", "jitter_ns", "received", "reordered",
                 "rtts_ns", "seen")

    def __init__(self, expected: int = 1024) -> None:
        self.seen = bytearray(max(1, expected))
        self.received = 0
        self.duplicates = 0
        self.reordered = 0
        self.highest = -1
        self.rtts_ns: list[int] = []
        self.jitter_ns = 0.0
        self._transit: int | None = None

    def add(self, seq: int, sent_ns: int, received_ns: int) -> None:
        """One packet back: `seq` numbered from 0, sent and received on one clock (ns)."""
        seen = self.seen
        if seq >= len(seen):
            seen.extend(bytes(max(seq + 1 - len(seen), len(seen))))
        if seen[seq]:
            self.duplicates += 1
            return
        seen[seq] = 1
        self.received += 1
        if seq < self.highest:
            self.reordered += 1
        else:
            self.highest = seq
        transit = received_ns - sent_ns
        self.rtts_ns.append(transit)
        # RFC 3550 section 6.4.1: J += (|D| - J) / 16, D the change in transit time between
        # packets consecutive in arrival order.
        if self._transit is not None:
            change = abs(transit - self._transit)
            self.jitter_ns += (change - self.jitter_ns) / 16
        self._transit = transit


@dataclass(frozen=True)
class Tally:
    """One phase, every flow merged."""

    sent: int
    received: int
    duplicates: int
    reordered: int
    #: Round-trip times, sorted, in nanoseconds.
    rtts_ns: tuple[int, ...]
    #: The flows' RFC 3550 jitter, averaged (nanoseconds); None with fewer than two packets.
    jitter_ns: float | None

    @property
    def loss(self) -> float | None:
        """The share of the packets sent that never came back; None when none was sent."""
        if self.sent <= 0:
            return None
        return max(0.0, (self.sent - self.received) / self.sent)


def merge(flows: Iterable[tuple[int, FlowTally]]) -> Tally:
    """The phase's `Tally` from each flow's (packets sent, receiver's tally)."""
    sent = received = duplicates = reordered = 0
    rtts: list[int] = []
    jitters: list[float] = []
    for flow_sent, tally in flows:
        sent += flow_sent
        received += tally.received
        duplicates += tally.duplicates
        reordered += tally.reordered
        rtts.extend(tally.rtts_ns)
        if tally.received >= 2:
            jitters.append(tally.jitter_ns)
    rtts.sort()
    return Tally(sent, received, duplicates, reordered, tuple(rtts),
                 sum(jitters) / len(jitters) if jitters else None)


def nearest_rank(ordered: Sequence[int], share: float) -> int:
    """The nearest-rank percentile (`share` in 0..1) of a non-empty sorted sequence."""
    rank = max(1, math.ceil(share * len(ordered) - 1e-9))
    return ordered[min(len(ordered), rank) - 1]


def percentiles_us(ordered_ns: Sequence[int]) -> Percentiles | None:
    """min, median, p95, p99 and max of sorted nanosecond samples, in microseconds (0.1 µs
    steps); None without samples."""
    if not ordered_ns:
        return None
    count = len(ordered_ns)
    middle = count // 2
    median = (ordered_ns[middle] if count % 2
              else (ordered_ns[middle - 1] + ordered_ns[middle]) / 2)

    def us(value: float) -> float:
        return round(value / 1000, 1)

    return Percentiles(min=us(ordered_ns[0]), median=us(median),
                       p95=us(nearest_rank(ordered_ns, 0.95)),
                       p99=us(nearest_rank(ordered_ns, 0.99)), max=us(ordered_ns[-1]))


def sweep_step(payload_bytes: int, offered_pps: float, sent: int, tally: Tally,
               seconds: float, client_limited: bool) -> SweepStep:
    """One step of a sweep: `sent` packets in `seconds` at `offered_pps`, and what came back.
    Mbit/s counts the payload delivered back to the sender (one direction's worth). A step
    that sent less than CLIENT_SHORTFALL of the offered rate is client-bound when the
    client was the reason (`client_limited`: its CPU, or its UDP socket refusing); over TCP
    a server that does not read fast enough holds the sender back, and that is the server's
    limit, not the client's."""
    delivered = tally.received / seconds if seconds > 0 else 0.0
    sent_pps = sent / seconds if seconds > 0 else 0.0
    loss = tally.loss
    return SweepStep(payload_bytes=payload_bytes, offered_pps=round(offered_pps, 1),
                     sent_pps=round(sent_pps, 1), delivered_pps=round(delivered, 1),
                     mbit_s=round(delivered * payload_bytes * 8 / 1e6, 3),
                     loss=round(loss, 5) if loss is not None else 0.0,
                     client_bound=client_limited
                     and sent_pps < CLIENT_SHORTFALL * offered_pps)


def is_past_knee(step: SweepStep) -> bool:
    return step.past_knee


def is_client_bound(step: SweepStep) -> bool:
    """The client could not send at the offered rate: the step measures the client."""
    return step.client_bound


def knee(steps: Sequence[SweepStep]) -> float | None:
    """The lowest offered rate past the knee (SweepStep.past_knee), among steps the client kept
    up with; None when no such step."""
    lossy = [s.offered_pps for s in steps if is_past_knee(s) and not is_client_bound(s)]
    return min(lossy) if lossy else None


def next_rate(measured: Sequence[SweepStep], start: float, factor: float, limit: float,
              precision: float) -> float | None:
    """The next offered rate of a sweep at one payload size: `start`, then `factor` times
    the last while every step was clean (or divided by it while every step was lossy, down
    to MIN_RATE), then halfway between the best clean step and the worst lossy one until
    they are within `precision` (a share) of each other; None when done (the knee found,
    the limit reached, or the client fell behind)."""
    if not measured:
        return start
    if any(is_client_bound(s) for s in measured):
        return None
    lossy = [s.offered_pps for s in measured if is_past_knee(s)]
    clean = [s.offered_pps for s in measured if not is_past_knee(s)]
    if not lossy:
        following = measured[-1].offered_pps * factor
        return following if following <= limit * (1 + 1e-9) else None
    high = min(lossy)
    low = max((c for c in clean if c < high), default=0.0)
    if low <= 0:
        lower = high / factor
        return lower if lower >= MIN_RATE else None
    if high - low <= precision * high:
        return None
    return (low + high) / 2
