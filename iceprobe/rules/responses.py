"""Rules about what servers answered: one specific verdict per class of error response,
named by the code table (iceprobe.codes), instead of a generic "error"."""

from __future__ import annotations

from ..codes import for_cause, lookup
from ..model import Cause, ErrorEvent, ProbeResult, Severity, Verdict
from .evidence import Evidence, failure_severity, sentence

#: Verdicts that are only `info` when the server still yielded its candidate: the client
#: recovered by design (a retry with the new nonce, a followed redirect).
_RECOVERABLE = {"stale-nonce", "alternate-server", "address-family-not-supported"}


def _verdict_of(event: ErrorEvent) -> str:
    if event.cause is Cause.RESPONSE:
        return lookup(event.error_code).verdict
    return for_cause(event.cause).verdict


def server_responses(evidence: Evidence) -> list[Verdict]:
    verdicts = []
    for result in evidence.results:
        groups: dict[str, list[ErrorEvent]] = {}
        for event in result.errors:
            if not event.is_unreachable:
                groups.setdefault(_verdict_of(event), []).append(event)
        for verdict_id, events in groups.items():
            verdicts.append(_judge(evidence, result, verdict_id, events))
    return verdicts


def _judge(evidence: Evidence, result: ProbeResult, verdict_id: str,
           events: list[ErrorEvent]) -> Verdict:
    url = result.server.url
    infos = list(dict.fromkeys(
        lookup(e.error_code) if e.cause is Cause.RESPONSE else for_cause(e.cause)
        for e in events))
    said = "; ".join(dict.fromkeys(
        f"{e.error_code} {e.error_text}" if e.cause is Cause.RESPONSE else e.error_text
        for e in events))
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
    where = ""
    if result.ok:  # which of the server's addresses answered so
        answered = sorted({e.server_address for e in events if e.server_address})
        where = f" (at {', '.join(answered)})" if answered else ""
    return Verdict(
        id=verdict_id, severity=severity, title=f"{url}: {names}",
        detail=f"{meaning} {sentence(f'The server answered: {said}{where}')}{outcome}",
        hint=" ".join(dict.fromkeys(i.remedy for i in infos)), urls=(url,),
        group_title=f"{{n}} servers: {names}")
