"""`iceprobe check`'s table and JSON: a report per target (the gather report of each), then
one summary of every target and check.

The statuses and exit code come from iceprobe.status through each target's Report, the
checks' outcomes from iceprobe.fleet.checks; this module only shows them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from .. import __version__
from ..fleet.checks import ERROR, FAILURE, PASS, TargetResult
from ..status import Outcome, combined
from .json_report import SCHEMA_VERSION, report_document

_OUTCOME_STYLE = {PASS: "green", FAILURE: "bold red", ERROR: "bold yellow", "skipped": "dim"}


def fleet_outcome(results: Sequence[TargetResult]) -> Outcome:
    """The run's outcome: the worst target's (iceprobe.status.combined)."""
    return combined(r.report.outcome for r in results)


def check_document(results: Sequence[TargetResult], path: str) -> dict[str, Any]:
    """`check --format json`: the file, the overall outcome, and each target with its
    checks and its whole gather report."""
    outcome = fleet_outcome(results)
    targets = []
    for result in results:
        report = report_document(result.report)
        for key in ("schema_version", "tool"):
            report.pop(key)
        target = result.target
        targets.append({
            "name": target.name, "url": target.url, "module": target.module,
            "auth": target.auth, "labels": dict(target.labels),
            "status": result.status.value, "ok": result.report.ok,
            "checks": [{"check": c.check.value, "outcome": c.outcome, "verdict": c.verdict,
                        "message": c.message, "urls": list(c.urls),
                        "warnings": list(c.warnings), "duration_ms": c.duration_ms}
                       for c in result.checks],
            "report": report,
        })
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "iceprobe", "version": __version__},
        "file": path,
        "status": outcome.status.value,
        "ok": outcome.ok,
        "interrupted": any(r.report.interrupted for r in results),
        "targets": targets,
    }


def render_check_json(results: Sequence[TargetResult], path: str, file: TextIO) -> None:
    file.write(json.dumps(check_document(results, path), indent=2) + "\n")
    file.flush()


def render_check_table(results: Sequence[TargetResult], file: TextIO, *,
                       verbose: bool = False) -> None:
    """Each target's report under a heading, then the summary of every check."""
    from rich.console import Console
    from rich.rule import Rule
    from rich.text import Text

    from .layout import Column, pack, section
    from .table import HEADLINE_STYLE, render_table

    console = Console(file=file)
    for result in results:
        target = result.target
        title = Text(f"{target.name}", style="bold")
        title.append(f"  {target.url} · module {target.module}"
                     + (f" · auth {target.auth}" if target.auth else ""), style="dim")
        console.print(Rule(title, align="left"))
        render_table(result.report, console, verbose=verbose)
        console.print()
    console.print(Rule(Text("Summary", style="bold"), align="left"))
    columns = (Column("target"), Column("check"), Column("result"),
               Column("verdict", drop=1), Column("why", prose=True, drop=2))
    rows = [(r.target.name, c.check.value, Text(c.outcome, style=_OUTCOME_STYLE[c.outcome]),
             c.verdict or "-", c.message)
            for r in results for c in r.checks]
    console.print(section(console, columns, rows))
    outcome = fleet_outcome(results)
    ok = sum(1 for r in results if r.report.ok)
    failing = sum(1 for r in results for c in r.checks if c.outcome in (FAILURE, ERROR))
    headline = Text(outcome.status.value.upper(), style=HEADLINE_STYLE[outcome.status])
    parts: list[Text | str] = [f"{ok} of {len(results)} targets ok"]
    if failing:
        parts.append(f"{failing} failing check{'s' if failing != 1 else ''}")
    console.print(pack(parts, console.width, lead=headline))


__all__ = ["check_document", "fleet_outcome", "render_check_json", "render_check_table"]
