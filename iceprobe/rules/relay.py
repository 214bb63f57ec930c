"""Verdicts on relay data-path checks (`iceprobe relay`, `gather --relay-check`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Confidence, RelayCheck, RelayStep, Severity, TurnExchange, Verdict
from ..numbers import describe_ms, plural
from .evidence import Evidence
from .relay_plane import (
    bandwidth_cap,
    describe_rate,
    knee_sentence,
    loss_for_calls,
    plane_measurements,
)

_STEP = {
    RelayStep.ALLOCATE: "a peer's own allocation failed",
    RelayStep.ICE: "ICE checks never succeeded",
    RelayStep.DTLS: "DTLS did not complete",
    RelayStep.CHANNEL: "the data channel did not open",
    RelayStep.ECHO: "messages were lost",
    RelayStep.BULK: "the bulk transfer delivered nothing",
    RelayStep.PERMISSION: "the server did not install the permission or channel",
    RelayStep.SWEEP: "the rate sweep did not finish",
}


def _denied(check: RelayCheck) -> bool:
    return any(e.error_code == 403 for e in check.errors)


def relay_permission_denied(evidence: Evidence) -> list[Verdict]:
    verdicts = []
    for check in evidence.relays:
        events = [e for e in check.errors if e.error_code == 403]
        if not events:
            continue
        requests = sorted({e.problem or "a request" for e in events})
        verdicts.append(Verdict(
            id="relay-permission-denied", severity=Severity.FAIL,
            title=f"{check.server.url} refuses to relay to the other peer",
            detail=f"The allocations worked, but {' and '.join(requests)} towards the other "
                   f"peer's relay address got 403 {events[0].error_text.split(' (on ')[0]!r} "
                   f"after {describe_ms(events[0].elapsed_ms or 0)}, so no data can pass.",
            hint="The server denies these peer addresses: check denied-peer-ip / "
                 "allowed-peer-ip, and no-loopback-peers or private-address filters in its "
                 "configuration.",
            urls=(check.server.url,)))
    return verdicts


def relay_data_path(evidence: Evidence) -> list[Verdict]:
    """relay-data-path-ok or relay-data-path-broken, per attempted check (a 403 is told by
    relay-permission-denied instead)."""
    verdicts = []
    for check in evidence.relays:
        if not check.attempted or check.interrupted or _denied(check):
            continue  # an interrupted check broke nothing: the interrupted verdict says so
        if check.ok and check.plane is not None:
            verdicts.append(Verdict(
                id="relay-data-path-ok", severity=Severity.OK,
                title=f"Data flows through {check.server.url} (TURN data plane)",
                detail=plane_measurements(check.plane), hint="", urls=(check.server.url,)))
            continue
        if check.ok:
            verdicts.append(Verdict(
                id="relay-data-path-ok", severity=Severity.OK,
                title=f"Data flows through {check.server.url}",
                detail=_measurements(check),
                hint="", urls=(check.server.url,)))
            continue
        step = check.failed_step or RelayStep.ICE
        cause = _server_cause(check, step)
        detail = (f"The allocations worked, but {check.failure or _STEP[step]} "
                  f"(step {step.value}, after {describe_ms(check.duration_ms)}).")
        if cause is not None:
            detail += f" {cause.seen}"
        verdicts.append(Verdict(
            id="relay-data-path-broken", severity=Severity.FAIL,
            title=f"No data flows through {check.server.url}: "
                  f"{cause.title if cause is not None else _STEP[step]}",
            detail=detail, hint=cause.hint if cause is not None else _HINTS[step],
            urls=(check.server.url,),
            confidence=cause.confidence if cause is not None else Confidence.CERTAIN))
    return verdicts


@dataclass(frozen=True)
class _Cause:
    """What the server's own behaviour during the check says about a failure."""

    title: str
    #: A sentence (or two) for the detail: what was seen.
    seen: str
    hint: str
    confidence: Confidence


def _requests(exchanges: list[TurnExchange]) -> str:
    return " and ".join(dict.fromkeys(e.request for e in exchanges))


def _counted(exchanges: list[TurnExchange]) -> str:
    sends = sum(e.sends for e in exchanges)
    answers = sum(e.answers for e in exchanges)
    return f"{plural(answers, 'answer')} to {plural(sends, 'send')}"


