"""Rendering the code table for `iceprobe explain`: rich for people, JSON (without rich)
for programs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from ..codes import CodeInfo

if TYPE_CHECKING:
    from rich.console import Console


def info_document(info: CodeInfo) -> dict[str, Any]:
    return {
        "code": info.code,
        "name": info.name,
        "reference": info.reference,
        "emitted_by": list(info.emitted_by),
        "meaning": info.meaning,
        "remedy": info.remedy,
        "verdict": info.verdict,
        "cause": info.cause,
        "generic": info.generic,
        "aliases": list(info.aliases),
    }


def render_explain_json(entries: Sequence[CodeInfo], file: TextIO) -> None:
    file.write(json.dumps([info_document(i) for i in entries], indent=2) + "\n")
    file.flush()


def render_entries(entries: Sequence[CodeInfo], console: Console) -> None:
    """Each entry in full, one block after another."""
    from rich.table import Table
    from rich.text import Text

    for index, info in enumerate(entries):
        if index:
            console.print()
        title = Text()
        title.append(f"{info.code} {info.name}", style="bold")
        if info.generic:
            title.append("  (not in the table: explained by its class)", style="dim")
        console.print(title)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="cyan", no_wrap=True)
        grid.add_column(overflow="fold")
        rows = [("defined in", info.reference), ("sent by", ", ".join(info.emitted_by) or "-"),
                ("meaning", info.meaning), ("what to do", info.remedy),
                ("verdict", info.verdict)]
        if info.aliases:
            rows.append(("also seen", "; ".join(f'"{a}"' for a in info.aliases)))
        for label, value in rows:
            grid.add_row(f"  {label}", Text(value))
        console.print(grid)


def render_code_table(entries: Sequence[CodeInfo], console: Console) -> None:
    """All entries, one row each."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="STUN, TURN and browser error "
                  "codes", title_justify="left", title_style="bold")
    table.add_column("code", justify="right", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("sent by", overflow="fold")
    table.add_column("defined in", overflow="fold")
    table.add_column("verdict", no_wrap=True)
    for info in entries:
        senders = "/".join(e.removesuffix(" server") for e in info.emitted_by)
        table.add_row(str(info.code), Text(info.name), senders, info.reference, info.verdict)
    console.print(table)
    console.print("Run `iceprobe explain CODE` (or a browser errorText, or a cause such as "
                  "timeout) for the meaning and what to do.", markup=False)
