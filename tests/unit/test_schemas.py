"""The JSON Schemas shipped in iceprobe/schemas: valid, up to date with their generator,
strict where they promise to be, and satisfied by the documents iceprobe really writes."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from iceprobe import codes, schemas
from iceprobe.constants import Cause, Role, Severity, Status
from iceprobe.matrix import DEFAULT_PORTS, matrix_specs
from iceprobe.model import (
    Candidate,
    CandidateType,
    ErrorEvent,
    GatherReport,
    ProbeResult,
    Requirement,
)
from iceprobe.recordings import Session, analysis, read
from iceprobe.render import Report
from iceprobe.render.explain import render_explain_json
from iceprobe.render.json_report import analysis_document, report_document
from iceprobe.rules import Evidence, evaluate
from iceprobe.schemas import build
from iceprobe.status import SERVER_STATUSES
from iceprobe.urls import parse_server_url
from tests.schema import errors, validated

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"
RECORDINGS = sorted(p.name for p in FIXTURES.iterdir()
                    if p.suffix in (".json", ".jsonl", ".txt", ".sdp")
                    and not p.name.startswith("truncated"))


def failing_gather() -> dict[str, Any]:
    """A real gather document: a 401 from a TURN server, judged by the real rules."""
    spec = parse_server_url("turn:198.18.0.10:3478")
    host = Candidate(CandidateType.HOST, "udp", "198.18.0.10", 5000, "1", 2, 0.1)
    event = ErrorEvent(spec.url, "198.18.0.10", 5001, "198.18.0.10", 3478, 401,
                       "Unauthorized", Cause.RESPONSE, 1.0)
    result = ProbeResult(spec, (), (event,), 2.0, addresses=("198.18.0.10",))
    gathered = GatherReport("2026-11-28T00:00:00.000+00:00", 3.0, (host,), (result,))
    evidence = Evidence((host,), (result,), Requirement.EACH, turn_credentials=True)
    report = Report(gathered, tuple(evaluate(evidence)), Requirement.EACH)
    return report_document(report)


def matrix_gather() -> dict[str, Any]:
    specs = matrix_specs(["198.18.0.10"], list(DEFAULT_PORTS))
    results = tuple(ProbeResult(s, (), (ErrorEvent(
        s.url, "198.18.0.10", None, "198.18.0.10", s.port, 701, "refused", Cause.REFUSED,
        1.0),), 1.5, addresses=("198.18.0.10",)) for s in specs)
    gathered = GatherReport("2026-11-28T00:00:00.000+00:00", 3.0, (), results)
    evidence = Evidence((), results, Requirement.ANY, turn_credentials=True, matrix=True)
    report = Report(gathered, tuple(evaluate(evidence)), Requirement.ANY, matrix=True)
    return report_document(report)


def test_every_schema_is_valid_draft_2020_12_and_loads_from_the_package() -> None:
    from jsonschema import Draft202012Validator

    for name in schemas.NAMES:
        schema = schemas.load(name)
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_load_refuses_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="no schema 'report'"):
        schemas.load("report")


def test_shipped_schemas_equal_their_generator_output() -> None:
    assert build.main(["--check"]) == 0, "run python3 -m iceprobe.schemas.build"


def test_pyproject_ships_the_schemas_as_package_data() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"schemas/*.schema.json"' in pyproject
    assert '"jsonschema>=4.18"' in pyproject


def test_schema_enums_follow_the_code() -> None:
    defs = schemas.load("gather")["$defs"]
    assert defs["verdict"]["properties"]["severity"]["enum"] == [s.value for s in Severity]
    assert defs["verdict"]["properties"]["role"]["enum"] == [r.value for r in Role]
    assert defs["error"]["properties"]["cause"]["enum"] == [c.value for c in Cause]
    assert defs["server"]["properties"]["status"]["enum"] == list(SERVER_STATUSES)
    top = schemas.load("gather")["properties"]
    assert top["status"]["enum"] == [s.value for s in Status]


def test_a_real_gather_document_is_valid() -> None:
    document = failing_gather()
    validated(document, "gather")
    assert document["verdicts"], "the rules judged nothing: the test would prove nothing"


def test_a_real_matrix_document_is_valid_and_has_its_grid() -> None:
    document = validated(matrix_gather(), "gather")
    assert len(document["matrix"]) == 3 * len(DEFAULT_PORTS)


@pytest.mark.parametrize("change", [
    ("an unknown top-level key", lambda d: d.update(extra=1)),
    ("an unknown server key", lambda d: d["servers"][0].update(colour="red")),
    ("an unknown verdict key", lambda d: d["verdicts"][0].update(extra=True)),
    ("a severity outside the enum", lambda d: d["verdicts"][0].update(severity="error")),
    ("a role outside the enum", lambda d: d["verdicts"][0].update(role="effect")),
    ("a cause outside the enum", lambda d: d["errors"][0].update(cause="firewall")),
    ("a status outside the enum", lambda d: d.update(status="passed")),
    ("a server status outside the enum", lambda d: d["servers"][0].update(status="down")),
    ("a missing key", lambda d: d.pop("candidates")),
    ("null where a number must be", lambda d: d["errors"][0].update(error_code=None)),
    ("a port out of range", lambda d: d["candidates"][0].update(port=70000)),
    ("another schema_version", lambda d: d.update(schema_version=1)),
], ids=lambda c: c[0] if isinstance(c, tuple) else "")
def test_the_gather_schema_rejects(change: tuple[str, Any]) -> None:
    document = copy.deepcopy(failing_gather())
    change[1](document)
    assert errors(document, "gather"), f"{change[0]} was accepted"


def test_newer_keys_are_required_and_typed() -> None:
    document = copy.deepcopy(failing_gather())
    assert "username" in document and "realm" in document["servers"][0]
    document["servers"][0]["realm"] = 3
    assert errors(document, "gather")
    document = copy.deepcopy(failing_gather())
    document.pop("username")
    assert errors(document, "gather")


def test_browser_predictions_are_open_to_new_keys() -> None:
    document = copy.deepcopy(failing_gather())
    document["errors"][0]["browser"] = {"error_code": 701, "error_text": "x",
                                        "after_ms": 39750.0, "address_known": False}
    validated(document, "gather")


def test_a_gather_document_is_no_analyze_document() -> None:
    assert errors(failing_gather(), "analyze")


def _analysed(name: str) -> dict[str, Any]:
    reports = []
    for item in read((FIXTURES / name).read_bytes(), name):
        assert isinstance(item, Session)
        found = analysis(item, 500.0, Requirement.EACH)
        reports.append(Report(found.gathered, tuple(evaluate(found.evidence)), found.require,
                              matrix=found.matrix, source=found.source,
                              recording=found.evidence.recording))
    return analysis_document(reports)


@pytest.mark.parametrize("name", RECORDINGS)
def test_analyze_documents_of_every_fixture_are_valid(name: str) -> None:
    document = validated(_analysed(name), "analyze")
    assert document["sessions"]


def test_a_saved_report_read_back_by_analyze_is_valid() -> None:
    saved = json.dumps(failing_gather()).encode()
    reports = []
    for item in read(saved, "report.json"):
        found = analysis(item, 500.0, Requirement.EACH)
        reports.append(Report(found.gathered, tuple(evaluate(found.evidence)), found.require,
                              source=found.source, recording=found.evidence.recording))
    document = validated(analysis_document(reports), "analyze")
    assert document["sessions"][0]["source"]["format"] == "iceprobe-report"


def test_the_whole_explain_table_is_valid() -> None:
    buffer = io.StringIO()
    render_explain_json([*codes.CODES, *codes.CAUSES_701], buffer)
    entries = validated(buffer.getvalue(), "explain")
    assert len(entries) == len(codes.CODES) + len(codes.CAUSES_701)


def test_an_explain_entry_with_an_unknown_key_is_rejected() -> None:
    buffer = io.StringIO()
    render_explain_json([codes.lookup(486)], buffer)
    entries = json.loads(buffer.getvalue())
    entries[0]["rfc"] = "8656"
    assert errors(entries, "explain")


def test_the_saved_explain_golden_file_is_valid() -> None:
    golden = Path(__file__).resolve().parents[1] / "golden" / "explain-unauthorized.json"
    assert validated(golden.read_text(), "explain")
