"""Rules about the network the candidates reveal: NAT, relay addresses, blocked UDP, speed."""

from __future__ import annotations

import ipaddress

from ..credentials import FAR_FUTURE_SECONDS, describe_duration
from ..model import CandidateType, Cause, Confidence, ProbeResult, Severity, Transport, Verdict
from ..numbers import describe_ms
from .behaviour import ignored_family_requests, mismatched_events
from .evidence import Evidence, response_text

_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def turn_credentials_missing(evidence: Evidence) -> list[Verdict]:
    """Said before any probe: a TURN server cannot be tested without credentials."""
    turn = [r.server.url for r in evidence.results if r.server.is_turn]
    if not turn or evidence.turn_credentials is not False or evidence.no_auth:
        return []
    return [Verdict(
        id="turn-credentials-missing", severity=Severity.FAIL,
        title="TURN credentials missing",
        detail="A TURN server was configured without a username or credential, so no "
               "allocation can succeed.",
        hint="Give -u/--username and -p/--credential (or ICEPROBE_USERNAME and "
             "ICEPROBE_CREDENTIAL); in a web app, set username and credential on the "
             "iceServers entry.", urls=tuple(turn))]


def turn_credentials_expiry(evidence: Evidence) -> list[Verdict]:
    """A TURN REST username carries its expiry: an expired one gets the same answer as a
    wrong password (coturn: a bare 401; pion/turn: a bare 400), so only the client can tell
    the two apart. The verdict quotes what the servers really answered."""
    expiry = evidence.ephemeral
    turn = tuple(r.server.url for r in evidence.results if r.server.is_turn)
    if expiry is None or not turn:
        return []
    left = expiry.seconds_left
    if left <= 0:
        return [Verdict(
            id="turn-credentials-expired", severity=Severity.FAIL,
            title="TURN credentials expired",
            detail=f"The username's timestamp {expiry.expires_at} passed "
                   f"{describe_duration(left)} ago: {_expired_answer(evidence)}",
            hint="Fetch fresh credentials from the application's TURN REST endpoint (or make "
                 "them with --turn-secret); check the clocks of this machine and the server.",
            urls=turn)]
    if left > FAR_FUTURE_SECONDS:
        return [Verdict(
            id="turn-credentials-far-future", severity=Severity.WARN,
            title="TURN credentials expire implausibly late",
            detail=f"The username's timestamp {expiry.expires_at} is "
                   f"{describe_duration(left)} ahead.",
            hint="Check for clock skew on the machine that made the credentials, or a TTL "
                 "far longer than intended (long-lived credentials defeat the point of "
                 "ephemeral ones).", urls=turn)]
    return []


def _expired_answer(evidence: Evidence) -> str:
    """What the TURN servers answered the expired credentials, in the expiry verdict."""
    answers = list(dict.fromkeys(
        response_text(e) for r in evidence.results if r.server.is_turn for e in r.errors
        if e.cause is Cause.RESPONSE and e.after_challenge is not False
        and e.error_code in (400, 401, 431, 441)))
    if answers:
        return (f"the server answered {' and '.join(answers)}, as servers answer a wrong "
                "password.")
    if any(c.type is CandidateType.RELAY for r in evidence.results if r.server.is_turn
           for c in r.candidates):
        return ("yet a server granted the allocation: it does not check the expiry (or its "
                "clock is far behind).")
    return ("servers reject such credentials as they reject a wrong password (coturn with "
            "401, pion/turn with a bare 400).")


def transport_matrix(evidence: Evidence) -> list[Verdict]:
    if not evidence.matrix:
        return []
    by_host: dict[str, list[ProbeResult]] = {}
    for result in evidence.results:
        if result.server.is_turn:
            by_host.setdefault(result.server.host, []).append(result)
    verdicts = []
    for host, results in by_host.items():
        working = [f"{r.server.transport.value}/{r.server.port}" for r in results if r.ok]
        urls = tuple(r.server.url for r in results)
        if not working:
            verdicts.append(Verdict(
                id="transport-matrix", severity=Severity.FAIL,
                title=f"No way out to {host}",
                detail=f"None of the {len(results)} transport and port combinations gave a "
                       "relay candidate.",
                hint="See the error events: a firewall blocks everything, or the server "
                     "listens elsewhere.", urls=urls))
            continue
        udp = any(r.ok and r.server.transport is Transport.UDP for r in results)
        verdicts.append(Verdict(
            id="transport-matrix", severity=Severity.OK,
            title=f"Ways out to {host}: {', '.join(working)}",
            detail=f"{len(working)} of {len(results)} transport and port combinations gave a "
                   "relay candidate.",
            hint="" if udp else "Only TCP/TLS gets out: calls will work, relayed over TCP, "
                                "at lower quality.", urls=urls))
    return verdicts


def relay_family_ignored(evidence: Evidence) -> list[Verdict]:
    """An IPv6 relay was asked for (REQUESTED-ADDRESS-FAMILY), and the server answered with
    an IPv4 relay instead of a 440. A server that never answered that Allocate at all is
    relay-family-request-ignored instead (rules.behaviour)."""
    if evidence.relay_family == "ipv4":
        return []
    verdicts = []
    for result in evidence.results:
        relays = [c for c in result.candidates if c.type is CandidateType.RELAY]
        if (not result.server.is_turn or not relays or any(":" in c.address for c in relays)
                or any(e.error_code == 440 for e in result.errors)
                or ignored_family_requests(evidence, result)):
            continue
        verdicts.append(Verdict(
            id="relay-family-ignored", severity=Severity.WARN,
            title=f"{result.server.url} ignored the request for an IPv6 relay",
            detail="The Allocate asked for an IPv6 relay (REQUESTED-ADDRESS-FAMILY) and the "
                   "server returned only IPv4 relays, without a 440.",
            hint="The server does not implement RFC 8656 address families (or has no IPv6 "
                 "relay address); IPv6-only peers cannot be relayed by it.",
            urls=(result.server.url,)))
    return verdicts


