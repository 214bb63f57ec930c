"""A report's status, in one place: the headline (PASS, FAIL, INCONCLUSIVE, INTERRUPTED),
`ok` in JSON, the exit code, and each server's status all come from here, so that they
agree by construction.

Pure code: it reads verdicts and results, never the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .constants import ExitCode, Role, Severity, Status
from .model import ProbeResult, Verdict


@dataclass(frozen=True)
class Outcome:
    """What a run came to."""

    status: Status
    exit_code: int

    @property
    def ok(self) -> bool:
        """Only a run that ended and was judged without a failing verdict is ok."""
        return self.status is Status.PASS


def outcome(verdicts: Sequence[Verdict], stopped_by: int | None = None,
            judged: bool = True) -> Outcome:
    """The outcome of one report.

    `stopped_by` is the signal that stopped the run (its results are partial, so it is never
    a pass); `judged` is False when there was nothing to judge (a recording whose
    PeerConnection recorded no event), which is never a pass either."""
    if stopped_by is not None:
        return Outcome(Status.INTERRUPTED, 128 + stopped_by)
    if any(v.severity is Severity.FAIL for v in verdicts):
        return Outcome(Status.FAIL, ExitCode.FAIL)
    if not judged:
        return Outcome(Status.INCONCLUSIVE, ExitCode.FAIL)
    return Outcome(Status.PASS, ExitCode.OK)


#: Worst first: the outcome of several reports (analyze's sessions) is the worst of theirs.
_RANK = (Status.INTERRUPTED, Status.FAIL, Status.INCONCLUSIVE, Status.PASS)


def combined(outcomes: Iterable[Outcome]) -> Outcome:
    """The outcome of several reports: the worst of theirs (a pass when there are none)."""
    found = list(outcomes)
    if not found:
        return Outcome(Status.PASS, ExitCode.OK)
    return min(found, key=lambda o: _RANK.index(o.status))


#: Every status a server's row can show.
SERVER_STATUSES = ("ok", "failed", "unconfirmed", "interrupted", "not-probed", "not-recorded")


def server_status(result: ProbeResult, verdicts: Sequence[Verdict],
                  recorded: bool = True) -> str:
    """One server's status, from its result and the verdicts about it.

    - ok: it yielded the candidate it exists for;
    - failed: it did not, and a warn or fail verdict (or one lowered by --ignore) says why;
    - unconfirmed: it did not, but no verdict holds that against it (a browser that dropped
      a duplicate srflx, for one);
    - interrupted / not-probed: its probe never finished;
    - not-recorded: the recording holds no event at all, so nothing is known about it.
    """
    if result.ok:
        return "ok"
    if not recorded:
        return "not-recorded"
    if result.unfinished is not None:
        return "interrupted" if result.unfinished == "interrupted" else "not-probed"
    url = result.server.url
    against = any(url in v.urls and v.role is Role.CAUSE
                  and (v.ignored or v.severity in (Severity.WARN, Severity.FAIL))
                  for v in verdicts)
    return "failed" if against else "unconfirmed"


__all__ = ["SERVER_STATUSES", "Outcome", "combined", "outcome", "server_status"]
