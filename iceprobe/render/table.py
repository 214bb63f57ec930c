"""The human report: servers, candidates, error events and verdicts, laid out to the
terminal's width (iceprobe.render.layout) so that no address, port, URL or id is split.

The headline is the report's outcome and each server's status is `Report.status_of`: this
module shows them and never works them out itself.
"""

from __future__ import annotations

from collections import Counter

from rich.console import Console, RenderableType
from rich.text import Text

from ..constants import Status
from ..matrix import Cell, cells
from ..model import Candidate, PlaneMeasurement, ProbeResult, Recording, RelayCheck, Severity
from ..numbers import describe_ms, plural
from ..rules.relay_plane import describe_rate
from .events import endpoint, errors_section
from .layout import Column, fields, fitting_columns, pack, section
from .report import Report
from .verdicts import SEVERITY_STYLE, is_cause, verdict_groups, verdicts_block

HEADLINE_STYLE = {
    Status.PASS: "bold green",
    Status.FAIL: "bold red",
    Status.INCONCLUSIVE: "bold yellow",
    Status.INTERRUPTED: "bold yellow",
}


def render_table(report: Report, console: Console, *, quiet: bool = False,
                 verbose: bool = False) -> None:
    """Print the report. `quiet`: only the causes and the summary line; `verbose`: every
    error event, and the URLs of every group of verdicts."""
    groups = verdict_groups(report.verdicts)
    if quiet:
        causes = [g for g in groups if is_cause(g)]
        if causes:
            console.print(verdicts_block(console, causes, verbose=verbose, brief=True))
        console.print(summary_line(report, console.width))
        return
    gathered = report.gather
    if report.source is not None:
        console.print(_source_header(report))
        console.print()
    if report.matrix:
        _heading(console, "Transport matrix (TURN)")
        console.print(_matrix_section(console, gathered.results))
        console.print()
    elif gathered.results:
        _heading(console, "Servers")
        console.print(_servers_section(console, report))
        credentials = credentials_line(report, console.width)
        if credentials is not None:
            console.print(credentials)
        console.print()
    _heading(console, "Candidates")
    if gathered.candidates:
        console.print(_candidates_section(console, gathered.candidates))
    else:
        console.print(Text("none", style="dim"))
    console.print()
    if gathered.errors:
        _heading(console, "Error events")
        console.print(errors_section(console, gathered.errors,
                                     browser=report.predicts_browser, verbose=verbose))
        console.print()
    elif report.recording is not None and not report.recording.errors_recorded:
        console.print(Text("Error events: not recorded (unknown, not none)", style="dim"))
        console.print()
    if report.recording is not None and report.recording.states:
        _heading(console, "Timeline")
        console.print(_timeline_section(console, report.recording))
        console.print()
    for check in report.relays:
        engine = " (TURN data plane)" if check.engine == "turn" else (
            " (WebRTC)" if any(c.engine == "turn" for c in report.relays) else "")
        _heading(console, f"Relay data path{engine}: {check.server.url}")
        console.print(fields(console, _relay_rows(check)))
        console.print()
    relay_errors = tuple(e for c in report.relays for e in c.errors)
    if relay_errors:
        _heading(console, "Relay error events")
        console.print(errors_section(console, relay_errors, browser=False, verbose=verbose))
        console.print()
    if groups:
        _heading(console, "Verdicts")
        console.print(verdicts_block(console, groups, verbose=verbose))
        console.print()
    console.print(summary_line(report, console.width))


def _heading(console: Console, title: str) -> None:
    console.print(Text(title, style="bold"))


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


_STATUS_STYLE = {"ok": "green", "failed": "bold red", "interrupted": "bold yellow",
                 "not-probed": "bold red", "unconfirmed": "yellow", "not-recorded": "dim"}

SERVER_COLUMNS = (
    Column("URL"),
    Column("transport", drop=2),
    Column("status"),
    Column("candidates", justify="right", drop=3, unit="candidate"),
    Column("errors", justify="right", drop=3, unit="error event"),
    Column("time", justify="right", drop=4),
)


def _servers_section(console: Console, report: Report) -> RenderableType:
    rows = []
    for result in report.gather.results:
        state = report.status_of(result)
        url = Text(result.server.url)
        if result.implied_by:
            url.append(" (TURN as STUN)", style="dim")
        rows.append((url, result.server.transport.value,
                     Text(state.replace("-", " "), style=_STATUS_STYLE[state]),
                     str(len(result.candidates)), str(len(result.errors)),
                     _ms(result.duration_ms)))
    return section(console, SERVER_COLUMNS, rows)


