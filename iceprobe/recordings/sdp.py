"""An SDP (its a=candidate lines) or a list of bare candidate lines: candidates only, with
no server URLs, no timings and no error events."""

from __future__ import annotations

from .candidates import parse_candidate_line
from .session import RecordedCandidate, RecordingError, Session

FORMAT = "sdp"


def looks_like_candidates(text: str) -> bool:
    return any(parse_candidate_line(line) is not None for line in text.splitlines()[:2000])


def parse_sdp(text: str, file: str) -> list[Session]:
    candidates = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if "candidate:" not in line or line.startswith("a=end-of-candidates"):
            continue
        if parse_candidate_line(line) is None:
            raise RecordingError(f"SDP / candidate lines: line {number} is not a valid "
                                 f"candidate: {line[:80]!r}")
        candidates.append(RecordedCandidate(line))
    if not candidates:
        raise RecordingError("SDP / candidate lines: no candidate line found")
    return [Session(format=FORMAT, file=file, id="sdp", configuration_known=False,
                    errors_recorded=False, events=len(candidates), candidates=candidates)]
