"""Probing a fleet: every target at once, each through iceprobe.pipeline with its module's
settings and its auth's credentials, then judged. `check` runs it under the CLI's signal
handling (iceprobe.cli.output.run); setting `stop` ends every probe early."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..pipeline import Probed, judge, probe
from .checks import TargetResult, target_result
from .model import Fleet, Target
from .plan import Plan, target_plan


@dataclass(frozen=True)
class Planned:
    target: Target
    plan: Plan


def plan_targets(fleet: Fleet, targets: Sequence[Target], now: float | None = None
                 ) -> list[Planned]:
    """The probe of each target (REST credentials minted for `now`)."""
    when = time.time() if now is None else now
    return [Planned(t, target_plan(t, fleet.modules, fleet.auths, when)) for t in targets]


async def probe_targets(planned: Sequence[Planned], stop: asyncio.Event) -> list[Probed]:
    """Probe every target concurrently; pipeline.probe never raises for the network."""
    return list(await asyncio.gather(*(
        probe(p.plan.specs, p.plan.credentials, p.plan.settings, stop) for p in planned)))


def judge_targets(fleet: Fleet, planned: Sequence[Planned], probed: Sequence[Probed],
                  ignore: Sequence[str] = (), stopped_by: int | None = None
                  ) -> list[TargetResult]:
    found = []
    for p, result in zip(planned, probed, strict=True):
        report = judge(result, p.plan.credentials, p.plan.settings, ignore, stopped_by)
        found.append(target_result(p.target, fleet.modules[p.target.module], report))
    return found


__all__ = ["Planned", "judge_targets", "plan_targets", "probe_targets"]