def credentials_line(report: Report, width: int) -> Text | None:
    """The TURN username the run used and the realm each TURN server announced: what a 401
    needs checked. Not secret (the password never reaches a report)."""
    username = report.gather.username
    realms = {r.server.url: r.realm for r in report.gather.results if r.realm is not None}
    if username is None and not realms:
        return None
    parts: list[Text | str] = []
    if username is not None:
        parts.append(Text.assemble(("TURN username ", "dim"), username))
    if len(set(realms.values())) == 1:
        parts.append(Text.assemble(("realm ", "dim"), next(iter(realms.values()))))
    else:
        parts.extend(Text.assemble(("realm ", "dim"), realm, (f" ({url})", "dim"))
                     for url, realm in realms.items())
    return pack(parts, width)


def _matrix_section(console: Console, results: tuple[ProbeResult, ...]) -> RenderableType:
    grid = cells(results)
    ports = list(dict.fromkeys(c.port for c in grid))
    by_row: dict[tuple[str, str], dict[int, Cell]] = {}
    for cell in grid:
        by_row.setdefault((cell.host, cell.transport.value), {})[cell.port] = cell
    columns = [Column("host / transport"),
               *(Column(str(port), prose=True, label=f"{port}:") for port in ports)]
    rows = []
    for (host, transport), by_port in by_row.items():
        row: list[Text | str] = [Text(f"{host} {transport}")]
        for port in ports:
            found = by_port.get(port)
            row.append(Text("-") if found is None else Text(
                f"{found.summary} ({describe_ms(found.duration_ms)})",
                style="green" if found.ok else "red"))
        rows.append(row)
    return section(console, columns, rows)


CANDIDATE_COLUMNS = (
    Column("type"),
    Column("protocol"),
    Column("address"),
    Column("port", justify="right"),
    Column("related", drop=3, label="from"),
    Column("URL", label="via"),
    Column("time", justify="right", drop=4, label="after"),
)


def _candidates_section(console: Console, candidates: tuple[Candidate, ...]) -> RenderableType:
    rows = []
    for c in candidates:
        # A relay's relayProtocol: the transport to the TURN server ("udp via tcp").
        protocol = f"{c.protocol} via {c.relay_protocol}" if c.relay_protocol else c.protocol
        rows.append((c.type.value, protocol, Text(c.address), str(c.port),
                     Text(endpoint(c.related_address, c.related_port)), Text(c.url or "-"),
                     _ms(c.elapsed_ms)))
    if fitting_columns(CANDIDATE_COLUMNS, rows, console.width) is not None:
        return section(console, CANDIDATE_COLUMNS, rows)
    # Stacked: the candidate itself (type, protocol, address:port) leads its record.
    stacked_rows = [(Text(f"{row[0]} {row[1]} {endpoint(c.address, c.port)}"),
                     *row[4:]) for row, c in zip(rows, candidates, strict=True)]
    return section(console, (Column("candidate"), *CANDIDATE_COLUMNS[4:]), stacked_rows)


_STATE_OF = {"ice": "iceConnectionState", "connection": "connectionState",
             "gathering": "iceGatheringState"}


def _timeline_section(console: Console, recording: Recording) -> RenderableType:
    columns = (Column("time", justify="right"), Column("state of"), Column("became"))
    rows = [(_ms(change.elapsed_ms), _STATE_OF.get(change.kind, change.kind),
             Text(change.state, style="bold red" if change.state == "failed" else ""))
            for change in recording.states]
    return section(console, columns, rows)


def _relay_rows(check: RelayCheck) -> list[tuple[str, Text | str]]:
    rows: list[tuple[str, Text | str]] = []
    if not check.attempted:
        # The failure says why it was not tried ("not tried: the allocation failed ...").
        rows.append(("result", Text(check.failure or "not checked", style="dim")))
        return rows
    if check.ok:
        rows.append(("result", Text("data flows", style="bold green")))
    elif check.interrupted:  # the failure says so, and at which step
        rows.append(("result", Text(check.failure or "interrupted", style="bold yellow")))
    else:
        step = check.failed_step.value if check.failed_step else "?"
        rows.append(("result", Text(f"broken at {step}: {check.failure}", style="bold red")))
    pair = check.pair
    if pair is not None:
        rows.append(("selected pair", Text(
            f"{endpoint(pair.local, pair.local_port)} ⇄ "
            f"{endpoint(pair.remote, pair.remote_port)} (relay protocol "
            f"{pair.relay_protocol.value})")))
    if check.plane is not None:
        return rows + plane_rows(check.plane) + [("took", _ms(check.duration_ms))]
    if check.engine == "turn":  # the data plane's set-up failed: no ICE, DTLS or SCTP
        return [*rows, ("took", _ms(check.duration_ms))]
    rows.append(("connected", f"ICE {_ms(check.ice_connected_ms)} · DTLS "
                              f"{_ms(check.dtls_connected_ms)} · channel open "
                              f"{_ms(check.channel_open_ms)}"))
    if check.ice_note:
        rows.append(("ICE note", check.ice_note))
    if check.sent:
        loss = check.loss or 0.0
        rows.append(("echo", Text(f"{check.received}/{check.sent} back ({loss:.0%} lost)",
                                  style="red" if loss else "")))
    if check.rtt is not None:
        rtt = check.rtt
        rows.append(("round trip", f"min {describe_ms(rtt.min)} · median "
                                   f"{describe_ms(rtt.median)} · p95 {describe_ms(rtt.p95)}"
                                   f" · max {describe_ms(rtt.max)}"))
    if check.throughput_up_bps or check.throughput_down_bps:
        rows.append(("throughput", f"{_rate(check.throughput_up_bps)} offerer → answerer · "
                                   f"{_rate(check.throughput_down_bps)} back (aiortc's limit "
                                   "on this machine, not the server's)"))
    rows.append(("took", _ms(check.duration_ms)))
    return rows


