"""Verdicts on iceprobe's own TURN data plane (`iceprobe relay`): what its figures mean for
calls, in voice-call and 720p-video equivalents, and the sweep's shape of a bandwidth cap."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Confidence, PlaneMeasurement, Severity, SweepStep, Verdict
from .evidence import Evidence


def describe_rate(bps: float) -> str:
    """A bit rate for people: Mbit/s, or kbit/s below 0.1 Mbit/s."""
    return f"{bps / 1e6:.1f} Mbit/s" if bps >= 1e5 else f"{bps / 1e3:.0f} kbit/s"


#: What a call needs, per stream: a voice call, and a 720p video stream (low and high).
VOICE_BPS = 50e3
VIDEO_720P_BPS = (1.5e6, 2.5e6)
#: The sweep's shape of a bandwidth cap: at the large payload, the knee's packet rate is at
#: most this share of what the small payload reached (bytes are the limit, not packets)...
_BYTES_NOT_PACKETS = 0.5
#: ...and past the knee the delivered rates stay within this of each other while the offered
#: rate rises (flat), and not this far below the best clean step's (not collapsing).
_FLAT = 0.25


def for_calls(bps: float, relayed_both_ends: bool) -> str:
    """A bit rate in calls: voice (~50 kbit/s) and 720p video (1.5-2.5 Mbit/s) streams."""
    voice = int(bps // VOICE_BPS)
    low, high = int(bps // VIDEO_720P_BPS[1]), int(bps // VIDEO_720P_BPS[0])
    video = f"{low}" if low == high else f"{low}-{high}"
    ends = " with both ends relayed" if relayed_both_ends else ""
    return (f"{describe_rate(bps)} each way is about {voice:,} voice "
            f"{'call' if voice == 1 else 'calls'} (~50 kbit/s) or {video} 720p video "
            f"{'stream' if video == '1' else 'streams'} (1.5-2.5 Mbit/s){ends}, from this "
            "machine")


def loss_for_calls(loss: float) -> str:
    if loss >= 0.05:
        return ("At this loss voice breaks up audibly and video freezes: calls through this "
                "relay will suffer.")
    if loss >= 0.01:
        return ("Voice codecs hide this much loss with artefacts; video needs "
                "retransmissions and drops its quality.")
    return "Calls hide this much loss, but it shows the path is not clean."


def knee_sentence(plane: PlaneMeasurement) -> str:
    if plane.knee_pps is None:
        if plane.sweep:
            return "The rate sweep found no rate where loss exceeds 1 %."
        return ""
    size = plane.knee_payload_bytes or 0
    mbit = plane.knee_pps * size * 8 / 1e6
    return (f"In the rate sweep, loss exceeds 1 % from {plane.knee_pps:,.0f} packets/s of "
            f"{size} bytes ({mbit:.1f} Mbit/s).")


def _best_clean(steps: list[SweepStep]) -> SweepStep | None:
    clean = [s for s in steps if not s.past_knee and not s.client_bound]
    return max(clean, key=lambda s: s.offered_pps, default=None)


@dataclass(frozen=True)
class Cap:
    """The sweep's evidence of a bandwidth cap, at the largest payload size."""

    #: The highest step that passed cleanly (the cap is at least this), or None.
    clean: SweepStep | None
    #: The steps past the knee, by offered rate.
    lossy: tuple[SweepStep, ...]
    #: The packet rate the smallest payload reached.
    small_pps: float

    @property
    def bps(self) -> float:
        """The cap, bits per second of payload: what passed cleanly, else the least that
        passed past the knee."""
        if self.clean is not None:
            return self.clean.mbit_s * 1e6
        return min(s.mbit_s for s in self.lossy) * 1e6


