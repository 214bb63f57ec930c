"""The `iceprobe serve` page (issue 17) in real headless browsers, Chromium and Firefox ESR,
inside the lab's NATed lan namespace (tests/lab/browser.py), against coturn.

Each scenario runs the real `iceprobe serve` on the lan's gateway with the servers of the
scenario, opens a fresh link in a browser with a fresh profile (tests/lab/serve_page.py), and
waits for the page's upload to land as a row in serve's SQLite database: no browser driver.
It then asserts what was stored: each PeerConnection's outcome, the recorded error events, the
stored verdicts, that they are the verdicts `iceprobe gather` gives against the same servers
from the same namespace with the same options, that no credential is stored or logged, and
that the result was stored within the page's deadline plus a few seconds of the page's start.
Each prints its time (`-rP` shows it). One test drives Chromium over DevTools (the Download
button and the CSP), against tests/lab/serve_responder.py.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.lab.browser import (
    CHROMIUM_FLAGS,
    BrowserLabUnavailable,
    LanNamespace,
    chromium_binary,
    lan_namespace,
    run_in_lan,
)
from tests.lab.ci import unavailable
from tests.lab.devtools import DevToolsChromium
from tests.lab.netns import MISSING_NAME, LabNetwork
from tests.lab.serve_page import BROWSERS, WHAT, ServedRun, run_served, udp_blocked
from tests.lab.serve_responder import ServeResponder
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn, free_port
from tests.schema import validated

pytestmark = pytest.mark.lab

StartCoturn = Callable[..., Coturn]
REPO = str(Path(__file__).resolve().parents[2])
#: The page's own deadline in these tests: short, so that the unreachable cases are quick.
DEADLINE_S = 4
#: What page start to stored result may take beyond the deadline: the relay check (bounded
#: by the deadline too), the upload, judging and storing it, and a slow shared machine.
SLACK_S = 6.0
SECRET = "lab-page-Rest-Secret-51"
#: Verdicts only a browser recording can give: the browser hid its host addresses behind
#: mDNS names (iceprobe gather always sees them).
RECORDING_ONLY = {"mdns-host-candidates"}


@pytest.fixture(scope="module")
def lan(lab: LabNetwork) -> Iterator[LanNamespace]:
    with ExitStack() as stack:
        try:
            namespace = stack.enter_context(lan_namespace())
        except BrowserLabUnavailable as exc:
            unavailable(str(exc), WHAT)
        yield namespace


def servers(stun: Sequence[str] = (), turn: Sequence[str] = (), password: str = LAB_PASSWORD,
            secret: str | None = None) -> list[str]:
    """The server options, as `iceprobe serve` and `iceprobe gather` both take them."""
    argv: list[str] = []
    for url in stun:
        argv += ["--stun", url]
    for url in turn:
        argv += ["--turn", url]
    if turn and secret is not None:
        argv += ["--turn-secret", secret]
    elif turn:
        argv += ["-u", LAB_USER, "-p", password]
    return argv


def serve_page(browser: str, lan: LanNamespace, tmp_path: Path, options: list[str],
               **kwargs: Any) -> ServedRun:
    return run_served(browser, lan, tmp_path, [*options, "--deadline", str(DEADLINE_S)],
                      **kwargs)


def gather(options: list[str], relay_check: bool = False) -> dict[str, Any]:
    """`iceprobe gather --json` with the same server options, from inside the lan; with
    `relay_check`, its --relay-check too, for a scenario where the page checks a relay."""
    extra = ["--relay-check"] if relay_check else []
    done = run_in_lan([sys.executable, "-m", "iceprobe", "gather", *options, *extra,
                       "--json", "--timeout", "5"], capture_output=True, text=True,
                      cwd=REPO, timeout=60)
    assert done.returncode in (0, 1), done.stderr
    document: dict[str, Any] = validated(done.stdout, "gather")
    return document


def verdict_ids(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(id, severity) of every verdict of a gather report or of analyze's one session."""
    if "sessions" in document:
        assert len(document["sessions"]) == 1, "one page run is one session"
        verdicts = document["sessions"][0]["verdicts"]
    else:
        verdicts = document["verdicts"]
    return {(v["id"], v["severity"]) for v in verdicts if v["id"] not in RECORDING_ONLY}


