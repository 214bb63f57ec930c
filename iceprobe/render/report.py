"""What the renderers show: a gathering run together with the verdicts on it."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import GatherReport, RelayCheck, Requirement, Verdict
from ..rules import passed


@dataclass(frozen=True)
class Report:
    gather: GatherReport
    verdicts: tuple[Verdict, ...]
    require: Requirement
    matrix: bool = False
    #: Relay data-path checks, when the run made any.
    relays: tuple[RelayCheck, ...] = ()

    @property
    def ok(self) -> bool:
        return passed(self.verdicts)
