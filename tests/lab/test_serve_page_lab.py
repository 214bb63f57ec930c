"""The `iceprobe serve` page (issue 17) in real headless browsers, Chromium and Firefox ESR,
inside the lab's NATed lan namespace (tests/lab/browser.py), against coturn.

tests/lab/serve_responder.py serves the page with the contract's routes and headers (it hands
a test each upload at once, with its timing); the last test runs the page against the real
`iceprobe serve` (tests/lab/serve_server.py) too. Each test starts a browser with a fresh
profile at the link, waits for the page to upload its recording by itself (no browser driver;
one test drives Chromium over DevTools to click Download), and asserts the recording: each
PeerConnection's outcome, the recorded error events, that no credential is in it, that
`iceprobe analyze` of it gives the verdicts `iceprobe gather` gives against the same servers
from the same namespace, and how long page load to upload took (printed; `-rP` shows it).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from typing import Any, NoReturn

import pytest

from tests.lab.browser import (
    CHROMIUM_FLAGS,
    BrowserLabUnavailable,
    LanNamespace,
    chromium_binary,
    lan_namespace,
    run_in_lan,
    stop_browser,
)
from tests.lab.ci import unavailable as lab_unavailable
from tests.lab.devtools import DevToolsChromium
from tests.lab.netns import LabNetwork
from tests.lab.serve_responder import ServeResponder, Upload
from tests.lab.serve_server import start_serve
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn, free_port
from tests.schema import validated

pytestmark = pytest.mark.lab

StartCoturn = Callable[..., Coturn]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: The page's own deadline in these tests: short, so that the closed-port case is quick.
DEADLINE_MS = 4000
#: What page load to upload may take beyond the deadline: the relay check (bounded by the
#: deadline too), the upload, and a slow shared machine.
SLACK_S = 6.0
BROWSERS = ("chromium", "firefox")
#: Shared/LAB.md: what a headless Firefox needs for fake media, and to stay quiet.
FIREFOX_PREFS = {
    "media.navigator.permission.disabled": True,
    "media.navigator.streams.fake": True,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.server": "",
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "app.update.enabled": False,
    "app.update.auto": False,
    "app.update.disabledForTesting": True,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.aboutwelcome.enabled": False,
    "datareporting.policy.firstRunURL": "",
    "extensions.update.enabled": False,
    "services.settings.server": "",
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
}


def unavailable(reason: str) -> NoReturn:
    lab_unavailable(reason, "serve page tests")


@pytest.fixture(scope="module")
def lan(lab: LabNetwork) -> Iterator[LanNamespace]:
    with ExitStack() as stack:
        try:
            namespace = stack.enter_context(lan_namespace())
        except BrowserLabUnavailable as exc:
            unavailable(str(exc))
        yield namespace


def firefox_binary() -> str | None:
    return shutil.which("firefox-esr") or shutil.which("firefox")


def _browser_argv(browser: str, profile: str, url: str, secure: bool = False) -> list[str]:
    """`secure`: treat the page's http origin as a secure context, as HTTPS would be
    (getUserMedia exists only there); the flag exists in Chromium only."""
    if browser == "chromium":
        binary = chromium_binary()
        if binary is None:
            unavailable("chromium is missing (scripts/test installs it)")
        origin = "/".join(url.split("/", 3)[:3])
        extra = [f"--unsafely-treat-insecure-origin-as-secure={origin}"] if secure else []
        return [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}/user-data",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                *extra, url]
    binary = firefox_binary()
    if binary is None:
        unavailable("firefox-esr is missing (scripts/test installs it)")
    user_js = os.path.join(profile, "firefox", "user.js")
    os.makedirs(os.path.dirname(user_js))
    with open(user_js, "w") as handle:
        for name, value in FIREFOX_PREFS.items():
            handle.write(f"user_pref({json.dumps(name)}, {json.dumps(value)});\n")
    return [binary, "--headless", "--no-remote", "--profile",
            os.path.dirname(user_js), url]


@dataclass(frozen=True)
class PageRun:
    browser: str
    upload: Upload
    #: Page load (its GET) to the upload's arrival, in seconds.
    seconds: float

    @property
    def events(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self.upload.recording["events"]
        return records

    def outcomes(self) -> dict[tuple[str, str], str]:
        """(url, policy) -> outcome of that PeerConnection."""
        policies = {e["pc"]: e["iceTransportPolicy"] for e in self.events
                    if e["type"] == "config"}
        return {(e["url"], policies[e["pc"]]): e["outcome"] for e in self.events
                if e["type"] == "outcome"}

    def errors(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == "icecandidateerror"]


def run_page(browser: str, lan: LanNamespace, servers: list[dict[str, Any]],
             timeout: float = 40.0, fragment: str = "", secure: bool = False) -> PageRun:
    """The page in `browser` inside the lan, served for these config `servers`; returns
    the first upload. The browser is stopped before returning."""
    responder = ServeResponder(lan.gateway, servers, deadline_ms=DEADLINE_MS)
    try:
        with tempfile.TemporaryDirectory(prefix=f"iceprobe-{browser}-",
                                         ignore_cleanup_errors=True) as profile:
            argv = _browser_argv(browser, profile, responder.url + fragment, secure)
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": profile,
                   "XDG_CONFIG_HOME": os.path.join(profile, "config"),
                   "XDG_CACHE_HOME": os.path.join(profile, "cache"), "LANG": "C.UTF-8",
                   "MOZ_CRASHREPORTER_DISABLE": "1"}
            log_path = os.path.join(profile, "browser.log")
            with open(log_path, "wb") as log:
                process = lan.popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            try:
                upload = _wait(responder, process, timeout, log_path, browser)
            finally:
                stop_browser(process, profile)
    finally:
        responder.close()
    assert upload.page_loaded is not None
    return PageRun(browser, upload, upload.received - upload.page_loaded)


def _wait(responder: ServeResponder, process: subprocess.Popen[Any], timeout: float,
          log_path: str, browser: str) -> Upload:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(Exception):
            return responder.next_upload(timeout=0.2)
        if process.poll() is not None:
            break
    with open(log_path, errors="replace") as handle:
        log = handle.read()[-3000:]
    raise AssertionError(f"{browser} uploaded nothing within {timeout} s (requests: "
                         f"{responder.requests}); its output:\n{log}")


# --- iceprobe's two sides -------------------------------------------------------------------


def analyze_upload(run: PageRun, tmp: str) -> dict[str, Any]:
    path = os.path.join(tmp, f"{run.browser}-upload.json")
    with open(path, "wb") as handle:
        handle.write(run.upload.raw)
    done = subprocess.run([sys.executable, "-m", "iceprobe", "analyze", path, "--json"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode in (0, 1), done.stderr
    document: dict[str, Any] = validated(done.stdout, "analyze")
    return document


def gather_verdicts(stun: list[str], turn: list[str], password: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "iceprobe", "gather"]
    for url in stun:
        argv += ["--stun", url]
    for url in turn:
        argv += ["--turn", url]
    if turn:
        argv += ["-u", LAB_USER, "-p", password]
    done = run_in_lan([*argv, "--json", "--timeout", "5"], capture_output=True, text=True,
                      cwd=REPO, timeout=60)
    assert done.returncode in (0, 1), done.stderr
    document: dict[str, Any] = validated(done.stdout, "gather")
    return document


#: Verdicts only a browser recording can give: the browser hid its host addresses behind
#: mDNS names (iceprobe gather always sees them).
RECORDING_ONLY = {"mdns-host-candidates"}


def verdict_ids(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(id, severity) of every verdict of a gather report or of analyze's one session."""
    if "sessions" in document:
        assert len(document["sessions"]) == 1, "one page run is one session"
        verdicts = document["sessions"][0]["verdicts"]
    else:
        verdicts = document["verdicts"]
    return {(v["id"], v["severity"]) for v in verdicts if v["id"] not in RECORDING_ONLY}


