"""The `iceprobe serve` page in a real headless browser, for the page lab tests: start the
real `iceprobe serve` (tests/lab/serve_server.py) on the lan's gateway, make a link, open it in
Chromium or Firefox ESR inside the NATed lan namespace (tests/lab/browser.py), and wait for
the page's upload to land as a row in the server's SQLite database. No browser driver: the page
runs and uploads by itself.

`ServedRun` is that row: the recording as stored, the analysis `serve` stored with it, its
status, and the time from the page's start (its `page.started_at`, the wall clock when it
asked for its configuration) to the moment the row was seen.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.lab import serve_browsers
from tests.lab.browser import LAB_LINK, BrowserLabUnavailable, LanNamespace, stop_browser
from tests.lab.ci import unavailable
from tests.lab.serve_server import Serve, start_serve

BROWSERS = ("chromium", "firefox")
WHAT = "serve page tests"


def browser_argv(browser: str, profile: str, url: str, secure: bool = False) -> list[str]:
    """tests/lab/serve_browsers.py's command for `browser` at `url`. `secure`: treat the
    page's http origin as a secure context, as HTTPS would be (getUserMedia exists only
    there); the flag exists in Chromium only."""
    try:
        argv = serve_browsers.browser_argv(browser, profile, url)
    except BrowserLabUnavailable as exc:
        unavailable(str(exc), WHAT)
    if secure and browser == "chromium":
        origin = "/".join(url.split("/", 3)[:3])
        argv.insert(-1, f"--unsafely-treat-insecure-origin-as-secure={origin}")
    return argv


@dataclass(frozen=True)
class ServedRun:
    browser: str
    #: The recording as stored (what the page uploaded), parsed, and its bytes.
    recording: dict[str, Any]
    raw: bytes
    #: The analysis serve stored with it (`iceprobe analyze --json` of the recording).
    analysis: dict[str, Any]
    status: str
    label: str
    #: The page's start (page.started_at) to the stored row, in seconds.
    seconds: float
    #: Everything serve wrote to stderr and stdout.
    logs: str

    @property
    def events(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self.recording["events"]
        return records

    @property
    def page(self) -> dict[str, Any]:
        page: dict[str, Any] = self.recording["page"]
        return page

    def outcomes(self) -> dict[tuple[str, str], str]:
        """(url, policy) -> outcome of that PeerConnection."""
        policies = self.policies()
        return {(e["url"], policies[e["pc"]]): e["outcome"] for e in self.events
                if e["type"] == "outcome"}

    def policies(self) -> dict[str, str]:
        return {e["pc"]: e["iceTransportPolicy"] for e in self.events if e["type"] == "config"}

    def candidate_types(self, policy: str) -> set[str]:
        """The candidate types the PeerConnections of `policy` signalled."""
        policies = self.policies()
        return {e["candidate"].split(" typ ")[1].split()[0] for e in self.events
                if e["type"] == "icecandidate" and e.get("candidate")
                and policies.get(e["pc"]) == policy}

    def errors(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == "icecandidateerror"]

    def relay_checks(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == "relaycheck"]

    def stored_text(self) -> str:
        return self.raw.decode("utf-8", "replace") + json.dumps(self.analysis)


def run_served(browser: str, lan: LanNamespace, tmp_path: Path, serve_args: Sequence[str],
               label: str = "page lab", timeout: float = 40.0, fragment: str = "",
               secure: bool = False) -> ServedRun:
    """Serve `serve_args` (servers, credentials, --deadline) on the lan's gateway, open a
    fresh link in `browser` inside the lan, and return the stored result once it is there.
    The browser and serve are stopped before returning."""
    served = start_serve(tmp_path, "--listen", f"{lan.gateway}:0", *serve_args)
    try:
        url = served.base + served.new_link(label) + fragment
        with tempfile.TemporaryDirectory(prefix=f"iceprobe-{browser}-",
                                         ignore_cleanup_errors=True) as profile:
            argv = browser_argv(browser, profile, url, secure)
            log_path = os.path.join(profile, "browser.log")
            with open(log_path, "wb") as log:
                process = lan.popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL,
                                    env=serve_browsers.browser_env(profile),
                                    start_new_session=True)
            try:
                seen = _wait_for_row(served, process, timeout, log_path, browser)
            finally:
                stop_browser(process, profile)
    finally:
        served.stop()
    with sqlite3.connect(served.db) as db:
        rows = db.execute("SELECT recording, analysis, status, label FROM results").fetchall()
    assert len(rows) == 1, f"one page run is one stored result, not {len(rows)}"
    recording, analysis, status, stored_label = rows[0]
    raw = bytes(recording)
    document = json.loads(raw)
    started = document["page"]["started_at"] / 1000
    logs = served.stderr + "".join(served.stdout_lines)
    return ServedRun(browser, document, raw, json.loads(analysis), status, stored_label,
                     seen - started, logs)


def _wait_for_row(served: Serve, process: subprocess.Popen[Any], timeout: float,
                  log_path: str, browser: str) -> float:
    """The wall-clock time at which the result's row was first seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served.rows():
            return time.time()
        if process.poll() is not None:
            break
        time.sleep(0.05)
    with open(log_path, errors="replace") as handle:
        log = handle.read()[-3000:]
    raise AssertionError(f"{browser} stored no result within {timeout} s; serve said: "
                         f"{served.stderr[-2000:]}; the browser's output:\n{log}")


@contextmanager
def udp_blocked(lan: LanNamespace) -> Iterator[None]:
    """A firewall between the lan and the lab that silently drops every UDP packet from the
    lan but DNS to the lan's own resolver: a network that lets only TCP out. It filters in the
    lab namespace (where this runs: the lan's router), on the lan's link, so the lan's
    sockets see no error, only silence, as behind a real firewall."""
    table = "iceprobe_no_udp"

    def nft(*words: str) -> None:
        subprocess.run(["nft", *words], check=True, capture_output=True, timeout=10)

    nft("add", "table", "inet", table)
    try:
        nft("add", "chain", "inet", table, "in",
            "{ type filter hook input priority 0 ; policy accept ; }")
        nft("add", "rule", "inet", table, "in", "iifname", LAB_LINK, "ip", "daddr",
            lan.gateway, "udp", "dport", "53", "accept")
        nft("add", "rule", "inet", table, "in", "iifname", LAB_LINK, "meta", "l4proto",
            "udp", "drop")
        yield
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True,
                       timeout=10)
