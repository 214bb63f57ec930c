"""The human report: servers, candidates, error events and verdicts as rich tables."""

from __future__ import annotations

from collections import Counter

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..browser import chrome_view
from ..constants import Status
from ..matrix import Cell, cells
from ..model import (
    Candidate,
    ErrorEvent,
    ProbeResult,
    Recording,
    RelayCheck,
    Severity,
    Verdict,
)
from ..rules.relay import describe_rate
from .report import Report

HEADLINE_STYLE = {
    Status.PASS: "bold green",
    Status.FAIL: "bold red",
    Status.INCONCLUSIVE: "bold yellow",
    Status.INTERRUPTED: "bold yellow",
}
SEVERITY_STYLE = {
    Severity.OK: "bold green",
    Severity.INFO: "cyan",
    Severity.WARN: "bold yellow",
    Severity.FAIL: "bold red",
}


def render_table(report: Report, console: Console) -> None:
    gathered = report.gather
    if report.source is not None:
        console.print(_source_header(report))
    if report.matrix:
        console.print(_matrix_table(gathered.results))
    elif gathered.results:
        console.print(_servers_table(report))
    console.print(_candidates_table(gathered.candidates))
    if gathered.errors:
        console.print(_errors_table(gathered.errors, browser=report.predicts_browser))
    elif report.recording is not None and not report.recording.errors_recorded:
        console.print(Text("Error events: not recorded (unknown, not none)",
                           style="dim"))
    if report.recording is not None and report.recording.states:
        console.print(_timeline_table(report.recording))
    for check in report.relays:
        console.print(_relay_table(check))
    if report.relays:
        relay_errors = tuple(e for c in report.relays for e in c.errors)
        if relay_errors:
            console.print(_errors_table(relay_errors, "Relay error events"))
    if report.verdicts:
        console.print(_verdicts_table(report.verdicts))
    console.print(summary_line(report))


def _source_header(report: Report) -> Text:
    source = report.source
    assert source is not None
    text = Text()
    text.append(f"PeerConnection {source.session}", style="bold")
    text.append(f"  {source.format} · {source.file}", style="dim")
    if source.page_url:
        text.append(f"\npage: {source.page_url}")
    if source.browser:
        text.append(f"\nbrowser: {source.browser}")
    if report.recording is not None and report.recording.ice_transport_policy:
        text.append(f"\niceTransportPolicy: {report.recording.ice_transport_policy}")
    return text


def _timeline_table(recording: Recording) -> Table:
    table = _table("Timeline")
    table.add_column("time", justify="right")
    table.add_column("state")
    for change in recording.states:
        table.add_row(_ms(change.elapsed_ms),
                      Text(f"{change.kind} {change.state}",
                           style="bold red" if change.state == "failed" else ""))
    return table


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                 pad_edge=False, expand=False)


def _endpoint(address: str | None, port: int | None) -> str:
    if address is None:
        return "-"
    shown = f"[{address}]" if ":" in address and port is not None else address
    return f"{shown}:{port}" if port is not None else shown


_STATUS_STYLE = {"ok": "green", "failed": "bold red", "interrupted": "bold yellow",
                 "not-probed": "bold red", "unconfirmed": "yellow", "not-recorded": "dim"}


