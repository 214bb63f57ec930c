"""`check --format junit`: JUnit XML as GitLab, Jenkins and mikepenz/action-junit-report
read it, written with the standard library.

One <testsuite> per run (inside <testsuites>), one <testcase> per target and check
(classname = target, name = check). A server that misbehaved is a <failure> whose type is
the verdict id and whose message is one line, with the detail in its body; a probe that
could not run is an <error>; a relay check that had no relay to check is <skipped>. Each
test case's <system-out> holds its evidence, redacted (iceprobe.redact: addresses and the
TURN username replaced). Characters XML 1.0 does not allow are dropped from every text.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TextIO

from ..fleet.checks import ERROR, FAILURE, SKIPPED, CheckResult, TargetResult, check_results
from ..model import ProbeResult
from ..redact import redact
from .report import Report

# XML 1.0 section 2.2: Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
# [#x10000-#x10FFFF]. Everything else (NUL, other C0 controls, lone surrogates, U+FFFE/F)
# makes the document unreadable.
_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 cannot carry."""
    return _ILLEGAL.sub("", text)


def one_line(text: str) -> str:
    return " ".join(xml_text(text).split())


def _seconds(ms: float | None) -> str:
    return f"{(ms or 0) / 1000:.3f}"


def _evidence(check: CheckResult, report: Report) -> str:
    """What was seen for this check, redacted: each server's status, candidates and error
    events, then the verdicts about it."""
    lines: list[str] = []
    results: list[ProbeResult] = [r for r in report.gather.results
                                  if r.server.url in check.urls]
    for result in results:
        lines.append(f"server {result.server.url}: {report.status_of(result)}"
                     + (f" ({result.duration_ms:.1f} ms)" if result.duration_ms is not None
                        else ""))
        if result.unfinished:
            lines.append(f"  unfinished: {result.unfinished}")
        for c in result.candidates:
            lines.append(f"  candidate {c.type.value} {c.protocol} {c.address}:{c.port}")
        for e in result.errors:
            lines.append(f"  error {e.error_code} {e.error_text!r} (cause {e.cause.value}"
                         + (f", {e.problem}" if e.problem else "") + ")")
    for relay in report.relays:
        if relay.server.url in check.urls and check.check.value == "relay":
            lines.append(f"relay {relay.server.url}: {'ok' if relay.ok else 'broken'}"
                         + (f" at {relay.failed_step.value}" if relay.failed_step else ""))
            if relay.failure:
                lines.append(f"  {relay.failure}")
            lines.append(f"  echo {relay.received}/{relay.sent}"
                         + (f", median rtt {relay.rtt.median:.1f} ms" if relay.rtt else ""))
    if check.detail and check.outcome not in (FAILURE, ERROR):  # else in the failure's body
        lines.append(check.detail)
    return xml_text("\n".join(lines))


def junit_tree(results: Sequence[TargetResult], suite_name: str,
               timestamp: datetime | None = None) -> ET.Element:
    """The document's root: <testsuites> holding the run's one <testsuite>."""
    cases: list[tuple[TargetResult, Report, CheckResult]] = []
    for result in results:
        shown = redact(result.report)
        for check in check_results(result.module, shown):
            cases.append((result, shown, check))
    counts = {kind: sum(1 for _, _, c in cases if c.outcome == kind)
              for kind in (FAILURE, ERROR, SKIPPED)}
    total_ms = sum(r.report.duration_ms or 0 for r in results)
    when = (timestamp or datetime.now(timezone.utc)).replace(microsecond=0)
    attributes = {"name": xml_text(suite_name), "tests": str(len(cases)),
                  "failures": str(counts[FAILURE]), "errors": str(counts[ERROR]),
                  "skipped": str(counts[SKIPPED]), "time": _seconds(total_ms)}
    root = ET.Element("testsuites", attributes)
    suite = ET.SubElement(root, "testsuite", {
        **attributes, "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S"),
        "hostname": xml_text(socket.gethostname()) or "localhost"})
    properties = ET.SubElement(suite, "properties")
    for result in results:
        target = result.target
        for key, value in (("module", target.module), *target.labels):
            ET.SubElement(properties, "property", {
                "name": xml_text(f"{target.name}.{key}"), "value": xml_text(value)})
    for result, shown, check in cases:
        case = ET.SubElement(suite, "testcase", {
            "classname": xml_text(result.target.name), "name": check.check.value,
            "time": _seconds(check.duration_ms)})
        if check.outcome in (FAILURE, ERROR):
            element = ET.SubElement(case, check.outcome, {
                "type": check.verdict or check.outcome, "message": one_line(check.message)})
            element.text = xml_text(check.detail or check.message)
        elif check.outcome == SKIPPED:
            ET.SubElement(case, "skipped", {"message": one_line(check.message)})
        evidence = _evidence(check, shown)
        if evidence:
            ET.SubElement(case, "system-out").text = evidence
    if len(properties) == 0:
        suite.remove(properties)
    return root


def render_junit(results: Sequence[TargetResult], suite_name: str, file: TextIO,
                 timestamp: datetime | None = None) -> None:
    root = junit_tree(results, suite_name, timestamp)
    ET.indent(root)
    file.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    file.write(ET.tostring(root, encoding="unicode"))
    file.write("\n")
    file.flush()


__all__ = ["junit_tree", "one_line", "render_junit", "xml_text"]