def plane_rows(plane: PlaneMeasurement) -> list[tuple[str, Text | str]]:
    """The TURN data plane's figures: the steady phase, then the sweep's."""
    crossing = ("relay ⇄ relay, 4 server crossings per round trip" if plane.crossings == 4
                else "relay ⇄ peer socket, 2 server crossings per round trip")
    rows: list[tuple[str, Text | str]] = [
        ("path", f"{crossing} · {plural(plane.flows, 'flow')}")]
    loss = plane.loss or 0.0
    rows.append(("steady", Text(
        f"{plane.received}/{plane.sent} back at {plane.rate_pps:g} pps per flow, "
        f"{plane.payload_bytes} B ({loss:.1%} lost · {plane.reordered} reordered · "
        f"{plane.duplicates} duplicated)", style="red" if loss else "")))
    if plane.rtt_us is not None:
        rtt = plane.rtt_us
        rows.append(("round trip", f"min {rtt.min:,.0f} µs · median {rtt.median:,.0f} µs · "
                                   f"p95 {rtt.p95:,.0f} µs · p99 {rtt.p99:,.0f} µs · max "
                                   f"{rtt.max:,.0f} µs"))
    if plane.jitter_us is not None:
        rows.append(("jitter", f"{plane.jitter_us:,.0f} µs (RFC 3550)"))
    for step in plane.sweep:
        rows.append((f"sweep {step.payload_bytes} B", Text(
            f"{step.offered_pps:,.0f} pps offered → {step.delivered_pps:,.0f} delivered "
            f"({step.mbit_s:.1f} Mbit/s, {step.loss:.1%} lost"
            + (", client-bound" if step.client_bound else "") + ")",
            style="red" if step.loss > 0.01 else "")))
    if plane.sweep:
        knee = ("none reached" if plane.knee_pps is None else
                f"{plane.knee_pps:,.0f} pps at {plane.knee_payload_bytes} B")
        rows.append(("knee (loss > 1 %)", knee))
    rows.append(("client CPU", Text(f"{plane.client_cpu:.2f} s per s"
                                    + (" · client-bound" if plane.client_bound else ""),
                                    style="yellow" if plane.client_bound else "")))
    return rows


def _ms(value: float | None) -> str:
    return "-" if value is None else describe_ms(value)


def _rate(bps: float | None) -> str:
    return describe_rate(bps) if bps else "-"


def summary_line(report: Report, width: int = 10_000) -> Text:
    """The headline (the report's outcome) and what it rests on, broken only between parts."""
    gathered = report.gather
    counts = Counter(c.type.value for c in gathered.candidates)
    kinds = ", ".join(f"{counts[k]} {k}" for k in ("host", "srflx", "relay") if counts[k])
    working = sum(1 for r in gathered.results if report.status_of(r) == "ok")
    groups = verdict_groups(report.verdicts)
    fails = sum(1 for g in groups if g.first.severity is Severity.FAIL)
    status = report.outcome.status
    headline = Text(status.value.upper(), style=HEADLINE_STYLE[status])
    if status is Status.INTERRUPTED:
        headline.append(" (results so far)")
    parts: list[Text | str] = [
        f"{plural(len(gathered.candidates), 'candidate')} ({kinds or 'none'})",
    ]
    if gathered.results:
        parts.append(f"{working} of {plural(len(gathered.results), 'server')} ok")
    if report.recording is not None and not report.recording.errors_recorded:
        parts.append("error events not recorded")
    else:
        parts.append(plural(len(gathered.errors), "error event"))
    if report.relays:
        flowing = sum(1 for c in report.relays if c.ok)
        paths = len(report.relays)
        parts.append(f"{flowing} of {plural(paths, 'relay path')} "
                     f"{'carries' if paths == 1 else 'carry'} data")
    if fails:
        parts.append(Text(plural(fails, "failing verdict"),
                          style=SEVERITY_STYLE[Severity.FAIL]))
    if report.duration_ms is not None:
        parts.append(describe_ms(report.duration_ms))
    return pack(parts, width, lead=headline)
