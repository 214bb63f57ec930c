"""Laying a section out to the terminal's width, so that a value is never split.

A section is a list of columns and rows. A *value* column (an address, a port, a URL, a code)
is never wrapped; a *prose* column (an error text, a verdict's detail) wraps at word
boundaries. When the columns do not fit the width, the least useful are dropped one by one;
when even the essential ones do not fit, each row becomes a short stacked record (its first
value on a line of its own, the rest packed below it), in which a value is still never split.

A value longer than the whole width cannot be shown on one line at all; only then is it
folded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..numbers import plural

#: What goes between two parts of a packed line, and between two columns of a table.
SEPARATOR = " · "
COLUMN_GAP = 3  # one space of padding either side of the (blank) column separator
#: The narrowest a prose column may become before the section is stacked instead.
MIN_PROSE = 28
#: How far a stacked record's second and later lines are indented.
INDENT = 2

Cell = Text | str


@dataclass(frozen=True)
class Column:
    """One column of a section.

    `drop` orders the columns a narrow terminal loses: the highest goes first; 0 is never
    dropped. In a stacked record, `label` comes before the value ("via stun:…"), and a
    count with a `unit` is written out ("1 candidate", "2 error events")."""

    header: str
    justify: Literal["left", "right"] = "left"
    prose: bool = False
    drop: int = 0
    label: str = ""
    unit: str = ""


def _text(cell: Cell) -> Text:
    return cell if isinstance(cell, Text) else Text(cell)


def _lines(cell: Cell) -> list[str]:
    return _text(cell).plain.split("\n")


def value_width(cell: Cell) -> int:
    """The width a value needs: its longest line."""
    return max((cell_len(line) for line in _lines(cell)), default=0)


def longest_word(cell: Cell) -> int:
    return max((cell_len(word) for line in _lines(cell) for word in line.split()), default=0)


def _needed(column: Column, cells: Sequence[Cell]) -> int:
    """The narrowest the column can be without splitting anything in it."""
    header = cell_len(column.header)
    if column.prose:
        longest = max((value_width(c) for c in cells), default=0)
        words = max((longest_word(c) for c in cells), default=0)
        return max(header, words, min(MIN_PROSE, longest))
    return max([header, *(value_width(c) for c in cells)])


def table_width(widths: Iterable[int]) -> int:
    found = list(widths)
    return sum(found) + COLUMN_GAP * max(len(found) - 1, 0)


def fitting_columns(columns: Sequence[Column], rows: Sequence[Sequence[Cell]],
                    width: int) -> list[int] | None:
    """The indexes of the columns to show at this width (dropping the least useful first),
    or None when even the columns that are never dropped do not fit."""
    needed = [_needed(column, [row[i] for row in rows]) for i, column in enumerate(columns)]
    shown = list(range(len(columns)))
    droppable = sorted((i for i, c in enumerate(columns) if c.drop),
                       key=lambda i: -columns[i].drop)
    while table_width(needed[i] for i in shown) > width:
        if not droppable:
            return None
        shown.remove(droppable.pop(0))
    return shown


def section(console: Console, columns: Sequence[Column],
            rows: Sequence[Sequence[Cell]]) -> RenderableType:
    """The rows as a table when they fit the console's width, else as stacked records."""
    shown = fitting_columns(columns, rows, console.width)
    if shown is None:
        return stacked(columns, rows, console.width)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=False,
                  header_style="bold")
    for i in shown:
        column = columns[i]
        table.add_column(column.header, justify=column.justify, no_wrap=not column.prose,
                         overflow="fold")
    for row in rows:
        table.add_row(*(_text(row[i]) for i in shown))
    return table


def stacked(columns: Sequence[Column], rows: Sequence[Sequence[Cell]],
            width: int) -> RenderableType:
    """Each row as a record: the first cell on its own line, then the other value cells
    packed on the lines below (never split between lines), then each prose cell."""
    records: list[RenderableType] = []
    for row in rows:
        records.append(_text(row[0]))
        values = [_labelled(column, row[i]) for i, column in enumerate(columns)
                  if i and not column.prose and _text(row[i]).plain not in ("", "-")]
        if values:
            records.append(Padding(pack(values, width - INDENT), (0, 0, 0, INDENT)))
        for i, column in enumerate(columns):
            if i and column.prose and _text(row[i]).plain:
                records.append(Padding(_labelled(column, row[i]), (0, 0, 0, INDENT)))
    return Group(*records)


def _labelled(column: Column, cell: Cell) -> Text:
    text = _text(cell)
    if column.unit and text.plain.isdigit():
        return Text(plural(int(text.plain), column.unit), style=text.style)
    if not column.label:
        return text
    return Text.assemble((f"{column.label} ", "dim"), text)


def pack(parts: Sequence[Text | str], width: int, separator: str = SEPARATOR,
         lead: Text | None = None) -> Text:
    """Parts joined by the separator, broken into lines only between parts, each line
    within `width` (a part longer than that gets a line of its own). `lead` starts the
    first line, with two spaces after it."""
    packed = Text()
    line = 0
    if lead is not None:
        packed.append_text(lead)
        packed.append("  ")
        line = value_width(lead) + 2
    for number, part in enumerate(parts):
        text = _text(part)
        size = value_width(text)
        if line and line + (cell_len(separator) if number else 0) + size > width:
            packed.append("\n")
            line = 0
        elif line and number:
            packed.append(separator, style="dim")
            line += cell_len(separator)
        packed.append_text(text)
        line += size
    return packed


def fields(console: Console, rows: Sequence[tuple[str, Cell]]) -> RenderableType:
    """Label and value pairs: two columns when they fit, else each label on a line with
    its value indented below it."""
    columns = (Column("", prose=False), Column("", prose=True))
    table_rows = [(label, value) for label, value in rows]
    if fitting_columns(columns, table_rows, console.width) is not None:
        grid = Table.grid(padding=(0, COLUMN_GAP, 0, 0))
        grid.add_column(no_wrap=True, style="dim")
        grid.add_column(overflow="fold")
        for label, value in table_rows:
            grid.add_row(label, _text(value))
        return grid
    parts: list[RenderableType] = []
    for label, value in table_rows:
        parts.append(Text(label, style="dim"))
        parts.append(Padding(_text(value), (0, 0, 0, INDENT)))
    return Group(*parts)


__all__ = ["INDENT", "SEPARATOR", "Column", "fields", "fitting_columns", "pack", "section",
           "stacked", "table_width", "value_width"]
