"""Rules about what was gathered: which servers yielded their candidates, which were
unreachable, and whether anything beyond host candidates came back."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from ..codes import for_cause
from ..constants import SLOTS_BUSY
from ..model import (
    Candidate,
    CandidateType,
    Cause,
    Confidence,
    ErrorEvent,
    ProbeResult,
    ServerSpec,
    Severity,
    Transport,
    Verdict,
)
from .behaviour import judged_elsewhere
from .evidence import Evidence, failure_severity, local_addresses, sentence
from .tls import TLS_VERDICTS

#: IPv4 and IPv6 addresses (with an optional port) inside an error text.
_ADDRESSES = re.compile(r"\[?(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}\]?(?::\d+)?"
                        r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?")


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
    if evidence.results and not evidence.gathered:
        # Nothing at all: this is the cause, and "only host candidates" would be about none.
        return [Verdict(
            id="no-host-candidates", severity=Severity.FAIL, title="No candidates at all",
            detail="This machine has no non-loopback IPv4 or global IPv6 address: no host "
                   "candidate, and no server could be reached from one, so no "
                   "server-reflexive or relay candidate either.",
            hint="Check that a network interface is up and has an address.",
            urls=tuple(r.server.url for r in evidence.results))]
    return [Verdict(
        id="no-host-candidates", severity=Severity.WARN, title="No host candidates",
        detail="This machine has no non-loopback IPv4 or global IPv6 address.",
        hint="Check that a network interface is up and has an address.")]


def only_host_candidates(evidence: Evidence) -> list[Verdict]:
    recording = evidence.recording
    unknown_servers = recording is not None and not recording.configuration_known
    if evidence.gathered or not (evidence.results or unknown_servers):
        return []
    if not evidence.host_candidates:
        # Nothing at all: no-host-candidates (gathered) or dump-incomplete (recorded) says so.
        return []
    at_risk = ("Calls with peers on other networks are at risk: they can still connect "
               "through the remote peer's own relay (TURN) candidate, or a peer-reflexive "
               "one found during the checks, but not through anything of this side's.")
    detail = ("Servers were configured, but no server-reflexive or relay candidate was "
              f"gathered. {at_risk}")
    if unknown_servers:
        detail = ("The recording has no server-reflexive or relay candidate (it does not say "
                  f"which servers were configured). {at_risk}")
    explained = any(r.errors or r.unfinished for r in evidence.results)
    if explained:
        hint = "Fix the causes above: no server gave a candidate."
    elif evidence.results:
        hint = ("No error event says why: probe the servers with `iceprobe gather` from the "
                "same network.")
    else:
        hint = "Configure STUN and TURN servers, and check that UDP to them is allowed."
    return [Verdict(
        id="only-host-candidates", severity=Severity.FAIL, title="Only host candidates",
        detail=detail, hint=hint, urls=tuple(r.server.url for r in evidence.results))]


def no_relay_candidates(evidence: Evidence) -> list[Verdict]:
    turn = [r for r in evidence.results if r.server.is_turn]
    if not turn or any(c.type is CandidateType.RELAY for c in evidence.gathered):
        return []
    explained = any(r.errors or r.unfinished for r in turn)
    return [Verdict(
        id="no-relay-candidates", severity=Severity.FAIL, title="No relay candidates",
        detail="TURN was configured, but no relay candidate was gathered. Calls with peers "
               "behind restrictive NATs or firewalls are at risk: they connect only if the "
               "remote peer has a relay of its own, or a direct path opens.",
        hint="Fix the TURN servers' causes above." if explained else
             "No error event says why the TURN servers gave nothing: probe them with "
             "`iceprobe gather --turn URL` from the same network.",
        urls=tuple(r.server.url for r in turn))]


def _only_ipv6(events: Sequence[ErrorEvent]) -> bool:
    return all(e.address is not None and ":" in e.address for e in events)


def unreachable_hint(cause: Cause, spec: ServerSpec, plain_works: bool = False,
                     ports: Sequence[int] = (), not_tls: bool = False) -> str:
    """What to do about a 701 of this cause on this server: the code table's remedy, made
    specific to the transport and port that were tried (never advising what just failed).
    `plain_works`: plain TURN over TCP on the same host and port worked in this run.
    `ports`: every port that failed so (--matrix), named together.
    `not_tls`: the TLS attempt itself found the port answering plain STUN over TCP
    (problem `not-tls`)."""
    transport = spec.transport
    port = _ports_text(ports) if len(ports) > 1 else str(spec.port)
    one_port = len(ports) <= 1
    if cause is Cause.TLS:
        if plain_works or not_tls:
            return (f"Port {port} speaks plain TURN over TCP, not TLS (the TCP probe of the "
                    "same port worked): use turn:…?transport=tcp there, or point turns: at "
                    "the server's TLS port." if one_port else
                    f"Ports {port} speak plain TURN over TCP, not TLS (the TCP probes of the "
                    "same ports worked): use turn:…?transport=tcp there, or point turns: at "
                    "the server's TLS port.")
        return ("The TLS handshake did not complete (no certificate was judged): check that "
                f"port {port} speaks TLS at all (a plain TURN port does not) and the "
                "server's TLS settings (protocol versions, ciphers).")
    wire = "UDP" if transport is Transport.UDP else "TCP"
    if cause is Cause.TIMEOUT:
        if transport is Transport.UDP:
            return (f"Check that the server runs and that UDP {port} to it is open (firewall, "
                    "security group); where UDP is blocked, offer TURN over TCP or TLS on "
                    "port 443.")
        other = ("" if 443 in (ports or (spec.port,)) else
                 " Where only web traffic gets out, offer TURN over TLS on port 443.")
        return (f"Check that the server listens on TCP {port} and that no firewall drops "
                f"the connection (an unanswered TCP connection is a silent drop).{other}")
    if cause is Cause.REFUSED:
        return (f"Nothing accepts TCP connections on {'port' if one_port else 'ports'} {port} "
                f"there: check the server's {transport.value.upper()} listening port, or use "
                "the port it listens on.")
    if cause is Cause.CONNECT:  # a browser's "Failed to establish connection": no reason
        if transport is Transport.TLS:
            return ("Not certain which: the likely causes are, in order, a certificate the "
                    "browser rejects (chain, name, dates), a port that does not speak TLS, and "
                    "a refused port. Run `iceprobe gather --turn URL` from that network: it "
                    "names the cause.")
        return (f"Not certain which: most likely nothing listens on TCP {port} there, or a "
                "firewall rejects the connection. Run `iceprobe gather --turn URL` from that "
                "network: it names the cause.")
    if cause is Cause.UNSPECIFIED:  # a 701 with no text (Firefox): no reason at all
        return (f"Not certain which: the browser did not say why. Check that the name "
                f"resolves on that network and that the server listens on {wire} {port}; run "
                "`iceprobe gather` with this URL from that network: it names the cause.")
    if cause is Cause.UNREACHABLE:
        return (f"An ICMP error came back for {wire} {port}: check that the server runs and "
                f"listens on {'that port' if one_port else 'those ports'}, and firewalls that "
                "reject traffic.")
    return for_cause(cause).remedy


def _ports_text(ports: Sequence[int]) -> str:
    names = [str(p) for p in ports]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _matrix_ports(evidence: Evidence, result: ProbeResult,
                  causes: Sequence[Cause]) -> tuple[int, ...]:
    """--matrix: the ports of the same host and transport that failed with the same causes,
    so that one verdict speaks for that row of the grid."""
    if not evidence.matrix or not result.server.is_turn:
        return ()
    spec = result.server
    return tuple(r.server.port for r in evidence.results
                 if r.server.is_turn and not r.ok and r.server.host == spec.host
                 and r.server.transport is spec.transport
                 and list(dict.fromkeys(e.cause for e in r.errors if e.is_unreachable))
                 == list(causes))


def _partial_note(events: Sequence[ErrorEvent], good: Sequence[str]) -> str:
    """Why one address family failed while the other worked, from the causes seen."""
    if not _only_ipv6(events) or any(":" in a for a in good):
        return ""
    if all(e.cause is Cause.DNS for e in events):
        return (" The IPv6 lookup failed: the name has no IPv6 (AAAA) address, so only IPv4 "
                "is tried.")
    return (" The IPv6 attempt failed while IPv4 worked: this network or the server has no "
            "working IPv6 path.")


def server_unreachable(evidence: Evidence) -> list[Verdict]:
    verdicts = []
    for result in evidence.results:
        # TLS certificate problems have verdicts of their own (rules.tls), and so have a
        # server that answered with foreign transaction ids or ignored a family request
        # while it answered the rest (rules.behaviour): it is not unreachable.
        elsewhere = [id(e) for e in judged_elsewhere(evidence, result)]
        events = [e for e in result.errors if e.is_unreachable and id(e) not in elsewhere
                  and not (e.cause is Cause.TLS and e.problem in TLS_VERDICTS)]
        if not events:
            continue
        url = result.server.url
        causes = list(dict.fromkeys(e.cause for e in events))
        named = ", ".join(c.value for c in causes)
        texts = "; ".join(dict.fromkeys(_generic(e.error_text) for e in events))
        plain = _plain_tcp_works(evidence, result.server)
        ports = _matrix_ports(evidence, result, causes)
        if plain:
            ports = tuple(p for p in ports if _plain_tcp_works(
                evidence, dataclasses.replace(result.server, port=p)))
        not_tls = any(e.cause is Cause.TLS and e.problem == "not-tls" for e in events)
        hint = " ".join(dict.fromkeys(unreachable_hint(c, result.server, plain, ports,
                                                       not_tls) for c in causes))
        wanted = result.server.expected_candidate.value
        if result.ok:
            good = sorted({c.related_address or c.address for c in result.candidates
                           if c.type is result.server.expected_candidate})
            ipv6 = _only_ipv6(events)
            verdicts.append(Verdict(
                id="server-unreachable", severity=Severity.INFO,
                title=f"Harmless 701 from {url}",
                detail=(sentence(f"701 ({named}) from {local_addresses(events)}: {texts}")
                        + f" This is harmless: the server still gave its {wanted} candidate from "
                        f"{', '.join(good)}." + _partial_note(events, good)),
                hint=("Nothing to fix unless IPv6 should work." if ipv6 else
                      "Nothing to fix unless every address of the server should work."),
                urls=(url,)))
            continue
        severity = failure_severity(evidence, result)
        if evidence.matrix and severity is Severity.WARN:
            severity = Severity.INFO  # a blocked cell of the grid, while another way out works
        verdicts.append(Verdict(
            id="server-unreachable", severity=severity,
            title=f"{url} unreachable (701 {named})",
            detail=(sentence(f"Could not be used: {texts}") if texts.strip(" ;") else
                    "Could not be used; the browser gave no reason (an empty errorText)."),
            hint=hint, urls=(url,),
            group_title=(f"{{n}} {result.server.transport.value.upper()} ports of the grid "
                         f"unreachable (701 {named})" if ports else
                         f"{{n}} servers unreachable (701 {named})"),
            confidence=_confidence(causes, plain, not_tls)))
    return verdicts


def _confidence(causes: Sequence[Cause], plain_works: bool,
                not_tls: bool = False) -> Confidence:
    """A browser's "Failed to establish connection" is one of several causes (possible); a
    TLS failure read as a plain port is inferred from the TCP probe (likely), and certain
    when the same port answered plain STUN while the handshake went unanswered."""
    if Cause.CONNECT in causes or Cause.UNSPECIFIED in causes:
        return Confidence.POSSIBLE
    if not_tls and Cause.TLS in causes:
        return Confidence.CERTAIN
    if plain_works and Cause.TLS in causes:
        return Confidence.LIKELY
    return Confidence.CERTAIN


def _plain_tcp_works(evidence: Evidence, spec: ServerSpec) -> bool:
    """For a turns: server: plain TURN over TCP to the same host and port worked."""
    if spec.transport is not Transport.TLS:
        return False
    return any(r.ok and r.server.transport is Transport.TCP and r.server.host == spec.host
               and r.server.port == spec.port for r in evidence.results)


def _generic(text: str) -> str:
    """An error text without the addresses in it, so that the same failure at different
    servers reads the same (the error events keep the addresses)."""
    return _ADDRESSES.sub("…", text)


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
        wanted = r.server.expected_candidate.value
        verdicts.append(Verdict(
            id="server-no-candidate", severity=failure_severity(evidence, r),
            title=f"{r.server.url} gave no {wanted} candidate",
            detail=detail, hint=hint, urls=(r.server.url,),
            group_title=f"{{n}} servers gave no {wanted} candidate"))
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
        urls=(url,), confidence=Confidence.LIKELY)


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
                urls=(r.server.url,), group_title="{n} probes interrupted"))
        else:
            busy = SLOTS_BUSY in r.unfinished
            verdicts.append(Verdict(
                id="not-probed", severity=Severity.FAIL,
                title=f"{r.server.url} was not probed in time",
                detail=f"{r.unfinished[:1].upper()}{r.unfinished[1:]}.",
                hint="Raise --concurrency (each probe holds one socket) or --timeout." if busy
                     else "Raise --timeout: the budget was too short to start every probe.",
                urls=(r.server.url,), group_title="{n} servers not probed in time"))
    return verdicts
