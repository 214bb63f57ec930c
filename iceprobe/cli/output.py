"""What every probing command does at the end: run the probe with a spinner or a trace,
then redact, render and turn the verdicts into an exit code."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO, TypeVar, cast

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
    #: --output FILE: where the report goes instead of stdout.
    path: str | None = None
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


class PipeGuard:
    """Standard output that ends quietly when its reader goes away (`iceprobe ... | head`):
    the first write to the closed pipe points stdout at /dev/null, and everything after is
    dropped. rich would otherwise exit 1 from inside its print, and a plain write would
    raise; either way a verdict's exit code would be lost."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._close()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._close()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return self._stream.encoding

    def _close(self) -> None:
        from . import _quiet_stdout

        self.broken = True
        _quiet_stdout()


def guarded_stdout() -> TextIO:
    return cast(TextIO, PipeGuard(sys.stdout))


@contextlib.contextmanager
def report_stream(path: str | None) -> Iterator[TextIO]:
    """Where the report goes: stdout, or (--output) a file written whole or not at all.

    The report is written to a temporary file next to FILE and renamed over it only once
    complete, so that a crash, Ctrl-C or a full disk never leaves half a report (and never
    clobbers the previous one). On stdout, a reader that goes away early (`| head`) ends the
    writing quietly: the exit code is still the verdicts'."""
    if path is None:
        guard = PipeGuard(sys.stdout)
        yield cast(TextIO, guard)
        guard.flush()
        return
    import click

    directory, name = os.path.split(os.path.abspath(path))
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed or removed below)
            "w", encoding="utf-8", dir=directory, prefix=f".{name}.", suffix=".tmp",
            delete=False)
    except OSError as exc:
        raise click.ClickException(f"--output {path!r}: {exc.strerror or exc}") from None
    try:
        with handle:
            yield cast(TextIO, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, _mode(path))
        os.replace(handle.name, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
        if isinstance(exc, OSError):
            raise click.ClickException(f"--output {path!r}: {exc.strerror or exc}") from None
        raise


def _mode(path: str) -> int:
    """The mode a plain `open(path, "w")` would leave (a temporary file is created 0600):
    an existing file's own, else 0666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def emit(report: Report, output: Output) -> int:
    """Show the report; its exit code (iceprobe.status: the same outcome as its headline)."""
    from ..render import OutputFormat, render

    if output.redact is not None:
        from ..redact import redact

        report = redact(report, hostnames=output.redact == "all")
    with report_stream(output.path) as stream:
        render(report, OutputFormat.JSON if output.as_json else OutputFormat.TABLE, stream,
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
