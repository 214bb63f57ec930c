"""`iceprobe serve` over HTTPS (issue 17: `--tls-cert`/`--tls-key`), and how it stops.

HTTPS: a lab CA (tests/lab/certs.py) signs a certificate for the lan gateway's address
(10.77.0.1, in the SAN), and `serve` listens there with it. urllib, trusting the CA, uses
every route over https; headless Chromium and Firefox ESR, each trusting the CA in its own
profile (tests/lab/serve_browsers.py), open the link with `#microphone`: an https page is a
real secure context, so getUserMedia exists without any insecure-origin flag, the fake
microphone is granted, and the stored recording has the real host addresses (no mDNS).

Firefox ESR 153 reveals host addresses only while the page is capturing (MediaManager's
IsActivelyCapturingOrHasAPermission: an active capture, or a remembered permission), so the
page holds the microphone until its run ends; and it counts a fake device's capture only
with `media.navigator.permission.fake` (tests/lab/serve_browsers.py sets it). Without the
first, a real Firefox user who allows the microphone still gets mDNS names.

Stopping: SIGINT and SIGTERM to a running `serve`, idle or in the middle of uploads, end it
within a bound with the exit code its --help documents, one line on stderr about it (after
the result lines of the requests in flight, which finish) and a sound database whose every
row is whole.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from iceprobe.cli.web import SHUTDOWN_SECONDS
from tests.lab.browser import (
    LAN_GATEWAY,
    BrowserLabUnavailable,
    LanNamespace,
    lan_namespace,
    stop_browser,
)
from tests.lab.certs import CertFiles, make_ca, make_server_cert
from tests.lab.ci import unavailable as lab_unavailable
from tests.lab.netns import LabNetwork
from tests.lab.serve_browsers import browser_log, start_browser
from tests.lab.serve_server import ADMIN_TOKEN, Serve, start_serve
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn
from tests.schema import validated
from tests.serve_uploads import events, upload

pytestmark = pytest.mark.lab

StartCoturn = Callable[..., Coturn]
BROWSERS = ("chromium", "firefox")
#: The page's deadline here; browser start to stored row may take this plus the relay
#: check, the upload and the browser's own start on a shared machine.
DEADLINE_S = 4
ROW_WITHIN_S = 40.0
#: How long a signalled `serve` may take to exit.
STOP_WITHIN_S = 5.0


def unavailable(reason: str) -> NoReturn:
    lab_unavailable(reason, "serve TLS tests")


@pytest.fixture(scope="module")
def lan(lab: LabNetwork) -> Iterator[LanNamespace]:
    with ExitStack() as stack:
        try:
            namespace = stack.enter_context(lan_namespace())
        except BrowserLabUnavailable as exc:
            unavailable(str(exc))
        yield namespace


@dataclass(frozen=True)
class LabTls:
    ca: Path
    server: CertFiles


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> LabTls:
    """A lab CA and a certificate for the lan gateway's IP address (the only SAN)."""
    directory = tmp_path_factory.mktemp("serve-tls")
    ca, ca_key, ca_cert = make_ca(directory)
    server = make_server_cert(directory, "serve", ca_key, ca_cert, [], [LAN_GATEWAY])
    return LabTls(ca.cert, server)


def start_https_serve(tmp_path: Path, tls: LabTls, *args: str) -> Serve:
    return start_serve(tmp_path, "--listen", f"{LAN_GATEWAY}:0", "--tls-cert",
                       str(tls.server.cert), "--tls-key", str(tls.server.key), *args,
                       ca=tls.ca)


def iceprobe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iceprobe", *args], capture_output=True,
                          text=True, timeout=60)


def stored_rows(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute("SELECT * FROM results")]


# --- HTTPS over urllib --------------------------------------------------------------------


