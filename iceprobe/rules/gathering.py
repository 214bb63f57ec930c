"""Rules about what was gathered: which servers yielded their candidates, which were
unreachable, and whether anything beyond host candidates came back."""

from __future__ import annotations

from collections.abc import Sequence

from ..codes import for_cause
from ..model import (
    Candidate,
    CandidateType,
    Cause,
    ErrorEvent,
    Severity,
    Verdict,
)
from .evidence import Evidence, failure_severity, local_addresses
from .tls import TLS_VERDICTS

#: What to do about each 701 cause: the remedies of the code table (iceprobe.codes), so the
#: verdicts and `iceprobe explain` never disagree.
_UNREACHABLE_HINTS: dict[Cause, str] = {cause: for_cause(cause).remedy for cause in Cause
                      if cause not in (Cause.RESPONSE, Cause.MALFORMED, Cause.INTERNAL)}



def no_servers(evidence: Evidence) -> list[Verdict]:
    recording = evidence.recording
    if evidence.results or (recording is not None and not recording.configuration_known):
        return []
    if recording is not None:
        return [Verdict(
            id="no-servers", severity=Severity.INFO, title="No STUN or TURN server configured",
            detail="The recorded configuration names no ICE server: only host candidates can "
                   "be gathered.",
            hint="Give the RTCPeerConnection iceServers (STUN and TURN) unless both peers are "
                 "always on the same network.")]
    return [Verdict(
        id="no-servers", severity=Severity.INFO, title="No STUN or TURN server given",
        detail="Only host candidates were gathered, because no server was named.",
        hint="Add --stun URL and/or --turn URL to test servers.")]


def no_host_candidates(evidence: Evidence) -> list[Verdict]:
    recording = evidence.recording
    if evidence.host_candidates:
        return []
    if recording is not None:
        if recording.ice_transport_policy == "relay" or not recording.events:
            return []  # relay-only gathers no host candidates; an empty log says nothing
        return [Verdict(
            id="no-host-candidates", severity=Severity.WARN, title="No host candidates",
            detail="The browser reported no host candidate.",
            hint="Check the device's network connection, and browser policies or extensions "
                 "that limit WebRTC (e.g. 'disable non-proxied UDP').")]
    return [Verdict(
        id="no-host-candidates", severity=Severity.WARN, title="No host candidates",
        detail="This machine has no non-loopback IPv4 or global IPv6 address.",
        hint="Check that a network interface is up and has an address.")]


def only_host_candidates(evidence: Evidence) -> list[Verdict]:
    recording = evidence.recording
    unknown_servers = recording is not None and not recording.configuration_known
    if evidence.gathered or not (evidence.results or unknown_servers):
        return []
    if not evidence.host_candidates and recording is not None:
        return []  # nothing at all was recorded: no-host-candidates or dump-incomplete say so
    detail = ("Servers were configured, but no server-reflexive or relay candidate was "
              "gathered: a peer outside this network could not reach this one.")
    if unknown_servers:
        detail = ("The recording has no server-reflexive or relay candidate (it does not say "
                  "which servers were configured): a peer outside this network could not "
                  "reach this one.")
    return [Verdict(
        id="only-host-candidates", severity=Severity.FAIL, title="Only host candidates",
        detail=detail,
        hint="See the error events: every server failed." if evidence.results else
             "Configure STUN and TURN servers, and check that UDP to them is allowed.",
        urls=tuple(r.server.url for r in evidence.results))]


def no_relay_candidates(evidence: Evidence) -> list[Verdict]:
    turn = [r for r in evidence.results if r.server.is_turn]
    if not turn or any(c.type is CandidateType.RELAY for c in evidence.gathered):
        return []
    return [Verdict(
        id="no-relay-candidates", severity=Severity.FAIL, title="No relay candidates",
        detail="TURN was configured, but no relay candidate was gathered: peers behind "
               "restrictive NATs or firewalls will not connect.",
        hint="See the error events of the TURN servers.",
        urls=tuple(r.server.url for r in turn))]


def _only_ipv6(events: Sequence[ErrorEvent]) -> bool:
    return all(e.address is not None and ":" in e.address for e in events)


