"""The command line: parse, run, judge, render, exit. Nothing else lives here.

One module per command (`gather`, `relay`, `analyze`, `explain`) and the options they share
in `options`. A command's module is imported only when that command runs (or its help is
shown), and heavy modules (aioice through the gatherer, aiortc through the relay check, rich
through the table renderer) only inside the commands, so that `--help` and `--version` start
about as fast as click itself, `gather --json` never imports rich's console, and `gather`
never pays for aiortc.
"""

from __future__ import annotations

import difflib
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

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
    "capacity": "Load-test your own TURN server: how many allocations, how fast.",
    "check": "Probe the targets of a fleet file concurrently and report each check.",
    "explain": "Explain a STUN/TURN/browser error code, a browser errorText or a 701 cause.",
    "exporter": "Serve Prometheus metrics of probes of the fleet file's targets.",
    "gather": "Gather candidates from STUN/TURN servers and explain every failure.",
    "link": "Make a test link on a running `iceprobe serve`; prints the URL.",
    "relay": "Prove that data flows through each TURN server, and measure it.",
    "results": "List the results `iceprobe serve` stored, or show one (`results show CODE`).",
    "serve": "Serve test links that customers open in their own browser.",
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

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if name not in COMMANDS and not name.startswith("-") and not ctx.resilient_parsing:
            raise click.UsageError(f"no such command {name!r}{_did_you_mean(name)}", ctx=ctx)
        return super().resolve_command(ctx, args)

    # A reader that goes away (`iceprobe --help | head -1`) is no error of ours: end quietly
    # with exit 0, where click would exit 1. Help and --version are written while a context
    # is made, command output while it is invoked. Commands that have verdicts to report
    # guard their output themselves (output.report_stream) and keep their exit code.
    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except BrokenPipeError:
            _quiet_stdout()
            raise click.exceptions.Exit(ExitCode.OK) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _quiet_stdout()
            return ExitCode.OK

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
        if isinstance(exc.original, BrokenPipeError):
            _quiet_stdout()
            sys.exit(ExitCode.OK)
        if exc.verbose:
            import traceback

            traceback.print_exception(exc.original)
        _internal(exc.original)
    except Exception as exc:
        _internal(exc)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


def _did_you_mean(name: str) -> str:
    """A suggestion for a mistyped command: the closest name, or the one it begins."""
    close = difflib.get_close_matches(name.lower(), list(COMMANDS), n=1, cutoff=0.6)
    if not close:
        close = [c for c in sorted(COMMANDS) if name and c.startswith(name.lower())][:1]
    return f" (did you mean {close[0]!r}?)" if close else f" (commands: {', '.join(COMMANDS)})"


def _quiet_stdout() -> None:
    """After a write to a closed pipe: point stdout at /dev/null, so that nothing more is
    written and Python's flush at exit does not fail again (and exit 120)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (e.g. captured by a test)
        pass


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _internal(exc: BaseException) -> NoReturn:
    click.echo(f"iceprobe: internal error: {type(exc).__name__}: {exc} ({BUG_REPORT})",
               err=True)
    sys.exit(ExitCode.INTERNAL)


__all__ = ["COMMANDS", "ExitCode", "InternalError", "LazyGroup", "cli", "main"]