def _server_cause(check: RelayCheck, step: RelayStep) -> _Cause | None:
    """The server's behaviour that explains the failure, from the check's own TURN
    transactions and the data seen on the wire; None when they show nothing wrong (the
    step's hint then stands). The server's misbehaviour is never blamed on a firewall."""
    lost = [e for e in check.errors if e.problem == "server-lost"]
    if lost:
        return _Cause(
            title=f"the server went away during the {step.value} step",
            seen=f"{lost[0].error_text[0].upper()}{lost[0].error_text[1:]} "
                 f"after {describe_ms(lost[0].elapsed_ms or 0)}.",
            hint="The TURN server stopped during the check (it crashed, restarted or was "
                 "stopped): check that it runs, and its logs. Calls through it break when "
                 "it does.",
            confidence=Confidence.CERTAIN)
    exchanges = [e for e in check.turn_requests if e.request != "Refresh(0)"]
    discarded = [e for e in exchanges if e.outcome == "discarded"]
    if discarded:
        first = discarded[0]
        what = (f"error {first.error_code}" if first.error_code else "success")
        missing = ("carried no MESSAGE-INTEGRITY" if first.problem == "no-message-integrity"
                   else "carried a MESSAGE-INTEGRITY that does not match the credentials")
        sent_nothing = check.channel_data_sent == 0
        return _Cause(
            title=f"the server's {_requests(discarded)} answers were discarded",
            seen=(f"The server's {_requests(discarded)} {what} {missing}, so the client "
                  f"discarded it and kept resending ({_counted(discarded)})"
                  + ("; no data was ever sent through the relay." if sent_nothing else ".")),
            hint="This is the TURN server's behaviour, not the network: an answer to an "
                 "authenticated request must carry a valid MESSAGE-INTEGRITY (RFC 8489 "
                 "section 9.2.4), and clients that check it, as RFC 8489 says they must, "
                 "cannot use this server. Fix or replace the TURN server software (node-turn "
                 "0.0.6 answers ChannelBind this way).",
            confidence=Confidence.CERTAIN if sent_nothing else Confidence.LIKELY)
    refused = [e for e in exchanges if e.outcome == "error" and e.error_code not in (401, 438)]
    if refused:
        first = refused[0]
        reason = f" {first.reason!r}" if first.reason else ""
        return _Cause(
            title=f"the server refused {_requests(refused)} ({first.error_code})",
            seen=f"The server answered {_requests(refused)} with {first.error_code}{reason}.",
            hint=f"The server refuses what a call needs after the allocation: see what "
                 f"{first.error_code} means for {first.request} (`iceprobe explain "
                 f"{first.error_code}`) and the server's log.",
            confidence=Confidence.LIKELY)
    unanswered = [e for e in exchanges if e.outcome == "unanswered"]
    if unanswered:
        return _Cause(
            title=f"the server did not answer {_requests(unanswered)}",
            seen=f"The server answered none of the {_requests(unanswered)} requests "
                 f"({plural(sum(e.sends for e in unanswered), 'send')}), although it "
                 "answered the allocations.",
            hint="The server took the allocations but ignores what comes after them: look "
                 "for an overloaded server, a rate limit, or a server that does not "
                 "implement these requests, in its log.",
            confidence=Confidence.LIKELY)
    if step is RelayStep.ICE and check.channel_data_sent and not check.channel_data_received \
            and any(e.outcome == "success" for e in exchanges):
        return _Cause(
            title="no data came back through the channel",
            seen=f"The channels were bound, and the peers sent "
                 f"{plural(check.channel_data_sent, 'ChannelData message')} to the server, "
                 "but none came back.",
            hint="Either the server drops ChannelData (a server bug), or traffic between "
                 "its relay addresses is dropped: check the relay port range (min-port.."
                 "max-port) is open for UDP between the relay addresses (firewall, security "
                 "group), and that external-ip names an address the server can reach itself.",
            confidence=Confidence.POSSIBLE)
    return None