def _servers_table(report: Report) -> Table:
    table = _table("Servers")
    for name, justify in (("URL", "left"), ("transport", "left"), ("status", "left"),
                          ("candidates", "right"), ("errors", "right"), ("time", "right")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for result in report.gather.results:
        state = report.status_of(result)
        shown = Text(state.replace("-", " "), style=_STATUS_STYLE[state])
        url = Text(result.server.url)
        if result.implied_by:
            url.append(" (TURN as STUN)", style="dim")
        table.add_row(url, result.server.transport.value, shown,
                      str(len(result.candidates)), str(len(result.errors)),
                      _ms(result.duration_ms))
    return table


def _matrix_table(results: tuple[ProbeResult, ...]) -> Table:
    grid = cells(results)
    ports = list(dict.fromkeys(c.port for c in grid))
    table = _table("Transport matrix (TURN)")
    table.add_column("host / transport")
    for port in ports:
        table.add_column(str(port), overflow="fold")
    rows: dict[tuple[str, str], dict[int, Cell]] = {}
    for cell in grid:
        rows.setdefault((cell.host, cell.transport.value), {})[cell.port] = cell
    for (host, transport), by_port in rows.items():
        table.add_row(Text(f"{host} {transport}"), *(
            Text(f"{by_port[p].summary} ({by_port[p].duration_ms:.0f} ms)",
                 style="green" if by_port[p].ok else "red") if p in by_port else Text("-")
            for p in ports))
    return table


def _candidates_table(candidates: tuple[Candidate, ...]) -> Table:
    table = _table("Candidates")
    for name in ("type", "protocol", "address", "port", "related", "URL", "ms"):
        table.add_column(name, justify="right" if name in ("port", "ms") else "left",
                         overflow="fold")
    for c in candidates:
        # A relay's relayProtocol: the transport to the TURN server ("udp via tcp").
        protocol = f"{c.protocol} via {c.relay_protocol}" if c.relay_protocol else c.protocol
        table.add_row(c.type.value, protocol, Text(c.address), str(c.port),
                      Text(_endpoint(c.related_address, c.related_port)), Text(c.url or "-"),
                      "?" if c.elapsed_ms is None else f"{c.elapsed_ms:.0f}")
    return table


def _relay_table(check: RelayCheck) -> Table:
    table = _table(f"Relay data path: {check.server.url}")
    table.add_column("step")
    table.add_column("result", overflow="fold")
    if not check.attempted:
        table.add_row("result", Text(f"not checked: {check.failure}", style="dim"))
        return table
    if check.ok:
        table.add_row("result", Text("data flows", style="bold green"))
    else:
        step = check.failed_step.value if check.failed_step else "?"
        table.add_row("result", Text(f"broken at {step}: {check.failure}", style="bold red"))
    pair = check.pair
    if pair is not None:
        table.add_row("selected pair", Text(
            f"{_endpoint(pair.local, pair.local_port)} ⇄ {_endpoint(pair.remote, pair.remote_port)}"
            f"  (relay protocol {pair.relay_protocol.value})"))
    table.add_row("connected", f"ICE {_ms(check.ice_connected_ms)} · DTLS "
                               f"{_ms(check.dtls_connected_ms)} · channel open "
                               f"{_ms(check.channel_open_ms)}")
    if check.sent:
        loss = check.loss or 0.0
        table.add_row("echo", Text(f"{check.received}/{check.sent} back ({loss:.0%} lost)",
                                   style="red" if loss else ""))
    if check.rtt is not None:
        rtt = check.rtt
        table.add_row("round trip", f"min {rtt.min:.1f} · median {rtt.median:.1f} · p95 "
                                    f"{rtt.p95:.1f} · max {rtt.max:.1f} ms")
    if check.throughput_up_bps or check.throughput_down_bps:
        table.add_row("throughput", f"{_rate(check.throughput_up_bps)} offerer → answerer · "
                                    f"{_rate(check.throughput_down_bps)} back")
    table.add_row("took", _ms(check.duration_ms))
    return table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _rate(bps: float | None) -> str:
    return describe_rate(bps) if bps else "-"


def _errors_table(errors: tuple[ErrorEvent, ...], title: str = "Error events",
                  browser: bool = False) -> Table:
    table = _table(title)
    table.add_column("URL", no_wrap=True)
    table.add_column("event", overflow="fold")
    for e in errors:
        body = Text()
        body.append(f"{e.error_code} {e.cause.value}", style="bold red")
        body.append(f"  {_endpoint(e.address, e.port)} → "
                    f"{_endpoint(e.server_address, e.server_port)}", style="dim")
        body.append(f"\n{e.error_text}")
        view = chrome_view(e) if browser else None
        if view is not None:
            body.append(f"\nChrome: {view.error_code} {view.error_text} after "
                        f"{_seconds(view.after_ms)}", style="dim")
        table.add_row(Text(e.url), body)
    return table


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


def _verdicts_table(verdicts: tuple[Verdict, ...]) -> Table:
    table = _table("Verdicts")  # verdict text is built from Text parts: never markup
    table.add_column("severity")
    table.add_column("verdict", overflow="fold")
    for v in verdicts:
        body = Text()
        body.append(v.title, style="bold")
        body.append(f"  [{v.id}]", style="dim")
        if v.detail:
            body.append(f"\n{v.detail}")
        if v.hint:
            body.append(f"\n→ {v.hint}", style="italic")
        table.add_row(Text(v.severity.value.upper(), style=SEVERITY_STYLE[v.severity]), body)
    return table


def summary_line(report: Report) -> Text:
    gathered = report.gather
    counts = Counter(c.type.value for c in gathered.candidates)
    kinds = ", ".join(f"{counts[k]} {k}" for k in ("host", "srflx", "relay") if counts[k])
    working = sum(1 for r in gathered.results if r.ok)
    fails = sum(1 for v in report.verdicts if v.severity is Severity.FAIL)
    status = report.outcome.status
    text = Text(status.value.upper(), style=HEADLINE_STYLE[status])
    if status is Status.INTERRUPTED:
        text.append(" (results so far)")
    parts = [f"{len(gathered.candidates)} candidates ({kinds or 'none'})",
             f"{working}/{len(gathered.results)} servers ok",
             f"{len(gathered.errors)} error events"]
    if report.relays:
        flowing = sum(1 for c in report.relays if c.ok)
        parts.append(f"{flowing}/{len(report.relays)} relay paths carry data")
    if fails:
        parts.append(f"{fails} failing verdicts")
    if gathered.duration_ms is not None:
        took = gathered.duration_ms + sum(c.duration_ms for c in report.relays)
        parts.append(f"{took / 1000:.2f} s")
    text.append("  " + " · ".join(parts))
    return text
