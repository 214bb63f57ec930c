"""`check --format github`: GitHub Actions workflow commands (`::error …::`,
`::warning …::`) for every failing, erroring and warning check, one summary line, and a
Markdown summary appended to $GITHUB_STEP_SUMMARY when it is set.

What it shows is redacted like the JUnit evidence (iceprobe.redact): a public
repository's logs are public.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from ..fleet.checks import ERROR, FAILURE, PASS, CheckResult, TargetResult, check_results
from ..redact import redact
from .fleet import fleet_outcome


def escape_data(text: str) -> str:
    """A workflow command's message: '%', CR and LF are percent-encoded (GitHub's
    toolkit, `escapeData`), so a message is one line and cannot end the command."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: also ':' and ',' (`escapeProperty`)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _redacted(results: Sequence[TargetResult]) -> list[tuple[TargetResult,
                                                             tuple[CheckResult, ...]]]:
    return [(r, check_results(r.module, redact(r.report))) for r in results]


def workflow_commands(results: Sequence[TargetResult]) -> list[str]:
    lines = []
    for result, checks in _redacted(results):
        for check in checks:
            title = escape_property(f"iceprobe: {result.target.name} {check.check.value}")
            if check.outcome in (FAILURE, ERROR):
                message = check.detail or f"{check.message} [{check.verdict}]"
                if check.outcome == ERROR:
                    message = "the probe could not run: " + message
                lines.append(f"::error title={title}::{escape_data(message)}")
            elif check.warnings:
                message = "passed, with warnings:\n" + check.detail
                lines.append(f"::warning title={title}::{escape_data(message)}")
    if any(r.report.interrupted for r in results):
        lines.append("::warning title=iceprobe::interrupted: the results so far are shown")
    return lines


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def step_summary(results: Sequence[TargetResult]) -> str:
    """The Markdown summary: the headline, then a row for every target and check."""
    outcome = fleet_outcome(results)
    ok = sum(1 for r in results if r.report.ok)
    icon = {PASS: "✅", FAILURE: "❌", ERROR: "⚠️", "skipped": "⏭️"}
    lines = [f"### iceprobe check: {outcome.status.value.upper()}", "",
             f"{ok} of {len(results)} targets ok.", "",
             "| target | check | result | verdict | why |", "|---|---|---|---|---|"]
    for result, checks in _redacted(results):
        for check in checks:
            lines.append(f"| {_cell(result.target.name)} | {check.check.value} | "
                         f"{icon[check.outcome]} {check.outcome} | "
                         f"{_cell(check.verdict or '-')} | {_cell(check.message)} |")
    return "\n".join(lines) + "\n"


def render_github(results: Sequence[TargetResult], file: TextIO,
                  summary_path: str | None = None) -> None:
    """The workflow commands and a summary line to `file`; the Markdown summary appended to
    `summary_path` (the CLI passes $GITHUB_STEP_SUMMARY) when given."""
    for line in workflow_commands(results):
        file.write(line + "\n")
    outcome = fleet_outcome(results)
    ok = sum(1 for r in results if r.report.ok)
    file.write(f"iceprobe check: {outcome.status.value.upper()} ({ok} of {len(results)} "
               "targets ok)\n")
    file.flush()
    if summary_path:
        with open(summary_path, "a", encoding="utf-8") as handle:
            handle.write(step_summary(results) + "\n")


__all__ = ["escape_data", "escape_property", "render_github", "step_summary",
           "workflow_commands"]
