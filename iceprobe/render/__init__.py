"""Rendering a report: a rich table for people, JSON for programs."""

from __future__ import annotations

import enum
from collections.abc import Callable

from rich.console import Console

from .json_report import render_json
from .report import Report
from .table import render_table


class OutputFormat(str, enum.Enum):
    TABLE = "table"
    JSON = "json"


Renderer = Callable[[Report, Console], None]

RENDERERS: dict[OutputFormat, Renderer] = {
    OutputFormat.TABLE: render_table,
    OutputFormat.JSON: render_json,
}

__all__ = ["RENDERERS", "OutputFormat", "Renderer", "Report"]
