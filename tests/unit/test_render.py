"""The renderers: a plain-text table for people and a JSON document for programs, both from a
hand-built Report. No gathering, no network."""

from __future__ import annotations

import io
import re
import signal
from collections.abc import Callable
from typing import Any

import pytest
from rich.console import Console

from iceprobe import __version__
from iceprobe.model import (
    Candidate,
    CandidateType,
    Cause,
    Credentials,
    ErrorEvent,
    GatherReport,
    ProbeResult,
    Requirement,
    Scheme,
    ServerSpec,
    Severity,
    Transport,
    Verdict,
)
from iceprobe.render import OutputFormat, Report, render
from iceprobe.render.json_report import render_json
from iceprobe.render.table import render_table
from tests.schema import validated

STUN_URL = "stun:stun.example.com:3478"
TURN_URL = "turn:turn.example.com:3478?transport=tcp"
LOCAL_V4 = "192.168.1.10"
LOCAL_V6 = "2001:db8::10"
PUBLIC_V4 = "203.0.113.5"
RELAY_V4 = "198.51.100.20"


# --- factories ------------------------------------------------------------------------------

def spec(url: str, scheme: Scheme, host: str, port: int = 3478,
         transport: Transport = Transport.UDP) -> ServerSpec:
    return ServerSpec(url=url, scheme=scheme, host=host, port=port, transport=transport)


def candidate(kind: CandidateType, address: str, port: int, elapsed_ms: float,
              related: tuple[str, int] | None = None, url: str | None = None) -> Candidate:
    return Candidate(type=kind, protocol="udp", address=address, port=port,
                     foundation=f"f-{kind.value}", priority=100, elapsed_ms=elapsed_ms,
                     related_address=related[0] if related else None,
                     related_port=related[1] if related else None, url=url)


HOST_V4 = candidate(CandidateType.HOST, LOCAL_V4, 50000, 0.4)
HOST_V6 = candidate(CandidateType.HOST, LOCAL_V6, 50002, 0.6)
SRFLX = candidate(CandidateType.SRFLX, PUBLIC_V4, 61000, 21.0, (LOCAL_V4, 50000), STUN_URL)
TIMEOUT = ErrorEvent(url=STUN_URL, address=LOCAL_V6, port=50002, server_address="2001:db8::1",
                     server_port=3478, error_code=701,
                     error_text="STUN binding request timed out", cause=Cause.TIMEOUT,
                     elapsed_ms=5000.0)
UNAUTHORIZED = ErrorEvent(url=TURN_URL, address=LOCAL_V4, port=50001,
                          server_address="192.0.2.2", server_port=3478, error_code=401,
                          error_text="Unauthorized", cause=Cause.RESPONSE, elapsed_ms=35.0)

FAIL_VERDICT = Verdict(id="server-error", severity=Severity.FAIL,
                       title=f"{TURN_URL} answered with an error (401 Unauthorized)",
                       detail="Unauthorized (from 192.168.1.10)",
                       hint="Check the username and credential.", urls=(TURN_URL,))
INFO_VERDICT = Verdict(id="server-unreachable", severity=Severity.INFO,
                       title=f"Harmless 701 from {STUN_URL}",
                       detail="This is harmless.", hint="Nothing to fix.", urls=(STUN_URL,))
OK_VERDICT = Verdict(id="all-candidates-gathered", severity=Severity.OK,
                     title="All candidates gathered", detail="Every server yielded its "
                     "candidate (srflx).", hint="", urls=(STUN_URL,))


def failing_report() -> Report:
    """A STUN server that works (with a harmless 701) and a TURN server that rejects."""
    stun = ProbeResult(spec(STUN_URL, Scheme.STUN, "stun.example.com"), (SRFLX,), (TIMEOUT,),
                       5001.0)
    turn = ProbeResult(spec(TURN_URL, Scheme.TURN, "turn.example.com",
                            transport=Transport.TCP), (), (UNAUTHORIZED,), 36.0)
    gathered = GatherReport(started_at="2024-05-01T12:00:00+00:00", duration_ms=5012.0,
                            host_candidates=(HOST_V4, HOST_V6), results=(stun, turn))
    return Report(gathered, (FAIL_VERDICT, INFO_VERDICT), Requirement.EACH)


