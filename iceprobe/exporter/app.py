"""The aiohttp application of `iceprobe exporter` (docs/exporter.md), in the style of
blackbox_exporter:

- GET  /probe?target=NAME_OR_URL[&module=M][&auth=A][&debug=true]   one probe, its metrics
- GET  /metrics        the exporter's own metrics
- GET  /-/healthy      200 while it runs
- POST /-/reload       reload the fleet file (SIGHUP does the same); a bad file keeps the old
- GET  /               recent probes, failures kept longer; /logs?id=N one probe's log

Every probe goes through iceprobe.pipeline. A failing probe is a 200 with probe_success 0;
a request that cannot be probed is a 400 with one line. At most MAX_PER_TARGET probes of the
same server and credentials run at once: a misconfigured Prometheus cannot flood a TURN
server. A probe is never cut short by the client going away: it runs to its own (bounded)
end, which releases every allocation it made.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector
from prometheus_client.exposition import choose_encoder

from ..credentials import ephemeral_expiry
from ..fleet.model import Fleet, FleetError
from ..pipeline import judge, probe
from . import history as history_page
from .history import History, ProbeRecord
from .metrics import ProbeContext, probe_registry
from .plan import Plan, PlanError, describe, least_to_probe, plan, within

#: Probes of one server with one set of credentials at once. Another waits for a slot while
#: at least MIN_BUDGET of its budget would be left, then probes with what is left; one
#: that finds no slot by then is answered 503.
MAX_PER_TARGET = 2
DEFAULT_TIMEOUT_OFFSET = 0.5
#: After the budget, how long a probe may take to stop and release what it allocated.
STOP_GRACE = 2.5
PAGE_CSP = ("default-src 'none'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")
Loader = Callable[[], Fleet]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Exporter:
    """The exporter's state: the fleet in use, how to load it again, its own metrics."""

    loader: Loader
    fleet: Fleet
    timeout_offset: float = DEFAULT_TIMEOUT_OFFSET
    log: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr,
                                                                  flush=True))
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry())
    history: History = field(default_factory=History)
    slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    running: set[asyncio.Future[ProbeRun]] = field(default_factory=set)

    def __post_init__(self) -> None:
        registry = self.registry
        ProcessCollector(registry=registry)
        self.probes = Counter("iceprobe_exporter_probes", "Probes run, by module.",
                              ["module"], registry=registry)
        self.failures = Counter("iceprobe_exporter_probe_failures",
                                "Probes that did not pass (probe_success 0), by module.",
                                ["module"], registry=registry)
        self.refused = Counter("iceprobe_exporter_probes_refused",
                               "Probe requests answered without a probe, by reason "
                               "(bad-request, busy).", ["reason"], registry=registry)
        self.in_flight = Gauge("iceprobe_exporter_probes_in_flight",
                               "Probes running now.", registry=registry)
        self.reload_ok = Gauge("iceprobe_exporter_config_last_reload_successful",
                               "Whether the last load of the fleet file succeeded.",
                               registry=registry)
        self.reload_at = Gauge("iceprobe_exporter_config_last_reload_success_timestamp_seconds",
                               "When the fleet file was last loaded successfully (unix time).",
                               registry=registry)
        self.reload_ok.set(1)
        self.reload_at.set(time.time())

    def reload(self) -> str | None:
        """Load the fleet file again; on failure keep the fleet in use. Returns the problem
        (one line, no secret), or None when it loaded."""
        try:
            fleet = self.loader()
        except FleetError as exc:
            problem = str(exc)
        except OSError as exc:
            problem = f"{self.fleet.path}: {exc.strerror or exc}"
        else:
            self.fleet = fleet
            self.reload_ok.set(1)
            self.reload_at.set(time.time())
            self.log(f"iceprobe exporter: reloaded {fleet.path} ({len(fleet.targets)} "
                     "targets)")
            for warning in fleet.warnings:
                self.log(f"iceprobe exporter: warning: {warning}")
            return None
        self.reload_ok.set(0)
        self.log(f"iceprobe exporter: reload failed, keeping the previous config: {problem}")
        return problem

    def slot(self, key: str) -> asyncio.Semaphore:
        return self.slots.setdefault(key, asyncio.Semaphore(MAX_PER_TARGET))