_HINTS = {
    RelayStep.ALLOCATE: "Check the server's per-user and total quotas (coturn user-quota, "
                        "total-quota) and its relay port range: a call needs an allocation "
                        "per peer.",
    RelayStep.ICE: "Peers cannot reach the relay addresses: check the relay port range "
                   "(min-port..max-port) is open in the firewall / security group for UDP, "
                   "and that external-ip names the address peers can reach.",
    RelayStep.DTLS: "Packets pass for ICE but larger DTLS packets do not: look for an MTU "
                    "problem or a middlebox dropping DTLS.",
    RelayStep.CHANNEL: "DTLS works but SCTP does not: look for a middlebox dropping larger "
                       "packets, or an overloaded server.",
    RelayStep.ECHO: "The path opened and then lost everything: the relay may be dropping "
                    "traffic under load or rate-limiting (coturn: max-bps, bps-capacity).",
    RelayStep.BULK: "Small messages pass but bulk data does not: look for bandwidth limits "
                    "(coturn: max-bps, bps-capacity) or an MTU problem.",
    RelayStep.PERMISSION: "The server took the allocations but not the CreatePermission or "
                          "ChannelBind that every call needs: check its peer rules "
                          "(denied-peer-ip, allowed-peer-ip) and its log.",
    RelayStep.SWEEP: "The path worked at the steady rate and then broke under load: look for "
                     "a server that drops its clients or restarts when loaded.",
}


def relay_slow(evidence: Evidence) -> list[Verdict]:
    verdicts = []
    for check in evidence.relays:
        if not check.ok:
            continue
        reasons = []
        if check.rtt is not None and check.rtt.median > evidence.relay_max_rtt_ms:
            reasons.append(f"the median round trip is {describe_ms(check.rtt.median)} "
                           f"(threshold {describe_ms(evidence.relay_max_rtt_ms)})")
        rates = [r for r in (check.throughput_up_bps, check.throughput_down_bps) if r]
        if check.plane is not None and bandwidth_cap(check.plane) is not None:
            rates = []  # relay-bandwidth-limited says it, with the sweep's shape
        if rates and min(rates) < evidence.relay_min_bps:
            reasons.append(f"the throughput is {describe_rate(min(rates))} (threshold "
                           f"{describe_rate(evidence.relay_min_bps)})")
        if reasons:
            verdicts.append(Verdict(
                id="relay-slow", severity=Severity.WARN,
                title=f"The relay path through {check.server.url} is slow",
                detail="Data flows, but " + " and ".join(reasons) + ".",
                hint="Calls through this relay will suffer: pick a TURN server closer to the "
                     "users, or check its load and bandwidth limits.",
                urls=(check.server.url,)))
    return verdicts


def relay_lossy(evidence: Evidence) -> list[Verdict]:
    verdicts = []
    for check in evidence.relays:
        loss = check.loss
        if not check.ok or loss is None or loss == 0:
            continue
        plane = check.plane
        if plane is not None:
            verdicts.append(Verdict(
                id="relay-lossy", severity=Severity.WARN,
                title=f"The relay path through {check.server.url} loses packets",
                detail=f"{plane.sent - plane.received} of {plane.sent} packets ({loss:.1%}) "
                       f"sent at {plane.rate_pps:g} packets/s per flow never came back, over "
                       f"{plane.crossings} crossings of the server per round trip. "
                       + knee_sentence(plane) + " " + loss_for_calls(loss),
                hint="Loss at a voice-like rate comes from the path or the server's load, "
                     "not from the rate: check the network between here and the server, "
                     "and the server's CPU and drops (a firewall or rate limit on the relay "
                     "ports does this too).",
                urls=(check.server.url,)))
            continue
        verdicts.append(Verdict(
            id="relay-lossy", severity=Severity.WARN,
            title=f"The relay path through {check.server.url} loses messages",
            detail=f"{check.sent - check.received} of {check.sent} echo messages "
                   f"({loss:.0%}) never came back.",
            hint="Packet loss on the way to the relay or on the relay itself degrades audio "
                 "and video: check the network and the server's load.",
            urls=(check.server.url,)))
    return verdicts


def _measurements(check: RelayCheck) -> str:
    parts = []
    if check.channel_open_ms is not None:
        ice = ("" if check.ice_connected_ms is None else
               f" (ICE {describe_ms(check.ice_connected_ms)})")
        parts.append(f"data channel open after {describe_ms(check.channel_open_ms)}{ice}")
    if check.rtt is not None:
        parts.append(f"round trip median {check.rtt.median:.1f} ms "
                     f"(p95 {check.rtt.p95:.1f} ms)")
    if check.sent:
        parts.append(f"{check.received}/{check.sent} echoes back")
    if check.throughput_up_bps and check.throughput_down_bps:
        parts.append(f"throughput {describe_rate(check.throughput_up_bps)} up, "
                     f"{describe_rate(check.throughput_down_bps)} down")
    return "; ".join(parts) + "." if parts else ""