def passing_report() -> Report:
    stun = ProbeResult(spec(STUN_URL, Scheme.STUN, "stun.example.com"), (SRFLX,), (), 21.0)
    gathered = GatherReport(started_at="2024-05-01T12:00:00+00:00", duration_ms=25.0,
                            host_candidates=(HOST_V4,), results=(stun,))
    return Report(gathered, (OK_VERDICT,), Requirement.ANY)


def plain_console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=120, color_system=None, force_terminal=False), buffer


def table_text(report: Report) -> str:
    console, buffer = plain_console()
    render_table(report, console)
    return buffer.getvalue()


def json_document(report: Report) -> dict[str, Any]:
    buffer = io.StringIO()
    render_json(report, buffer)
    document: dict[str, Any] = validated(buffer.getvalue(), "gather")
    return document


# --- table ----------------------------------------------------------------------------------

def test_table_has_every_section_title() -> None:
    text = table_text(failing_report())
    for title in ("Servers", "Candidates", "Error events", "Verdicts"):
        assert title in text


def test_table_shows_server_urls_transports_and_status() -> None:
    text = table_text(failing_report())
    assert STUN_URL in text
    assert TURN_URL in text
    assert "tcp" in text
    assert "failed" in text


def test_table_shows_each_candidate_address_and_port() -> None:
    text = table_text(failing_report())
    for c in (HOST_V4, HOST_V6, SRFLX):
        assert c.address in text
        assert str(c.port) in text
    assert f"{LOCAL_V4}:50000" in text  # the srflx candidate's related address


def test_table_shows_error_codes_causes_and_texts() -> None:
    text = table_text(failing_report())
    assert "701 timeout" in text
    assert "STUN binding request timed out" in text
    assert "401 response" in text
    assert "Unauthorized" in text
    assert "[2001:db8::10]:50002" in text  # IPv6 endpoints are bracketed
    assert "192.0.2.2:3478" in text


def test_table_shows_verdict_ids_titles_severities_and_hints() -> None:
    text = table_text(failing_report())
    assert "[server-error]" in text
    assert "[server-unreachable]" in text
    assert "FAIL" in text
    assert "INFO" in text
    assert "Check the username and credential." in text


def test_table_summary_starts_with_fail_when_a_verdict_fails() -> None:
    lines = table_text(failing_report()).strip().splitlines()
    summary = lines[-1]
    assert summary.startswith("FAIL")
    assert "3 candidates (2 host, 1 srflx)" in summary
    assert "1 of 2 servers ok" in summary
    assert "2 error events" in summary
    assert "1 failing verdict ·" in summary
    assert "5.01 s" in summary


def test_table_summary_starts_with_pass_when_nothing_fails() -> None:
    text = table_text(passing_report())
    summary = text.strip().splitlines()[-1]
    assert summary.startswith("PASS")
    assert "1 of 1 server ok" in summary
    assert "0 error events" in summary
    assert "failing" not in summary
    assert "[all-candidates-gathered]" in text
    assert "Error events" not in text  # no errors, no errors table


def test_table_without_servers_shows_candidates_and_summary_only() -> None:
    gathered = GatherReport(started_at="2024-05-01T12:00:00+00:00", duration_ms=1.0,
                            host_candidates=(HOST_V4,), results=())
    text = table_text(Report(gathered, (), Requirement.EACH))
    assert "Servers" not in text
    assert "Verdicts" not in text
    assert "Candidates" in text
    assert LOCAL_V4 in text
    assert text.strip().splitlines()[-1].startswith("PASS")