@dataclass(frozen=True)
class ProbeRun:
    """A finished probe: its metrics and, for ?debug=true and the history, its log."""

    registry: CollectorRegistry
    success: bool
    log: str
    failing: tuple[str, ...]


async def run_probe(exporter: Exporter, planned: Plan) -> ProbeRun:
    """Probe and judge through iceprobe.pipeline within the plan's budget, capturing the
    probe's log lines. Never raises for what the network did."""
    started = time.monotonic()
    lines = _capture.start()
    stop = asyncio.Event()
    timer = asyncio.get_running_loop().call_later(planned.budget, stop.set)
    given = planned.credentials
    try:
        probed = await probe(planned.specs, given, planned.settings, stop)
        report = judge(probed, given, planned.settings)
    finally:
        timer.cancel()
        _capture.stop()
    expiry = (ephemeral_expiry(given.username, time.time()) if given is not None
              and planned.auth is not None and planned.auth.secret is not None else None)
    context = ProbeContext(planned.target, planned.module.name,
                           round(time.monotonic() - started, 6), planned.labels,
                           float(expiry.expires_at) if expiry else None)
    failing = tuple(dict.fromkeys(v.id for v in report.verdicts if v.severity.value == "fail"))
    if stop.is_set():
        lines.append(f"the probe's budget of {planned.budget:g} s ran out: "
                     "stopped what was still running")
    return ProbeRun(probe_registry(report, context), report.ok, "\n".join(lines) + "\n",
                    failing)


def make_app(exporter: Exporter) -> web.Application:
    app = web.Application(middlewares=[_headers])
    _capture.install()

    async def probe_handler(request: web.Request) -> web.StreamResponse:
        query = {k: request.query.getone(k) for k in request.query}
        if any(len(request.query.getall(k)) > 1 for k in request.query):
            exporter.refused.labels("bad-request").inc()
            return _text(400, "each parameter may be given once\n")
        debug = query.get("debug", "false").lower()
        if debug not in ("true", "false"):
            exporter.refused.labels("bad-request").inc()
            return _text(400, "debug= must be true or false\n")
        try:
            planned = plan(exporter.fleet, query,
                           request.headers.get("X-Prometheus-Scrape-Timeout-Seconds"),
                           exporter.timeout_offset, time.time())
        except PlanError as exc:
            exporter.refused.labels("bad-request").inc()
            return _text(400, f"{exc}\n")
        slot = exporter.slot(planned.key)
        if slot.locked():
            # Wait while the probe would still have enough to gather after (least_to_probe),
            # then probe with what is left: the answer must come before the scraper's own
            # timeout.
            waiting_from = time.monotonic()
            try:
                if planned.budget <= least_to_probe(planned):
                    raise asyncio.TimeoutError
                await asyncio.wait_for(slot.acquire(), planned.budget - least_to_probe(planned))
            except asyncio.TimeoutError:
                exporter.refused.labels("busy").inc()
                return _text(503, f"{MAX_PER_TARGET} probes of {planned.target} are already "
                                  "running (the per-target limit): not probing it again "
                                  "now\n")
            planned = within(planned, planned.budget - (time.monotonic() - waiting_from))
        else:
            await slot.acquire()
        result = await _shielded(exporter, _slotted(exporter, planned, slot))
        if debug == "true":
            encoder, _ = choose_encoder("")
            body = (f"Logs for the probe:\n{result.log}\nMetrics that would have been "
                    f"returned:\n{encoder(result.registry).decode()}\nModule configuration:\n"
                    f"{describe(planned)}")
            return _text(200, body)
        return _metrics(request, result.registry)

    async def own_metrics(request: web.Request) -> web.StreamResponse:
        return _metrics(request, exporter.registry)

    async def healthy(request: web.Request) -> web.StreamResponse:
        return _text(200, "Healthy\n")

    async def reload(request: web.Request) -> web.StreamResponse:
        problem = exporter.reload()
        if problem is not None:
            return _text(500, f"reload failed, keeping the previous config: {problem}\n")
        return _text(200, f"reloaded {exporter.fleet.path}\n")

    async def index(request: web.Request) -> web.StreamResponse:
        return _html(history_page.page(exporter.history, exporter.fleet))

    async def logs(request: web.Request) -> web.StreamResponse:
        record = exporter.history.find(request.query.get("id", ""))
        if record is None:
            return _text(404, "no such probe in the history (it may have been dropped)\n")
        return _text(200, history_page.log_text(record))

    app.router.add_get("/probe", probe_handler)
    app.router.add_get("/metrics", own_metrics)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_post("/-/reload", reload)
    app.router.add_get("/", index)
    app.router.add_get("/logs", logs)
    app.on_cleanup.append(lambda _app: _finish(exporter))
    return app


