"""`iceprobe serve`'s HTTP API, run as `python3 -m iceprobe serve` against coturn in the lab
namespace, driven over real HTTP on loopback, with its real SQLite file: minted credentials,
the upload round trip, bad links, bad uploads, the admin pages, escaping, and no secret
anywhere."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from iceprobe.serve.links import mint
from tests.lab.netns import LabNetwork
from tests.lab.serve_server import ADMIN_TOKEN, Serve, start_serve
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn
from tests.schema import validated
from tests.serve_uploads import events, upload

pytestmark = pytest.mark.lab

SECRET = "lab-serve-Rest-Secret-77"
StartCoturn = Callable[..., Coturn]


def iceprobe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iceprobe", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ})


@pytest.fixture
def turn(lab: LabNetwork, coturn: StartCoturn) -> Coturn:
    return coturn("--use-auth-secret", f"--static-auth-secret={SECRET}")


@pytest.fixture
def served(tmp_path: Path, turn: Coturn) -> Iterator[Serve]:
    (tmp_path / "secret").write_text(SECRET + "\n")
    server = start_serve(tmp_path, "--stun", turn.url("stun"), "--turn", turn.url("turn"),
                         "--turn-secret-file", str(tmp_path / "secret"))
    yield server
    server.stop()


def config(served: Serve, link: str) -> dict[str, object]:
    answer = served.request("GET", f"{link}/config")
    assert answer.status == 200, answer.text
    document: dict[str, object] = answer.json()
    return document


def test_config_mints_credentials_per_page_load_that_coturn_accepts(
        served: Serve, turn: Coturn) -> None:
    link = served.new_link("ticket 1")
    first, second = config(served, link), config(served, link)
    assert first["version"] == 1 and first["label"] == "ticket 1"
    assert first["deadline_ms"] == 8000
    assert first["upload_id"] != second["upload_id"]
    servers = first["servers"]
    assert isinstance(servers, list)
    assert [(s["url"], s["kind"]) for s in servers] == [(turn.url("stun"), "stun"),
                                                         (turn.url("turn"), "turn")]
    assert servers[0]["username"] is None and servers[0]["credential"] is None
    username, credential = servers[1]["username"], servers[1]["credential"]
    expiry = int(username.split(":")[0])
    assert username.endswith(":iceprobe") and abs(expiry - (time.time() + 600)) < 30
    expected = base64.b64encode(hmac.new(SECRET.encode(), username.encode(),
                                         hashlib.sha1).digest()).decode()
    assert credential == expected
    assert SECRET not in json.dumps(first)
    # The minted credentials work: coturn gives a relay for them.
    done = iceprobe("gather", "--turn", turn.url("turn"), "-u", username, "-p", credential,
                    "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "relay" in {c["type"] for c in validated(done.stdout, "gather")["candidates"]}


def test_an_upload_is_judged_like_analyze_and_stored_with_its_link(
        served: Serve, turn: Coturn, tmp_path: Path) -> None:
    link = served.new_link("ticket 4711")
    upload_id = str(config(served, link)["upload_id"])
    records = events(turn.url("stun"), turn.url("turn"), turn_error=(401, "Unauthorized"))
    body = upload(upload_id, records)
    answer = served.upload(link, body)
    assert answer.status == 200, answer.text
    result = answer.json()
    assert re.fullmatch(r"[A-Z0-9]{3}-[A-Z0-9]{3}", result["code"])
    assert result["status"] == "fail" and result["code"] in result["message"]
    assert "turn-credentials-rejected" in {v["id"] for v in result["verdicts"]}

    # `iceprobe analyze` reads the same upload (event log version 2) from a file.
    (tmp_path / "upload.json").write_bytes(body)
    analyzed = validated(iceprobe("analyze", "--json", str(tmp_path / "upload.json")).stdout,
                         "analyze")
    shown = iceprobe("results", "show", result["code"].lower(), "--db", str(served.db),
                     "--json")
    assert shown.returncode == 1, shown.stderr  # a failing verdict, as analyze's exit
    stored = validated(shown.stdout, "analyze")

    def judged(document: dict[str, object]) -> list[list[tuple[str, str, str]]]:
        sessions = document["sessions"]
        assert isinstance(sessions, list)
        return [[(v["id"], v["severity"], v["title"]) for v in s["verdicts"]]
                for s in sessions]

    assert judged(stored) == judged(analyzed)
    assert stored["status"] == analyzed["status"] == "fail"

    listed = iceprobe("results", "--db", str(served.db), "--json", "--label", "ticket 4711")
    document = validated(listed.stdout, "results")
    [entry] = document["results"]
    assert (entry["code"], entry["label"], entry["browser"]) == (
        result["code"], "ticket 4711", "Chromium 156")
    assert judged(entry) == judged(analyzed)
    assert validated(iceprobe("results", "--db", str(served.db), "--json", "--label",
                              "other").stdout, "results")["results"] == []
    # The group's options carry over to `show`.
    assert iceprobe("results", "--db", str(served.db), "--json", "show", result["code"]
                    ).stdout == shown.stdout
    table = iceprobe("results", "show", result["code"], "--db", str(served.db))
    assert "FAIL" in table.stdout and "ticket 4711" in table.stdout
    page = served.admin(f"/admin/r/{result['code']}")
    assert page.status == 200 and "ticket 4711" in page.text
    assert any(v["title"] in page.text for v in result["verdicts"]
               if "<" not in v["title"] and "&" not in v["title"])


def test_expired_tampered_and_unknown_links_get_a_page_saying_so(served: Serve) -> None:
    link = served.new_link("t")
    expired = "/t/" + mint(served.link_key(), "t", int(time.time()) - 5)
    tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    for path, status, words in ((expired, 403, "expired"), (tampered, 404, "not valid"),
                                ("/t/nonsense", 404, "not valid")):
        answer = served.request("GET", path)
        assert answer.status == status, path
        assert words in answer.text and "<script" not in answer.text
        assert "script-src 'none'" in answer.headers["Content-Security-Policy"]
        for sub in ("config", "upload"):
            method = "GET" if sub == "config" else "POST"
            refused = served.request(method, f"{path}/{sub}", body=b"{}" if sub == "upload"
                                     else None, headers={"Content-Type": "application/json"})
            assert refused.status == status and "link" in refused.json()["error"]
    good = served.request("GET", link)
    assert good.status == 200
    assert good.headers["Content-Security-Policy"].startswith("default-src 'none'; "
                                                              "script-src 'self'")
    assert good.headers["X-Content-Type-Options"] == "nosniff"
    assert good.headers["Referrer-Policy"] == "no-referrer"
    assert served.rows() == 0


def test_bad_uploads_get_a_4xx_line_and_store_nothing(served: Serve, turn: Coturn) -> None:
    link = served.new_link("bad")
    upload_id = str(config(served, link)["upload_id"])
    records = events(turn.url("stun"), turn.url("turn"))
    cases = [
        (upload(upload_id, records), "text/plain", 400, "application/json"),
        (b"{not json", "application/json", 400, "not JSON"),
        (b'{"format": "iceprobe-events", "version": 1, "events": []}', "application/json",
         400, "version 1"),
        (upload("never-issued", records), "application/json", 409, "unknown upload_id"),
        (upload(upload_id, [{"type": "nonsense", "t": 1, "pc": "x"}]), "application/json",
         400, "unknown type"),
        (b" " * (2**20 + 10), "application/json", 413, "larger than"),
    ]
    for body, content_type, status, words in cases:
        answer = served.upload(link, body, content_type)
        assert (answer.status, words in answer.json()["error"]) == (status, True), \
            (status, answer.text)
        assert "\n" not in answer.json()["error"]
    assert served.rows() == 0
    first = served.upload(link, upload(upload_id, records))
    assert first.status == 200, first.text
    replay = served.upload(link, upload(upload_id, records))
    assert replay.status == 409 and "already used" in replay.json()["error"]
    other = served.new_link("other")
    foreign = served.upload(other, upload(str(config(served, link)["upload_id"]), records))
    assert foreign.status == 409  # an upload id of another link
    assert served.rows() == 1


def test_uploads_through_one_link_are_rate_limited(served: Serve) -> None:
    link = served.new_link("busy")
    statuses = [served.upload(link, b"junk").status for _ in range(11)]
    assert statuses == [400] * 10 + [429]
    assert served.upload(served.new_link("calm"), b"junk").status == 400  # per link


def test_admin_pages_need_the_admin_token(served: Serve) -> None:
    for path in ("/admin", "/admin/r/AAA-AAA"):
        assert served.request("GET", path).status == 401
        assert served.admin(path, token="wrong").status == 403
    assert served.request("POST", "/admin/links", body=b'{"label": "x"}',
                          headers={"Content-Type": "application/json"}).status == 401
    login_page = served.request("GET", "/admin", headers={"Accept": "text/html"})
    assert login_page.status == 401 and "<form" in login_page.text
    assert served.request("POST", "/admin/login", body=b"token=wrong",
                          headers={"Content-Type": "application/x-www-form-urlencoded"}
                          ).status == 403
    import http.client

    connection = http.client.HTTPConnection(served.base.split("//")[1], timeout=10)
    connection.request("POST", "/admin/login", body=f"token={ADMIN_TOKEN}",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    response.read()
    cookie = response.getheader("Set-Cookie") or ""
    assert response.status == 303 and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    listed = served.request("GET", "/admin", headers={"Cookie": cookie.split(";")[0]})
    assert listed.status == 200 and "iceprobe results" in listed.text
    made = iceprobe("link", "--server", served.base, "--admin-token-file",
                    str(served.db.parent / "admin.token"), "--label", "ticket 9",
                    "--expires", "2h")
    assert made.returncode == 0, made.stderr
    assert made.stdout.count("\n") == 1 and made.stdout.startswith(served.base + "/t/")
    assert served.request("GET", made.stdout.strip()[len(served.base):]).status == 200
    (served.db.parent / "bad.token").write_text("nope\n")
    refused = iceprobe("link", "--server", served.base, "--admin-token-file",
                       str(served.db.parent / "bad.token"), "--label", "x")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "403 wrong admin token" in refused.stderr


def test_a_hostile_recording_is_stored_inertly_and_shown_escaped(served: Serve,
                                                                 turn: Coturn) -> None:
    link = served.new_link("<b>label</b>")
    upload_id = str(config(served, link)["upload_id"])
    hostile = "<script>alert(1)</script>"
    records = events(turn.url("stun"), turn.url("turn"), turn_error=(701, hostile))
    answer = served.upload(link, upload(upload_id, records, browser="<img src=x onerror=1>"))
    assert answer.status == 200, answer.text
    code = answer.json()["code"]
    for page in (served.admin("/admin"), served.admin(f"/admin/r/{code}")):
        assert page.status == 200
        assert "<script" not in page.text and "<img" not in page.text
        assert "<b>label" not in page.text and "&lt;b&gt;label" in page.text
        policy = page.headers["Content-Security-Policy"]
        assert "script-src 'none'" in policy and "unsafe-inline" not in policy
    detail = served.admin(f"/admin/r/{code}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail  # the errorText, as text
    assert "&lt;img src=x onerror=1&gt;" in detail  # the browser
    shown = iceprobe("results", "--db", str(served.db))
    assert shown.returncode == 0 and code in shown.stdout


def test_no_secret_reaches_the_database_the_pages_or_the_logs(tmp_path: Path,
                                                              turn: Coturn) -> None:
    (tmp_path / "secret").write_text(SECRET + "\n")
    served = start_serve(tmp_path, "--stun", turn.url("stun"), "--turn", turn.url("turn"),
                         "--turn-secret-file", str(tmp_path / "secret"))
    try:
        link = served.new_link("secrets")
        minted = []
        for _ in range(2):
            document = config(served, link)
            servers = document["servers"]
            assert isinstance(servers, list)
            minted.append(servers[1]["credential"])
            records = events(turn.url("stun"), turn.url("turn"))
            assert served.upload(link, upload(str(document["upload_id"]), records)
                                 ).status == 200
        code = served.admin("/admin").text.split("/admin/r/")[1][:7]
        served.admin(f"/admin/r/{code}")
        listed = iceprobe("results", "--db", str(served.db), "--json")
    finally:
        assert served.stop() == 0
    assert "iceprobe serve: stopped" in served.stderr
    database = b"".join(p.read_bytes() for p in tmp_path.glob("results.db*"))
    pages = "".join(a.text for a in served.answers if "/config" not in a.text)
    logs = "".join(served.stdout_lines) + served.stderr + listed.stdout + listed.stderr
    for secret in (SECRET, *minted):
        assert secret.encode() not in database
        assert secret not in logs
    assert SECRET not in pages
    assert "warning" not in served.stderr  # REST credentials: no static-credential warning


def test_static_credentials_warn_and_stay_out_of_the_database_and_logs(
        tmp_path: Path, lab: LabNetwork, coturn: StartCoturn) -> None:
    plain = coturn()
    served = start_serve(tmp_path, "--turn", plain.url("turn"), "-u", LAB_USER, "-p",
                         LAB_PASSWORD, token_file=False)
    try:
        token = next(line.split()[-1] for line in served.stdout_lines
                     if "admin token" in line)
        link_answer = served.admin("/admin/links", token=token, method="POST",
                                   body=b'{"label": "static"}',
                                   headers={"Content-Type": "application/json"})
        link = link_answer.json()["url"][len(served.base):]
        document = config(served, link)
        servers = document["servers"]
        assert isinstance(servers, list)
        assert (servers[0]["username"], servers[0]["credential"]) == (LAB_USER, LAB_PASSWORD)
        records = events("stun:" + plain.url("turn")[5:], plain.url("turn"))[4:]
        assert served.upload(link, upload(str(document["upload_id"]), records)).status == 200
    finally:
        assert served.stop() == 0
    assert "every customer who opens a link sees them" in served.stderr
    database = b"".join(p.read_bytes() for p in tmp_path.glob("results.db*"))
    assert LAB_PASSWORD.encode() not in database
    assert LAB_PASSWORD not in "".join(served.stdout_lines) + served.stderr


def test_two_serve_processes_on_one_database_share_links_and_results(
        tmp_path: Path, turn: Coturn) -> None:
    (tmp_path / "secret").write_text(SECRET + "\n")
    args = ("--stun", turn.url("stun"), "--turn", turn.url("turn"), "--turn-secret-file",
            str(tmp_path / "secret"))
    first = start_serve(tmp_path, *args)
    second = start_serve(tmp_path, *args)
    try:
        link = first.new_link("shared")
        upload_id = str(config(second, link)["upload_id"])  # B verifies A's link
        records = events(turn.url("stun"), turn.url("turn"))
        assert second.upload(link, upload(upload_id, records)).status == 200
        replay = first.upload(link, upload(upload_id, records))
        assert replay.status == 409  # the id B consumed is refused by A as well
        assert first.rows() == 1
    finally:
        assert first.stop() == 0
        assert second.stop() == 0
    restarted = start_serve(tmp_path, *args)
    try:
        assert restarted.request("GET", link).status == 200  # links survive a restart
    finally:
        restarted.stop()