def check_stored(run: ServedRun, gathered: dict[str, Any], *secrets: str) -> None:
    """What every scenario asserts of the stored result, after printing it."""
    print(f"{run.browser}: page start to stored result {run.seconds:.2f} s; "
          f"outcomes {run.outcomes()}; told {run.page['result']}")
    print(f"  stored verdicts {sorted(verdict_ids(run.analysis))}")
    print(f"  gather verdicts {sorted(verdict_ids(gathered))}")
    for e in run.errors():
        print(f"  error {e['errorCode']} {e['errorText']!r} on {e['url']}")
    for check in run.relay_checks():
        print(f"  relaycheck {check}")
    for relay in run.analysis["sessions"][0].get("relay", []):
        print(f"  stored relay check {relay['url']} ok={relay['ok']} "
              f"{relay['echo']['received']}/{relay['echo']['sent']}")
    validated(run.analysis, "analyze")
    assert run.label == "page lab"
    assert verdict_ids(run.analysis) == verdict_ids(gathered)
    assert run.status == ("pass" if gathered["ok"] else "fail")
    assert run.seconds < DEADLINE_S + SLACK_S
    for secret in secrets:
        assert secret not in run.stored_text(), "a credential was stored"
        assert secret not in run.logs, "a credential was logged"


# --- Scenarios --------------------------------------------------------------------------------


@pytest.mark.parametrize("browser", BROWSERS)
def test_healthy_stun_and_turn_every_connection_gets_its_candidate(
        browser: str, lan: LanNamespace, coturn: StartCoturn, tmp_path: Path) -> None:
    """REST credentials: serve mints them for the page load from the secret."""
    server = coturn("--use-auth-secret", f"--static-auth-secret={SECRET}")
    stun, turn = server.url("stun"), server.url("turn")
    options = servers([stun], [turn], secret=SECRET)
    run = serve_page(browser, lan, tmp_path, options)
    check_stored(run, gather(options, relay_check=True), SECRET)
    assert run.outcomes() == {(stun, "all"): "candidate", (turn, "all"): "candidate",
                              (turn, "relay"): "candidate"}
    assert run.status == "pass"
    assert run.page["result"] == {"level": "good", "headline":
                                  "Your network can reach our media servers over UDP."}
    assert run.page["permission"] == "not-asked"
    # Both browsers hide host addresses behind mDNS names without media permission.
    assert run.page["mdns"] is True
    checks = run.relay_checks()
    assert [(c["url"], c["ok"]) for c in checks] == [(turn, True)], checks
    assert checks[0]["received"] >= checks[0]["sent"] - 2 >= 6, checks


@pytest.mark.parametrize("browser", BROWSERS)
def test_wrong_turn_password_is_recorded_as_its_401(
        browser: str, lan: LanNamespace, coturn: StartCoturn, tmp_path: Path) -> None:
    """STUN and TURN on one coturn, as deployed. (With the TURN URL alone the two browsers
    differ: Chromium still gets a srflx by using the TURN server as a STUN server, Firefox
    153 does not.)"""
    server = coturn()
    stun, turn = server.url("stun"), server.url("turn")
    options = servers([stun], [turn], password="wrong-password")
    run = serve_page(browser, lan, tmp_path, options)
    check_stored(run, gather(options), "wrong-password")
    assert run.outcomes() == {(stun, "all"): "candidate", (turn, "all"): "error",
                              (turn, "relay"): "error"}
    assert {e["errorCode"] for e in run.errors()} == {401}, run.errors()
    assert ("turn-credentials-rejected", "fail") in verdict_ids(run.analysis)
    assert run.status == "fail"
    assert not run.relay_checks()
    # UDP gets through; the refusal is on the server's side, and the customer is told so.
    assert run.page["result"]["level"] == "limited"


@pytest.mark.parametrize("browser", BROWSERS)
def test_closed_udp_port_ends_at_the_page_deadline(
        browser: str, lan: LanNamespace, lab: LabNetwork, tmp_path: Path) -> None:
    port = free_port()
    stun, turn = f"stun:{lab.ipv4}:{port}", f"turn:{lab.ipv4}:{port}"
    options = servers([stun], [turn])
    run = serve_page(browser, lan, tmp_path, options)
    check_stored(run, gather(options), LAB_PASSWORD)
    assert run.outcomes() == {(stun, "all"): "deadline", (turn, "all"): "deadline",
                              (turn, "relay"): "deadline"}
    assert run.seconds >= DEADLINE_S
    errors = run.analysis["sessions"][0]["errors"]
    assert {(e["url"], e["cause"], e["error_text"]) for e in errors} == {
        (url, "timeout", "no answer within the page's deadline") for url in (stun, turn)}
    assert run.page["result"]["level"] == "bad"