def test_https_serve_answers_every_route_and_makes_https_links(
        tmp_path: Path, tls: LabTls, lan: LanNamespace, coturn: StartCoturn) -> None:
    """On the lan gateway's address (its certificate's SAN), from the lab side."""
    turn = coturn()
    served = start_https_serve(tmp_path, tls, "--stun", turn.url("stun"), "--turn",
                               turn.url("turn"), "-u", LAB_USER, "-p", LAB_PASSWORD)
    try:
        # What it prints: the listener and the admin pages are https.
        assert served.base.startswith(f"https://{LAN_GATEWAY}:"), served.stdout_lines
        assert f"iceprobe serve: admin pages at {served.base}/admin\n" in served.stdout_lines

        # A link minted on /admin (JSON) and one by `iceprobe link` are https links.
        link = served.new_link("ticket tls")  # asserts the https base itself
        (tmp_path / "token").write_text(ADMIN_TOKEN)
        made = iceprobe("link", "--server", served.base, "--admin-token-file",
                        str(tmp_path / "token"), "--label", "ticket tls 2", "--ca-file",
                        str(tls.ca))
        assert made.returncode == 0, made.stderr
        assert made.stdout.startswith(f"{served.base}/t/") and made.stdout.count("\n") == 1
        # Without the CA, `iceprobe link` refuses the certificate in one line.
        untrusted = iceprobe("link", "--server", served.base, "--admin-token-file",
                             str(tmp_path / "token"), "--label", "x")
        assert untrusted.returncode == 1 and untrusted.stdout == ""
        assert untrusted.stderr.count("\n") == 1 and "CERTIFICATE_VERIFY_FAILED" in \
            untrusted.stderr, untrusted.stderr

        page = served.request("GET", link)
        assert page.status == 200 and "script-src 'self'" in \
            page.headers["Content-Security-Policy"]
        assert served.request("GET", "/static/app.js").status == 200
        config = served.request("GET", f"{link}/config")
        assert config.status == 200, config.text
        document = config.json()
        assert [s["url"] for s in document["servers"]] == [turn.url("stun"), turn.url("turn")]

        answer = served.upload(link, upload(document["upload_id"],
                                            events(turn.url("stun"), turn.url("turn"))))
        assert answer.status == 200, answer.text
        code = answer.json()["code"]
        assert served.rows() == 1

        listing = served.admin("/admin")
        assert listing.status == 200 and code in listing.text and "ticket tls" in listing.text
        assert served.admin(f"/admin/r/{code}").status == 200
        # The admin page's form makes a link with the request's own origin: https.
        form = served.admin("/admin/links", method="POST",
                            body=b"label=from+the+form&expires=1h",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert form.status == 200 and f"{served.base}/t/" in form.text
        # Over https the admin cookie is Secure (read off the 303 itself: urllib would
        # follow it).
        host, port = served.base.removeprefix("https://").rsplit(":", 1)
        connection = http.client.HTTPSConnection(host, int(port), timeout=10,
                                                 context=served.context)
        try:
            connection.request("POST", "/admin/login", body=f"token={ADMIN_TOKEN}",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
            login = connection.getresponse()
            cookie = login.getheader("Set-Cookie") or ""
        finally:
            connection.close()
        assert login.status == 303 and cookie.startswith("iceprobe_admin="), cookie
        assert "; Secure" in cookie and "HttpOnly" in cookie, cookie

        # Plain http to the https port gets no page.
        plain = served.base.replace("https://", "http://")
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(plain + link, timeout=5).read()
    finally:
        assert served.stop() == 0
    assert LAB_PASSWORD not in served.stderr


# --- HTTPS in the browsers: a real secure context -----------------------------------------


@pytest.mark.parametrize("browser", BROWSERS)
def test_https_link_with_microphone_is_a_secure_context_in_the_browser(
        browser: str, tmp_path: Path, tls: LabTls, lan: LanNamespace,
        coturn: StartCoturn) -> None:
    """The browser trusts the lab CA and opens the https link with #microphone: no flag
    makes the origin secure, so getUserMedia exists only because the page is https. The
    fake microphone is granted, and the stored recording carries the lan's real host
    address, not an mDNS name."""
    turn = coturn()
    stun_url, turn_url = turn.url("stun"), turn.url("turn")
    served = start_https_serve(tmp_path, tls, "--stun", stun_url, "--turn", turn_url,
                               "-u", LAB_USER, "-p", LAB_PASSWORD, "--deadline",
                               str(DEADLINE_S))
    try:
        url = served.base + served.new_link(f"tls {browser}") + "#microphone"
        with tempfile.TemporaryDirectory(prefix=f"iceprobe-tls-{browser}-",
                                         ignore_cleanup_errors=True) as profile:
            try:
                started = time.monotonic()
                process = start_browser(browser, lan, profile, url, ca=tls.ca)
            except BrowserLabUnavailable as exc:
                unavailable(str(exc))
            try:
                while served.rows() == 0 and time.monotonic() - started < ROW_WITHIN_S \
                        and process.poll() is None:
                    time.sleep(0.1)
                seconds = time.monotonic() - started
            finally:
                stop_browser(process, profile)
                log = browser_log(profile)
    finally:
        served.stop()
    rows = stored_rows(served.db)
    assert len(rows) == 1, f"no stored row after {seconds:.1f} s; {browser} said:\n{log}"
    [row] = rows
    recording = json.loads(row["recording"])
    page = recording["page"]
    hosts = [e["candidate"] for e in recording["events"] if e["type"] == "icecandidate"
             and e["candidate"] and " typ host" in e["candidate"]]
    print(f"{browser} over https with #microphone: browser start to stored row "
          f"{seconds:.2f} s; status {row['status']}; page {page}")
    assert page["permission"] == "granted"
    assert page["mdns"] is False
    assert hosts and any(f" {lan.address} " in line for line in hosts), hosts
    assert not [line for line in hosts if ".local " in line], hosts
    assert row["status"] == "pass", row["analysis"]
    validated(row["analysis"], "analyze")
    assert LAB_PASSWORD not in bytes(row["recording"]).decode() + row["analysis"]
    assert seconds < DEADLINE_S + 15, seconds


# --- Stopping -------------------------------------------------------------------------------


def documented_stop_code() -> int:
    """The exit code `iceprobe serve --help` gives for SIGINT and SIGTERM."""
    done = iceprobe("serve", "--help")
    assert "0 stopped by SIGINT or SIGTERM" in done.stdout, done.stdout
    return 0


def assert_sound(db: Path, sent: dict[str, bytes]) -> list[dict[str, Any]]:
    """The database passes SQLite's integrity check, and every result row is whole: its
    recording is byte for byte one that was sent under its upload id, its analysis a
    valid `analyze` document, and its upload id consumed (and every consumed id has its
    row: the two are written in one transaction)."""
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        used = {row[0] for row in connection.execute(
            "SELECT upload_id FROM uploads WHERE used_at IS NOT NULL")}
    rows = stored_rows(db)
    for row in rows:
        assert bytes(row["recording"]) == sent[row["upload_id"]]
        assert validated(row["analysis"], "analyze")["sessions"]
        assert row["code"] and row["status"] in ("pass", "fail", "inconclusive")
    assert used == {row["upload_id"] for row in rows}
    return rows


def stop_with(served: Serve, signum: int) -> tuple[int, float, str]:
    """(exit code, seconds to exit, what it wrote on stderr after the signal)."""
    before = len(served.stderr)
    started = time.monotonic()
    served.process.send_signal(signum)
    try:
        code = served.process.wait(STOP_WITHIN_S * 3)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait(5)
        raise AssertionError(f"serve ignored {signal.Signals(signum).name} for "
                             f"{STOP_WITHIN_S * 3} s") from None
    return code, time.monotonic() - started, served.stderr[before:]


SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]


@pytest.mark.parametrize("signum", SIGNALS)
def test_a_signal_stops_an_idle_serve_at_once_and_cleanly(
        signum: int, tmp_path: Path, lab: LabNetwork) -> None:
    expected = documented_stop_code()
    served = start_serve(tmp_path, "--stun", f"stun:{lab.ipv4}:3478")
    link = served.new_link("idle")
    upload_id = served.request("GET", f"{link}/config").json()["upload_id"]
    body = upload(upload_id, events(f"stun:{lab.ipv4}:3478", f"turn:{lab.ipv4}:3478"))
    assert served.upload(link, body).status == 200
    time.sleep(0.5)  # idle: nothing in flight
    code, seconds, said = stop_with(served, signum)
    print(f"{signal.Signals(signum).name} to an idle serve: exit {code} after "
          f"{seconds:.2f} s; stderr {said!r}")
    assert code == expected
    assert seconds < STOP_WITHIN_S
    assert said == "iceprobe serve: stopped\n"
    assert len(assert_sound(served.db, {upload_id: body})) == 1


class Uploader(threading.Thread):
    """Page loads and uploads, one after the other, until the server goes away: what a busy
    server sees. A fresh link every 9 uploads keeps it under the rate limit (10 a minute
    per link)."""

    def __init__(self, served: Serve, name: str, stun: str, turn: str) -> None:
        super().__init__(daemon=True)
        self.served, self.name_, self.stun, self.turn = served, name, stun, turn
        self.sent: dict[str, bytes] = {}
        self.accepted: list[str] = []
        #: The server went away while this client was busy (not a 4xx: a broken request).
        self.cut_off = False
        self.stopping = threading.Event()

    def run(self) -> None:
        base = self.served.base
        link = ""
        while not self.stopping.is_set():
            try:
                if len(self.sent) % 9 == 0:
                    link = self._link(len(self.sent))
                with urllib.request.urlopen(f"{base}{link}/config", timeout=10) as got:
                    upload_id = json.loads(got.read())["upload_id"]
                body = upload(upload_id, events(self.stun, self.turn, turn_error=(
                    401, "Unauthorized") if len(self.sent) % 2 else None))
                self.sent[upload_id] = body
                request = urllib.request.Request(
                    f"{base}{link}/upload", data=body, method="POST",
                    headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=10) as answer:
                    self.accepted.append(json.loads(answer.read())["code"])
            except urllib.error.HTTPError as exc:
                raise AssertionError(f"an upload was refused: {exc.code}") from None
            except (OSError, ValueError):  # the server stopped under us
                self.cut_off = True
                return

    def _link(self, number: int) -> str:
        request = urllib.request.Request(
            f"{self.served.base}/admin/links", method="POST",
            data=json.dumps({"label": f"{self.name_} {number}"}).encode(),
            headers={"Content-Type": "application/json",
                     "Authorization": f"Bearer {ADMIN_TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            url: str = json.loads(answer.read())["url"]
        return url[len(self.served.base):]


@pytest.mark.parametrize("signum", SIGNALS)
def test_a_signal_during_uploads_stops_serve_and_leaves_whole_rows(
        signum: int, tmp_path: Path, lab: LabNetwork) -> None:
    """Four clients upload as fast as they can when the signal comes: `serve` lets the
    requests in flight finish, exits within the bound with the documented code, and every
    row is whole."""
    expected = documented_stop_code()
    stun, turn = f"stun:{lab.ipv4}:3478", f"turn:{lab.ipv4}:3478"
    served = start_serve(tmp_path, "--stun", stun)
    uploaders = [Uploader(served, f"busy {n}", stun, turn) for n in range(4)]
    for uploader in uploaders:
        uploader.start()
    deadline = time.monotonic() + 20
    while served.rows() < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    code, seconds, said = stop_with(served, signum)
    for uploader in uploaders:
        uploader.stopping.set()
        uploader.join(15)
    sent = {k: v for u in uploaders for k, v in u.sent.items()}
    accepted = [c for u in uploaders for c in u.accepted]
    rows = assert_sound(served.db, sent)
    print(f"{signal.Signals(signum).name} during uploads: exit {code} after {seconds:.2f} s; "
          f"{len(sent)} sent, {len(accepted)} answered 200, {len(rows)} stored; "
          f"stderr after the signal {said!r}")
    assert code == expected
    # The documented bound: requests in flight get SHUTDOWN_SECONDS. Usually none is left
    # and serve is gone in about 0.1 s; on a loaded machine a request the signal caught
    # half-read can hold it for that grace (seen once in CI: 5.09 s).
    assert seconds < SHUTDOWN_SECONDS + 1.5
    assert len(rows) >= 8
    assert any(u.cut_off for u in uploaders), "the signal came after the uploads"
    # Every upload that was answered 200 is stored (a row may exist whose answer the
    # client never read: the connection closed after the commit).
    assert set(accepted) <= {row["code"] for row in rows}
    lines = said.splitlines()
    assert lines and lines[-1] == "iceprobe serve: stopped", said
    assert all(line.startswith("iceprobe: result ") for line in lines[:-1]), said
    assert "Traceback" not in served.stderr


@pytest.mark.parametrize("signum", SIGNALS)
def test_a_signal_during_a_stalled_upload_stops_serve_and_stores_nothing(
        signum: int, tmp_path: Path, lab: LabNetwork) -> None:
    """A client that sent half its upload and then nothing more (a dead phone on a train)
    holds its request open when the signal comes: `serve` gives open requests
    SHUTDOWN_SECONDS (5 s) to finish, then cancels this one, stores nothing for it, and
    exits as documented: within that bound plus a little, not at once."""
    expected = documented_stop_code()
    stun = f"stun:{lab.ipv4}:3478"
    served = start_serve(tmp_path, "--stun", stun)
    link = served.new_link("stalled")
    upload_id = served.request("GET", f"{link}/config").json()["upload_id"]
    body = upload(upload_id, events(stun, f"turn:{lab.ipv4}:3478"))
    host, port = served.base.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(f"POST {link}/upload HTTP/1.1\r\nHost: {host}\r\n"
                       f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                       "\r\n".encode() + body[:len(body) // 2])
        time.sleep(0.5)  # the server has read the headers and waits for the rest
        code, seconds, said = stop_with(served, signum)
    print(f"{signal.Signals(signum).name} during a stalled upload: exit {code} after "
          f"{seconds:.2f} s; stderr {said!r}")
    assert code == expected
    assert SHUTDOWN_SECONDS - 0.5 < seconds < SHUTDOWN_SECONDS + 1.5
    assert said == "iceprobe serve: stopped\n"
    assert assert_sound(served.db, {upload_id: body}) == []