def servers_config(stun: list[str], turn: list[str], password: str) -> list[dict[str, Any]]:
    return ([{"url": u, "kind": "stun", "username": None, "credential": None} for u in stun]
            + [{"url": u, "kind": "turn", "username": LAB_USER, "credential": password}
               for u in turn])


def show(run: PageRun, analyzed: dict[str, Any], gathered: dict[str, Any]) -> None:
    print(f"{run.browser}: page load to upload {run.seconds:.2f} s; outcomes "
          f"{run.outcomes()}; page {run.upload.recording['page']}")
    print(f"  analyze verdicts {sorted(verdict_ids(analyzed))}")
    print(f"  gather verdicts  {sorted(verdict_ids(gathered))}")
    for e in run.errors():
        print(f"  error {e['errorCode']} {e['errorText']!r} on {e['url']}")
    for e in run.events:
        if e["type"] == "relaycheck":
            print(f"  relaycheck {e}")


# --- Scenarios --------------------------------------------------------------------------------


@pytest.mark.parametrize("browser", BROWSERS)
def test_healthy_stun_and_turn_every_connection_gets_its_candidate(
        browser: str, lan: LanNamespace, coturn: StartCoturn, tmp_path: Any) -> None:
    server = coturn()
    stun, turn = [server.url("stun")], [server.url("turn")]
    run = run_page(browser, lan, servers_config(stun, turn, LAB_PASSWORD))
    analyzed = analyze_upload(run, str(tmp_path))
    gathered = gather_verdicts(stun, turn, LAB_PASSWORD)
    show(run, analyzed, gathered)
    assert run.outcomes() == {(stun[0], "all"): "candidate", (turn[0], "all"): "candidate",
                              (turn[0], "relay"): "candidate"}
    assert LAB_PASSWORD not in run.upload.raw.decode()
    assert verdict_ids(analyzed) == verdict_ids(gathered)
    assert run.seconds < DEADLINE_MS / 1000 + SLACK_S
    assert run.upload.recording["page"]["permission"] == "not-asked"
    # Both browsers hide host addresses behind mDNS names without media permission.
    assert run.upload.recording["page"]["mdns"] is True
    checks = [e for e in run.events if e["type"] == "relaycheck"]
    assert [(c["url"], c["ok"]) for c in checks] == [(turn[0], True)], checks
    assert checks[0]["received"] >= checks[0]["sent"] - 2 >= 6, checks


