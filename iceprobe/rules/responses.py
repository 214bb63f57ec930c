"""Rules about what servers answered: one specific verdict per class of error response,
named by the code table (iceprobe.codes), instead of a generic "error"."""

from __future__ import annotations

from ..codes import for_cause, lookup
from ..model import CandidateType, Cause, Confidence, ErrorEvent, ProbeResult, Severity, Verdict
from .evidence import Evidence, failure_severity, response_text, sentence

#: Verdicts that are only `info` when the server still yielded its candidate: the client
#: recovered by design (a retry with the new nonce, a followed redirect).
_RECOVERABLE = {"stale-nonce", "alternate-server", "address-family-not-supported"}
#: SOFTWARE names of servers known to answer a failed credential check with 401, so that a
#: 400 from them is not the credentials (docs/interop.md).
_ANSWER_401 = ("coturn", "node-turn")
#: Reason phrases that say nothing beyond the code.
_GENERIC_400 = ("", "bad request")


def _credentials_400(evidence: Evidence, result: ProbeResult, event: ErrorEvent) -> bool:
    """A 400 that is probably a failed credential check: it answered the Allocate that
    carried the credentials after the 401 challenge, with no reason beyond the code, from a
    server not known to answer 401 for that, and the same credentials got no relay from
    the same host in this run (pion/turn answers a wrong password, an unknown user and
    expired REST credentials so)."""
    if not (result.server.is_turn and event.cause is Cause.RESPONSE and event.error_code == 400
            and event.after_challenge is True):
        return False
    if event.error_text.strip().casefold() not in _GENERIC_400:
        return False
    software = (result.software or "").casefold()
    if any(name in software for name in _ANSWER_401):
        return False
    return not _credentials_worked(evidence, result)


def _credentials_worked(evidence: Evidence, result: ProbeResult) -> list[str]:
    """URLs of the same host whose allocation (with the same credentials) succeeded."""
    host = result.server.host.lower()
    return [r.server.url for r in evidence.results if r.server.is_turn
            and r.server.host.lower() == host
            and any(c.type is CandidateType.RELAY for c in r.candidates)]


def _unauthenticated_401(evidence: Evidence, result: ProbeResult, event: ErrorEvent) -> bool:
    """--no-auth: the Allocate without credentials was challenged (the server is not open)."""
    return (evidence.no_auth and result.server.is_turn and event.cause is Cause.RESPONSE
            and event.error_code == 401 and event.after_challenge is False)


def _verdict_of(evidence: Evidence, result: ProbeResult, event: ErrorEvent) -> str:
    if event.cause is Cause.RESPONSE:
        if _credentials_400(evidence, result, event):
            return "turn-credentials-rejected"
        if _unauthenticated_401(evidence, result, event):
            return "turn-credentials-missing"
        return lookup(event.error_code).verdict
    if event.cause is Cause.WRONG_METHOD:
        # rules.behaviour names a TURN server's (not-a-turn-server); a STUN server's is odd.
        return "" if result.server.is_turn else "server-error"
    return for_cause(event.cause).verdict


def server_responses(evidence: Evidence) -> list[Verdict]:
    verdicts = []
    for result in evidence.results:
        groups: dict[str, list[ErrorEvent]] = {}
        for event in result.errors:
            if not event.is_unreachable:
                verdict_id = _verdict_of(evidence, result, event)
                if verdict_id:
                    groups.setdefault(verdict_id, []).append(event)
        for verdict_id, events in groups.items():
            if verdict_id == "turn-credentials-rejected":
                special = [e for e in events if _credentials_400(evidence, result, e)]
                if special:
                    verdicts.append(_bare_400(evidence, result, special))
            elif verdict_id == "turn-credentials-missing":
                special = [e for e in events if _unauthenticated_401(evidence, result, e)]
                if special:
                    verdicts.append(_authentication_required(evidence, result, special))
            else:
                special = []
            events = [e for e in events if e not in special]
            if events:
                verdicts.append(_judge(evidence, result, verdict_id, events))
    return verdicts


