"""The aiohttp application of `iceprobe serve` (the routes of docs/serve.md):

- GET  /t/{token}          the page (static/index.html), or a page saying why the link is bad
- GET  /t/{token}/config   the servers to test, credentials minted for this page load, an
                           upload id
- POST /t/{token}/upload   the recording: validated, judged like `iceprobe analyze`, stored
- GET  /static/{name}      the page's script and style
- GET  /admin, /admin/r/{code}, POST /admin/links, POST /admin/login   the engineer's side

Failures are answers: every 4xx is `{"error": "<one line>"}` and stores nothing.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import json
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import html, links
from .judge import BadUpload, envelope, judge, load_reports
from .store import Store, Summary, UploadRefused

if TYPE_CHECKING:
    from ..model import Credentials, ServerSpec

STATIC = Path(__file__).resolve().parent / "static"
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
DEFAULT_MAX_UPLOAD = 1024 * 1024
DEFAULT_TURN_TTL = 600
DEFAULT_LINK_SECONDS = 24 * 3600
MAX_LINK_SECONDS = 365 * 86400
COOKIE = "iceprobe_admin"
_STATIC_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}\.(js|css|svg|png)$")
_CONTENT_TYPES = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml",
                  "png": "image/png"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RestSecret:
    """TURN REST API credentials made per page load (iceprobe.credentials)."""

    secret: str = field(repr=False)
    user: str
    separator: str
    ttl: int = DEFAULT_TURN_TTL


@dataclass(frozen=True)
class ServeConfig:
    servers: tuple[ServerSpec, ...]
    admin_token: str = field(repr=False)
    static: Credentials | None = None
    rest: RestSecret | None = None
    deadline_ms: int = 8000
    #: The base of the links (behind a reverse proxy); the request's own origin otherwise.
    public_url: str | None = None
    max_upload: int = DEFAULT_MAX_UPLOAD
    uploads_per_minute: int = 10
    #: Where one line per stored result and per refused upload goes (never a secret).
    log: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr,
                                                                  flush=True))


class _RateLimit:
    """At most `count` events per link in any 60 s (in this process)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._seen: dict[str, collections.deque[float]] = {}

    def allow(self, key: str, now: float) -> bool:
        times = self._seen.setdefault(key, collections.deque())
        while times and now - times[0] >= 60:
            times.popleft()
        if len(times) >= self.count:
            return False
        times.append(now)
        return True