@pytest.mark.parametrize("browser", BROWSERS)
def test_wrong_turn_password_is_recorded_as_its_401(
        browser: str, lan: LanNamespace, coturn: StartCoturn, tmp_path: Any) -> None:
    """STUN and TURN on one coturn, as deployed. (With the TURN URL alone the two browsers
    differ: Chromium still gets a srflx by using the TURN server as a STUN server, Firefox
    153 does not, so its recording has only host candidates, and analyze says so.)"""
    server = coturn()
    stun, turn = [server.url("stun")], [server.url("turn")]
    run = run_page(browser, lan, servers_config(stun, turn, "wrong-password"))
    analyzed = analyze_upload(run, str(tmp_path))
    gathered = gather_verdicts(stun, turn, "wrong-password")
    show(run, analyzed, gathered)
    assert run.outcomes() == {(stun[0], "all"): "candidate", (turn[0], "all"): "error",
                              (turn[0], "relay"): "error"}
    assert {e["errorCode"] for e in run.errors()} == {401}, run.errors()
    assert "wrong-password" not in run.upload.raw.decode()
    assert verdict_ids(analyzed) == verdict_ids(gathered)
    assert ("turn-credentials-rejected", "fail") in verdict_ids(analyzed)
    assert not [e for e in run.events if e["type"] == "relaycheck"]
    assert run.seconds < DEADLINE_MS / 1000 + SLACK_S


@pytest.mark.parametrize("browser", BROWSERS)
def test_closed_udp_port_ends_at_the_page_deadline(
        browser: str, lan: LanNamespace, lab: LabNetwork, tmp_path: Any) -> None:
    port = free_port()
    stun, turn = [f"stun:{lab.ipv4}:{port}"], [f"turn:{lab.ipv4}:{port}"]
    run = run_page(browser, lan, servers_config(stun, turn, LAB_PASSWORD))
    analyzed = analyze_upload(run, str(tmp_path))
    gathered = gather_verdicts(stun, turn, LAB_PASSWORD)
    show(run, analyzed, gathered)
    assert run.outcomes() == {(stun[0], "all"): "deadline", (turn[0], "all"): "deadline",
                              (turn[0], "relay"): "deadline"}
    assert DEADLINE_MS / 1000 <= run.seconds < DEADLINE_MS / 1000 + SLACK_S
    assert verdict_ids(analyzed) == verdict_ids(gathered)
    errors = analyzed["sessions"][0]["errors"]
    assert {(e["url"], e["cause"], e["error_text"]) for e in errors} == {
        (url, "timeout", "no answer within the page's deadline") for url in (*stun, *turn)}


def test_microphone_permission_reveals_host_addresses(
        lan: LanNamespace, coturn: StartCoturn) -> None:
    """Chromium with fake media: the link's #microphone asks first, and the page then
    records real host addresses (no mDNS) and permission granted."""
    server = coturn()
    run = run_page("chromium", lan, servers_config([server.url("stun")], [], LAB_PASSWORD),
                   fragment="#microphone", secure=True)
    page = run.upload.recording["page"]
    print(f"chromium with the microphone: {run.seconds:.2f} s; page {page}")
    assert page["permission"] == "granted"
    assert page["mdns"] is False
    hosts = [e["candidate"] for e in run.events if e["type"] == "icecandidate"
             and e["candidate"] and " typ host" in e["candidate"]]
    assert any(f" {lan.address} " in line for line in hosts), hosts


