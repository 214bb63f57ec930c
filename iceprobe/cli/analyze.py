"""`iceprobe analyze`: diagnose what a browser recorded, with the rules `gather` uses."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

import click

from ..constants import DEFAULT_SLOW_MS, Requirement
from . import BUG_REPORT, ExitCode, InternalError, cli
from .options import output_options, require_option
from .params import CheckedCommand, FiniteFloatRange

if TYPE_CHECKING:
    from ..recordings import Input
    from ..render.report import Report

#: Largest file read (before decompression).
MAX_FILE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Unreadable:
    """A FILE that could not be read, and why (one line); reported in its place."""

    file: str
    error: str
    #: A failure of iceprobe's own rather than of the file (exit 3, not 2).
    internal: bool = False


@cli.command(cls=CheckedCommand)
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@require_option("each: every configured server must yield its candidate; any: one working "
                   "STUN and one working TURN server are enough.")
@click.option("--slow-ms", type=FiniteFloatRange(min=0, min_open=True), default=DEFAULT_SLOW_MS,
              show_default=True, metavar="MS",
              help="slow-turn when the first relay candidate came later than this after "
                   "gathering started.")
@output_options
def analyze(files: tuple[str, ...], require: str, slow_ms: float, ignore: tuple[str, ...],
            redact: str | None, as_json: bool, output_path: str | None, quiet: bool,
            verbose: bool) -> int:
    """Diagnose what a browser recorded: each PeerConnection of each FILE.

    \b
    FILE is a chrome://webrtc-internals dump (any Chrome version, gzipped or not), an
    rtcstats dump, a Firefox about:webrtc report, an iceprobe event log
    (examples/collect-ice-events.js), iceprobe's own JSON report, an SDP or candidate
    lines; the format is read from the content. "-" reads standard input.

    A FILE that cannot be read is named in its place in the report (and on stderr), and
    the others are still analysed; the exit code is then 2, whatever the verdicts.

    \b
    Exit codes: 0 no failing verdict, 1 a failing verdict, 2 bad usage or an unreadable
                FILE (even when the others were read), 3 internal error, 130 interrupted.
    """
    items: list[list[Input] | Unreadable] = [_read(name, verbose) for name in files]
    for item in items:
        if isinstance(item, Unreadable):
            click.echo(f"iceprobe: error: {item.file}: {item.error}", err=True)
    if all(isinstance(item, Unreadable) for item in items):
        return _unreadable_code(items)  # nothing to report
    try:
        code = _analyze(items, Requirement(require), slow_ms, ignore, redact, as_json,
                        output_path, quiet=quiet, verbose=verbose)
    except (KeyboardInterrupt, click.Abort, click.ClickException):
        raise
    except Exception as exc:
        raise InternalError(exc, verbose) from exc
    return _unreadable_code(items) if any(isinstance(i, Unreadable) for i in items) else code


def _unreadable_code(items: list[list[Input] | Unreadable]) -> int:
    internal = any(isinstance(i, Unreadable) and i.internal for i in items)
    return ExitCode.INTERNAL if internal else ExitCode.USAGE


def _read(name: str, verbose: bool) -> list[Input] | Unreadable:
    """Every PeerConnection in one FILE, or why it cannot be read: a junk file is bad
    input, never a traceback, and never stops the other files."""
    from ..recordings import RecordingError, read

    shown = "stdin" if name == "-" else name
    try:
        data = _load(name)
    except OSError as exc:
        return Unreadable(shown, exc.strerror or str(exc))
    if len(data) > MAX_FILE_BYTES:
        return Unreadable(shown, f"larger than {MAX_FILE_BYTES // 2**20} MiB")
    try:
        return read(data, shown)
    except RecordingError as exc:
        return Unreadable(shown, str(exc))
    except Exception as exc:  # a reader's bug: say so, and go on with the other files
        if verbose:
            import traceback

            traceback.print_exception(exc)
        return Unreadable(shown, f"internal error reading it: {type(exc).__name__}: {exc} "
                                 f"({BUG_REPORT})", internal=True)


def _load(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    with open(name, "rb") as handle:
        return handle.read(MAX_FILE_BYTES + 1)


def _analyze(items: list[list[Input] | Unreadable], require: Requirement, slow_ms: float,
             ignore: tuple[str, ...], redact: str | None, as_json: bool,
             output_path: str | None, *, quiet: bool, verbose: bool) -> int:
    from ..recordings import analysis
    from ..render.report import Report
    from ..rules import evaluate
    from .output import report_stream

    shown: list[Report | Unreadable] = []
    for item in items:
        if isinstance(item, Unreadable):
            shown.append(item)
            continue
        for recorded in item:
            found = analysis(recorded, slow_ms, require)
            report = Report(found.gathered, tuple(evaluate(found.evidence, ignore)),
                            found.require, matrix=found.matrix, source=found.source,
                            recording=found.evidence.recording,
                            relays=found.evidence.relays)
            if redact is not None:
                from ..redact import redact as redacted

                report = redacted(report, hostnames=redact == "all")
            shown.append(report)
    reports = [r for r in shown if not isinstance(r, Unreadable)]
    with report_stream(output_path) as stream:
        if as_json:
            _write_json(shown, stream)
        else:
            _write_tables(shown, stream, quiet=quiet, verbose=verbose)
    from ..status import combined

    return combined(r.outcome for r in reports).exit_code


def _write_json(shown: list[Report | Unreadable], stream: TextIO) -> None:
    import json

    from ..render.json_report import analysis_document

    reports = [r for r in shown if not isinstance(r, Unreadable)]
    unreadable = [(u.file, u.error) for u in shown if isinstance(u, Unreadable)]
    stream.write(json.dumps(analysis_document(reports, unreadable), indent=2) + "\n")


def _write_tables(shown: list[Report | Unreadable], stream: TextIO, *, quiet: bool,
                  verbose: bool) -> None:
    from rich.console import Console
    from rich.text import Text

    from ..render.table import render_table

    console = Console(file=stream)
    for number, item in enumerate(shown):
        if number:
            console.rule()
        if isinstance(item, Unreadable):
            line = Text()
            line.append("UNREADABLE", style="bold red")
            line.append(f"  {item.file}: {item.error}")
            console.print(line)
        else:
            render_table(item, console, quiet=quiet, verbose=verbose)
