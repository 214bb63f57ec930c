"""The command line: parse, run, judge, render, exit. Nothing else lives here.

One module per command (`gather`, `relay`, `analyze`, `explain`) and the options they share
in `options`. A command's module is imported only when that command runs (or its help is
shown), and heavy modules (aioice through the gatherer, aiortc through the relay check, rich
through the table renderer) only inside the commands, so that `--help` and `--version` start
about as fast as click itself, `gather --json` never imports rich's console, and `gather`
never pays for aiortc.
"""

from __future__ import annotations

import importlib
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

import click

from .. import __version__
from ..constants import ExitCode

BUG_REPORT = "please report this bug with the output of --verbose"


class Terminated(BaseException):
    """SIGTERM outside a probe (which handles it itself): stop like Ctrl-C does."""


class InternalError(Exception):
    """An unexpected exception inside a command, with whether to show its traceback."""

    def __init__(self, original: BaseException, verbose: bool) -> None:
        super().__init__(str(original))
        self.original = original
        self.verbose = verbose


#: Each command: its module under iceprobe.cli, and the short help `iceprobe --help` lists
#: (kept equal to the command's own by a test), so that listing them imports none of them.
COMMANDS: dict[str, str] = {
    "analyze": "Diagnose what a browser recorded: each PeerConnection of each FILE.",
    "explain": "Explain a STUN/TURN/browser error code, a browser errorText or a 701 cause.",
    "gather": "Gather candidates from STUN/TURN servers and explain every failure.",
    "relay": "Prove that data flows through each TURN server, and measure it.",
}


class LazyGroup(click.Group):
    """A group whose commands are imported when one is asked for; each module registers
    its command on `cli` with `@cli.command()` as it loads."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            importlib.import_module(f"{__name__}.{cmd_name}")
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl(sorted(COMMANDS.items()))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="iceprobe",
                      message="%(prog)s %(version)s")
def cli() -> None:
    """iceprobe tells you why WebRTC connectivity fails.

    It gathers ICE candidates against the STUN and TURN servers you name, records every
    error event the way a browser's icecandidateerror does, and explains what it saw.
    """


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point: maps every outcome to an exit code and at most one line on stderr."""
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
            import traceback

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


__all__ = ["COMMANDS", "ExitCode", "InternalError", "LazyGroup", "cli", "main"]