def server_unreachable(evidence: Evidence) -> list[Verdict]:
    verdicts = []
    for result in evidence.results:
        # TLS certificate problems have verdicts of their own (rules.tls).
        events = [e for e in result.errors if e.is_unreachable
                  and not (e.cause is Cause.TLS and e.problem in TLS_VERDICTS)]
        if not events:
            continue
        url = result.server.url
        causes = list(dict.fromkeys(e.cause for e in events))
        texts = "; ".join(dict.fromkeys(e.error_text for e in events))
        hint = " ".join(_UNREACHABLE_HINTS.get(c, "") for c in causes).strip()
        wanted = result.server.expected_candidate.value
        if result.ok:
            good = sorted({c.related_address or c.address for c in result.candidates
                           if c.type is result.server.expected_candidate})
            verdicts.append(Verdict(
                id="server-unreachable", severity=Severity.INFO,
                title=f"Harmless 701 from {url}",
                detail=(f"701 ({', '.join(c.value for c in causes)}) from "
                        f"{local_addresses(events)}: {texts}. This is harmless: the server still "
                        f"gave its {wanted} candidate from {', '.join(good)}."
                        + (" Typical of a name with an AAAA record reached only over IPv4."
                           if _only_ipv6(events) and not any(":" in a for a in good) else "")),
                hint="Nothing to fix unless you expect the other address family to work.",
                urls=(url,)))
            continue
        verdicts.append(Verdict(
            id="server-unreachable", severity=failure_severity(evidence, result),
            title=f"{url} unreachable (701 {', '.join(c.value for c in causes)})",
            detail=f"No {wanted} candidate: {texts}.", hint=hint, urls=(url,)))
    return verdicts


def server_without_candidate(evidence: Evidence) -> list[Verdict]:
    """A server that yielded nothing and left no error event either."""
    recording = evidence.recording
    if recording is None:
        detail = "The server yielded no candidate and no error event."
        hint = "Run with --verbose to see the transactions."
    elif recording.errors_recorded:
        detail = "The browser gathered no candidate from it and reported no error for it."
        hint = ("Gathering may have ended (or the recording stopped) before the server "
                "answered; probe it with `iceprobe gather` from the same network.")
    else:
        detail = ("The browser gathered no candidate from it; the recording holds no error "
                  "events, so why is unknown.")
        hint = ("Ask for a chrome://webrtc-internals dump recorded from before the call "
                "started, or probe the server with `iceprobe gather` from the same network."
                if recording.log_missing else
                "Ask for a chrome://webrtc-internals dump, or probe the server with "
                "`iceprobe gather` from the same network.")
    verdicts = []
    for r in evidence.results:
        if r.ok or r.errors or r.unfinished:
            continue
        if recording is not None and r.server.expected_candidate is CandidateType.SRFLX:
            others = [c for c in evidence.gathered if c.type is CandidateType.SRFLX]
            if others:
                verdicts.append(_srflx_elsewhere(r.server.url, others))
                continue
        verdicts.append(Verdict(
            id="server-no-candidate", severity=failure_severity(evidence, r),
            title=f"{r.server.url} gave no {r.server.expected_candidate.value} candidate",
            detail=detail, hint=hint, urls=(r.server.url,)))
    return verdicts


def _srflx_elsewhere(url: str, others: Sequence[Candidate]) -> Verdict:
    """Browsers keep one srflx candidate per mapped address: when two servers see the same
    mapping, only the first one's candidate is reported, so a silent STUN server next to a
    gathered srflx most likely answered with the same address."""
    sources = sorted({c.url for c in others if c.url} - {url})
    where = f" from {', '.join(sources)}" if sources else ""
    addresses = sorted({c.address for c in others})
    return Verdict(
        id="srflx-from-another-server", severity=Severity.INFO,
        title=f"{url}: no srflx candidate of its own, and no error",
        detail=f"A srflx candidate ({', '.join(addresses)}) was gathered{where}. Browsers drop "
               "a srflx candidate whose address equals one already gathered, so this server "
               "most likely answered with the same mapping.",
        hint="Nothing to fix if the addresses match; to see this server's own answer, probe "
             "it alone with `iceprobe gather --stun URL`.",
        urls=(url,))


def all_candidates_gathered(evidence: Evidence) -> list[Verdict]:
    if not evidence.results or not all(r.ok for r in evidence.results):
        return []
    kinds = sorted({c.type.value for c in evidence.gathered})
    return [Verdict(
        id="all-candidates-gathered", severity=Severity.OK, title="All candidates gathered",
        detail=f"Every server yielded its candidate ({', '.join(kinds)}).", hint="",
        urls=tuple(r.server.url for r in evidence.results))]


def unfinished_probes(evidence: Evidence) -> list[Verdict]:
    """Servers whose probe did not finish: the run was interrupted, or no probe slot came
    free within the budget. What they would have yielded is unknown."""
    verdicts = []
    for r in evidence.results:
        if r.unfinished is None or r.ok:
            continue
        if r.unfinished == "interrupted":
            verdicts.append(Verdict(
                id="interrupted", severity=Severity.WARN,
                title=f"{r.server.url}: probe interrupted",
                detail="The run was stopped (Ctrl-C or SIGTERM) before this server's probe "
                       "finished; what it had found until then is shown.",
                hint="Run again and let it finish: it ends by itself within --timeout.",
                urls=(r.server.url,)))
        else:
            verdicts.append(Verdict(
                id="not-probed", severity=Severity.FAIL,
                title=f"{r.server.url} was not probed in time",
                detail=f"{r.unfinished[:1].upper()}{r.unfinished[1:]}.",
                hint="Raise --concurrency (each probe holds one socket) or --timeout.",
                urls=(r.server.url,)))
    return verdicts
