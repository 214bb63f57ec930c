"""Rules that only make sense for a browser's recording (iceprobe analyze): what the browser
hid, how the PeerConnection ended, and whether its configuration could work at all. The
gathering rules judge the candidates and errors of a recording as they judge gathered ones."""

from __future__ import annotations

from ..model import CandidateType, Severity, Verdict
from ..numbers import describe_ms
from .evidence import Evidence

_FAILED = "failed"


def mdns_host_candidates(evidence: Evidence) -> list[Verdict]:
    if evidence.recording is None:
        return []
    hidden = [c for c in evidence.host_candidates if c.address.lower().endswith(".local")]
    if not hidden:
        return []
    every = len(hidden) == len(evidence.host_candidates)
    return [Verdict(
        id="mdns-host-candidates", severity=Severity.INFO,
        title="Host addresses hidden behind mDNS names" if every else
              "Some host addresses hidden behind mDNS names",
        detail=f"{len(hidden)} of {len(evidence.host_candidates)} host candidates are mDNS "
               "names (….local), as browsers report them when the page has no camera or "
               "microphone permission: the local addresses are unknown, so host-level "
               "diagnosis is limited.",
        hint="For a full picture, ask for a recording made after the page was granted "
             "camera/microphone access, or run `iceprobe gather` on that machine.")]


def ice_failed(evidence: Evidence) -> list[Verdict]:
    recording = evidence.recording
    if recording is None:
        return []
    failed = [s for s in recording.states if s.kind in ("ice", "connection")
              and s.state == _FAILED]
    if not failed:
        return []
    timeline = " → ".join(
        f"{s.kind} {s.state}" + ("" if s.elapsed_ms is None else f" ({describe_ms(s.elapsed_ms)})")
        for s in recording.states if s.kind in ("ice", "connection"))
    relayed = any(c.type is CandidateType.RELAY for c in evidence.gathered)
    state = "ICE connection state" if failed[0].kind == "ice" else "connection state"
    return [Verdict(
        id="ice-failed", severity=Severity.FAIL, title="ICE failed: the call did not connect",
        detail=f"The {state} reached failed. Timeline: {timeline}.",
        hint="No candidate pair worked although this side had a relay candidate: the other "
             "side (its candidates, its TURN server) or the TURN server's relay ports are "
             "the suspects." if relayed else
             "No candidate pair worked, and this side had no relay candidate: fix the causes "
             "above first.")]


def ice_policy_mismatch(evidence: Evidence) -> list[Verdict]:
    """A configuration that cannot work as recorded: relay-only without a relay candidate,
    or a TURN transport that was configured but never gave a candidate."""
    recording = evidence.recording
    if recording is None:
        return []
    relays = [c for c in evidence.gathered if c.type is CandidateType.RELAY]
    verdicts = []
    if recording.ice_transport_policy == "relay" and not relays:
        verdicts.append(Verdict(
            id="ice-policy-mismatch", severity=Severity.FAIL,
            title="Relay-only policy, but no relay candidate",
            detail="iceTransportPolicy is \"relay\", so only relay candidates may be used, and "
                   "none was gathered: this PeerConnection cannot connect.",
            hint="Fix the TURN servers (see the verdicts on them), or allow iceTransportPolicy "
                 "\"all\".",
            urls=tuple(r.server.url for r in evidence.results if r.server.is_turn)))
    used = {c.relay_protocol for c in relays if c.relay_protocol}
    if used:
        for result in evidence.results:
            spec = result.server
            if spec.is_turn and not result.ok and spec.transport.value not in used:
                verdicts.append(Verdict(
                    id="ice-policy-mismatch", severity=Severity.WARN,
                    title=f"TURN over {spec.transport.value.upper()} never gave a candidate",
                    detail=f"{spec.url} is configured, but no relay candidate came over "
                           f"{spec.transport.value.upper()} (only "
                           f"{', '.join(sorted(used))}): clients that can only get out that "
                           "way will not connect.",
                    hint="See that server's verdicts; check its listener and the firewall "
                         "for that transport.",
                    urls=(spec.url,)))
    return verdicts


def dump_incomplete(evidence: Evidence) -> list[Verdict]:
    recording = evidence.recording
    if recording is None:
        return []
    if recording.log_missing:
        return [Verdict(
            id="dump-incomplete", severity=Severity.WARN, title="The event log is empty",
            detail="Only the candidates in the stats were recorded: no error event and no "
                   "state change, so failures cannot be explained and servers without a "
                   "candidate may have failed in any way.",
            hint=_RECORD_EARLIER.get(recording.format, _RECORD_EARLIER["other"]))]
    if recording.events:
        return []
    return [Verdict(
        id="dump-incomplete", severity=Severity.WARN, title="Nothing was recorded",
        detail="The recording holds no events for this PeerConnection: it was opened after "
               "the call started, or the call never gathered.",
        hint=_RECORD_EARLIER.get(recording.format, _RECORD_EARLIER["other"]))]


#: How to get a complete recording, per format.
_RECORD_EARLIER = {
    "chrome-webrtc-internals": "Open chrome://webrtc-internals before starting the call, "
                               "reproduce the problem, then download the dump.",
    "other": "If the PeerConnection was meant to connect, start recording before it is "
             "created; otherwise it was created and never used, and this can be ignored.",
}


def candidate_errors_unknown(evidence: Evidence) -> list[Verdict]:
    recording = evidence.recording
    if recording is None or recording.errors_recorded or recording.log_missing:
        return []  # an empty log is dump-incomplete's to report
    return [Verdict(
        id="candidate-errors-unknown", severity=Severity.INFO,
        title="Candidate errors were not recorded",
        detail=f"This format ({recording.format}) does not record icecandidateerror events: "
               "a server without candidates may have failed in any way.",
        hint="For the error codes, ask for a chrome://webrtc-internals dump or an "
             "iceprobe event log (examples/collect-ice-events.js).")]
