"""`iceprobe explain`: the code table, one code, a browser errorText or a 701 cause."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..constants import SERVER_UNREACHABLE_CODE
from . import ExitCode, cli

if TYPE_CHECKING:
    from ..codes import CodeInfo


#: The codes that exist, in a table or by their class: RFC 8489 section 14.8's 300-699
#: and the browsers' 700-799 (W3C WebRTC). Others are no error code anyone sends.
CLASS_CODES = (300, 799)


@cli.command()
@click.argument("code_or_text", required=False, metavar="[CODE_OR_TEXT]")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def explain(code_or_text: str | None, as_json: bool) -> int:
    """Explain a STUN/TURN/browser error code, a browser errorText or a 701 cause.

    \b
    iceprobe explain                 the whole table
    iceprobe explain 486             one code
    iceprobe explain "TURN allocate request timed out."
    iceprobe explain timeout         one of iceprobe's 701 causes
    """
    from .. import codes
    from ..render.explain import render_code_table, render_entries, render_explain_json
    from .output import guarded_stdout

    if code_or_text is None:
        entries = [*codes.CODES, *codes.CAUSES_701]
    else:
        entries = _explain_entries(code_or_text)
    stdout = guarded_stdout()  # `iceprobe explain | head -1` ends quietly, exit 0
    if as_json:
        render_explain_json(entries, stdout)
        return ExitCode.OK
    from rich.console import Console

    console = Console(file=stdout)
    if code_or_text is None:
        render_code_table(entries, console)
    else:
        render_entries(entries, console)
    return ExitCode.OK


def _explain_entries(text: str) -> list[CodeInfo]:
    from .. import codes

    value = text.strip()
    if value.isdigit() and value.isascii():
        code = int(value)
        if not 0 <= code <= 999:
            raise click.BadParameter(f"{code} is not an error code (0-999)",
                                     param_hint="CODE_OR_TEXT")
        info = codes.lookup(code)
        if info.generic and not CLASS_CODES[0] <= code <= CLASS_CODES[1]:
            raise click.BadParameter(
                f"{code} is not a STUN, TURN or browser error code (STUN and TURN codes run "
                "from 300 to 699, browser codes from 700 to 799)",
                param_hint="CODE_OR_TEXT")
        return [info, *codes.CAUSES_701] if code == SERVER_UNREACHABLE_CODE else [info]
    found = codes.match_text(value)
    if found is None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise click.BadParameter(
            f"{shown!r} is neither a code (0-999) nor a known error text or cause; run "
            "`iceprobe explain` for the table", param_hint="CODE_OR_TEXT")
    return [found]
