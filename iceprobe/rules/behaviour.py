"""Rules about servers that behave unlike coturn, judged from what each did in the run and
what the same server did on the run's other probes: a STUN server behind a turn: URL,
replies whose transaction ids match no request, an Allocate with REQUESTED-ADDRESS-FAMILY
left unanswered, and an open relay. Each was measured against pion/turn, node-turn or the npm
stun server (docs/interop.md)."""

from __future__ import annotations

from collections.abc import Sequence

from ..model import (
    CandidateType,
    Cause,
    Confidence,
    ErrorEvent,
    ProbeResult,
    Severity,
    Verdict,
)
from .evidence import Evidence, failure_severity, sentence

#: The `problem` of a timeout during which the server sent only STUN messages whose
#: transaction ids match no request (iceprobe.gather.channel).
MISMATCHED_IDS = "mismatched-transaction-ids"


def mismatched_events(result: ProbeResult) -> list[ErrorEvent]:
    """Timeouts during which the server did answer, but with transaction ids of its own."""
    return [e for e in result.errors if e.cause is Cause.TIMEOUT and e.problem == MISMATCHED_IDS]


def _same_server(a: ProbeResult, b: ProbeResult) -> bool:
    return (a.server.host.lower() == b.server.host.lower() and a.server.port == b.server.port
            and a.server.transport is b.server.transport)


def _other_answers(evidence: Evidence, result: ProbeResult) -> tuple[list[str], bool]:
    """What else the server answered in this run, for the detail, and whether a plain
    Allocate (without REQUESTED-ADDRESS-FAMILY) was among it."""
    answered: list[str] = []
    plain = False
    if any(c.type is CandidateType.RELAY for c in result.candidates):
        answered.append("a plain Allocate (it gave a relay)")
        plain = True
    elif any(e.cause is Cause.RESPONSE and e.requested_family is None for e in result.errors):
        answered.append("a plain Allocate (with an error response)")
        plain = True
    if any(r is not result and not r.server.is_turn and _same_server(r, result)
           and any(c.type is CandidateType.SRFLX for c in r.candidates)
           for r in evidence.results):
        answered.append("the STUN Binding on the same port")
    return answered, plain


def ignored_family_requests(evidence: Evidence, result: ProbeResult) -> list[ErrorEvent]:
    """Allocates that asked for a relay family (REQUESTED-ADDRESS-FAMILY) and got no answer
    at all, from a server that answered other requests of the same run: the server drops
    them (node-turn 0.0.6 does), it is not unreachable."""
    if not result.server.is_turn:
        return []
    events = [e for e in result.errors if e.requested_family is not None
              and e.cause is Cause.TIMEOUT and e.problem is None]
    if not events or not _other_answers(evidence, result)[0]:
        return []
    return events


def relay_family_request_ignored(evidence: Evidence) -> list[Verdict]:
    verdicts = []
    for result in evidence.results:
        events = ignored_family_requests(evidence, result)
        if not events:
            continue
        url = result.server.url
        answered, plain = _other_answers(evidence, result)
        families = " and ".join(sorted({f"IPv{e.requested_family}" for e in events}))
        relays = any(c.type is CandidateType.RELAY for c in result.candidates)
        if relays:
            severity = Severity.WARN
            hint = ("Relays of the default family work. The server does not implement RFC "
                    f"8656 address families: peers that need an {families} relay cannot be "
                    "relayed by it (a server that does, such as coturn, answers 440 when it "
                    "has no relay address of that family).")
        else:
            severity = failure_severity(evidence, result)
            hint = ("Probe with --relay-family ipv4 (the default, as browsers do) to check "
                    "plain allocations; for relays of this family use a server that "
                    "implements RFC 8656 address families.")
        verdicts.append(Verdict(
            id="relay-family-request-ignored", severity=severity,
            title=f"{url} ignores an Allocate that asks for an {families} relay",
            detail=(f"The Allocate with REQUESTED-ADDRESS-FAMILY ({families}) got no answer at "
                    f"all, while the server answered {' and '.join(answered)} in the same "
                    "run: it drops such an Allocate silently (node-turn 0.0.6 does), instead "
                    "of answering 440 or giving a relay of that family. "
                    + sentence(events[0].error_text)),
            hint=hint, urls=(url,),
            confidence=Confidence.CERTAIN if plain else Confidence.LIKELY,
            group_title=f"{{n}} servers ignore an Allocate that asks for an {families} "
                        "relay"))
    return verdicts


