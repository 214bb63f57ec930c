"""The table of `iceprobe capacity`: how many allocations the server granted, how fast, what
stopped it, and whether every one was released. It receives its console (fixed width and
colour in tests) and works nothing out itself: the numbers are the result's."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..capacity_model import CapacityResult
from ..numbers import describe_ms, plural


def headline(result: CapacityResult) -> Text:
    """REACHED (exit 0), STOPPED (exit 1: an error answered an Allocate) or INTERRUPTED."""
    granted = plural(result.allocations_ok, "allocation")
    error = result.first_error
    if result.interrupted:
        return Text(f"INTERRUPTED after {granted}", style="bold yellow")
    if error is not None:
        text = f"{error.error_code} {error.error_text}".strip()
        return Text(f"STOPPED by {text} after {granted}", style="bold red")
    if result.reached:
        return Text(f"REACHED {granted} (--max-allocations) with no error",
                    style="bold green")
    return Text(f"STOPPED after {granted}", style="bold red")


def _ms(value: float | None) -> str:
    return "-" if value is None else describe_ms(value)


def rows(result: CapacityResult) -> list[tuple[str, str]]:
    """The label and value of each line of the table."""
    rate = result.allocations_per_s
    error = result.first_error
    found = [
        ("server", result.url + (f" ({result.server_address})" if result.server_address
                                 and result.server_address not in result.url else "")),
        ("allocations", f"{result.allocations_ok} of {result.max_allocations} asked for"),
        ("rate", "-" if rate is None else f"{rate:,.0f} allocations/s"),
        ("Allocate latency", f"p50 {_ms(result.p50_ms)} · p99 {_ms(result.p99_ms)}"),
        ("first error", "none" if error is None else
         f"{error.error_code} {error.error_text} (after {plural(error.after, 'allocation')})"),
        ("released", f"{result.released} of {result.allocations_ok}"
                     + (f" ({result.unreleased} not confirmed: they expire with their "
                        "lifetime)" if result.unreleased else "")),
    ]
    return found


def render_capacity_table(result: CapacityResult, console: Console) -> None:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column("what", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for label, value in rows(result):
        table.add_row(Text(label), Text(value))
    console.print(table)
    console.print()
    console.print(headline(result))


__all__ = ["headline", "render_capacity_table", "rows"]
