"""`check`'s CI outputs (issue 18 item 2) from reports judged by the real rules: JUnit XML
valid against a JUnit XSD (xmlschema) and read by junitparser, with failure, error and
skipped where they belong, redacted evidence and no XML-illegal character; GitHub workflow
commands escaped as GitHub requires and the step summary; the check JSON document."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import pytest

from iceprobe.constants import CandidateType, Cause
from iceprobe.fleet.checks import ERROR, FAILURE, PASS, SKIPPED, TargetResult, target_result
from iceprobe.fleet.model import Check, Module, Target
from iceprobe.model import Candidate, Credentials, ErrorEvent, GatherReport, ProbeResult
from iceprobe.pipeline import Probed, ProbeSettings, judge
from iceprobe.render.fleet import check_document
from iceprobe.render.github import escape_data, escape_property, render_github, step_summary
from iceprobe.render.junit import render_junit, xml_text
from iceprobe.urls import parse_server_url
from tests.schema import validated

XSD = Path(__file__).resolve().parents[1] / "data" / "junit.xsd"
WHEN = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
SERVER = "198.18.0.10"
PASSWORD = "pw-not-in-output-Q7"


def _host() -> Candidate:
    return Candidate(CandidateType.HOST, "udp", SERVER, 5000, "1", 2, 0.1)


def _judged(target: Target, module: Module, results: tuple[ProbeResult, ...],
            settings: ProbeSettings | None = None, stopped_by: int | None = None
            ) -> TargetResult:
    gathered = GatherReport("2026-12-01T12:00:00.000+00:00", 9.0, (_host(),), results,
                            interrupted=stopped_by is not None, username="alice")
    report = judge(Probed(gathered), Credentials("alice", PASSWORD),
                   settings or ProbeSettings(), stopped_by=stopped_by)
    return target_result(target, module, report)


def rejected(name: str = "eu-1", error_text: str = "Unauthorized") -> TargetResult:
    """A TURN target whose binding works and whose Allocate gets a 401."""
    turn = parse_server_url(f"turn:{SERVER}:3478")
    stun = parse_server_url(f"stun:{SERVER}:3478")
    srflx = Candidate(CandidateType.SRFLX, "udp", "203.0.113.5", 6000, "2", 1, 2.0,
                      url=stun.url)
    event = ErrorEvent(turn.url, SERVER, 5001, SERVER, 3478, 401, error_text, Cause.RESPONSE,
                       1.0)
    results = (ProbeResult(turn, (), (event,), 2.0, addresses=(SERVER,)),
               ProbeResult(stun, (srflx,), (), 2.5, addresses=(SERVER,), implied_by=turn.url))
    module = Module("turn_udp", (Check.BINDING, Check.ALLOCATE))
    return _judged(Target(name, turn, "turn_udp", "prod", (("region", "eu"),), turn.url),
                   module, results)


def healthy(name: str = "us-1") -> TargetResult:
    turn = parse_server_url(f"turn:{SERVER}:3479")
    relay = Candidate(CandidateType.RELAY, "udp", "203.0.113.9", 50000, "3", 0, 3.0,
                      url=turn.url, relay_protocol="udp")
    results = (ProbeResult(turn, (relay,), (), 3.0, addresses=(SERVER,)),)
    return _judged(Target(name, turn, "alloc", "prod", (), turn.url),
                   Module("alloc", (Check.ALLOCATE,)), results)


def unfinished(name: str = "ap-1") -> TargetResult:
    """A target whose probe never ran (no slot within the budget): an error, not a
    failure of the server."""
    turn = parse_server_url(f"turn:{SERVER}:3480")
    results = (ProbeResult(turn, (), (), None, unfinished="not probed: budget spent"),)
    return _judged(Target(name, turn, "alloc", "prod", (), turn.url),
                   Module("alloc", (Check.ALLOCATE,)), results)


def relay_without_allocation(name: str = "sa-1") -> TargetResult:
    turn = parse_server_url(f"turn:{SERVER}:3481")
    event = ErrorEvent(turn.url, SERVER, 5001, SERVER, 3481, 486, "Allocation Quota Reached",
                       Cause.RESPONSE, 1.0)
    results = (ProbeResult(turn, (), (event,), 2.0, addresses=(SERVER,)),)
    return _judged(Target(name, turn, "relay", "prod", (), turn.url),
                   Module("relay", (Check.ALLOCATE, Check.RELAY)), results,
                   ProbeSettings(relay_check=True))


def junit(results: list[TargetResult]) -> str:
    out = io.StringIO()
    render_junit(results, "iceprobe check fleet.toml", out, WHEN)
    return out.getvalue()


def valid(text: str) -> None:
    import xmlschema

    xmlschema.XMLSchema(str(XSD)).validate(text)


# --- the check outcomes ---------------------------------------------------------------------

def test_a_401_fails_allocate_with_its_verdict_and_passes_binding() -> None:
    checks = {c.check: c for c in rejected().checks}
    assert checks[Check.BINDING].outcome == PASS
    allocate = checks[Check.ALLOCATE]
    assert (allocate.outcome, allocate.verdict) == (FAILURE, "turn-credentials-rejected")
    assert allocate.urls == (f"turn:{SERVER}:3478",)


def test_an_unfinished_probe_is_an_error_and_a_relay_without_allocation_is_skipped() -> None:
    [check] = unfinished().checks
    assert (check.outcome, check.verdict) == (ERROR, "not-probed")
    allocate, relay = relay_without_allocation().checks
    assert (allocate.outcome, allocate.verdict) == (FAILURE, "allocation-quota-reached")
    assert relay.outcome == SKIPPED


# --- JUnit ----------------------------------------------------------------------------------

def test_junit_is_valid_against_the_xsd_and_one_suite_holds_every_check() -> None:
    text = junit([rejected(), healthy(), unfinished(), relay_without_allocation()])
    valid(text)
    root = ET.fromstring(text)
    assert root.tag == "testsuites"
    [suite] = root
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped")) == ("6", "2", "1", "1")
    assert suite.get("timestamp") == "2026-12-01T12:00:00"


def test_the_xsd_refuses_what_junit_readers_refuse() -> None:
    # The validation above must be able to fail: a test case without a name, and a
    # failure next to an error in the wrong order, are invalid.
    import xmlschema

    bad = ('<testsuites><testsuite name="s" tests="1"><testcase classname="c"/>'
           '</testsuite></testsuites>')
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        valid(bad)
    bad = ('<testsuites><testsuite name="s" tests="x"></testsuite></testsuites>')
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        valid(bad)


def test_junitparser_reads_classname_target_name_check_and_the_failure_type() -> None:
    from junitparser import Error, Failure, JUnitXml, Skipped

    xml = JUnitXml.fromstring(junit([rejected(), healthy(), unfinished(),
                                     relay_without_allocation()]))
    cases = {(c.classname, c.name): c for suite in xml for c in suite}
    assert set(cases) == {("eu-1", "binding"), ("eu-1", "allocate"), ("us-1", "allocate"),
                          ("ap-1", "allocate"), ("sa-1", "allocate"), ("sa-1", "relay")}
    assert cases[("eu-1", "binding")].is_passed and cases[("us-1", "allocate")].is_passed
    [failure] = cases[("eu-1", "allocate")].result
    assert isinstance(failure, Failure) and failure.type == "turn-credentials-rejected"
    assert failure.message and "\n" not in failure.message
    assert "401" in (failure.text or "")
    [error] = cases[("ap-1", "allocate")].result
    assert isinstance(error, Error)
    [skipped] = cases[("sa-1", "relay")].result
    assert isinstance(skipped, Skipped)


def test_system_out_holds_the_evidence_redacted() -> None:
    text = junit([rejected()])
    root = ET.fromstring(text)
    outs = {c.get("name"): c.findtext("system-out") or "" for c in root.iter("testcase")}
    assert "error 401 'Unauthorized'" in outs["allocate"]
    assert "candidate srflx udp srflx-1:6000" in outs["binding"]
    assert SERVER not in text and "203.0.113.5" not in text
    assert "alice" not in text and PASSWORD not in text


def test_characters_illegal_in_xml_are_stripped() -> None:
    assert xml_text("a\x00b\x1bc\ud800d\ufffee\tf\n") == "abcde\tf\n"
    text = junit([rejected(error_text="Unauth\x00orized\x07 \ufffe")])
    valid(text)
    assert "Unauthorized" in text
    ET.fromstring(text)


# --- GitHub ---------------------------------------------------------------------------------

def test_workflow_commands_escape_percent_cr_lf_and_property_separators() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_github_prints_one_error_per_failing_check_on_one_line_each(tmp_path: Path) -> None:
    out = io.StringIO()
    summary = tmp_path / "summary.md"
    render_github([rejected(), healthy(), unfinished()], out, str(summary))
    lines = out.getvalue().splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    assert len(errors) == 2
    assert errors[0].startswith("::error title=iceprobe%3A eu-1 allocate::FAIL ")
    assert "[turn-credentials-rejected]" in errors[0]
    assert errors[1].startswith("::error title=iceprobe%3A ap-1 allocate::the probe could "
                                "not run: ")
    assert lines[-1] == "iceprobe check: FAIL (1 of 3 targets ok)"
    assert SERVER not in out.getvalue()
    text = summary.read_text()
    assert text.startswith("### iceprobe check: FAIL")
    assert "| eu-1 | allocate | ❌ failure | turn-credentials-rejected |" in text
    render_github([healthy()], io.StringIO(), str(summary))
    assert summary.read_text().count("### iceprobe check:") == 2  # appended, not replaced


def test_the_summary_escapes_pipes_in_cells() -> None:
    text = step_summary([rejected(name="eu-1", error_text="Bad | Thing")])
    for line in text.splitlines():
        if line.startswith("| eu-1 |"):
            assert line.count(" | ") == 4, line


# --- JSON -----------------------------------------------------------------------------------

def test_the_check_document_is_valid_and_agrees_with_the_checks() -> None:
    document = validated(check_document([rejected(), healthy()], "fleet.toml"), "check")
    assert (document["status"], document["ok"]) == ("fail", False)
    eu, us = document["targets"]
    assert (eu["status"], us["status"]) == ("fail", "pass")
    assert eu["labels"] == {"region": "eu"}
    assert [c["outcome"] for c in eu["checks"]] == ["pass", "failure"]
    assert eu["checks"][1]["verdict"] == "turn-credentials-rejected"
    assert eu["report"]["verdicts"]
