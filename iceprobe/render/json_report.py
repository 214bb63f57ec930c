"""The JSON report (schema_version 2, documented in docs/json.md and the JSON Schemas in
iceprobe/schemas)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from .. import __version__
from ..browser import chrome_view
from ..matrix import Cell, cells
from ..model import Candidate, ErrorEvent, ProbeResult, RelayCheck, TurnExchange, Verdict
from ..status import combined
from .report import Report

SCHEMA_VERSION = 2


def report_document(report: Report) -> dict[str, Any]:
    gathered = report.gather
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "iceprobe", "version": __version__},
        "started_at": gathered.started_at,
        "duration_ms": report.duration_ms,
        "status": report.outcome.status.value,
        "ok": report.ok,
        "interrupted": report.interrupted,
        "require": report.require.value,
        "username": gathered.username,
        "servers": [_server(r, report.status_of(r)) for r in gathered.results],
        "candidates": [_candidate(c) for c in gathered.candidates],
        "errors": [_error(e, report.predicts_browser) for e in gathered.errors],
        "verdicts": [_verdict(v) for v in report.verdicts],
        **({"matrix": [_cell(c) for c in cells(gathered.results)]}
           if report.matrix else {}),
        **({"relay": [_relay(c) for c in report.relays]} if report.relays else {}),
        **({"source": _source(report)} if report.source is not None else {}),
    }


def _source(report: Report) -> dict[str, Any]:
    source, recording = report.source, report.recording
    assert source is not None
    document: dict[str, Any] = {
        "file": source.file, "format": source.format, "session": source.session,
        "page_url": source.page_url, "browser": source.browser}
    if recording is not None:
        document.update({
            "ice_transport_policy": recording.ice_transport_policy,
            "configuration_known": recording.configuration_known,
            "errors_recorded": recording.errors_recorded,
            "events": recording.events,
            "time_resolution_ms": recording.time_resolution_ms,
            "states": [{"kind": s.kind, "state": s.state, "elapsed_ms": s.elapsed_ms}
                       for s in recording.states]})
    return document


def analysis_document(reports: list[Report],
                      unreadable: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """`analyze --json`: one document for every PeerConnection of every input, and each
    input that could not be read (file, error); any of those makes `ok` false."""
    sessions = []
    for report in reports:
        document = report_document(report)
        for key in ("schema_version", "tool"):
            document.pop(key)
        sessions.append(document)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "iceprobe", "version": __version__},
        "status": combined(r.outcome for r in reports).status.value,
        "ok": combined(r.outcome for r in reports).ok and not unreadable,
        "sessions": sessions,
        "unreadable": [{"file": file, "error": error} for file, error in unreadable],
    }


def _relay(check: RelayCheck) -> dict[str, Any]:
    pair = check.pair
    rtt = check.rtt
    return {
        "url": check.server.url,
        "attempted": check.attempted,
        "ok": check.ok,
        "failed_step": check.failed_step.value if check.failed_step else None,
        "failure": check.failure,
        "ice_connected_ms": check.ice_connected_ms,
        "dtls_connected_ms": check.dtls_connected_ms,
        "channel_open_ms": check.channel_open_ms,
        "ice_check_retransmissions": check.ice_check_retransmissions,
        "ice_note": check.ice_note,
        "interrupted": check.interrupted,
        "pair": None if pair is None else {
            "local_address": pair.local, "local_port": pair.local_port,
            "remote_address": pair.remote, "remote_port": pair.remote_port,
            "relay_protocol": pair.relay_protocol.value},
        "echo": {
            "sent": check.sent, "received": check.received, "loss": check.loss,
            "rtt_ms": None if rtt is None else {
                "min": rtt.min, "median": rtt.median, "p95": rtt.p95, "max": rtt.max}},
        "throughput_bps": {"up": check.throughput_up_bps, "down": check.throughput_down_bps},
        "duration_ms": check.duration_ms,
        "errors": [_error(e) for e in check.errors],
        "turn_requests": [_turn_request(t) for t in check.turn_requests],
        "channel_data": {"sent": check.channel_data_sent,
                         "received": check.channel_data_received},
        **_engine(check),
    }


def _engine(check: RelayCheck) -> dict[str, Any]:
    """The keys that say which engine measured and, for iceprobe's own data plane, what
    it measured; the WebRTC check's throughput is marked as the client's limit."""
    plane = check.plane
    if plane is None:
        return {"engine": check.engine, "topology": None, "crossings": None, "flows": 1,
                "rate_pps": None, "payload_bytes": None, "rtt_us": None, "jitter_us": None,
                "loss": check.loss, "reordered": None, "duplicates": None,
                "client_cpu": None,
                "client_bound": bool(check.throughput_up_bps or check.throughput_down_bps),
                "clock_resolution_us": None, "sweep": [], "knee_pps": None,
                "knee_payload_bytes": None}
    rtt = plane.rtt_us
    return {
        "engine": check.engine, "topology": plane.topology, "crossings": plane.crossings,
        "flows": plane.flows, "rate_pps": plane.rate_pps, "payload_bytes": plane.payload_bytes,
        "rtt_us": None if rtt is None else {"min": rtt.min, "median": rtt.median,
                                            "p95": rtt.p95, "p99": rtt.p99, "max": rtt.max},
        "jitter_us": plane.jitter_us, "loss": plane.loss, "reordered": plane.reordered,
        "duplicates": plane.duplicates, "client_cpu": plane.client_cpu,
        "client_bound": plane.client_bound, "clock_resolution_us": plane.clock_resolution_us,
        "sweep": [{"payload_bytes": s.payload_bytes, "offered_pps": s.offered_pps,
                   "sent_pps": s.sent_pps, "delivered_pps": s.delivered_pps,
                   "mbit_s": s.mbit_s, "loss": s.loss, "client_bound": s.client_bound}
                  for s in plane.sweep],
        "knee_pps": plane.knee_pps, "knee_payload_bytes": plane.knee_payload_bytes,
    }


def _turn_request(exchange: TurnExchange) -> dict[str, Any]:
    return {"peer": exchange.peer, "request": exchange.request,
            "elapsed_ms": exchange.elapsed_ms, "sends": exchange.sends,
            "answers": exchange.answers, "outcome": exchange.outcome,
            "error_code": exchange.error_code, "reason": exchange.reason,
            "problem": exchange.problem, "rtt_ms": exchange.rtt_ms}


def _cell(cell: Cell) -> dict[str, Any]:
    return {"host": cell.host, "transport": cell.transport.value, "port": cell.port,
            "ok": cell.ok, "result": cell.summary, "duration_ms": cell.duration_ms}


def render_json(report: Report, file: TextIO) -> None:
    """Write the document alone, so that stdout parses as JSON."""
    file.write(json.dumps(report_document(report), indent=2) + "\n")
    file.flush()


def _server(result: ProbeResult, status: str) -> dict[str, Any]:
    spec = result.server
    return {
        "url": spec.url,
        "scheme": spec.scheme.value,
        "host": spec.host,
        "port": spec.port,
        "transport": spec.transport.value,
        "addresses": list(result.addresses),
        "status": status,
        "unfinished": result.unfinished,
        "implied_by": result.implied_by,
        "duration_ms": result.duration_ms,
        "realm": result.realm,
        "first_sent_ms": result.first_sent_ms,
        "software": result.software,
        "unauthenticated_allocation": result.unauthenticated_allocation,
    }


def _candidate(candidate: Candidate) -> dict[str, Any]:
    return {
        "type": candidate.type.value,
        "protocol": candidate.protocol,
        "address": candidate.address,
        "port": candidate.port,
        "related_address": candidate.related_address,
        "related_port": candidate.related_port,
        "url": candidate.url,
        "relay_protocol": candidate.relay_protocol,
        "tcp_type": candidate.tcp_type,
        "foundation": candidate.foundation,
        "priority": candidate.priority,
        "elapsed_ms": candidate.elapsed_ms,
    }


def _browser(event: ErrorEvent) -> dict[str, Any] | None:
    view = chrome_view(event)
    if view is None:
        return None
    return {"error_code": view.error_code, "error_text": view.error_text,
            "after_ms": round(view.after_ms, 1), "address_null": view.address_null}


def _error(event: ErrorEvent, browser: bool = False) -> dict[str, Any]:
    return {
        "url": event.url,
        "address": event.address,
        "port": event.port,
        "server_address": event.server_address,
        "server_port": event.server_port,
        "error_code": event.error_code,
        "error_text": event.error_text,
        "cause": event.cause.value,
        "problem": event.problem,
        "elapsed_ms": event.elapsed_ms,
        # Only for an Allocate that asked for a family (--relay-family ipv6|both).
        "requested_family": event.requested_family,
        "after_challenge": event.after_challenge,
        **({"browser": _browser(event)} if browser else {}),
    }


def _verdict(verdict: Verdict) -> dict[str, Any]:
    return {
        "id": verdict.id,
        "severity": verdict.severity.value,
        "title": verdict.title,
        "detail": verdict.detail,
        "hint": verdict.hint,
        "urls": list(verdict.urls),
        "role": verdict.role.value,
        "key": verdict.key,
        "caused_by": list(verdict.caused_by),
        "group": verdict.group,
        "ignored": verdict.ignored,
        "confidence": verdict.confidence.value,
    }