@pytest.mark.parametrize("make", [failing_report, passing_report])
def test_table_has_no_ansi_escape_codes(make: Callable[[], Report]) -> None:
    assert "\x1b[" not in table_text(make())


def _ipv6_report(url: str, related: str) -> Report:
    server = spec(url, Scheme.STUN, url.split("[", 1)[1].split("]", 1)[0])
    event = ErrorEvent(url=url, address=LOCAL_V4, port=50001, server_address=server.host,
                       server_port=3478, error_code=701, error_text="timed out",
                       cause=Cause.TIMEOUT, elapsed_ms=5000.0)
    srflx = candidate(CandidateType.SRFLX, PUBLIC_V4, 61000, 21.0, (related, 50000), url)
    result = ProbeResult(server, (srflx,), (event,), 5000.0)
    gathered = GatherReport(started_at="2024-05-01T12:00:00+00:00", duration_ms=5000.0,
                            host_candidates=(HOST_V4,), results=(result,))
    return Report(gathered, (), Requirement.EACH)


def test_table_shows_bracketed_ipv6_server_urls_verbatim() -> None:
    # URLs are data, not rich markup: "[fd00::1]" must not be eaten as a style tag.
    url = "stun:[fd00::1]:3478"
    text = table_text(_ipv6_report(url, LOCAL_V4))
    assert text.count(url) == 3  # servers, candidates (URL column) and error events


def test_table_shows_bracketed_ipv6_related_endpoint_verbatim() -> None:
    text = table_text(_ipv6_report("stun:[2001:db8::1]:3478", "fd00::5"))
    assert "[fd00::5]:50000" in text


def test_table_shows_ipv6_urls_starting_with_a_digit() -> None:
    url = "stun:[2001:db8::1]:3478"
    text = table_text(_ipv6_report(url, "2001:db8::5"))
    assert text.count(url) == 3
    assert "[2001:db8::5]:50000" in text


# --- JSON -----------------------------------------------------------------------------------

TOP_LEVEL_KEYS = {"schema_version", "tool", "started_at", "duration_ms", "status", "ok",
                  "interrupted", "require", "username",
                  "servers", "candidates", "errors", "verdicts"}
SERVER_KEYS = {"url", "scheme", "host", "port", "transport", "addresses", "status",
               "unfinished", "implied_by", "duration_ms", "realm", "first_sent_ms", "software",
               "unauthenticated_allocation"}
CANDIDATE_KEYS = {"type", "protocol", "address", "port", "related_address", "related_port",
                  "url", "relay_protocol", "tcp_type", "foundation", "priority", "elapsed_ms"}
ERROR_KEYS = {"url", "address", "port", "server_address", "server_port", "error_code",
              "error_text", "cause", "problem", "elapsed_ms", "requested_family",
              "after_challenge", "browser"}
VERDICT_KEYS = {"id", "severity", "title", "detail", "hint", "urls", "role", "key",
                "caused_by", "group", "ignored", "confidence"}


def test_json_top_level_keys_are_exactly_the_schema() -> None:
    document = json_document(failing_report())
    assert set(document) == TOP_LEVEL_KEYS
    assert document["schema_version"] == 2
    assert document["tool"] == {"name": "iceprobe", "version": __version__}
    assert document["started_at"] == "2024-05-01T12:00:00+00:00"
    assert document["duration_ms"] == 5012.0
    assert document["ok"] is False
    assert document["require"] == "each"


def test_json_ok_and_require_follow_the_report() -> None:
    document = json_document(passing_report())
    assert document["ok"] is True
    assert document["require"] == "any"


def test_json_servers_have_their_fields() -> None:
    servers = json_document(failing_report())["servers"]
    assert len(servers) == 2
    for server in servers:
        assert set(server) == SERVER_KEYS
    assert servers[0] == {"url": STUN_URL, "scheme": "stun", "host": "stun.example.com",
                          "port": 3478, "transport": "udp", "addresses": [], "status": "ok",
                          "unfinished": None, "implied_by": None, "duration_ms": 5001.0,
                          "realm": None, "first_sent_ms": None, "software": None,
                          "unauthenticated_allocation": False}
    assert servers[1]["url"] == TURN_URL
    assert servers[1]["scheme"] == "turn"
    assert servers[1]["transport"] == "tcp"
    assert servers[1]["status"] == "failed"


