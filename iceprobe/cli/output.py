"""What every probing command does at the end: run the probe with a spinner or a trace,
then redact, render and turn the verdicts into an exit code."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .options import enable_trace

if TYPE_CHECKING:
    from ..render.report import Report

T = TypeVar("T")


@dataclass(frozen=True)
class Output:
    """The output options every probing command takes."""

    ignore: tuple[str, ...]
    redact: str | None
    as_json: bool
    verbose: bool
    #: --quiet: the table shows only the causes and the summary line.
    quiet: bool = False


if TYPE_CHECKING:
    import asyncio

Probe = Callable[["asyncio.Event"], Coroutine[Any, Any, T]]
#: The signals that stop a probe in an orderly way.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run(probe: Probe[T], status: str, verbose: bool) -> tuple[T, int | None]:
    """Run the probe; a spinner on a terminal, the transaction trace with --verbose.

    SIGINT and SIGTERM set the event the probe is given: it then stops, releases what it
    holds within about a second, and returns what it found; this returns it with the
    signal's number (None when the probe ran to its end). A second signal stops at once."""
    import asyncio
    import logging

    # Libraries' warnings (aioice, aiortc, asyncio) must not reach the user's terminal through
    # logging's last-resort handler: the report says what matters, --verbose traces the rest.
    logging.getLogger().addHandler(logging.NullHandler())
    if verbose:
        enable_trace()
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    async def main() -> tuple[T, int | None]:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        received: list[int] = []

        def on_signal(signum: int) -> None:
            if received:
                sys.stderr.write("iceprobe: stopping at once\n")
                sys.stderr.flush()
                os._exit(128 + received[0])
            received.append(signum)
            stop.set()

        installed = []
        for signum in STOP_SIGNALS:
            try:
                loop.add_signal_handler(signum, on_signal, signum)
                installed.append(signum)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or a platform without signals in the loop
        try:
            return await probe(stop), (received[0] if received else None)
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    try:
        if not verbose and sys.stderr.isatty():  # rich only for the spinner on a terminal
            from rich.console import Console

            with Console(stderr=True).status(status, spinner="dots"):
                return asyncio.run(main())
        return asyncio.run(main())
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)


def emit(report: Report, output: Output) -> int:
    """Show the report; its exit code (iceprobe.status: the same outcome as its headline)."""
    from ..render import OutputFormat, render

    if output.redact is not None:
        from ..redact import redact

        report = redact(report, hostnames=output.redact == "all")
    render(report, OutputFormat.JSON if output.as_json else OutputFormat.TABLE, sys.stdout,
           quiet=output.quiet, verbose=output.verbose)
    return report.outcome.exit_code


def finish(report: Report, output: Output, stopped_by: int | None) -> int:
    """Show the report and return its exit code; say on stderr when a signal stopped it."""
    code = emit(report, output)
    if stopped_by is not None:
        import click

        click.echo(f"iceprobe: interrupted ({signal.Signals(stopped_by).name}): the results "
                   "so far are shown", err=True)
    return code
