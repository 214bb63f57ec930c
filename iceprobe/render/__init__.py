"""Rendering a report: a rich table for people, JSON for programs.

Each renderer is imported when it is asked for: the JSON path never imports rich.
"""

from __future__ import annotations

import enum
from typing import TextIO

from .report import Report


class OutputFormat(str, enum.Enum):
    TABLE = "table"
    JSON = "json"


def render(report: Report, output_format: OutputFormat, file: TextIO, *, quiet: bool = False,
           verbose: bool = False) -> None:
    """Write the report to `file` in the given format. For the table, `quiet` shows only
    the causes and the summary line and `verbose` lists every error event and every URL of a
    group of verdicts; JSON is always the whole document."""
    if output_format is OutputFormat.JSON:
        from .json_report import render_json

        render_json(report, file)
        return
    from rich.console import Console

    from .table import render_table

    render_table(report, Console(file=file), quiet=quiet, verbose=verbose)


__all__ = ["OutputFormat", "Report", "render"]
