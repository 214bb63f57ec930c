"""`iceprobe results`: the results `iceprobe serve` stored, as a list or one by one, with
the table and JSON of `iceprobe analyze`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from . import ExitCode, InternalError, cli
from .params import CheckedCommand

if TYPE_CHECKING:
    from ..serve.store import Store, Stored, Summary

SCHEMA_VERSION = 2

_db = click.option("--db", "db_path", type=click.Path(dir_okay=False), metavar="PATH",
                   help="The database of `iceprobe serve` (default: "
                        "$XDG_DATA_HOME/iceprobe/results.db).")
_json = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


@cli.group(invoke_without_command=True)
@_db
@_json
@click.option("--label", metavar="TEXT", help="Only the results of links with this label.")
@click.pass_context
def results(ctx: click.Context, db_path: str | None, as_json: bool, label: str | None) -> int:
    """List the results `iceprobe serve` stored, or show one (`results show CODE`).

    \b
    Newest first: code, time received, label, browser and status. --json prints
    {"schema_version", "results"}, each result with the keys of `analyze --json`.
    Exit codes: 0 listed, 2 bad usage (no such database).
    """
    if ctx.invoked_subcommand is not None:
        return ExitCode.OK
    store = _open(ctx, db_path)
    try:
        found = store.results(label)
        if as_json:
            stored = [store.result(s.code) for s in found]
            document = {"schema_version": SCHEMA_VERSION,
                        "results": [result_document(s) for s in stored if s is not None]}
            click.echo(json.dumps(document, indent=2))
        else:
            _table(found)
    finally:
        store.close()
    return ExitCode.OK


@results.command(cls=CheckedCommand)
@click.argument("code")
@_db
@_json
@click.option("-v", "--verbose", is_flag=True,
              help="List every error event and grouped URL in the table.")
@click.pass_context
def show(ctx: click.Context, code: str, db_path: str | None, as_json: bool,
         verbose: bool) -> int:
    """Show one result, with the table (or --json, the document) of `analyze`.

    \b
    Exit codes: 0 no failing verdict, 1 a failing verdict, 2 bad usage or no such code.
    """
    # `results --db PATH --json show CODE` means the same as `results show CODE --db PATH
    # --json`: the group's options carry over.
    group = ctx.parent.params if ctx.parent is not None else {}
    db_path = db_path or group.get("db_path")
    as_json = as_json or bool(group.get("as_json"))
    store = _open(ctx, db_path)
    try:
        found = store.result(code)
    finally:
        store.close()
    if found is None:
        raise click.UsageError(f"no result {code!r} in {store.path}", ctx=ctx)
    try:
        return _show(found, as_json, verbose)
    except Exception as exc:
        raise InternalError(exc, verbose) from exc


def result_document(stored: Stored) -> dict[str, Any]:
    """One result of `results --json`: the link's facts, then `analyze --json`'s keys."""
    analysis = json.loads(stored.analysis)
    summary = stored.summary
    return {"code": summary.code, "label": summary.label,
            "received_at": _iso(summary.received_at), "browser": summary.browser,
            "status": analysis["status"], "ok": analysis["ok"],
            "sessions": analysis["sessions"]}


def _show(found: Stored, as_json: bool, verbose: bool) -> int:
    from ..serve.judge import load_reports
    from ..status import combined

    reports = load_reports(found.recording)
    if as_json:
        click.echo(json.dumps(json.loads(found.analysis), indent=2))
    else:
        from rich.console import Console

        from ..render.table import render_table

        console = Console()
        summary = found.summary
        console.print(f"{summary.code}  {summary.label}  {_iso(summary.received_at)}  "
                      f"{summary.browser or 'unknown browser'}", markup=False,
                      highlight=False)
        for number, report in enumerate(reports):
            if number:
                console.rule()
            render_table(report, console, verbose=verbose)
    return combined(r.outcome for r in reports).exit_code


def _open(ctx: click.Context, db_path: str | None) -> Store:
    import os

    from ..serve.store import Store, StoreError, default_path

    path = db_path or str(default_path())
    if not os.path.isfile(path):
        raise click.UsageError(f"no results database {path!r} (iceprobe serve makes it; "
                               "--db PATH names another)", ctx=ctx)
    try:
        return Store(path)
    except StoreError as exc:
        raise click.UsageError(f"--db: {exc}", ctx=ctx) from None


def _iso(epoch: float) -> str:
    import datetime

    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _table(found: list[Summary]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False)
    for column in ("code", "received", "label", "browser", "status"):
        table.add_column(column)
    for summary in found:
        # Text, not markup: a label or user agent is never read as rich markup.
        table.add_row(*(Text(value) for value in (
            summary.code, _iso(summary.received_at), summary.label, summary.browser or "",
            summary.status.upper())))
    console = Console()
    if found:
        console.print(table)
    else:
        console.print("no results", highlight=False)