def test_download_button_saves_the_recording_and_nothing_breaks_the_csp(
        lan: LanNamespace, lab: LabNetwork, tmp_path: Any) -> None:
    """Driven over DevTools (tests/lab/devtools.py): the page runs under the contract's CSP
    with no violation, its Download button saves exactly what it uploaded (a Blob URL
    download), and a network that reaches nothing is told so in plain words, with the
    reference code."""
    binary = chromium_binary()
    if binary is None:
        unavailable("chromium is missing (scripts/test installs it)")
    port = free_port()
    responder = ServeResponder(lan.gateway, servers_config([f"stun:{lab.ipv4}:{port}"], [],
                                                           LAB_PASSWORD),
                               deadline_ms=DEADLINE_MS, code="K7Q-4MZ")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    try:
        with tempfile.TemporaryDirectory(prefix="iceprobe-devtools-",
                                         ignore_cleanup_errors=True) as profile, \
                DevToolsChromium(lan, binary, CHROMIUM_FLAGS, profile, width=390,
                                 height=844) as chrome:
            chrome.allow_downloads(str(downloads))
            chrome.open(responder.url)
            chrome.wait_for_title("Network test: done", DEADLINE_MS / 1000 + SLACK_S)
            headline = chrome.evaluate("document.getElementById('headline').textContent")
            code = chrome.evaluate("document.getElementById('code').textContent")
            chrome.evaluate("document.getElementById('download').click()")
            saved = downloads / "network-test.json"
            deadline = time.monotonic() + 10
            while not saved.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            violations = chrome.csp_violations()
    finally:
        responder.close()
    upload = responder.next_upload(timeout=1)
    assert violations == []
    assert headline == ("Your network cannot reach our media servers at all: please send "
                        "this code to support.")
    assert code == "K7Q-4MZ"
    assert saved.read_bytes() == upload.raw
    assert set(responder.requests) <= {f"/t/{responder.token}", "/static/app.js",
                                       "/static/style.css", f"/t/{responder.token}/config",
                                       f"/t/{responder.token}/upload", "/favicon.ico"}


@pytest.mark.parametrize("browser", BROWSERS)
def test_real_serve_stores_the_page_upload_judged_like_gather(
        browser: str, lan: LanNamespace, coturn: StartCoturn, tmp_path: Any) -> None:
    """The same page, served by the real `iceprobe serve` (tests/lab/serve_server.py) on
    the lan's gateway: the browser's upload lands in SQLite, judged as gather judges the
    same servers, and no credential is stored."""
    server = coturn()
    stun, turn = [server.url("stun")], [server.url("turn")]
    served = start_serve(tmp_path, "--listen", f"{lan.gateway}:0", "--stun", stun[0],
                         "--turn", turn[0], "-u", LAB_USER, "-p", LAB_PASSWORD,
                         "--deadline", str(DEADLINE_MS // 1000))
    try:
        url = served.base + served.new_link("page lab")
        with tempfile.TemporaryDirectory(prefix=f"iceprobe-{browser}-",
                                         ignore_cleanup_errors=True) as profile:
            argv = _browser_argv(browser, profile, url)
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": profile,
                   "LANG": "C.UTF-8", "MOZ_CRASHREPORTER_DISABLE": "1"}
            started = time.monotonic()
            process = lan.popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            try:
                while served.rows() == 0 and time.monotonic() - started < 40:
                    time.sleep(0.1)
                seconds = time.monotonic() - started
            finally:
                stop_browser(process, profile)
    finally:
        served.stop()
    assert served.rows() == 1, served.stderr
    with sqlite3.connect(served.db) as db:
        recording, analysis, status = db.execute(
            "SELECT recording, analysis, status FROM results").fetchone()
    print(f"{browser} via iceprobe serve: browser start to stored result {seconds:.2f} s")
    assert status == "pass"
    assert LAB_PASSWORD not in (bytes(recording).decode() + analysis)
    stored = validated(analysis, "analyze")
    assert verdict_ids(stored) == verdict_ids(gather_verdicts(stun, turn, LAB_PASSWORD))
    assert seconds < DEADLINE_MS / 1000 + SLACK_S + 3  # + the browser's own start
