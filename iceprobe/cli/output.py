"""What every probing command does at the end: run the probe with a spinner or a trace,
then redact, render and turn the verdicts into an exit code."""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from . import ExitCode
from .options import enable_trace

if TYPE_CHECKING:
    from ..render import Report

T = TypeVar("T")


@dataclass(frozen=True)
class Output:
    """The output options every probing command takes."""

    ignore: tuple[str, ...]
    redact: str | None
    as_json: bool
    verbose: bool


def run(probe: Coroutine[Any, Any, T], status: str, verbose: bool) -> T:
    """Run the probe; a spinner on a terminal, the transaction trace with --verbose."""
    import asyncio

    from rich.console import Console

    if verbose:
        enable_trace()
    err = Console(stderr=True)
    if err.is_terminal and not verbose:
        with err.status(status, spinner="dots"):
            return asyncio.run(probe)
    return asyncio.run(probe)


def emit(report: Report, output: Output) -> int:
    from rich.console import Console

    from ..render import RENDERERS, OutputFormat

    if output.redact is not None:
        from ..redact import redact

        report = redact(report, hostnames=output.redact == "all")
    out_format = OutputFormat.JSON if output.as_json else OutputFormat.TABLE
    RENDERERS[out_format](report, Console())
    return ExitCode.OK if report.ok else ExitCode.FAIL