def bandwidth_cap(plane: PlaneMeasurement) -> Cap | None:
    """The sweep's shape of a bandwidth cap, or None. At the largest payload: at least two
    steps past the knee, over offered rates at least 1.2 times apart, the most offered one
    held clearly below its offered rate (at most 95 % delivered) without collapsing (at
    least 75 % of what passed cleanly): delivery stays flat while the offered rate rises.
    And the smallest payload reached a packet rate at least twice as high, so that bytes,
    not packets, are the limit (coturn max-bps or bps-capacity, or the link). A limiter that
    counts bytes per whole second lets a step pass up to half as much again as its rate, so
    "flat" allows that much."""
    sizes = sorted({s.payload_bytes for s in plane.sweep})
    if len(sizes) < 2:
        return None
    large = [s for s in plane.sweep if s.payload_bytes == sizes[-1]]
    small = [s for s in plane.sweep if s.payload_bytes == sizes[0]]
    lossy = tuple(sorted((s for s in large if s.past_knee and not s.client_bound),
                         key=lambda s: s.offered_pps))
    if len(lossy) < 2 or lossy[-1].offered_pps < 1.2 * lossy[0].offered_pps:
        return None
    top = lossy[-1]
    if top.delivered_pps > 0.95 * top.offered_pps:
        return None  # barely past the knee: no shape to read
    clean = _best_clean(large)
    if clean is not None and top.delivered_pps < (1 - _FLAT) * clean.delivered_pps:
        return None  # delivery collapsed under load: an overloaded server, not a cap
    reached = _best_clean(small)
    small_pps = max([s.delivered_pps for s in small if not s.client_bound]
                    + ([reached.delivered_pps] if reached else []), default=0.0)
    plateau = clean.delivered_pps if clean is not None else lossy[0].delivered_pps
    if small_pps * _BYTES_NOT_PACKETS < plateau:
        return None  # small packets hit the same packet rate: a packet limit, not bytes
    return Cap(clean, lossy, small_pps)


def relay_bandwidth_limited(evidence: Evidence) -> list[Verdict]:
    """relay-bandwidth-limited: the sweep's shape says the server caps bandwidth."""
    verdicts = []
    for check in evidence.relays:
        plane = check.plane
        if not check.ok or plane is None:
            continue
        cap = bandwidth_cap(plane)
        if cap is None:
            continue
        low, top = cap.lossy[0], cap.lossy[-1]
        size = top.payload_bytes
        delivered = sorted(s.delivered_pps for s in cap.lossy)
        passed = ("" if cap.clean is None else
                  f"{cap.clean.offered_pps:,.0f} packets/s passed cleanly, and ")
        flows = "" if plane.flows == 1 else f" across {plane.flows} flows"
        verdicts.append(Verdict(
            id="relay-bandwidth-limited", severity=Severity.WARN,
            title=f"{check.server.url} caps the bandwidth at about "
                  f"{describe_rate(cap.bps)}{flows}",
            detail=f"At {size}-byte payloads {passed}while the offered rate rose from "
                   f"{low.offered_pps:,.0f} to {top.offered_pps:,.0f} packets/s the delivered "
                   f"rate stayed between {delivered[0]:,.0f} and {delivered[-1]:,.0f} "
                   f"(loss up to {max(s.loss for s in cap.lossy):.0%}), yet small packets "
                   f"passed at {cap.small_pps:,.0f} packets/s: the limit is in bytes, not "
                   f"packets. {for_calls(cap.bps, plane.crossings == 4)}.",
            hint="This is the shape of a bandwidth cap: coturn's max-bps (per session) or "
                 "bps-capacity (whole server), or the server's link. Raise or remove the cap "
                 "if calls need more; video calls need 1.5-2.5 Mbit/s per 720p stream.",
            urls=(check.server.url,), confidence=Confidence.LIKELY))
    return verdicts


def plane_measurements(plane: PlaneMeasurement) -> str:
    """relay-data-path-ok's detail for iceprobe's own data plane."""
    parts = []
    flows = "" if plane.flows == 1 else f" on each of {plane.flows} flows"
    sent = f"{plane.received}/{plane.sent} packets of {plane.payload_bytes} bytes back"
    parts.append(f"{sent} at {plane.rate_pps:g} packets/s{flows}")
    if plane.rtt_us is not None:
        rtt = plane.rtt_us
        parts.append(f"round trip median {rtt.median:,.0f} µs (p99 {rtt.p99:,.0f} µs, "
                     f"{plane.crossings} server crossings)")
    if plane.jitter_us is not None:
        parts.append(f"jitter {plane.jitter_us:,.0f} µs")
    if plane.reordered or plane.duplicates:
        parts.append(f"{plane.reordered} reordered, {plane.duplicates} duplicated")
    text = "; ".join(parts) + "."
    if plane.topology == "relay-relay":
        text += " Each packet crossed the server twice each way (relay to relay)."
    best = _best_clean(list(plane.sweep))
    if best is not None:
        text += (f" Without loss the sweep reached {best.delivered_pps:,.0f} packets/s of "
                 f"{best.payload_bytes} bytes ({best.mbit_s:.1f} Mbit/s): "
                 f"{for_calls(best.mbit_s * 1e6, plane.crossings == 4)}.")
    knee = knee_sentence(plane)
    if knee:
        text += f" {knee}"
    if plane.client_bound:
        text += (f" The client was the limit somewhere (its CPU: {plane.client_cpu:.2f} "
                 "s per s): the server may do more.")
    return text