def test_json_candidates_have_their_fields_hosts_first() -> None:
    candidates = json_document(failing_report())["candidates"]
    for entry in candidates:
        assert set(entry) == CANDIDATE_KEYS
    assert [c["address"] for c in candidates] == [LOCAL_V4, LOCAL_V6, PUBLIC_V4]
    assert candidates[0]["type"] == "host"
    assert candidates[0]["related_address"] is None
    assert candidates[0]["url"] is None
    assert candidates[2] == {"type": "srflx", "protocol": "udp", "address": PUBLIC_V4,
                             "port": 61000, "related_address": LOCAL_V4,
                             "related_port": 50000, "url": STUN_URL, "relay_protocol": None,
                             "tcp_type": None, "foundation": "f-srflx",
                             "priority": 100, "elapsed_ms": 21.0}


def test_json_errors_have_their_fields_in_time_order() -> None:
    errors = json_document(failing_report())["errors"]
    for entry in errors:
        assert set(entry) == ERROR_KEYS
    assert [e["error_code"] for e in errors] == [401, 701]  # 35 ms before 5000 ms
    assert errors[0] == {"url": TURN_URL, "address": LOCAL_V4, "port": 50001,
                         "server_address": "192.0.2.2", "server_port": 3478,
                         "error_code": 401, "error_text": "Unauthorized",
                         "cause": "response", "problem": None, "elapsed_ms": 35.0,
                         "requested_family": None, "after_challenge": None,
                         "browser": {"error_code": 401, "error_text": "Unauthorized.",
                                     "after_ms": 35.0, "address_null": False}}
    assert errors[1]["cause"] == "timeout"
    assert errors[1]["browser"] == {"error_code": 701, "after_ms": 39750.0,
                                    "error_text": "STUN binding request timed out.",
                                    "address_null": False}
    assert errors[1]["error_text"] == "STUN binding request timed out"


def test_json_verdicts_have_their_fields_in_report_order() -> None:
    verdicts = json_document(failing_report())["verdicts"]
    for entry in verdicts:
        assert set(entry) == VERDICT_KEYS
    assert [(v["id"], v["severity"]) for v in verdicts] == [("server-error", "fail"),
                                                            ("server-unreachable", "info")]
    assert verdicts[0]["urls"] == [TURN_URL]


def test_json_output_is_the_document_alone_without_ansi() -> None:
    buffer = io.StringIO()
    render_json(failing_report(), buffer)
    out = buffer.getvalue()
    assert "\x1b[" not in out
    assert out.startswith("{")
    assert out.endswith("}\n")


# --- credentials and renderers --------------------------------------------------------------

def test_credentials_repr_hides_the_password() -> None:
    credentials = Credentials("alice", "s3cr3t-pw")
    assert "s3cr3t-pw" not in repr(credentials)
    assert "s3cr3t-pw" not in str(credentials)
    assert "alice" in repr(credentials)
    assert credentials.password == "s3cr3t-pw"


@pytest.mark.parametrize("output_format", list(OutputFormat), ids=lambda f: f.value)
def test_every_output_format_writes_the_report(output_format: OutputFormat) -> None:
    buffer = io.StringIO()
    render(passing_report(), output_format, buffer)
    out = buffer.getvalue()
    assert PUBLIC_V4 in out
    if output_format is OutputFormat.JSON:
        assert validated(out, "gather")["ok"] is True
    else:
        assert "\x1b[" not in out  # not a terminal: no colour codes
        assert all(v.id in out for v in passing_report().verdicts)


