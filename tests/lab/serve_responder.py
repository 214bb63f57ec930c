"""A stand-in for `iceprobe serve` in the page's browser tests: the contract's four routes
(docs: /work/notes/serve-contract.md; `/t/{token}`, `/static/{name}`, `/t/{token}/config`,
`/t/{token}/upload`), minimally, with aiohttp in a thread of its own.

It serves the real page (iceprobe/serve/static) with the contract's Content-Security-Policy,
hands out a fresh `upload_id` per config, accepts each id once, judges the upload with the same
pipeline as `iceprobe analyze` and keeps every upload for the test (`uploads`). Swap it for the
real server once that lands: a test only needs `url`, `uploads` and `close()`.
"""

from __future__ import annotations

import asyncio
import json
import queue
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

STATIC = Path(__file__).resolve().parents[2] / "iceprobe" / "serve" / "static"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
_TYPES = {"app.js": "text/javascript", "style.css": "text/css"}
MAX_UPLOAD = 1024 * 1024


@dataclass(frozen=True)
class Upload:
    #: The recording as the page sent it, parsed.
    recording: dict[str, Any]
    raw: bytes
    #: time.monotonic() when it arrived, and when the page was fetched before it.
    received: float
    page_loaded: float | None
    answer: dict[str, Any]


@dataclass
class ServeResponder:
    """The page's server for one test: `servers` are the contract's config entries."""

    host: str
    servers: list[dict[str, Any]]
    deadline_ms: int = 8000
    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    uploads: queue.Queue[Upload] = field(default_factory=queue.Queue)
    #: Every request path seen (to show that the page asked for nothing else).
    requests: list[str] = field(default_factory=list)
    port: int = 0
    #: The reference code every upload gets (default: LAB-001, LAB-002, …).
    code: str | None = None

    def __post_init__(self) -> None:
        self._issued: set[str] = set()
        self._page_loaded: float | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._problem: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="serve-responder",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._problem is not None:
            raise RuntimeError(f"the page server did not start: {self._problem}")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/t/{self.token}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as exc:  # reported by __post_init__
            self._problem = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        app = web.Application(client_max_size=MAX_UPLOAD)
        app.router.add_get("/t/{token}", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/t/{token}/config", self._config)
        app.router.add_post("/t/{token}/upload", self._upload)
        app.middlewares.append(self._log)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        listener = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        listener.bind((self.host, 0))
        self.port = int(listener.getsockname()[1])
        await web.SockSite(self._runner, listener).start()

    @web.middleware
    async def _log(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(request.path)
        response: web.StreamResponse = await handler(request)
        return response

    def _check(self, request: web.Request) -> None:
        if request.match_info["token"] != self.token:
            raise web.HTTPNotFound(text="unknown link")

    async def _page(self, request: web.Request) -> web.Response:
        self._check(request)
        self._page_loaded = time.monotonic()
        return web.Response(body=(STATIC / "index.html").read_bytes(),
                            content_type="text/html", charset="utf-8", headers=_HEADERS)

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _TYPES:
            raise web.HTTPNotFound()
        return web.Response(body=(STATIC / name).read_bytes(), content_type=_TYPES[name],
                            charset="utf-8", headers=_HEADERS)

    async def _config(self, request: web.Request) -> web.Response:
        self._check(request)
        upload_id = secrets.token_hex(16)
        self._issued.add(upload_id)
        return web.json_response({"version": 1, "label": "lab", "deadline_ms": self.deadline_ms,
                                  "servers": self.servers, "upload_id": upload_id},
                                 headers={"Cache-Control": "no-store"})

    async def _upload(self, request: web.Request) -> web.Response:
        self._check(request)
        raw = await request.read()
        try:
            document = json.loads(raw)
        except ValueError:
            return web.json_response({"error": "not JSON"}, status=400)
        upload_id = document.get("upload_id") if isinstance(document, dict) else None
        if upload_id not in self._issued:
            return web.json_response({"error": "unknown or replayed upload_id"}, status=409)
        self._issued.discard(upload_id)
        try:
            answer = judge(raw)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        answer["code"] = self.code or f"LAB-{self.uploads.qsize() + 1:03d}"
        self.uploads.put(Upload(document, raw, time.monotonic(), self._page_loaded, answer))
        return web.json_response(answer)

    def next_upload(self, timeout: float) -> Upload:
        return self.uploads.get(timeout=timeout)

    def close(self) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def judge(raw: bytes) -> dict[str, Any]:
    """The answer `iceprobe analyze` would give, in the contract's upload-response shape
    (without `code`). ValueError with one line when the recording cannot be read."""
    from iceprobe.constants import DEFAULT_SLOW_MS, Requirement
    from iceprobe.recordings import RecordingError, analysis, read
    from iceprobe.render.report import Report
    from iceprobe.rules import evaluate
    from iceprobe.status import combined

    try:
        items = read(raw, "upload")
    except RecordingError as exc:
        raise ValueError(str(exc)) from None
    reports = []
    for item in items:
        found = analysis(item, DEFAULT_SLOW_MS, Requirement.EACH)
        reports.append(Report(found.gathered, tuple(evaluate(found.evidence, ())),
                              found.require, matrix=found.matrix, source=found.source,
                              recording=found.evidence.recording))
    outcome = combined(r.outcome for r in reports)
    verdicts = [{"id": v.id, "severity": v.severity.value, "title": v.title}
                for r in reports for v in r.verdicts]
    return {"status": outcome.status.value, "message": "Thank you: support has your result.",
            "verdicts": verdicts}
