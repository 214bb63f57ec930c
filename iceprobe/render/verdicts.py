"""The verdicts as a reader needs them: one entry per group of identical findings, the
causes first, each consequence saying what it follows from.

Every entry starts with its severity in words (never colour alone), and a consequence says
"← because:" and the titles of its causes. A group's URLs are listed only with verbose; its
title carries their number.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..model import Confidence, Role, Severity, Verdict
from ..numbers import plural
from ..rules import VerdictGroup, group_verdicts
from .layout import INDENT, longest_word

SEVERITY_STYLE = {
    Severity.OK: "bold green",
    Severity.INFO: "cyan",
    Severity.WARN: "bold yellow",
    Severity.FAIL: "bold red",
}
#: The severity column: the longest label ("FAIL", "WARN", "INFO") and the gap after it.
_LABEL_WIDTH = 4
_GAP = 2
#: A consequence with more causes than this names the first ones and counts the rest.
MAX_CAUSES_NAMED = 3


def verdict_groups(verdicts: Sequence[Verdict]) -> tuple[VerdictGroup, ...]:
    """The groups to show (iceprobe.rules.group_verdicts)."""
    return group_verdicts(verdicts)


def is_cause(group: VerdictGroup) -> bool:
    """What --quiet shows: a cause that is wrong (not lowered by --ignore)."""
    first = group.first
    return first.role is Role.CAUSE and first.severity in (Severity.WARN, Severity.FAIL)


def verdicts_block(console: Console, groups: Sequence[VerdictGroup], *, verbose: bool,
                   brief: bool = False) -> RenderableType:
    """One entry per group: "FAIL  title  [id]", then (indented) what it follows from, its
    detail, its hint, and with verbose its URLs. `brief` (for --quiet) keeps the title and
    the hint."""
    labels = [_label(group.first) for group in groups]
    wide = [_body(group, verbose=verbose, brief=brief) for group in groups]
    if all(longest_word(body) <= console.width - _LABEL_WIDTH - _GAP for body in wide):
        grid = Table.grid(padding=(0, _GAP, 0, 0))
        grid.add_column(no_wrap=True, width=_LABEL_WIDTH)
        grid.add_column(overflow="fold")
        for label, body in zip(labels, wide, strict=True):
            grid.add_row(label, body)
        return grid
    # Too narrow for a severity column beside a long URL: the label and the id on a line,
    # everything else indented below them.
    entries: list[RenderableType] = []
    for label, group in zip(labels, groups, strict=True):
        label.append(f"  [{group.first.id}]", style="dim")
        entries.append(label)
        entries.append(Padding(_body(group, verbose=verbose, brief=brief, with_id=False),
                               (0, 0, 0, INDENT)))
    return Group(*entries)


def _label(verdict: Verdict) -> Text:
    return Text(verdict.severity.value.upper(), style=SEVERITY_STYLE[verdict.severity])


def _body(group: VerdictGroup, *, verbose: bool, brief: bool, with_id: bool = True) -> Text:
    verdict = group.first
    body = Text()
    body.append(group.title, style="bold")
    if verdict.confidence is not Confidence.CERTAIN:
        body.append(f" ({verdict.confidence.value})", style="italic")
    if with_id:
        body.append(f"  [{verdict.id}]", style="dim")
    if group.causes:
        named = list(group.causes[:MAX_CAUSES_NAMED])
        if len(group.causes) > MAX_CAUSES_NAMED:
            named.append(f"and {plural(len(group.causes) - MAX_CAUSES_NAMED, 'other')}")
        body.append("\n← because: ", style="bold")
        body.append("; ".join(named))
    if verdict.detail and not brief:
        body.append(f"\n{verdict.detail}")
    if verdict.hint:
        body.append(f"\n→ {verdict.hint}", style="italic")
    urls = group.urls
    if len(group.members) > 1:
        if verbose:
            for url in urls:
                body.append(f"\n  - {url}")
        elif urls:
            body.append(f"\n-v lists the {plural(len(urls), 'URL')}", style="dim")
    return body


__all__ = ["SEVERITY_STYLE", "is_cause", "verdict_groups", "verdicts_block"]
