"""The command line: parse, run, judge, render, exit. Nothing else lives here.

One module per command (`gather`, `relay`, `explain`) and the options they share in
`options`. Heavy modules (aioice through the gatherer, aiortc through the relay check, rich
through the renderers) are imported inside the commands, so that `--help` and `--version`
start fast and `gather` never pays for aiortc.
"""

from __future__ import annotations

import enum
import logging
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

import click

from .. import __version__

BUG_REPORT = "please report this bug with the output of --verbose"


class ExitCode(enum.IntEnum):
    OK = 0
    FAIL = 1
    USAGE = 2
    INTERNAL = 3
    INTERRUPTED = 130  # 128 + SIGINT
    TERMINATED = 143  # 128 + SIGTERM


class Terminated(BaseException):
    """SIGTERM outside a probe (which handles it itself): stop like Ctrl-C does."""


class InternalError(Exception):
    """An unexpected exception inside a command, with whether to show its traceback."""

    def __init__(self, original: BaseException, verbose: bool) -> None:
        super().__init__(str(original))
        self.original = original
        self.verbose = verbose


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="iceprobe",
                      message="%(prog)s %(version)s")
def cli() -> None:
    """iceprobe tells you why WebRTC connectivity fails.

    It gathers ICE candidates against the STUN and TURN servers you name, records every
    error event the way a browser's icecandidateerror does, and explains what it saw.
    """


# The commands register themselves on `cli`.
from . import analyze, explain, gather, relay  # noqa: E402


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point: maps every outcome to an exit code and at most one line on stderr."""
    # Libraries' warnings (aioice, aiortc, asyncio) must not reach the user's terminal through
    # logging's last-resort handler: the report says what matters, --verbose traces the rest.
    logging.getLogger().addHandler(logging.NullHandler())
    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = cli.main(args=argv, prog_name="iceprobe", standalone_mode=False)
    except click.ClickException as exc:
        click.echo(f"iceprobe: error: {exc.format_message()}", err=True)
        sys.exit(ExitCode.USAGE)
    except (KeyboardInterrupt, click.Abort):
        click.echo("iceprobe: interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except Terminated:
        click.echo("iceprobe: terminated", err=True)
        sys.exit(ExitCode.TERMINATED)
    except InternalError as exc:
        if exc.verbose:
            traceback.print_exception(exc.original)
        _internal(exc.original)
    except Exception as exc:
        _internal(exc)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _internal(exc: BaseException) -> NoReturn:
    click.echo(f"iceprobe: internal error: {type(exc).__name__}: {exc} ({BUG_REPORT})",
               err=True)
    sys.exit(ExitCode.INTERNAL)


__all__ = ["ExitCode", "InternalError", "analyze", "cli", "explain", "gather", "main", "relay"]
