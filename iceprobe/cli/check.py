"""`iceprobe check`: probe the targets of a fleet file at once, show a report per target and
one summary, in the format CI wants."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from . import InternalError, cli
from .options import output_file
from .output import report_stream, run
from .params import CheckedCommand

if TYPE_CHECKING:
    import asyncio

    from ..fleet.checks import TargetResult
    from ..fleet.model import Fleet, Target
    from ..fleet.run import Planned
    from ..pipeline import Probed

FORMATS = ("table", "json", "junit", "github")


@cli.command(cls=CheckedCommand)
@click.option("-c", "--config", "config_path", required=True, metavar="FILE",
              type=click.Path(dir_okay=False),
              help="The fleet file (TOML: modules, auth, targets; see docs/fleet.md).")
@click.option("--target", "target_names", multiple=True, metavar="NAME",
              help="Probe only this target of the file; repeatable (default: all).")
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="table",
              show_default=True,
              help="table: a report per target and a summary; json: one document; junit: "
                   "JUnit XML; github: workflow commands (and $GITHUB_STEP_SUMMARY).")
@click.option("-o", "--output", "output_path", metavar="FILE", callback=output_file,
              type=click.Path(dir_okay=False),
              help="Write the report to FILE instead of stdout; written whole or not at all.")
@click.option("-v", "--verbose", is_flag=True,
              help="Trace every transaction to stderr; list every error event in the "
                   "table; show tracebacks.")
def check(config_path: str, target_names: tuple[str, ...], output_format: str,
          output_path: str | None, verbose: bool) -> int:
    """Probe the targets of a fleet file concurrently and report each check.

    \b
    Exit codes: 0 no failing verdict, 1 a failing verdict, 2 bad usage or fleet file,
                3 internal error, 130 interrupted (SIGINT), 143 terminated (SIGTERM).
    """
    from ..fleet.config import load
    from ..fleet.model import FleetError
    from ..fleet.plan import PlanError

    try:
        fleet = load(config_path, os.environ)
    except FleetError as exc:
        raise click.ClickException(str(exc)) from None
    for warning in fleet.warnings:
        click.echo(f"iceprobe: warning: {warning}", err=True)
    targets = _chosen(fleet, target_names)
    try:
        from ..fleet.run import plan_targets

        planned = plan_targets(fleet, targets)
    except PlanError as exc:  # the loader checks the same: only a bug gets here
        raise click.ClickException(f"{config_path}: {exc}") from None
    try:
        return _check(fleet, planned, output_format, output_path, verbose)
    except (KeyboardInterrupt, click.Abort, click.ClickException):
        raise
    except Exception as exc:
        raise InternalError(exc, verbose) from exc


def _chosen(fleet: Fleet, names: tuple[str, ...]) -> list[Target]:
    if not fleet.targets:
        raise click.ClickException(f"{fleet.path}: no [[targets]]: nothing to probe")
    if not names:
        return list(fleet.targets)
    known = [t.name for t in fleet.targets]
    chosen = []
    for name in dict.fromkeys(names):
        target = fleet.target(name)
        if target is None:
            import difflib

            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"targets: {', '.join(known)}"
            raise click.UsageError(f"--target {name!r}: no such target in {fleet.path} "
                                   f"({hint})")
        chosen.append(target)
    return chosen


def _check(fleet: Fleet, plans: list[Planned], output_format: str,
           output_path: str | None, verbose: bool) -> int:
    from ..fleet.run import judge_targets, probe_targets

    async def probing(stop: asyncio.Event) -> list[Probed]:
        return await probe_targets(plans, stop)

    count = len(plans)
    probed, stopped_by = run(probing, f"Probing {count} target{'s' if count != 1 else ''}…",
                             verbose)
    results = judge_targets(fleet, plans, probed, stopped_by=stopped_by)
    code = _emit(results, fleet.path, output_format, output_path, verbose)
    if stopped_by is not None:
        import signal

        click.echo(f"iceprobe: interrupted ({signal.Signals(stopped_by).name}): the results "
                   "so far are shown", err=True)
    return code


def _emit(results: list[TargetResult], path: str, output_format: str,
          output_path: str | None, verbose: bool) -> int:
    from ..render.fleet import fleet_outcome

    with report_stream(output_path) as stream:
        if output_format == "json":
            from ..render.fleet import render_check_json

            render_check_json(results, path, stream)
        elif output_format == "junit":
            from ..render.junit import render_junit

            render_junit(results, f"iceprobe check {os.path.basename(path)}", stream)
        elif output_format == "github":
            from ..render.github import render_github

            render_github(results, stream, os.environ.get("GITHUB_STEP_SUMMARY") or None)
        else:
            from ..render.fleet import render_check_table

            render_check_table(results, stream, verbose=verbose)
    return fleet_outcome(results).exit_code


__all__ = ["check"]
