"""`iceprobe analyze`: diagnose what a browser recorded, with the rules `gather` uses."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ..constants import DEFAULT_SLOW_MS, Requirement
from . import InternalError, cli
from .options import output_options, require_option

if TYPE_CHECKING:
    from ..recordings import Input
    from ..render.report import Report

#: Largest file read (before decompression).
MAX_FILE_BYTES = 256 * 1024 * 1024


@cli.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@require_option("each: every configured server must yield its candidate; any: one working "
                   "STUN and one working TURN server are enough.")
@click.option("--slow-ms", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_SLOW_MS,
              show_default=True, metavar="MS",
              help="slow-turn when the first relay candidate came later than this after "
                   "gathering started.")
@output_options
def analyze(files: tuple[str, ...], require: str, slow_ms: float, ignore: tuple[str, ...],
            redact: str | None, as_json: bool, quiet: bool, verbose: bool) -> int:
    """Diagnose what a browser recorded: each PeerConnection of each FILE.

    \b
    FILE is a chrome://webrtc-internals dump (any Chrome version, gzipped or not), an
    rtcstats dump, a Firefox about:webrtc report, an iceprobe event log
    (examples/collect-ice-events.js), iceprobe's own JSON report, an SDP or candidate
    lines; the format is read from the content. "-" reads standard input.

    \b
    Exit codes: 0 no failing verdict, 1 a failing verdict, 2 bad usage or unreadable input,
                3 internal error, 130 interrupted.
    """
    from ..recordings import RecordingError, read

    inputs: list[Input] = []
    for name in files:
        data = _load(name)
        try:
            inputs.extend(read(data, "stdin" if name == "-" else name))
        except RecordingError as exc:
            raise click.UsageError(f"{'stdin' if name == '-' else name}: {exc}") from None
    try:
        return _analyze(inputs, Requirement(require), slow_ms, ignore, redact, as_json,
                        quiet=quiet, verbose=verbose)
    except (KeyboardInterrupt, click.Abort):
        raise
    except Exception as exc:
        raise InternalError(exc, verbose) from exc


def _load(name: str) -> bytes:
    try:
        if name == "-":
            return sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        with open(name, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise click.UsageError(f"{name}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise click.UsageError(f"{name}: larger than {MAX_FILE_BYTES // 2**20} MiB")
    return data


def _analyze(inputs: list[Input], require: Requirement, slow_ms: float,
             ignore: tuple[str, ...], redact: str | None, as_json: bool, *, quiet: bool,
             verbose: bool) -> int:
    from ..recordings import analysis
    from ..render.report import Report
    from ..rules import evaluate

    reports: list[Report] = []
    for item in inputs:
        found = analysis(item, slow_ms, require)
        recording = found.evidence.recording
        report = Report(found.gathered, tuple(evaluate(found.evidence, ignore)), found.require,
                        matrix=found.matrix, source=found.source, recording=recording)
        if redact is not None:
            from ..redact import redact as redacted

            report = redacted(report, hostnames=redact == "all")
        reports.append(report)
    if as_json:
        import json

        from ..render.json_report import analysis_document

        sys.stdout.write(json.dumps(analysis_document(reports), indent=2) + "\n")
        sys.stdout.flush()
    else:
        from rich.console import Console

        from ..render.table import render_table

        console = Console()
        for number, report in enumerate(reports):
            if number:
                console.rule()
            render_table(report, console, quiet=quiet, verbose=verbose)
    from ..status import combined

    return combined(r.outcome for r in reports).exit_code
