"""The error events section: one row per event, except that a run where many servers failed
the same way shows that failure once.

Events are the same when they have the same code, cause, problem and text once each one's own
server is taken out of the text ("192.0.2.7:3478 is unreachable: …" and "192.0.2.8:3478 is
unreachable: …" are one failure), and Chrome would say the same about them. More than
`MAX_ALIKE` such events are shown as one row, unless verbose asks for every event.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console, RenderableType
from rich.text import Text

from ..browser import BrowserView, chrome_view
from ..model import ErrorEvent
from ..numbers import describe_ms, plural
from ..urls import UrlError, parse_server_url
from .layout import Column, section

#: Up to this many alike events are still listed one by one.
MAX_ALIKE = 3
#: Stands for each event's own server in the text of a group.
SERVER = "<server>"

COLUMNS = (Column("URL"), Column("event", prose=True))


def endpoint(address: str | None, port: int | None) -> str:
    if address is None:
        return "-"
    shown = f"[{address}]" if ":" in address and port is not None else address
    return f"{shown}:{port}" if port is not None else shown


@dataclass(frozen=True)
class _Shown:
    """A row: one event, or several alike."""

    events: tuple[ErrorEvent, ...]

    @property
    def first(self) -> ErrorEvent:
        return self.events[0]


def _general_text(event: ErrorEvent) -> str:
    """The event's text with its own server replaced by SERVER."""
    text = event.error_text
    names = [endpoint(event.server_address, event.server_port), event.server_address]
    with contextlib.suppress(UrlError):  # a recording may hold a URL iceprobe refuses
        names.append(parse_server_url(event.url).host)
    for name in names:
        if name and name != "-":
            text = text.replace(name, SERVER)
    return text


def _alike(event: ErrorEvent, browser: bool) -> tuple[object, ...]:
    view = chrome_view(event) if browser else None
    return (event.error_code, event.cause, event.problem, _general_text(event), view)


def _rows(errors: Sequence[ErrorEvent], browser: bool, verbose: bool) -> list[_Shown]:
    if verbose:
        return [_Shown((e,)) for e in errors]
    alike: dict[tuple[object, ...], list[ErrorEvent]] = {}
    for event in errors:
        alike.setdefault(_alike(event, browser), []).append(event)
    rows: list[_Shown] = []
    for event in errors:
        found = alike[_alike(event, browser)]
        if len(found) <= MAX_ALIKE:
            rows.append(_Shown((event,)))
        elif found[0] is event:
            rows.append(_Shown(tuple(found)))
    return rows


def errors_section(console: Console, errors: Sequence[ErrorEvent], *, browser: bool,
                   verbose: bool) -> RenderableType:
    rows = [(_url_cell(shown), _event_cell(shown, browser))
            for shown in _rows(errors, browser, verbose)]
    return section(console, COLUMNS, rows)


def _url_cell(shown: _Shown) -> Text:
    urls = list(dict.fromkeys(e.url for e in shown.events))
    cell = Text(urls[0])
    if len(urls) > 1:
        cell.append(f"\nand {plural(len(urls) - 1, 'other')}", style="dim")
    return cell


def _event_cell(shown: _Shown, browser: bool) -> Text:
    event = shown.first
    body = Text()
    body.append(f"{event.error_code} {event.cause.value}", style="bold red")
    if len(shown.events) == 1:
        body.append(f"  {endpoint(event.address, event.port)} → "
                    f"{endpoint(event.server_address, event.server_port)}", style="dim")
        # A server may send no reason phrase (pion/turn's bare 400): say so, invent none.
        body.append(f"\n{event.error_text or '(no reason phrase)'}")
    else:
        servers = len(dict.fromkeys(e.url for e in shown.events))
        body.append(f"  {plural(len(shown.events), 'event')} from "
                    f"{plural(servers, 'server')} (-v lists each)", style="dim")
        body.append(f"\n{_general_text(event)}")
    view = chrome_view(event) if browser else None
    if view is not None:
        body.append(f"\n{chrome_line(view)}", style="dim")
    return body


def chrome_line(view: BrowserView) -> str:
    return (f"Chrome would report: {view.error_code} \"{view.error_text}\" after "
            f"{describe_ms(view.after_ms)}")


__all__ = ["MAX_ALIKE", "endpoint", "errors_section"]