def _bare_400(evidence: Evidence, result: ProbeResult, events: list[ErrorEvent]) -> Verdict:
    url = result.server.url
    said = "; ".join(dict.fromkeys(response_text(e) for e in events))
    software = (f"The server calls itself {result.software!r} (SOFTWARE)." if result.software
                else "The server sends no SOFTWARE attribute, as pion/turn does.")
    outcome = _outcome(evidence, result)[1]
    return Verdict(
        id="turn-credentials-rejected", severity=_outcome(evidence, result)[0],
        title=f"{url}: probably the credentials (400 after the challenge)",
        detail=(f"Probably the credentials: the server answered {said} after the "
                "credentials were sent (the Allocate answering its 401 challenge); pion/turn "
                "answers a failed credential check (wrong password, unknown user, expired or "
                f"wrong-secret REST credentials) so. {software}{outcome}"),
        hint=(f"{lookup(401).remedy} If they are right, the server found the request itself "
              "invalid: check its logs, software and version."),
        urls=(url,), confidence=Confidence.LIKELY,
        group_title="{n} servers: probably the credentials (400 after the challenge)")


def _authentication_required(evidence: Evidence, result: ProbeResult,
                             events: list[ErrorEvent]) -> Verdict:
    """--no-auth against a server that challenges: it is no open relay (good), and it needs
    credentials to be probed."""
    url = result.server.url
    said = "; ".join(dict.fromkeys(response_text(e) for e in events))
    return Verdict(
        id="turn-credentials-missing", severity=_outcome(evidence, result)[0],
        title=f"{url} requires credentials",
        detail=(f"The Allocate without credentials (--no-auth) got {said}: the server "
                "requires authentication, so it is not an open relay."
                + _outcome(evidence, result)[1]),
        hint="Give -u/--username and -p/--credential (or --turn-secret) to probe its "
             "allocations.",
        urls=(url,), group_title="{n} servers require credentials")


def _outcome(evidence: Evidence, result: ProbeResult) -> tuple[Severity, str]:
    if result.ok:
        return Severity.WARN, " The server still gave its candidate from another address."
    return (failure_severity(evidence, result),
            f" No {result.server.expected_candidate.value} candidate.")


def _judge(evidence: Evidence, result: ProbeResult, verdict_id: str,
           events: list[ErrorEvent]) -> Verdict:
    url = result.server.url
    infos = list(dict.fromkeys(
        lookup(e.error_code) if e.cause is Cause.RESPONSE else for_cause(e.cause)
        for e in events))
    said = "; ".join(dict.fromkeys(
        response_text(e) if e.cause is Cause.RESPONSE else e.error_text for e in events))
    names = ", ".join(f"{i.code} {i.name}" if i.cause is None else i.name for i in infos)
    meaning = " ".join(i.meaning for i in infos)
    if result.ok and verdict_id in _RECOVERABLE:
        severity = Severity.INFO
        outcome = (f" The server still gave its {result.server.expected_candidate.value} "
                   "candidate: " + ("authentication did not fail, the retry with the new "
                                    "nonce succeeded." if verdict_id == "stale-nonce"
                                    else "the redirect was followed and worked."
                                    if verdict_id == "alternate-server"
                                    else "the other address family works."))
    elif result.ok:
        severity = Severity.WARN
        outcome = " The server still gave its candidate from another address."
    else:
        severity = failure_severity(evidence, result)
        outcome = f" No {result.server.expected_candidate.value} candidate."
    worked = _credentials_worked(evidence, result)
    if any(e.error_code == 400 and e.after_challenge for e in events) and worked:
        outcome += (f" Not the credentials: the same ones got a relay from "
                    f"{', '.join(worked)} in this run.")
    where = ""
    if result.ok:  # which of the server's addresses answered so
        answered = sorted({e.server_address for e in events if e.server_address})
        where = f" (at {', '.join(answered)})" if answered else ""
    return Verdict(
        id=verdict_id, severity=severity, title=f"{url}: {names}",
        detail=f"{meaning} {sentence(f'The server answered: {said}{where}')}{outcome}",
        hint=" ".join(dict.fromkeys(i.remedy for i in infos)), urls=(url,),
        group_title=f"{{n}} servers: {names}")
