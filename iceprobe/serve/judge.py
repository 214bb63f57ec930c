"""An uploaded recording through the pipeline of `iceprobe analyze`: read it
(iceprobe.recordings), judge each PeerConnection (iceprobe.rules), and make the analyze JSON
document (iceprobe.render.json_report) and the headline status (iceprobe.status)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..constants import DEFAULT_SLOW_MS, Requirement

if TYPE_CHECKING:
    from ..render.report import Report

FORMAT = "iceprobe-events"
VERSION = 2
#: The name the reports give the upload as their source file.
SOURCE_NAME = "upload"


class BadUpload(Exception):
    """An upload that is not an event log of version 2 (one line, for the 400)."""


@dataclass(frozen=True)
class Judged:
    reports: tuple[Report, ...]
    #: `iceprobe analyze --json` of the upload.
    document: dict[str, Any]
    status: str
    browser: str | None
    upload_id: str


def envelope(data: bytes) -> dict[str, Any]:
    """The upload's JSON document, checked for what every version-2 event log has."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadUpload("the body is not JSON") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BadUpload(f"not an iceprobe event log (expected \"format\": \"{FORMAT}\")")
    if document.get("version") != VERSION:
        raise BadUpload(f"event log version {document.get('version')!r}: expected {VERSION}")
    upload_id = document.get("upload_id")
    if not isinstance(upload_id, str) or not 0 < len(upload_id) <= 100:
        raise BadUpload("upload_id missing: it comes from the page's config")
    if not isinstance(document.get("page"), dict):
        raise BadUpload("page missing or not an object")
    if not isinstance(document.get("events"), list):
        raise BadUpload("events missing or not a list")
    return document


def judge(data: bytes, document: dict[str, Any]) -> Judged:
    """Judge an upload whose envelope passed; BadUpload when the recorder cannot read it."""
    from ..recordings import RecordingError, Session, analysis, read
    from ..render.json_report import analysis_document
    from ..render.report import Report
    from ..rules import evaluate
    from ..status import combined

    try:
        inputs = read(data, SOURCE_NAME)
    except RecordingError as exc:
        raise BadUpload(str(exc)) from None
    reports = []
    for item in inputs:
        if not isinstance(item, Session):
            raise BadUpload("not an event log")
        found = analysis(item, DEFAULT_SLOW_MS, Requirement.EACH)
        reports.append(Report(found.gathered, tuple(evaluate(found.evidence, ())),
                              found.require, matrix=found.matrix, source=found.source,
                              recording=found.evidence.recording,
                              relays=found.evidence.relays))
    page = document["page"]
    browser = _text(page.get("browser")) or _text(page.get("userAgent")) or next(
        (s.browser for s in inputs if isinstance(s, Session) and s.browser), None)
    return Judged(tuple(reports), analysis_document(reports),
                  combined(r.outcome for r in reports).status.value, browser,
                  document["upload_id"])


def _text(value: Any) -> str | None:
    return value[:300] if isinstance(value, str) and value.strip() else None


def load_reports(recording: bytes) -> tuple[Report, ...]:
    """The reports of a stored recording, for the table of `results show` and the admin
    page (the JSON is the stored document)."""
    return judge(recording, envelope(recording)).reports
