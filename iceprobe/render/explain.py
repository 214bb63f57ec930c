"""Rendering the code table for `iceprobe explain`: rich for people, JSON (without rich)
for programs."""

from __future__ import annotations

import json
import re
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


def short_reference(reference: str) -> str:
    """The document that defines a code, without the section ("RFC 8489", "W3C WebRTC"):
    the full reference is in `iceprobe explain CODE`."""
    found = re.match(r"(RFC \d+|W3C WebRTC)", reference)
    return found.group(1) if found else reference


def table_name(info: CodeInfo) -> str:
    """A row's name: a 701 cause row names its cause only (the 701 row above it says what
    701 is)."""
    return f"cause: {info.cause}" if info.cause else info.name


def render_code_table(entries: Sequence[CodeInfo], console: Console) -> None:
    """All entries, one line each at 80 columns: code, name, defining document, verdict.
    Who sends it, the section, the meaning and the remedy are in `iceprobe explain CODE`.
    Codes, documents and verdict ids never wrap: on a terminal too narrow for every
    column in one line the document goes first, and only then does a name fold."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    rows = [(str(i.code), table_name(i), short_reference(i.reference), i.verdict)
            for i in entries]
    headers = ("code", "name", "defined in", "verdict")
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    with_reference = sum(widths) + _GAP * (len(widths) - 1) <= console.width
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
                  title="STUN, TURN and browser error codes", title_justify="left",
                  title_style="bold")
    table.add_column("code", justify="right", no_wrap=True)
    table.add_column("name", overflow="fold")
    if with_reference:
        table.add_column("defined in", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for code, name, reference, verdict in rows:
        table.add_row(code, Text(name), *((reference,) if with_reference else ()), verdict)
    console.print(table)
    console.print("Details: iceprobe explain CODE (or an errorText, or a cause).",
                  markup=False)


#: Columns of the code table are this far apart (a separator and its padding).
_GAP = 2
