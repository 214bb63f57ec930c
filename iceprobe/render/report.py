"""What the renderers show: a gathering run together with the verdicts on it."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import GatherReport, ProbeResult, Recording, RelayCheck, Requirement, Source, Verdict
from ..status import Outcome, outcome, server_status


@dataclass(frozen=True)
class Report:
    gather: GatherReport
    verdicts: tuple[Verdict, ...]
    require: Requirement
    matrix: bool = False
    #: Relay data-path checks, when the run made any.
    relays: tuple[RelayCheck, ...] = ()
    #: For `analyze`: where the report was read from, and what the recording adds.
    source: Source | None = None
    recording: Recording | None = None
    #: The signal (SIGINT, SIGTERM) that stopped the run: what is shown is what came before.
    stopped_by: int | None = None
    #: The whole run in milliseconds when it is more than the gathering (`relay`: gathering,
    #: checks and closing); None to count the gathering and the relay checks.
    run_ms: float | None = None

    @property
    def duration_ms(self) -> float | None:
        """How long the whole run took: the gathering plus the relay checks."""
        if self.run_ms is not None:
            return self.run_ms
        if self.gather.duration_ms is None:
            return None
        return round(self.gather.duration_ms + sum(c.duration_ms for c in self.relays), 1)

    @property
    def interrupted(self) -> bool:
        return self.stopped_by is not None

    @property
    def judged(self) -> bool:
        """False for a recording that configured servers but recorded no event at all:
        nothing about them can be judged."""
        recording = self.recording
        return recording is None or recording.events > 0 or not self.gather.results

    @property
    def outcome(self) -> Outcome:
        """The headline, `ok` and the exit code, derived in one place (iceprobe.status)."""
        return outcome(self.verdicts, self.stopped_by, self.judged)

    def status_of(self, result: ProbeResult) -> str:
        """A server's status (ok, failed, unconfirmed, interrupted, not-probed,
        not-recorded), consistent with the verdicts."""
        return server_status(result, self.verdicts, recorded=self.judged)

    @property
    def predicts_browser(self) -> bool:
        """Whether the error events are iceprobe's own (gathered now or saved by `gather
        --json`), for which it tells what Chrome would have said; a browser's recording
        already says it."""
        return self.source is None or self.source.format == "iceprobe-report"

    @property
    def ok(self) -> bool:
        return self.outcome.ok
