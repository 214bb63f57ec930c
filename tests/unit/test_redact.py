"""--redact: no address (or, with hostnames, no name) survives, and placeholders are stable."""

from __future__ import annotations

import io

from rich.console import Console

from iceprobe.model import (
    Candidate,
    CandidateType,
    Cause,
    ErrorEvent,
    GatherReport,
    ProbeResult,
    Requirement,
    Severity,
    Verdict,
)
from iceprobe.redact import redact
from iceprobe.render import Report
from iceprobe.render.json_report import render_json
from iceprobe.render.table import render_table
from iceprobe.urls import parse_server_url
from tests.schema import validated

HOST4, HOST6, MAPPED, RELAY, SERVER = ("192.168.7.20", "2001:db8:7::20", "45.10.20.30",
                                       "45.10.20.99", "45.10.20.99")
NAME = "turn.customer.example"


def report() -> Report:
    stun = parse_server_url(f"stun:{NAME}:3478")
    turn = parse_server_url(f"turn:{SERVER}:3478")
    hosts = (Candidate(CandidateType.HOST, "udp", HOST4, 5000, "1", 1, 0.1),
             Candidate(CandidateType.HOST, "udp", HOST6, 5001, "1", 1, 0.1))
    srflx = Candidate(CandidateType.SRFLX, "udp", MAPPED, 6000, "2", 2, 9.0, HOST4, 5000,
                      stun.url)
    relay = Candidate(CandidateType.RELAY, "udp", RELAY, 50000, "3", 3, 9.0, MAPPED, 6001,
                      turn.url)
    event = ErrorEvent(stun.url, HOST6, 5002, "2001:db8:9::1", 3478, 701,
                       "[2001:db8:9::1]:3478 is unreachable: ICMP port unreachable",
                       Cause.UNREACHABLE, 3.0)
    results = (ProbeResult(stun, (srflx,), (event,), 9.0, ("2001:db8:9::1", "45.10.20.40")),
               ProbeResult(turn, (relay,), (), 9.0, (SERVER,)))
    verdict = Verdict("server-unreachable", Severity.INFO, f"Harmless 701 from {stun.url}",
                      f"701 from {HOST6}: [2001:db8:9::1]:3478 is unreachable; srflx from "
                      f"{HOST4}.", "", (stun.url,))
    return Report(GatherReport("2026-11-28T00:00:00+00:00", 10.0, hosts, results), (verdict,),
                  Requirement.EACH)


def outputs(r: Report) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, color_system=None, force_terminal=False)
    render_table(r, console)
    render_json(r, buffer)
    return buffer.getvalue()


def test_redact_removes_every_address_from_table_and_json() -> None:
    text = outputs(redact(report()))
    for address in (HOST4, HOST6, MAPPED, RELAY, "2001:db8:9::1", "45.10.20.40"):
        assert address not in text, address
    assert NAME in text  # names stay unless asked
    for placeholder in ("host-1", "host-2", "srflx-1", "server-1"):
        assert placeholder in text


def test_placeholders_are_stable_across_fields() -> None:
    redacted = redact(report())
    hosts = {c.address for c in redacted.gather.host_candidates}
    [srflx] = redacted.gather.results[0].candidates
    assert srflx.related_address in hosts  # the srflx still points at its host candidate
    [relay] = redacted.gather.results[1].candidates
    assert relay.related_address == srflx.address
    document = io.StringIO()
    render_json(redacted, document)
    turn = validated(document.getvalue(), "gather")["servers"][1]
    assert turn["host"].startswith("server-") and turn["addresses"] == [turn["host"]]
    assert redacted.gather.results[1].server.url == f"turn:{turn['host']}:3478"


def test_redact_all_hides_host_names_too() -> None:
    text = outputs(redact(report(), hostnames=True))
    assert NAME not in text
    assert "name-1" in text
