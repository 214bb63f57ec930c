"""A real Prometheus for the exporter lab: Debian's package unpacked by scripts/test into a
cache directory (or one on PATH), run in the foreground with a temporary storage path, and
queried over its HTTP API. Plus `iceprobe exporter` as a subprocess on a lab address."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.lab.ci import unavailable
from tests.lab.servers import LAB_PASSWORD, free_port, stop_server

CACHE = Path(os.environ.get("ICEPROBE_PROMETHEUS_DIR") or Path(
    os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "iceprobe-test" / "prometheus")


def binary(name: str) -> str:
    """prometheus or promtool: on PATH, else where scripts/test unpacked them; a skip (a
    failure under CI=true) when neither has it."""
    found = shutil.which(name)
    if found is None and (CACHE / "usr" / "bin" / name).exists():
        found = str(CACHE / "usr" / "bin" / name)
    if found is None:
        unavailable(f"{name} not found (scripts/test unpacks Debian's prometheus into {CACHE})",
                    "exporter lab tests")
    return found


def http(url: str, method: str = "GET", timeout: float = 10.0,
         headers: dict[str, str] | None = None) -> tuple[int, str]:
    """Status and body of one request (an HTTP error status is a value, not a raise)."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@dataclass
class Exporter:
    process: subprocess.Popen[bytes]
    base: str
    workdir: str

    def get(self, path: str, **kwargs: Any) -> tuple[int, str]:
        return http(self.base + path, **kwargs)

    def stderr(self) -> str:
        return Path(self.workdir, "stderr").read_text(errors="replace")

    def stop(self) -> None:
        stop_server(self.process, self.workdir)


def start_exporter(config: Path, ip: str, env: dict[str, str]) -> Exporter:
    """`iceprobe exporter -c CONFIG --listen IP:0`, once it says where it listens."""
    workdir = tempfile.mkdtemp(prefix="exporter-")
    out = open(Path(workdir, "stdout"), "wb")  # noqa: SIM115 (the process keeps it)
    err = open(Path(workdir, "stderr"), "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "iceprobe", "exporter", "-c", str(config), "--listen",
         f"{ip}:0"], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
        env={**os.environ, **env})
    out.close()
    err.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = Path(workdir, "stdout").read_text(errors="replace")
        match = re.search(r"listening on (http://\S+)", text)
        if match:
            return Exporter(process, match.group(1), workdir)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    stderr = Path(workdir, "stderr").read_text(errors="replace")
    stop_server(process, workdir)
    raise AssertionError(f"iceprobe exporter did not start: {stderr[-2000:]}")


@dataclass
class Prometheus:
    process: subprocess.Popen[bytes]
    base: str
    workdir: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        status, body = http(f"{self.base}/api/v1/query?"
                            f"{urllib.parse.urlencode({'query': expr})}")
        assert status == 200, body
        document = json.loads(body)
        assert document["status"] == "success", document
        result: list[dict[str, Any]] = document["data"]["result"]
        return result

    def wait_for(self, expr: str, count: int = 1, budget: float = 30.0
                 ) -> list[dict[str, Any]]:
        """The query's result once it has at least `count` series (else AssertionError)."""
        deadline = time.monotonic() + budget
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if len(result) >= count:
                return result
            time.sleep(0.25)
        raise AssertionError(f"{expr}: {len(result)} series after {budget} s: {result}; "
                             f"log: {self.log()[-2000:]}")

    def log(self) -> str:
        return Path(self.workdir, "prometheus.log").read_text(errors="replace")

    def stop(self) -> None:
        stop_server(self.process, self.workdir)


def start_prometheus(config: str) -> Prometheus:
    """Prometheus with this scrape config, temporary storage, on a loopback port."""
    workdir = tempfile.mkdtemp(prefix="prometheus-")
    Path(workdir, "prometheus.yml").write_text(config)
    port = free_port()
    with open(Path(workdir, "prometheus.log"), "wb") as log:
        process = subprocess.Popen(
            [binary("prometheus"), f"--config.file={workdir}/prometheus.yml",
             f"--storage.tsdb.path={workdir}/data", f"--web.listen-address=127.0.0.1:{port}",
             "--web.enable-lifecycle"], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=workdir)
    server = Prometheus(process, f"http://127.0.0.1:{port}", workdir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if http(f"{server.base}/-/ready", timeout=1)[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.1)
    log_text = server.log()
    server.stop()
    raise AssertionError(f"prometheus did not become ready: {log_text[-2000:]}")


#: The environment of the exporters the lab tests start: the fleet files' secrets.
REST_SECRET = "rest-shared-secret-Kq4"
ENV = {"TURN_PASSWORD": LAB_PASSWORD, "WRONG_PASSWORD": "not-the-password-Xw3",
       "REST_SECRET": REST_SECRET}


def probe(exporter: Exporter, query: str, timeout: str = "5") -> tuple[int, str]:
    return exporter.get(f"/probe?{query}",
                        headers={"X-Prometheus-Scrape-Timeout-Seconds": timeout})


def sample(text: str, name: str) -> float | None:
    """The value of the first sample of `name` (with any labels) in an exposition."""
    for line in text.splitlines():
        if line.startswith((name + " ", name + "{")):
            return float(line.rsplit(" ", 1)[1])
    return None