def make_app(config: ServeConfig, store: Store) -> web.Application:
    app = web.Application(middlewares=[_headers], client_max_size=config.max_upload + 1)
    key = store.link_key()
    limit = _RateLimit(config.uploads_per_minute)

    def link_or_page(request: web.Request) -> links.Link | web.Response:
        try:
            return links.verify(key, request.match_info["token"], time.time())
        except links.LinkError as exc:
            return _html(html.link_error(exc.reason), 403 if exc.reason == "expired" else 404)

    def link_or_error(request: web.Request) -> links.Link | web.Response:
        try:
            return links.verify(key, request.match_info["token"], time.time())
        except links.LinkError as exc:
            status = 403 if exc.reason == "expired" else 404
            return _error(status, {"expired": "this test link has expired",
                                   "tampered": "this test link is not valid",
                                   "malformed": "this test link is not valid"}[exc.reason])

    async def page(request: web.Request) -> web.StreamResponse:
        link = link_or_page(request)
        if isinstance(link, web.Response):
            return link
        index = STATIC / "index.html"
        response = web.Response(body=index.read_bytes(), content_type="text/html",
                                charset="utf-8")
        response.headers["Content-Security-Policy"] = PAGE_CSP
        return response

    async def page_config(request: web.Request) -> web.StreamResponse:
        link = link_or_error(request)
        if isinstance(link, web.Response):
            return link
        return web.json_response({
            "version": 1, "label": link.label, "deadline_ms": config.deadline_ms,
            "servers": _servers(config, time.time()),
            "upload_id": store.issue_upload(link.id)})

    async def upload(request: web.Request) -> web.StreamResponse:
        link = link_or_error(request)
        if isinstance(link, web.Response):
            return link
        if request.content_type != "application/json":
            return _error(400, "the upload must be Content-Type: application/json")
        if (request.content_length or 0) > config.max_upload:
            return _error(413, f"the recording is larger than {config.max_upload} bytes")
        data = await request.content.read(config.max_upload + 1)
        if len(data) > config.max_upload:
            return _error(413, f"the recording is larger than {config.max_upload} bytes")
        if not limit.allow(link.id, time.monotonic()):
            return _error(429, "too many uploads for this link: wait a minute")
        try:
            document = envelope(data)
            store.check_upload(document["upload_id"], link.id)
            judged = await asyncio.to_thread(judge, data, document)
        except BadUpload as exc:
            return _error(400, str(exc))
        except UploadRefused as exc:
            return _error(409, exc.reason)
        summary = Summary("", link.id, link.label, time.time(), judged.browser, judged.status)
        try:
            stored = store.store_result(judged.upload_id, summary, data,
                                        json.dumps(judged.document))
        except UploadRefused as exc:  # another upload with the same id won the race
            return _error(409, exc.reason)
        config.log(f"iceprobe: result {stored.code} ({stored.status}) for link "
                   f"{link.label!r}")
        return web.json_response(_answer(stored, judged.document))

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = STATIC / name
        if not _STATIC_NAME.match(name) or name == "index.html" or not path.is_file():
            raise web.HTTPNotFound()
        return web.Response(body=path.read_bytes(),
                            content_type=_CONTENT_TYPES[name.rsplit(".", 1)[1]])

    def admin_denied(request: web.Request) -> web.Response | None:
        given = _bearer(request) or request.cookies.get(COOKIE)
        if given is None:
            return _html(html.login(), 401) if _wants_html(request) else _error(
                401, "admin token needed: Authorization: Bearer <token>")
        if not hmac.compare_digest(given.encode(), config.admin_token.encode()):
            return _error(403, "wrong admin token")
        return None

    async def admin(request: web.Request) -> web.StreamResponse:
        denied = admin_denied(request)
        if denied is not None:
            return denied
        label = request.query.get("label")
        return _html(html.results_list(store.results(label)))

    async def admin_result(request: web.Request) -> web.StreamResponse:
        denied = admin_denied(request)
        if denied is not None:
            return denied
        found = store.result(request.match_info["code"])
        if found is None:
            raise web.HTTPNotFound()
        reports = await asyncio.to_thread(load_reports, found.recording)
        return _html(html.result_detail(found.summary, reports))

    async def admin_links(request: web.Request) -> web.StreamResponse:
        denied = admin_denied(request)
        if denied is not None:
            return denied
        form = request.content_type != "application/json"
        try:
            given: Any = (dict(await request.post()) if form else await request.json())
        except ValueError:
            return _error(400, "the body is not JSON")
        if not isinstance(given, dict):
            return _error(400, "expected {\"label\": ..., \"expires_in\": seconds}")
        label, seconds = given.get("label"), given.get("expires_in", DEFAULT_LINK_SECONDS)
        if form and "expires" in given:
            try:
                seconds = parse_duration(str(given["expires"]))
            except ValueError as exc:
                return _error(400, str(exc))
        if not isinstance(label, str) or not label.strip() or len(label) > links.MAX_LABEL:
            return _error(400, f"label: 1 to {links.MAX_LABEL} characters")
        if isinstance(seconds, bool) or not isinstance(seconds, int) \
                or not 0 < seconds <= MAX_LINK_SECONDS:
            return _error(400, f"expires_in: whole seconds, 1 to {MAX_LINK_SECONDS}")
        token = links.mint(key, label.strip(), int(time.time()) + seconds)
        url = f"{_base(config, request)}/t/{token}"
        if form:
            return _html(html.results_list(store.results(), new_link=url))
        return web.json_response({"url": url})

    async def admin_login(request: web.Request) -> web.StreamResponse:
        given = (await request.post()).get("token")
        if not isinstance(given, str) or not hmac.compare_digest(
                given.encode(), config.admin_token.encode()):
            return _html(html.login("Wrong admin token."), 403)
        response = web.HTTPSeeOther("/admin")
        response.set_cookie(COOKIE, config.admin_token, httponly=True, samesite="Strict",
                            secure=request.secure, path="/admin")
        return response

    app.router.add_get("/t/{token}", page)
    app.router.add_get("/t/{token}/config", page_config)
    app.router.add_post("/t/{token}/upload", upload)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/admin", admin)
    app.router.add_get("/admin/r/{code}", admin_result)
    app.router.add_post("/admin/links", admin_links)
    app.router.add_post("/admin/login", admin_login)
    return app


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.status not in (401, 403):
            response = _error(exc.status, exc.reason)
        else:
            response = exc
    response.headers.setdefault("Content-Security-Policy",
                                "default-src 'none'; frame-ancestors 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _servers(config: ServeConfig, now: float) -> list[dict[str, Any]]:
    """One entry per configured URL; TURN ones with credentials for this page load."""
    credentials = config.static
    if config.rest is not None:
        from ..credentials import rest_credentials

        rest = config.rest
        credentials = rest_credentials(rest.secret, rest.user, rest.ttl, rest.separator, now)
    return [{"url": spec.url, "kind": "turn" if spec.is_turn else "stun",
             "username": credentials.username if spec.is_turn and credentials else None,
             "credential": credentials.password if spec.is_turn and credentials else None}
            for spec in config.servers]


def _answer(stored: Summary, document: dict[str, Any]) -> dict[str, Any]:
    verdicts: dict[tuple[str, str], dict[str, str]] = {}
    for session in document["sessions"]:
        for verdict in session["verdicts"]:
            verdicts.setdefault((verdict["id"], verdict["title"]), {
                "id": verdict["id"], "severity": verdict["severity"],
                "title": verdict["title"]})
    message = {"pass": "Your browser reached every server.",
               "fail": f"The test found a problem: please send the code {stored.code} "
                       "to support.",
               }.get(stored.status, f"The test could not tell: please send the code "
                                    f"{stored.code} to support.")
    return {"code": stored.code, "status": stored.status, "message": message,
            "verdicts": list(verdicts.values())}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _html(page: html.Page, status: int = 200) -> web.Response:
    response = web.Response(text=page.html, content_type="text/html", status=status)
    response.headers["Content-Security-Policy"] = page.csp
    return response


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _wants_html(request: web.Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("Accept", "")


def _base(config: ServeConfig, request: web.Request) -> str:
    if config.public_url:
        return config.public_url.rstrip("/")
    return f"{request.scheme}://{request.host}"


def new_admin_token() -> str:
    return secrets.token_urlsafe(24)


_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhd]?)\s*$")


def parse_duration(text: str) -> int:
    """Seconds in "90", "90s", "30m", "24h" or "7d"; ValueError otherwise."""
    match = _DURATION.match(text.lower())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration (such as 30m, 24h or 7d)")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[
        match.group(2)]
