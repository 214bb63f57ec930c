"""The exporter's recent probes, in the spirit of blackbox_exporter's history: the last
RECENT probes, and the last FAILURES failed ones kept apart (so that a failure is still there
after many healthy probes), each with its log; and the / page that lists them.

Everything shown is escaped, and the page has no script and no style of its own (its CSP is
`default-src 'none'`)."""

from __future__ import annotations

import collections
import dataclasses
import html
import itertools
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..fleet.model import Fleet
    from .plan import Plan

RECENT = 100
FAILURES = 100


@dataclass(frozen=True)
class ProbeRecord:
    id: str
    at: float
    target: str
    module: str
    server: str
    success: bool
    #: The failing verdict ids.
    failing: tuple[str, ...]
    log: str

    @classmethod
    def of(cls, planned: Plan, success: bool, failing: tuple[str, ...], log: str,
           at: float) -> ProbeRecord:
        return cls("", at, planned.target, planned.module.name, planned.server.url, success,
                   failing, log)


class History:
    def __init__(self, recent: int = RECENT, failures: int = FAILURES) -> None:
        self.recent: collections.deque[ProbeRecord] = collections.deque(maxlen=recent)
        self.failures: collections.deque[ProbeRecord] = collections.deque(maxlen=failures)
        self._ids = itertools.count(1)

    def add(self, record: ProbeRecord) -> ProbeRecord:
        record = dataclasses.replace(record, id=str(next(self._ids)))
        self.recent.append(record)
        if not record.success:
            self.failures.append(record)
        return record

    def find(self, probe_id: str) -> ProbeRecord | None:
        for record in itertools.chain(reversed(self.recent), reversed(self.failures)):
            if record.id == probe_id:
                return record
        return None


def log_text(record: ProbeRecord) -> str:
    return (f"probe {record.id} of {record.target} ({record.server}), module "
            f"{record.module}, at {_when(record.at)}: "
            f"{'success' if record.success else 'failure: ' + ', '.join(record.failing)}\n\n"
            f"{record.log}")


def page(history: History, fleet: Fleet) -> str:
    e = html.escape
    targets = "".join(
        f'<li><a href="/probe?target={_query(t.name)}">{e(t.name)}</a> '
        f"({e(t.server.url)}, module {e(t.module)}) "
        f'<a href="/probe?target={_query(t.name)}&amp;debug=true">debug</a></li>'
        for t in fleet.targets)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>iceprobe exporter</title></head>
<body>
<h1>iceprobe exporter</h1>
<p><a href="/metrics">Metrics</a> · <a href="/-/healthy">Health</a> · fleet file
{e(fleet.path)}</p>
<h2>Targets</h2>
<ul>{targets or "<li>none</li>"}</ul>
<h2>Recent failures</h2>
{_table(history.failures)}
<h2>Recent probes</h2>
{_table(history.recent)}
</body></html>
"""


def _table(records: collections.deque[ProbeRecord]) -> str:
    if not records:
        return "<p>None yet.</p>"
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(_when(r.at))}</td><td>{e(r.target)}</td><td>{e(r.module)}</td>"
        f"<td>{'success' if r.success else 'failure'}</td>"
        f"<td>{e(', '.join(r.failing))}</td>"
        f'<td><a href="/logs?id={e(r.id)}">log</a></td></tr>'
        for r in reversed(records))
    return ("<table><thead><tr><th>time (UTC)</th><th>target</th><th>module</th>"
            "<th>result</th><th>failing verdicts</th><th>log</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds")


def _query(value: str) -> str:
    from urllib.parse import quote

    return html.escape(quote(value, safe=""))
