"""The README documents the JSON report that iceprobe really writes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

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
from iceprobe.render import Report
from iceprobe.render.json_report import report_document
from iceprobe.urls import parse_server_url

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _readme_example() -> dict[str, Any]:
    match = re.search(r"```json\n(.*?)```", README, re.S)
    assert match, "README has no JSON example"
    document: dict[str, Any] = json.loads(match.group(1).replace("…", ""))
    return document


def _real_document() -> dict[str, Any]:
    spec = parse_server_url("turn:198.18.0.10:3478")
    host = Candidate(CandidateType.HOST, "udp", "198.18.0.10", 5000, "1", 2, 0.1)
    event = ErrorEvent(spec.url, "198.18.0.10", 5001, "198.18.0.10", 3478, 401, "Unauthorized",
                       Cause.RESPONSE, 1.0)
    result = ProbeResult(spec, (), (event,), 2.0)
    verdict = Verdict("no-relay-candidates", Severity.FAIL, "t", "d", "h", (spec.url,))
    report = Report(GatherReport("2026-11-28T00:00:00.000+00:00", 3.0, (host,), (result,)),
                    (verdict,), Requirement.EACH)
    return report_document(report)


def test_readme_json_example_has_exactly_the_real_keys() -> None:
    example, real = _readme_example(), _real_document()
    assert set(example) == set(real)
    for section in ("servers", "candidates", "errors", "verdicts"):
        assert set(example[section][0]) == set(real[section][0]), section
    assert set(example["tool"]) == set(real["tool"])


def test_readme_key_table_names_every_field() -> None:
    real = _real_document()
    for key in real:
        assert f"`{key}" in README, key
    for section in ("servers", "candidates", "errors", "verdicts"):
        for field in real[section][0]:
            assert f"`{field}`" in README, f"{section}.{field}"
