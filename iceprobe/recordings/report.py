"""iceprobe's own JSON report (`gather --json`, schema_version 1 or 2), read back into the values
gathering produced, so that `analyze` judges it exactly as `gather` did."""

from __future__ import annotations

from typing import Any

from ..model import (
    Candidate,
    CandidateType,
    Cause,
    ErrorEvent,
    GatherReport,
    ProbeResult,
    Requirement,
)
from ..urls import UrlError, parse_server_url
from .session import RecordingError, SavedReport

FORMAT = "iceprobe-report"
#: Version 2 added verdict roles and links and the top-level status; what is read back here
#: (servers, candidates, errors) is the same in both.
READABLE_VERSIONS = (1, 2)


def is_report(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("tool"), dict)
            and value["tool"].get("name") == "iceprobe" and "servers" in value)


def parse_report(document: dict[str, Any], file: str) -> SavedReport:
    if document.get("schema_version") not in READABLE_VERSIONS:
        raise RecordingError(f"iceprobe report: schema_version "
                             f"{document.get('schema_version')!r} is not supported (expected "
                             f"{' or '.join(map(str, READABLE_VERSIONS))})")
    try:
        candidates = [_candidate(c) for c in document["candidates"]]
        errors = [_error(e) for e in document["errors"]]
        results = []
        for server in document["servers"]:
            url = server["url"]
            spec = parse_server_url(url)
            results.append(ProbeResult(
                spec, tuple(c for c in candidates if c.url == url),
                tuple(e for e in errors if e.url == url), server.get("duration_ms"),
                tuple(server.get("addresses", ())),
                _text(server.get("unfinished")), software=_text(server.get("software")),
                unauthenticated_allocation=server.get("unauthenticated_allocation") is True))
        gathered = GatherReport(document.get("started_at"), document.get("duration_ms"),
                                tuple(c for c in candidates if c.type is CandidateType.HOST),
                                tuple(results), interrupted=document.get("interrupted") is True)
        require = Requirement(document.get("require", "each"))
    except (KeyError, TypeError, ValueError, UrlError) as exc:
        raise RecordingError(f"iceprobe report: unreadable ({type(exc).__name__}: "
                             f"{exc})"[:300]) from None
    return SavedReport(file, gathered, require, matrix="matrix" in document)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _candidate(entry: dict[str, Any]) -> Candidate:
    return Candidate(
        type=CandidateType(entry["type"]), protocol=entry["protocol"],
        address=entry["address"], port=int(entry["port"]), foundation=str(entry["foundation"]),
        priority=int(entry["priority"]), elapsed_ms=entry.get("elapsed_ms"),
        related_address=entry.get("related_address"), related_port=entry.get("related_port"),
        url=entry.get("url"), relay_protocol=entry.get("relay_protocol"))


def _error(entry: dict[str, Any]) -> ErrorEvent:
    return ErrorEvent(
        url=entry["url"], address=entry.get("address"), port=entry.get("port"),
        server_address=entry.get("server_address"), server_port=entry.get("server_port"),
        error_code=int(entry["error_code"]), error_text=str(entry["error_text"]),
        cause=Cause(entry["cause"]), elapsed_ms=entry.get("elapsed_ms"),
        problem=entry.get("problem"), requested_family=_family(entry.get("requested_family")),
        after_challenge=_flag(entry.get("after_challenge")))


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _family(value: Any) -> int | None:
    """REQUESTED-ADDRESS-FAMILY as a report writes it (4, 6 or null; absent before 0.2)."""
    return value if value in (4, 6) and not isinstance(value, bool) else None
