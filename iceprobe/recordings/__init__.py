"""Reading what browsers recorded: the format is detected from the content (never from the
file name), and each PeerConnection becomes a `Session` (or, for iceprobe's own JSON report,
a `SavedReport`). Pure code: no network, no rules; `evidence` turns the result into the
values the rules judge."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from typing import Any

from . import chrome, events, firefox, report, rtcstats, sdp
from .evidence import Analysis, analysis
from .session import Input, RecordingError, SavedReport, Session

#: Largest input accepted, after decompression.
MAX_BYTES = 256 * 1024 * 1024
_EXPECTED = ("a chrome://webrtc-internals dump, an rtcstats dump, a Firefox about:webrtc "
             "report, an iceprobe event log or report, an SDP or candidate lines")


def read(data: bytes, name: str) -> list[Input]:
    """Every PeerConnection in one input; RecordingError (one line) when it cannot be read."""
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data)
    if len(data) > MAX_BYTES:
        raise RecordingError(f"larger than {MAX_BYTES // 2**20} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RecordingError(f"binary data, not text: expected {_EXPECTED}") from None
    if not text.strip():
        raise RecordingError(f"empty: expected {_EXPECTED}")
    if "\x00" in text:
        raise RecordingError(f"binary data, not text: expected {_EXPECTED}")
    try:
        return _parse(text, name)
    except RecursionError:  # json's decoder recurses once per nesting level
        raise RecordingError("JSON nested more deeply than any recording: "
                             f"expected {_EXPECTED}") from None


def _parse(text: str, name: str) -> list[Input]:
    if text.lstrip().startswith(rtcstats.MAGIC):
        return list(rtcstats.parse_rtcstats(text.lstrip(), name))
    try:
        document = json.loads(text)
    except ValueError as exc:
        return _not_json(text, name, exc)
    return _json(document, name)


def _gunzip(data: bytes) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
            out: bytes = handle.read(MAX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise RecordingError(f"gzip data that does not decompress ({exc}): the file is "
                             "truncated or damaged") from None
    return out


def _json(document: Any, name: str) -> list[Input]:
    if chrome.is_dump(document):
        return list(chrome.parse_dump(document, name))
    if events.is_header(document):
        records = document.get("events")
        if not isinstance(records, list):
            raise RecordingError("iceprobe event log: `events` is not a list")
        return list(events.parse_events(document, records, name))
    if report.is_report(document):
        return [report.parse_report(document, name)]
    if firefox.is_report(document):
        return list(firefox.parse_report(document, name))
    raise RecordingError(f"JSON, but not a recording iceprobe knows: expected {_EXPECTED}")


def _not_json(text: str, name: str, error: ValueError) -> list[Input]:
    lines = text.strip().splitlines()
    try:
        first = json.loads(lines[0])
    except ValueError:
        first = None
    if events.is_header(first):
        records = []
        for number, line in enumerate(lines[1:], 2):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                raise RecordingError(f"iceprobe event log (JSONL): line {number} is not "
                                     "JSON") from None
        assert isinstance(first, dict)
        return list(events.parse_events(first, records, name))
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        what = ("a chrome://webrtc-internals dump" if '"PeerConnections"' in text[:10000]
                else "JSON")
        raise RecordingError(f"{what} that is cut off or broken ({error}): download it "
                             "again, completely")
    if sdp.looks_like_candidates(text):
        return list(sdp.parse_sdp(text, name))
    raise RecordingError(f"not a format iceprobe reads: expected {_EXPECTED}")


__all__ = ["Analysis", "Input", "RecordingError", "SavedReport", "Session", "analysis", "read"]