def mismatched_transaction_ids(evidence: Evidence) -> list[Verdict]:
    verdicts = []
    for result in evidence.results:
        events = mismatched_events(result)
        if not events:
            continue
        url = result.server.url
        where = sorted({e.server_address for e in events if e.server_address})
        texts = "; ".join(dict.fromkeys(e.error_text for e in events))
        if result.ok:
            severity = Severity.INFO
            outcome = (f" The server still gave its {result.server.expected_candidate.value} "
                       "candidate from another address.")
        else:
            severity = failure_severity(evidence, result)
            outcome = ""
        verdicts.append(Verdict(
            id="mismatched-transaction-ids", severity=severity,
            title=f"{url} answers with transaction ids that match no request",
            detail=(f"The server ({', '.join(where) or 'its address'}) answers, but every "
                    "reply carried a transaction id that matches no request iceprobe sent, "
                    f"so no request was answered. {sentence(texts)}{outcome}"),
            hint=("Not a firewall: the server's replies arrive. It is a broken server, or a "
                  "middlebox (NAT, firewall, load balancer) rewriting STUN between here and "
                  "the server: check the server's software and version, and probe it from "
                  "another network."),
            urls=(url,), group_title="{n} servers answer with transaction ids that match no "
                                     "request"))
    return verdicts


def _wrong_method_events(result: ProbeResult) -> list[ErrorEvent]:
    return [e for e in result.errors if e.cause is Cause.WRONG_METHOD]


def not_a_turn_server(evidence: Evidence) -> list[Verdict]:
    """A turn: URL whose server answers the Allocate with a response of another method (the
    npm stun server sends a Binding success with the Allocate's transaction id)."""
    verdicts = []
    for result in evidence.results:
        events = _wrong_method_events(result)
        if not result.server.is_turn or not events:
            continue
        url = result.server.url
        as_stun = [r for r in evidence.results if r is not result and not r.server.is_turn
                   and _same_server(r, result) and r.ok]
        software = (f" It calls itself {result.software!r} (SOFTWARE)." if result.software
                    else "")
        hint = "Point the turn: URL at a TURN server (host and port), or use this one as stun:"
        if as_stun:
            hint += f" (as {as_stun[0].server.url} it works: it gave a srflx candidate)."
        else:
            hint += "."
        verdicts.append(Verdict(
            id="not-a-turn-server",
            severity=Severity.WARN if result.ok else failure_severity(evidence, result),
            title=f"{url} is not a TURN server",
            detail=(f"{sentence(events[0].error_text)} This server answers STUN but is not a "
                    f"TURN server: it gives no relay.{software}"),
            hint=hint, urls=(url,), group_title="{n} servers are not TURN servers"))
    return verdicts


def open_relay(evidence: Evidence) -> list[Verdict]:
    """A TURN server that granted an allocation to an Allocate without credentials."""
    verdicts = []
    for result in evidence.results:
        if not (result.server.is_turn and result.unauthenticated_allocation and result.ok):
            continue
        url = result.server.url
        asked = ("to an Allocate without credentials (--no-auth)" if evidence.no_auth else
                 "to the first Allocate, which carries no credentials")
        verdicts.append(Verdict(
            id="open-relay", severity=Severity.WARN,
            title=f"{url} is an open relay",
            detail=(f"It granted a relay allocation {asked}, without any 401 challenge: "
                    "anyone who can reach it can relay traffic through it, at its bandwidth "
                    "and behind its address."),
            hint=("Require authentication (coturn: lt-cred-mech with users, or "
                  "use-auth-secret; pion/turn: an AuthHandler that checks credentials), "
                  "unless the server is reachable only from a network you trust."),
            urls=(url,), group_title="{n} open relays"))
    return verdicts


def judged_elsewhere(evidence: Evidence, result: ProbeResult) -> Sequence[ErrorEvent]:
    """The events of `result` that these rules explain: not unreachable, whatever their
    cause says."""
    return [*mismatched_events(result), *ignored_family_requests(evidence, result)]
