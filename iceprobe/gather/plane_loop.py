"""The measuring loop of iceprobe's own data plane: one phase of paced, numbered sends on
every flow, their echoes, and the receiver's tallies (plane_stats), in one thread.

A flow is a sender link (an allocation whose channel is bound to the far end) and its far
end: another allocation's link (relay-relay) or a plain UDP socket (relay-peer). The far end
echoes each message unchanged: a ChannelData arriving on an allocation carries the channel
number bound to the sender's relay, which is the number to send it back on.
"""

from __future__ import annotations

import select
import threading
import time
from dataclasses import dataclass

from .plane_control import Upkeep
from .plane_data import PAYLOAD, READ_BATCH, Link, PeerSocket, channel_data
from .plane_stats import FlowTally

#: Most packets sent back to back before the loop reads again.
SEND_BURST = 64
#: Longest sleep in `select` while a phase runs, seconds.
MAX_SLEEP = 0.005
#: After the last send: how long stragglers may take, beyond a few round trips.
DRAIN_BASE = 0.25
DRAIN_MAX = 2.0
#: How often the control plane's timers are looked at, nanoseconds.
UPKEEP_EVERY_NS = 10_000_000


@dataclass(eq=False)
class Flow:
    index: int
    sender: Link
    channel: int
    far: Link | PeerSocket


@dataclass(frozen=True)
class Phase:
    """What one phase did: per flow, packets sent and the receiver's tally."""

    sent: tuple[int, ...]
    tallies: tuple[FlowTally, ...]
    #: The send window (seconds) and the whole phase, drain included.
    send_seconds: float
    wall_seconds: float
    cpu_seconds: float
    interrupted: bool
    broken: str | None


def run_phase(flows: list[Flow], upkeep: Upkeep, phase: int, rate_pps: float,
              seconds: float, payload_bytes: int, stop: threading.Event) -> Phase:
    """Send `rate_pps` packets per second in all (round robin over the flows) for
    `seconds`, echo them at the far ends, and tally what comes back."""
    count = len(flows)
    total = max(1, int(rate_pps * seconds))
    interval_ns = 1e9 / rate_pps
    templates = [bytearray(channel_data(f.channel, bytes(payload_bytes), f.sender.stream))
                 for f in flows]
    sent = [0] * count
    tallies = [FlowTally(total // count + 16) for _ in flows]
    senders = {f.sender.fileno(): f for f in flows}
    far_links = {f.far.fileno(): f.far for f in flows if isinstance(f.far, Link)}
    peers = {f.far.fileno(): f.far for f in flows if isinstance(f.far, PeerSocket)}
    readers = [*(f.sender for f in flows), *(f.far for f in flows)]
    links = [f.sender for f in flows] + list(far_links.values())
    streams = [link for link in links if link.stream]
    pack_into = PAYLOAD.pack_into
    unpack_from = PAYLOAD.unpack_from
    clock = time.perf_counter_ns

    cpu_start = time.thread_time()
    start = clock()
    drain_end: int | None = None
    next_upkeep = start
    slot = 0
    interrupted = False
    broken: str | None = None
    while True:
        now = clock()
        if drain_end is None:
            if stop.is_set():
                interrupted = True
                break
            due = min(total, int((now - start) / interval_ns) + 1)
            burst = 0
            while slot < due and burst < SEND_BURST:
                index = slot % count
                template = templates[index]
                pack_into(template, 4, index, phase, sent[index], clock())
                if flows[index].sender.send(template):
                    sent[index] += 1
                slot += 1
                burst += 1
            if slot >= total:
                longest = max((t.rtts_ns[-1] for t in tallies if t.rtts_ns), default=0)
                drain_end = clock() + int(min(DRAIN_MAX, DRAIN_BASE + 4 * longest / 1e9) * 1e9)
            wait = 0.0 if slot < due else min(MAX_SLEEP, max(0.0, (
                start + slot * interval_ns - clock()) / 1e9))
        else:
            if stop.is_set():
                interrupted = True
                break
            if now >= drain_end or all(t.received >= s for t, s in zip(tallies, sent, strict=True)):
                break
            wait = min(MAX_SLEEP, max(0.0, (drain_end - now) / 1e9))
        if now >= next_upkeep:
            upkeep.tick(time.monotonic())
            next_upkeep = now + UPKEEP_EVERY_NS
        writers = [link for link in streams if link.out]
        if any(link.pending_tls() for link in links):
            wait = 0.0
        try:
            readable, writable, _ = select.select(readers, writers, [], wait)
        except InterruptedError:
            continue
        for link in writable:
            link.flush()
        if any(link.pending_tls() for link in links):
            readable = list({id(r): r for r in [*readable, *links]}.values())
        for ready in readable:
            fileno = ready.fileno()
            flow = senders.get(fileno)
            if flow is not None:
                messages = flow.sender.receive()
                arrived = clock()
                for message in messages:
                    if message[0] & 0xC0 == 0x40:
                        if len(message) >= 4 + PAYLOAD.size:
                            index, which, seq, sent_ns = unpack_from(message, 4)
                            if which == phase and index < count:
                                tallies[index].add(seq, sent_ns, arrived)
                    else:
                        upkeep.deliver(message, time.monotonic())
                continue
            far = far_links.get(fileno)
            if far is not None:
                for message in far.receive():
                    if message[0] & 0xC0 == 0x40:
                        far.send(message)
                    else:
                        upkeep.deliver(message, time.monotonic())
                continue
            peer = peers.get(fileno)
            if peer is not None:
                _echo(peer)
        for link in links:
            if link.broken is not None:
                broken = link.broken
        if broken is not None:
            break
    end = clock()
    # Rates are per nominal second: the last send is one interval before the window ends.
    return Phase(tuple(sent), tuple(tallies),
                 min(seconds, (end - start) / 1e9) if interrupted else seconds,
                 (end - start) / 1e9, time.thread_time() - cpu_start, interrupted, broken)


def _echo(peer: PeerSocket) -> None:
    """Send every datagram waiting on the peer socket back to where it came from."""
    recvfrom, sendto = peer.sock.recvfrom, peer.sock.sendto
    try:
        for _ in range(READ_BATCH):
            data, address = recvfrom(65535)
            sendto(data, address)
    except (BlockingIOError, InterruptedError):
        pass
    except OSError:
        pass  # an ICMP error from an earlier send: the next datagrams still count
