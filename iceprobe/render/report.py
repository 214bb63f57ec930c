"""What the renderers show: a gathering run together with the verdicts on it."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import GatherReport, Recording, RelayCheck, Requirement, Source, Verdict
from ..rules import passed


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
    #: The run was stopped by SIGINT or SIGTERM: what is shown is what came before.
    interrupted: bool = False

    @property
    def predicts_browser(self) -> bool:
        """Whether the error events are iceprobe's own (gathered now or saved by `gather
        --json`), for which it tells what Chrome would have said; a browser's recording
        already says it."""
        return self.source is None or self.source.format == "iceprobe-report"

    @property
    def ok(self) -> bool:
        return passed(self.verdicts)