def no_nat(evidence: Evidence) -> list[Verdict]:
    urls = sorted({c.url for c in evidence.gathered if c.type is CandidateType.SRFLX
                   and c.url and c.address == c.related_address})
    if not urls:
        return []
    return [Verdict(
        id="no-nat", severity=Severity.INFO, title="No NAT between here and the server",
        detail="The server-reflexive address equals the host address: this machine is not "
               "behind a NAT (or the server is on the same network).",
        hint="Nothing to fix; the srflx candidate adds nothing over the host candidate here.",
        urls=tuple(urls))]


def slow_server(evidence: Evidence) -> list[Verdict]:
    """slow-server: a server's first candidate came later than the threshold. From a
    recording this is slow-turn, for TURN servers, timed from the start of gathering and only
    beyond the recording's time resolution (a locale time string has whole seconds)."""
    recording = evidence.recording
    margin = recording.time_resolution_ms if recording else 0.0
    verdicts = []
    for result in evidence.results:
        if recording is not None and not result.server.is_turn:
            continue
        wanted = [c.elapsed_ms for c in result.candidates
                  if c.type is result.server.expected_candidate and c.elapsed_ms is not None]
        if not wanted or min(wanted) - margin <= evidence.slow_ms:
            continue
        start = "gathering started" if recording else "the start"
        verdicts.append(Verdict(
            id="slow-turn" if recording else "slow-server", severity=Severity.WARN,
            title=f"{result.server.url} is slow",
            detail=f"Its first {result.server.expected_candidate.value} candidate came "
                   f"{describe_ms(min(wanted))} after {start} (threshold "
                   f"{describe_ms(evidence.slow_ms)}).",
            hint="Check the round-trip time to the server and its load; a far or "
                 "overloaded server delays every call set-up.",
            urls=(result.server.url,)))
    return verdicts


def _non_public(address: str) -> str | None:
    ip = ipaddress.ip_address(address)
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.version == 4 and ip in _CGNAT:
        return "carrier-grade NAT (100.64.0.0/10)"
    if ip.version == 6 and ip in ipaddress.ip_network("fc00::/7"):
        return "unique local (fc00::/7)"
    if ip.is_private:
        return "private"
    return None


def relay_address_private(evidence: Evidence) -> list[Verdict]:
    """A relay address peers cannot reach: non-public while the server was reached at a public
    address (the missing `external-ip`), or of a family nobody asked for."""
    verdicts = []
    for result in evidence.results:
        relays = [c for c in result.candidates if c.type is CandidateType.RELAY]
        public = [a for a in result.addresses if ipaddress.ip_address(a).is_global]
        for relay in relays:
            kind = _non_public(relay.address) if public else None
            if kind is not None:
                verdicts.append(Verdict(
                    id="relay-address-private", severity=Severity.FAIL,
                    title=f"{result.server.url} hands out a {kind} relay address",
                    detail=f"The relay candidate {relay.address}:{relay.port} is {kind}, but "
                           f"the server was reached at the public address {public[0]}: peers "
                           "on the Internet cannot send to the relay.",
                    hint="Set the server's public address (coturn: external-ip=PUBLIC/PRIVATE), "
                         "as cloud TURN servers behind 1:1 NAT need.",
                    urls=(result.server.url,)))
            elif evidence.relay_family == "ipv4" and ":" in relay.address:
                verdicts.append(Verdict(
                    id="relay-address-private", severity=Severity.WARN,
                    title=f"{result.server.url} hands out an IPv6 relay address unasked",
                    detail=f"The relay candidate {relay.address}:{relay.port} is IPv6, but the "
                           "Allocate asked for the default family, which RFC 8656 makes IPv4: "
                           "IPv4-only peers cannot send to it.",
                    hint="Check the server's relay-ip settings; an IPv4 relay address is "
                         "expected unless REQUESTED-ADDRESS-FAMILY asks for IPv6.",
                    urls=(result.server.url,)))
    return verdicts


def udp_blocked(evidence: Evidence) -> list[Verdict]:
    by_host: dict[str, list[bool]] = {}
    udp_urls: dict[str, list[str]] = {}
    stream_ok: dict[str, bool] = {}
    for result in evidence.results:
        host = result.server.host
        if result.server.transport is Transport.UDP:
            timed_out = (not result.ok and bool(result.errors)
                         and all(e.cause is Cause.TIMEOUT for e in result.errors)
                         and not mismatched_events(result))
            by_host.setdefault(host, []).append(timed_out)
            udp_urls.setdefault(host, []).append(result.server.url)
        elif result.ok:
            stream_ok[host] = True
    verdicts = []
    for host, timeouts in by_host.items():
        if all(timeouts) and stream_ok.get(host):
            verdicts.append(Verdict(
                id="udp-blocked", severity=Severity.WARN,
                title=f"UDP to {host} is blocked, TCP/TLS works",
                detail="Every UDP probe timed out while TURN over TCP or TLS to the same "
                       "deployment worked: calls will connect, relayed over TCP, at lower "
                       "quality.",
                hint="Open UDP 3478 and the relay port range towards the server if you can "
                     "(or the server does not listen on UDP: check its configuration).",
                confidence=Confidence.LIKELY,
                urls=tuple(udp_urls[host])))
    return verdicts