@pytest.mark.parametrize("browser", BROWSERS)
def test_an_unresolvable_name_is_a_lookup_failure_not_a_timeout(
        browser: str, lan: LanNamespace, tmp_path: Path) -> None:
    """The lan's resolver answers NXDOMAIN for every name (tests/lab/browser.py)."""
    stun, turn = f"stun:{MISSING_NAME}:3478", f"turn:{MISSING_NAME}:3478"
    options = servers([stun], [turn])
    run = serve_page(browser, lan, tmp_path, options)
    check_stored(run, gather(options), LAB_PASSWORD)
    assert set(run.outcomes().values()) <= {"error", "deadline",
                                            "complete-without-candidate"}
    causes = {(e["url"].split("?")[0], e["cause"])
              for e in run.analysis["sessions"][0]["errors"]}
    # Chromium says "host lookup received error."; Firefox's 701 has no text, so the
    # recording cannot say why, and the verdict does not pretend to know.
    cause = "dns" if browser == "chromium" else "unspecified"
    assert causes == {(stun, cause), (turn, cause)}, causes
    unreachable = [v for v in run.analysis["sessions"][0]["verdicts"]
                   if v["id"] == "server-unreachable"]
    assert {v["confidence"] for v in unreachable} == {
        "certain" if browser == "chromium" else "possible"}
    assert not [v for v in unreachable if "ICMP" in v["hint"]]
    assert run.page["result"]["level"] == "bad"


@pytest.mark.parametrize("browser", BROWSERS)
def test_a_udp_blocked_network_reaches_turn_over_tcp(
        browser: str, lan: LanNamespace, coturn: StartCoturn, tmp_path: Path) -> None:
    """A firewall in the lan drops all UDP: STUN gets nothing by the deadline, TURN over TCP
    gives a relay, and data passes through it."""
    server = coturn()
    stun, turn = server.url("stun"), server.url("turn", query="?transport=tcp")
    options = servers([stun], [turn])
    with udp_blocked(lan):
        run = serve_page(browser, lan, tmp_path, options)
        gathered = gather(options, relay_check=True)
    check_stored(run, gathered, LAB_PASSWORD)
    assert run.outcomes() == {(stun, "all"): "deadline", (turn, "all"): "candidate",
                              (turn, "relay"): "candidate"}
    checks = run.relay_checks()
    assert [(c["url"], c["ok"]) for c in checks] == [(turn, True)], checks
    assert run.page["result"] == {
        "level": "limited",
        "headline": "Your network can reach our media servers only over TCP."}


@pytest.mark.parametrize("browser", BROWSERS)
def test_relay_only_policy_signals_relay_candidates_only(
        browser: str, lan: LanNamespace, coturn: StartCoturn, tmp_path: Path) -> None:
    """A TURN server alone, as an application that forces iceTransportPolicy "relay" sets it
    up: the relay-only PeerConnection signals relay candidates and nothing else, and the
    relay check passes data through them."""
    server = coturn()
    turn = server.url("turn")
    options = servers([], [turn])
    run = serve_page(browser, lan, tmp_path, options)
    check_stored(run, gather(options, relay_check=True), LAB_PASSWORD)
    assert run.outcomes() == {(turn, "all"): "candidate", (turn, "relay"): "candidate"}
    assert run.candidate_types("relay") == {"relay"}
    assert "host" in run.candidate_types("all")
    checks = run.relay_checks()
    assert [(c["url"], c["ok"]) for c in checks] == [(turn, True)], checks


def test_microphone_permission_reveals_host_addresses(
        lan: LanNamespace, coturn: StartCoturn, tmp_path: Path) -> None:
    """Chromium with fake media: the link's #microphone asks first, and the page then
    records real host addresses (no mDNS) and permission granted."""
    server = coturn()
    run = serve_page("chromium", lan, tmp_path, servers([server.url("stun")]),
                     fragment="#microphone", secure=True)
    print(f"chromium with the microphone: {run.seconds:.2f} s; page {run.page}")
    assert run.page["permission"] == "granted"
    assert run.page["mdns"] is False
    hosts = [e["candidate"] for e in run.events if e["type"] == "icecandidate"
             and e["candidate"] and " typ host" in e["candidate"]]
    assert any(f" {lan.address} " in line for line in hosts), hosts


def test_download_button_saves_the_recording_and_nothing_breaks_the_csp(
        lan: LanNamespace, lab: LabNetwork, tmp_path: Path) -> None:
    """Driven over DevTools (tests/lab/devtools.py): the page runs under the contract's CSP
    with no violation, its Download button saves exactly what it uploaded (a Blob URL
    download), and a network that reaches nothing is told so in plain words, with the
    reference code."""
    binary = chromium_binary()
    if binary is None:
        unavailable("chromium is missing (scripts/test installs it)", WHAT)
    port = free_port()
    config = [{"url": f"stun:{lab.ipv4}:{port}", "kind": "stun", "username": None,
               "credential": None}]
    responder = ServeResponder(lan.gateway, config, deadline_ms=DEADLINE_S * 1000,
                               code="K7Q-4MZ")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    try:
        with tempfile.TemporaryDirectory(prefix="iceprobe-devtools-",
                                         ignore_cleanup_errors=True) as profile, \
                DevToolsChromium(lan, binary, CHROMIUM_FLAGS, profile, width=390,
                                 height=844) as chrome:
            chrome.allow_downloads(str(downloads))
            chrome.open(responder.url)
            chrome.wait_for_title("Network test: done", DEADLINE_S + SLACK_S)
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
