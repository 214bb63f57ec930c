"""What the renderers show: a gathering run together with the verdicts on it."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import GatherReport, Requirement, Severity, Verdict


@dataclass(frozen=True)
class Report:
    gather: GatherReport
    verdicts: tuple[Verdict, ...]
    require: Requirement
    matrix: bool = False

    @property
    def ok(self) -> bool:
        return not any(v.severity is Severity.FAIL for v in self.verdicts)