async def _slotted(exporter: Exporter, planned: Plan, slot: asyncio.Semaphore) -> ProbeRun:
    exporter.in_flight.inc()
    try:
        result = await run_probe(exporter, planned)
    finally:
        exporter.in_flight.dec()
        slot.release()
    module = planned.module.name
    exporter.probes.labels(module).inc()
    if not result.success:
        exporter.failures.labels(module).inc()
    exporter.history.add(ProbeRecord.of(planned, result.success, result.failing, result.log,
                                        time.time()))
    return result


async def _shielded(exporter: Exporter, work: Awaitable[ProbeRun]) -> ProbeRun:
    """Run a probe to its end even when the request is cancelled (the scraper went away):
    cutting it short could leave an allocation behind. It is bounded by its own budget."""
    task = asyncio.ensure_future(work)
    exporter.running.add(task)
    task.add_done_callback(exporter.running.discard)
    return await asyncio.shield(task)


async def _finish(exporter: Exporter) -> None:
    """At shutdown: let the probes still running end (each within its budget)."""
    if exporter.running:
        await asyncio.wait(exporter.running, timeout=STOP_GRACE + 10)
    _capture.uninstall()


def _metrics(request: web.Request, registry: CollectorRegistry) -> web.Response:
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = web.Response(body=encoder(registry))
    response.headers["Content-Type"] = content_type
    return response


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain", charset="utf-8")


def _html(body: str) -> web.Response:
    response = web.Response(text=body, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


class _LogCapture(logging.Handler):
    """Collects the `iceprobe` log lines of the probe running in the current task (and the
    tasks it starts), for ?debug=true and the history: each probe sees its own lines only,
    timed from its start. Messages only: a traceback never reaches a page."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._probe: contextvars.ContextVar[tuple[float, list[str]] | None] = (
            contextvars.ContextVar("iceprobe_exporter_log", default=None))
        self._installed = 0
        self._level = logging.NOTSET

    def install(self) -> None:
        logger = logging.getLogger("iceprobe")
        if not self._installed:
            self._level = logger.level
            logger.setLevel(logging.DEBUG)
            logger.addHandler(self)
        self._installed += 1

    def uninstall(self) -> None:
        self._installed = max(0, self._installed - 1)
        if not self._installed:
            logger = logging.getLogger("iceprobe")
            logger.removeHandler(self)
            logger.setLevel(self._level)

    def start(self) -> list[str]:
        lines: list[str] = []
        self._probe.set((time.time(), lines))
        return lines

    def stop(self) -> None:
        self._probe.set(None)

    def emit(self, record: logging.LogRecord) -> None:
        probe = self._probe.get()
        if probe is None or len(probe[1]) >= MAX_LOG_LINES:  # a flood must not grow memory
            return
        started, lines = probe
        with contextlib.suppress(Exception):
            lines.append(f"{(record.created - started) * 1000:8.1f} ms  {record.name}: "
                         f"{record.getMessage()}")


#: The most log lines one probe keeps.
MAX_LOG_LINES = 2000
_capture = _LogCapture()
