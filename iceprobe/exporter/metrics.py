"""One probe's Report as Prometheus metrics, in a registry of its own (one per /probe
request, as blackbox_exporter does): pure code, no I/O, no clock.

Names follow Prometheus's conventions: base units (seconds, ratios, unix timestamps), a
`probe_` prefix like blackbox_exporter's, and the `_info` pattern (a gauge of 1 whose labels
carry the facts) for the why of a failure. A phase that did not happen has no sample: a
missing series says "not measured", where a 0 would claim "instantaneous".
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..model import CandidateType, ErrorEvent, PhaseTimes, RelayCheck, Severity
from ..render.report import Report

#: The phases of probe_ice_phase_duration_seconds, in the order a probe goes through them.
PHASES = ("dns", "connect", "tls", "binding", "challenge", "allocate", "permission", "relay")
#: The TURN requests of the relay check that install a permission (RFC 8656 sections 9, 11).
_PERMISSION_REQUESTS = ("CreatePermission", "ChannelBind")
_LABEL_NAME = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class ProbeContext:
    """What the exporter knows about a probe beyond its Report."""

    target: str
    module: str
    #: Seconds, from the request's start to the verdicts.
    duration_seconds: float
    #: The fleet file's free-form labels of the target.
    labels: tuple[tuple[str, str], ...] = ()
    #: For TURN REST credentials: the expiry their username carries (unix time).
    credential_expires: float | None = None


def probe_registry(report: Report, context: ProbeContext) -> CollectorRegistry:
    """A fresh registry holding exactly this probe's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ReportCollector(list(report_metrics(report, context))))
    return registry


class _ReportCollector(Collector):
    def __init__(self, metrics: Sequence[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics)


def report_metrics(report: Report, context: ProbeContext) -> Iterator[Metric]:
    """Every metric family of one probe."""
    yield _gauge("probe_success", "Whether the probe passed (iceprobe's PASS): 1 or 0.",
                 1.0 if report.ok else 0.0)
    yield _gauge("probe_duration_seconds", "How long the probe took, verdicts included.",
                 context.duration_seconds)

    phases = GaugeMetricFamily(
        "probe_ice_phase_duration_seconds",
        "How long each phase of the probe took (dns, connect, tls, binding, challenge, "
        "allocate, permission, relay); a phase that did not complete has no sample.",
        labels=["phase"])
    for phase, seconds in phase_seconds(report).items():
        phases.add_metric([phase], seconds)
    yield phases

    candidates = GaugeMetricFamily("probe_ice_candidates",
                                   "ICE candidates gathered, by type.", labels=["type"])
    counts = {kind.value: 0 for kind in CandidateType}
    for candidate in report.gather.candidates:
        counts[candidate.type.value] = counts.get(candidate.type.value, 0) + 1
    for kind, count in counts.items():
        candidates.add_metric([kind], float(count))
    yield candidates

    errors = _errors(report)
    yield _gauge("probe_ice_error_code",
                 "The last STUN/TURN error code of the probe (701 for a server that could "
                 "not be reached, as browsers report it); 0 without errors.",
                 float(errors[-1].error_code) if errors else 0.0)

    failures = GaugeMetricFamily(
        "probe_ice_failure_info",
        "Why the probe failed: one sample of 1 per failing verdict id and the cause of the "
        "error events behind it (response, timeout, dns, ...; none without one).",
        labels=["verdict", "cause"])
    for verdict, cause in failure_causes(report):
        failures.add_metric([verdict, cause], 1.0)
    yield failures

    expiries = [r.certificate_expires for r in report.gather.results
                if r.certificate_expires is not None]
    if expiries:
        yield _gauge("probe_tls_cert_expiry_timestamp_seconds",
                     "When the TLS certificate of the stuns:/turns: server expires (unix "
                     "time; the earliest when several).", min(expiries))
    if context.credential_expires is not None:
        yield _gauge("probe_turn_credential_expiry_timestamp_seconds",
                     "When the TURN REST credentials the probe used expire (unix time).",
                     context.credential_expires)

    check = _relay_check(report.relays)
    if check is not None and check.rtt is not None:
        yield _gauge("probe_turn_relay_rtt_seconds",
                     "Median round trip of the relay check's echo messages through the TURN "
                     "server.", _seconds(check.rtt.median))
    if check is not None and check.loss is not None:
        yield _gauge("probe_turn_relay_loss_ratio",
                     "Fraction of the relay check's echo messages that never came back.",
                     check.loss)

    info = GaugeMetricFamily("probe_target_info",
                             "The probed target: its name, module and fleet file labels.",
                             labels=["target", "module", *(n for n, _ in
                                                            _labels(context.labels))])
    info.add_metric([context.target, context.module, *(v for _, v in _labels(context.labels))],
                    1.0)
    yield info


def phase_seconds(report: Report) -> dict[str, float]:
    """Each phase that completed, in seconds: from the first server (in report order) that
    has it; the permission and relay phases from the first relay check that got there."""
    found: dict[str, float] = {}
    for result in report.gather.results:
        times: PhaseTimes = result.phases
        for phase in PHASES[:6]:
            value = getattr(times, f"{phase}_ms")
            if value is not None and phase not in found:
                found[phase] = _seconds(value)
    for check in report.relays:
        permission = next((t.rtt_ms for t in check.turn_requests
                           if t.request in _PERMISSION_REQUESTS and t.outcome == "success"
                           and t.rtt_ms is not None), None)
        if permission is not None and "permission" not in found:
            found["permission"] = _seconds(permission)
        if check.rtt is not None and "relay" not in found:
            found["relay"] = _seconds(check.rtt.median)
    return {phase: found[phase] for phase in PHASES if phase in found}


def failure_causes(report: Report) -> list[tuple[str, str]]:
    """(verdict id, cause) for every failing verdict: one pair per distinct cause of the
    error events at the verdict's servers, or (id, "none") when it has none."""
    errors = _errors(report)
    pairs: list[tuple[str, str]] = []
    for verdict in report.verdicts:
        if verdict.severity is not Severity.FAIL:
            continue
        causes = sorted({e.cause.value for e in errors if e.url in verdict.urls}) or ["none"]
        pairs.extend((verdict.id, cause) for cause in causes
                     if (verdict.id, cause) not in pairs)
    return pairs


def _errors(report: Report) -> list[ErrorEvent]:
    """The gathering's error events in time order, then the relay checks'."""
    return [*report.gather.errors, *(e for c in report.relays for e in c.errors)]


def _seconds(ms: float) -> float:
    return round(ms / 1000, 7)


def _relay_check(checks: Sequence[RelayCheck]) -> RelayCheck | None:
    return next((c for c in checks if c.attempted), None)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _labels(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The fleet file's labels as valid Prometheus label names (other characters become
    `_`), without the names this exporter sets itself."""
    seen = {"target", "module"}
    valid = []
    for name, value in pairs:
        clean = _LABEL_NAME.sub("_", name)
        if clean[:1].isdigit():
            clean = f"_{clean}"
        if clean and not clean.startswith("__") and clean not in seen:
            seen.add(clean)
            valid.append((clean, value))
    return valid
