"""The HTML pages the server renders itself: the admin list and detail pages, the login form
and the error pages of a bad link. Every string that came from a browser, a recording or a
server is escaped; no page has a script, and its only style is one <style> block allowed by
its hash in the Content-Security-Policy (never 'unsafe-inline')."""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..render.report import Report
    from .store import Summary

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;background:#fff}
table{border-collapse:collapse}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;
text-align:left}.fail{color:#b00}.pass{color:#070}.inconclusive{color:#a60}
pre{font-family:'DejaVu Sans Mono',monospace;font-size:13px;line-height:1.25}
code{font-family:inherit}form{margin:1em 0}.wide,pre{overflow-x:auto}.nw{white-space:nowrap}
@media (max-width:30rem){body{margin:1em}table{font-size:.875em}td,th{padding:.3em}}"""


@dataclass(frozen=True)
class Page:
    html: str
    #: The Content-Security-Policy that lets this page's own style block, nothing else.
    csp: str


def csp_for(style: str, form_action: bool) -> str:
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    forms = "'self'" if form_action else "'none'"
    return (f"default-src 'none'; script-src 'none'; style-src 'sha256-{digest}'; "
            f"base-uri 'none'; form-action {forms}; frame-ancestors 'none'")


def _page(title: str, body: str, style: str = STYLE, form_action: bool = False) -> Page:
    html = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<meta name=\"robots\" content=\"noindex\"><title>{escape(title)}</title>"
            f"<style>{style}</style></head><body>\n{body}\n</body></html>\n")
    return Page(html, csp_for(style, form_action))


def when(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _when_cell(epoch: float) -> str:
    """`when`, breakable only between the date and the time (on a phone's width)."""
    day, _, time = when(epoch).partition(" ")
    return f"<span class=\"nw\">{escape(day)}</span> <span class=\"nw\">{escape(time)}</span>"


def link_error(reason: str) -> Page:
    """What a customer sees at a link that is expired, tampered or unknown."""
    if reason == "expired":
        title, text = "This test link has expired", (
            "Ask the person who sent it to you for a new link. Nothing was tested.")
    else:
        title, text = "This test link is not valid", (
            "The address is incomplete or was changed. Check that you copied the whole link, "
            "or ask for a new one. Nothing was tested.")
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>")


def login(message: str = "") -> Page:
    note = f"<p class=\"fail\">{escape(message)}</p>" if message else ""
    return _page("iceprobe admin: log in", (
        "<h1>iceprobe admin</h1>" + note +
        "<form method=\"post\" action=\"/admin/login\"><label>Admin token "
        "<input type=\"password\" name=\"token\" autocomplete=\"current-password\">"
        "</label> <button type=\"submit\">Log in</button></form>"), form_action=True)


def results_list(results: Sequence[Summary], new_link: str | None = None) -> Page:
    rows = "".join(
        f"<tr><td>{escape(r.label)}</td><td>{_when_cell(r.received_at)}</td>"
        f"<td>{escape(r.browser or '')}</td>"
        f"<td class=\"{escape(r.status)}\">{escape(r.status.upper())}</td>"
        f"<td class=\"nw\"><a href=\"/admin/r/{escape(r.code)}\">{escape(r.code)}</a>"
        "</td></tr>"
        for r in results)
    made = (f"<p>New link: <code>{escape(new_link)}</code></p>" if new_link else "")
    body = (
        "<h1>iceprobe results</h1>" + made +
        "<form method=\"post\" action=\"/admin/links\"><label>Label "
        "<input name=\"label\" required maxlength=\"200\"></label> <label>Expires in "
        "<select name=\"expires\"><option>1h</option><option selected>24h</option>"
        "<option>7d</option></select></label> <button type=\"submit\">Make a test link"
        "</button></form>"
        "<div class=\"wide\"><table><thead><tr><th>label</th><th>received</th>"
        "<th>browser</th><th>status</th><th>code</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
        + ("" if results else "<p>No results yet.</p>"))
    return _page("iceprobe results", body, form_action=True)


def result_detail(summary: Summary, reports: Sequence[Report]) -> Page:
    """The table of `iceprobe analyze`, as HTML: rich's own export, whose text it escapes,
    with its stylesheet in the page's one style block."""
    from rich.console import Console

    from ..render.table import render_table

    console = Console(record=True, file=io.StringIO(), width=120, force_terminal=True,
                      color_system="truecolor")
    for number, report in enumerate(reports):
        if number:
            console.rule()
        render_table(report, console)
    code = console.export_html(inline_styles=False, code_format="{stylesheet}\x00{code}")
    stylesheet, table = code.split("\x00", 1)
    head = (f"<p><a href=\"/admin\">all results</a></p><h1>{escape(summary.code)}: "
            f"{escape(summary.label)}</h1><p>{escape(when(summary.received_at))}, "
            f"{escape(summary.browser or 'unknown browser')}, "
            f"<span class=\"{escape(summary.status)}\">{escape(summary.status.upper())}"
            f"</span></p>")
    return _page(f"iceprobe result {summary.code}", f"{head}<pre><code>{table}</code></pre>",
                 style=STYLE + "\n" + stylesheet)