def test_table_is_coloured_on_a_terminal() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, force_terminal=True, color_system="standard")
    render_table(failing_report(), console)
    assert "\x1b[1;31m" in buffer.getvalue()  # bold red for the failure


def test_table_respects_no_color_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, force_terminal=True, color_system="standard")
    render_table(failing_report(), console)
    assert not re.search(r"\x1b\[[0-9;]*3[0-7]m", buffer.getvalue())  # no foreground colour


# --- interrupted runs -----------------------------------------------------------------------

def interrupted_report(unfinished: str = "interrupted") -> Report:
    """A STUN server that answered, and a TURN server whose probe a signal cut short."""
    from iceprobe.rules import Evidence, evaluate

    stun = ProbeResult(spec(STUN_URL, Scheme.STUN, "stun.example.com"), (SRFLX,), (), 21.0)
    turn = ProbeResult(spec(TURN_URL, Scheme.TURN, "turn.example.com"), (), (), 900.0,
                       unfinished=unfinished)
    gathered = GatherReport(started_at="2024-05-01T12:00:00+00:00", duration_ms=900.0,
                            host_candidates=(HOST_V4,), results=(stun, turn),
                            interrupted=unfinished == "interrupted")
    verdicts = evaluate(Evidence(gathered.host_candidates, gathered.results, Requirement.EACH,
                                 turn_credentials=True))
    return Report(gathered, tuple(verdicts), Requirement.EACH,
                  stopped_by=signal.SIGINT if unfinished == "interrupted" else None)


def test_an_interrupted_run_is_marked_in_the_table_and_the_json() -> None:
    report = interrupted_report()
    text = table_text(report)
    assert "\nINTERRUPTED (results so far) " in text  # the summary line
    assert "PASS" not in text and "FAIL " not in text.split("\nINTERRUPTED")[1]
    turn_row = next(line for line in text.splitlines() if TURN_URL in line)
    assert "interrupted" in turn_row
    document = json_document(report)
    assert document["interrupted"] is True
    assert (document["status"], document["ok"]) == ("interrupted", False)
    assert [(s["status"], s["unfinished"]) for s in document["servers"]] == [
        ("ok", None), ("interrupted", "interrupted")]


def test_an_unfinished_server_is_not_blamed_for_having_no_candidate() -> None:
    ids = {v.id: v.severity for v in interrupted_report().verdicts}
    assert ids["interrupted"] is Severity.WARN
    assert "server-no-candidate" not in ids


def test_a_server_without_a_probe_slot_is_not_probed_and_fails() -> None:
    report = interrupted_report("not probed from 1 of 1 local address: all 1 probe slots "
                                "(--concurrency) stayed busy until the 2 s budget ran out")
    [verdict] = [v for v in report.verdicts if v.id == "not-probed"]
    assert verdict.severity is Severity.FAIL and "--concurrency" in verdict.hint
    assert "--concurrency" in verdict.detail
    assert json_document(report)["servers"][1]["status"] == "not-probed"
    assert json_document(report)["interrupted"] is False


def test_a_relay_candidate_shows_its_relay_protocol_in_the_table() -> None:
    relay = Candidate(type=CandidateType.RELAY, protocol="udp", address="203.0.113.9",
                      port=50500, foundation="9", priority=16777215, elapsed_ms=40.0,
                      url=TURN_URL, relay_protocol="tcp")
    turn = ProbeResult(spec(TURN_URL, Scheme.TURN, "turn.example.com",
                            transport=Transport.TCP), (relay,), (), 41.0)
    gathered = GatherReport(started_at=None, duration_ms=41.0, host_candidates=(HOST_V4,),
                            results=(turn,))
    text = table_text(Report(gathered, (OK_VERDICT,), Requirement.EACH))
    row = next(line for line in text.splitlines() if "203.0.113.9" in line)
    assert "udp via tcp" in row
    assert json_document(Report(gathered, (), Requirement.EACH))["candidates"][1][
        "relay_protocol"] == "tcp"
