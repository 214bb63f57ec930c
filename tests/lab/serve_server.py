"""`iceprobe serve` as a subprocess for the lab tests, and a small HTTP client for it
(urllib: real HTTP on loopback inside the test's namespace)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ADMIN_TOKEN = "lab-admin-token-Q9x3"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Serve:
    process: subprocess.Popen[str]
    base: str
    db: Path
    stdout_lines: list[str]
    stderr_path: Path
    answers: list[Answer] = field(default_factory=list)
    #: Trust anchors for an https server (its lab CA); None for http.
    context: ssl.SSLContext | None = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        request = urllib.request.Request(self.base + path, data=body, method=method,
                                         headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30,
                                        context=self.context) as response:
                answer = Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            answer = Answer(exc.code, dict(exc.headers), exc.read())
        self.answers.append(answer)
        return answer

    def admin(self, path: str, token: str = ADMIN_TOKEN, **kwargs: Any) -> Answer:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return self.request(kwargs.pop("method", "GET"), path, headers=headers, **kwargs)

    def new_link(self, label: str, expires_in: int = 3600) -> str:
        answer = self.admin("/admin/links", method="POST",
                            body=json.dumps({"label": label, "expires_in": expires_in}
                                            ).encode(),
                            headers={"Content-Type": "application/json"})
        assert answer.status == 200, answer.text
        url: str = answer.json()["url"]
        assert url.startswith(self.base + "/t/")
        return url[len(self.base):]

    def upload(self, link: str, body: bytes, content_type: str = "application/json"
               ) -> Answer:
        return self.request("POST", f"{link}/upload", body=body,
                            headers={"Content-Type": content_type})

    def rows(self) -> int:
        with sqlite3.connect(self.db) as db:
            count: int = db.execute("SELECT count(*) FROM results").fetchone()[0]
        return count

    def link_key(self) -> bytes:
        with sqlite3.connect(self.db) as db:
            key: bytes = db.execute("SELECT value FROM meta WHERE name = 'link_key'"
                                    ).fetchone()[0]
        return key

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(5)
        assert self.process.stdout is not None
        self.stdout_lines += self.process.stdout.readlines()
        return code

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def start_serve(tmp_path: Path, *args: str, token_file: bool = True,
                ca: Path | None = None) -> Serve:
    """Start `python3 -m iceprobe serve` on a free loopback port; wait until it listens.
    `ca`: the CA of its --tls-cert, which the returned Serve's requests then trust."""
    db = tmp_path / "results.db"
    extra = []
    if token_file:
        (tmp_path / "admin.token").write_text(ADMIN_TOKEN + "\n")
        extra = ["--admin-token-file", str(tmp_path / "admin.token")]
    stderr_path = tmp_path / "serve.stderr"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "iceprobe", "serve", "--listen", "127.0.0.1:0",
             "--db", str(db), *extra, *args],
            stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True,
            env={**os.environ})
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("iceprobe serve: results in"):
            break
    listening = [line for line in lines if "listening on" in line]
    if not listening:
        process.kill()
        raise AssertionError(f"serve did not start: {lines} {stderr_path.read_text()}")
    base = listening[0].split("listening on ")[1].strip()
    context = None if ca is None else ssl.create_default_context(cafile=str(ca))
    return Serve(process, base, db, lines, stderr_path, context=context)
