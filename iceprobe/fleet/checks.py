"""What each check of a fleet target came to: pass, failure (the server misbehaved: a
failing verdict names why) or error (the probe could not run: interrupted, not probed, no
local address, a local socket problem). `check`'s JSON, JUnit and GitHub outputs all show
these, so that they agree with each other and with the exit code.

Pure: it reads a judged Report; the verdicts, statuses and exit code come from the rules
and iceprobe.status, never from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import Cause, Role, Severity, Status
from ..model import ProbeResult, Verdict
from ..render.report import Report
from .model import Check, Module, Target

PASS, FAILURE, ERROR, SKIPPED = "pass", "failure", "error", "skipped"
#: The outcomes a check can have (skipped: relay, when allocate gave no relay to check).
OUTCOMES = (PASS, FAILURE, ERROR, SKIPPED)
#: Error events that say the probe itself could not run here (not the server's fault).
_LOCAL_CAUSES = (Cause.SOCKET, Cause.INTERNAL)


@dataclass(frozen=True)
class CheckResult:
    """One check of one target (one JUnit test case)."""

    check: Check
    outcome: str
    #: The id of the verdict that failed it (the JUnit failure type), or None.
    verdict: str | None
    #: One line: why it failed, or what it found.
    message: str
    #: Every failing and warning verdict about it: title, detail and hint.
    detail: str
    #: The URLs this check probed.
    urls: tuple[str, ...]
    #: Warnings about it (ids), which do not fail it.
    warnings: tuple[str, ...] = ()
    duration_ms: float | None = None


@dataclass(frozen=True)
class TargetResult:
    """A target's judged report and its checks."""

    target: Target
    module: Module
    report: Report
    checks: tuple[CheckResult, ...]

    @property
    def status(self) -> Status:
        return self.report.outcome.status


def target_result(target: Target, module: Module, report: Report) -> TargetResult:
    return TargetResult(target, module, report, check_results(module, report))


def _results_for(check: Check, report: Report) -> list[ProbeResult]:
    results = report.gather.results
    if check is Check.BINDING:
        return [r for r in results if not r.server.is_turn]
    return [r for r in results if r.server.is_turn]


def _about(verdict: Verdict, check: Check, urls: set[str]) -> bool:
    if not urls & set(verdict.urls):
        return False
    relay = verdict.id.startswith("relay-")
    return relay if check is Check.RELAY else not relay


def _failing(verdict: Verdict) -> bool:
    return verdict.severity is Severity.FAIL and not verdict.ignored


def _describe(verdicts: list[Verdict]) -> str:
    lines = []
    for v in verdicts:
        lines.append(f"{v.severity.value.upper()} {v.title} [{v.id}]")
        for text in (v.detail, v.hint):
            if text:
                lines.append(f"  {text}")
    return "\n".join(lines)


def check_results(module: Module, report: Report) -> tuple[CheckResult, ...]:
    """Each of the module's checks, judged from the target's report."""
    environment = [v for v in report.verdicts if not v.urls and _failing(v)
                   and v.role is Role.CAUSE]
    found = []
    for check in module.checks:
        results = _results_for(check, report)
        urls = {r.server.url for r in results}
        if check is Check.RELAY:
            urls |= {c.server.url for c in report.relays}
        about = [v for v in report.verdicts if _about(v, check, urls)]
        failing = [v for v in about if _failing(v)]
        warnings = [v for v in about if v.severity is Severity.WARN and not v.ignored]
        detail = _describe([*environment, *failing, *warnings])
        duration = _duration(check, results, report)
        def result(outcome: str, verdict: str | None, message: str) -> CheckResult:
            return CheckResult(check, outcome, verdict, message, detail,  # noqa: B023
                               tuple(sorted(urls)), tuple(v.id for v in warnings),  # noqa: B023
                               duration)  # noqa: B023

        unfinished = next((r for r in results if r.unfinished is not None), None)
        local = any(e.cause in _LOCAL_CAUSES for r in results for e in r.errors
                    if not r.ok)
        if environment or unfinished is not None or (local and failing):
            cause = environment[0] if environment else (failing[0] if failing else None)
            if cause is not None:
                found.append(result(ERROR, cause.id, cause.title))
            else:
                assert unfinished is not None
                found.append(result(ERROR, "interrupted" if report.interrupted else
                                    "not-probed",
                                    f"{unfinished.server.url}: {unfinished.unfinished}"))
        elif failing:
            first = next((v for v in failing if v.role is Role.CAUSE), failing[0])
            found.append(result(FAILURE, first.id, first.title))
        elif check is Check.RELAY and not any(c.attempted for c in report.relays):
            found.append(result(SKIPPED, None, "not checked: allocate gave no relay"))
        else:
            found.append(result(PASS, None, _passed(check, results, report)))
    return _consistent(tuple(found), report)


def _consistent(found: tuple[CheckResult, ...], report: Report) -> tuple[CheckResult, ...]:
    """A failing report fails at least one check: a failing verdict that is about no
    check (a consequence without a failing cause) fails the first check that passed."""
    if report.outcome.status is not Status.FAIL or any(c.outcome in (FAILURE, ERROR)
                                                       for c in found):
        return found
    verdict = next((v for v in report.verdicts if _failing(v)), None)
    if verdict is None or not found:
        return found
    first, *rest = found
    return (CheckResult(first.check, FAILURE, verdict.id, verdict.title,
                        _describe([verdict]) + ("\n" + first.detail if first.detail else ""),
                        first.urls, first.warnings, first.duration_ms), *rest)


def _duration(check: Check, results: list[ProbeResult], report: Report) -> float | None:
    if check is Check.RELAY:
        return sum(c.duration_ms for c in report.relays) if report.relays else None
    known = [r.duration_ms for r in results if r.duration_ms is not None]
    return max(known) if known else None


def _passed(check: Check, results: list[ProbeResult], report: Report) -> str:
    if check is Check.RELAY:
        return "data flows through the relay"
    kind = "relay" if check is Check.ALLOCATE else "srflx"
    got = [c for r in results for c in r.candidates if c.type.value == kind]
    if got:
        return f"{kind} candidate {got[0].address}:{got[0].port}"
    return f"no {kind} candidate, and no failing verdict"


__all__ = ["ERROR", "FAILURE", "OUTCOMES", "PASS", "SKIPPED", "CheckResult", "TargetResult",
           "check_results", "target_result"]
