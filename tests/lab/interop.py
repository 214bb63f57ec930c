"""Independent STUN/TURN servers for the interop lab, started like coturn (servers.py).

- pion/turn 2.1.0: a server program of our own (tests/lab/interop/pionturn/main.go) on
  Debian's golang-github-pion-turn.v2-dev, built offline once per source version into a
  cache directory; UDP and TCP on one port, TLS on another.
- node-turn 0.0.6 and the npm `stun` 2.1.0 server: small launchers of our own
  (tests/lab/interop/node/*.js) on the packages `npm ci` installed from the committed
  lockfile (scripts/test does that; the tests' network namespace has no way out).

Each server listens on the address it is given (the lab's, inside the test's namespace),
prints a "ready" line once listening, and is stopped with SIGTERM, then SIGKILL after a
bound.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.servers import LAB_PASSWORD, LAB_REALM, LAB_USER, free_port, stop_server

INTEROP_DIR = Path(__file__).resolve().parent / "interop"
PION_SOURCE = INTEROP_DIR / "pionturn"
NODE_DIR = INTEROP_DIR / "node"
BUILD_CACHE = Path(os.environ.get("ICEPROBE_INTEROP_BUILD", "/tmp/iceprobe-interop-build"))
#: The versions the lockfile pins; a node_modules with others is stale.
NODE_PACKAGES = {"node-turn": "0.0.6", "stun": "2.1.0"}

# Relay ranges of their own, above coturn's (servers.py counts up from 50000) and above
# Linux's ephemeral ports (32768-60999), so a probe's own sockets never collide with them.
_relay_ports = itertools.count(61000, 16)

READY_BUDGET = 10.0
BUILD_BUDGET = 180.0


class InteropUnavailable(RuntimeError):
    """A server of the interop lab cannot be built or started here."""


@dataclass
class InteropServer:
    #: "pion/turn 2.1.0", "node-turn 0.0.6", "npm stun 2.1.0".
    name: str
    ip: str
    #: Listening port per transport: "udp", "tcp", "tls".
    ports: dict[str, int]
    process: subprocess.Popen[bytes]
    workdir: str
    log_path: str
    relay_ports: tuple[int, int] = (0, 0)
    ready_line: str = field(default="")

    def url(self, kind: str = "turn", transport: str = "udp") -> str:
        """`kind` is stun, turn or turns; `transport` udp, tcp or tls (turns: is tls)."""
        if kind == "turns":
            transport = "tls"
        if transport not in self.ports:
            raise ValueError(f"{self.name} has no {transport} listener")
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        query = "?transport=tcp" if kind == "turn" and transport == "tcp" else ""
        return f"{kind}:{host}:{self.ports[transport]}{query}"

    def log(self) -> str:
        with open(self.log_path, errors="replace") as handle:
            return handle.read()

    def stop(self) -> None:
        stop_server(self.process, self.workdir)


def _source_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*.go")):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_pion() -> Path:
    """The pionturn binary for the current source, built offline (GOPATH mode on Debian's
    packaged Go sources) unless the cache already holds it."""
    go = shutil.which("go")
    if go is None:
        raise InteropUnavailable("go not found: apt-get install golang-go "
                                 "golang-github-pion-turn.v2-dev (scripts/test does)")
    target = BUILD_CACHE / _source_digest(PION_SOURCE) / "pionturn"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(BUILD_CACHE / "build.lock", "w") as lock:
        # Another pytest process may be building the same source right now.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        partial = target.with_suffix(".partial")
        env = {**os.environ, "GO111MODULE": "off", "GOPATH": "/usr/share/gocode",
               "GOPROXY": "off", "GOFLAGS": "", "GOCACHE": str(BUILD_CACHE / "gocache")}
        try:
            done = subprocess.run([go, "build", "-o", str(partial), "."], cwd=PION_SOURCE,
                                  env=env, capture_output=True, text=True,
                                  timeout=BUILD_BUDGET)
        except subprocess.TimeoutExpired as exc:
            raise InteropUnavailable(f"building pionturn took over {BUILD_BUDGET} s") from exc
        if done.returncode != 0:
            raise InteropUnavailable(
                "building pionturn failed (apt-get install golang-go "
                f"golang-github-pion-turn.v2-dev):\n{done.stdout}{done.stderr}")
        partial.rename(target)
    return target


def _check_node_modules() -> str:
    node = shutil.which("node")
    if node is None:
        raise InteropUnavailable("node not found: apt-get install nodejs (scripts/test does)")
    for package, version in NODE_PACKAGES.items():
        manifest = NODE_DIR / "node_modules" / package / "package.json"
        try:
            found = json.loads(manifest.read_text())["version"]
        except (OSError, ValueError, KeyError):
            found = None
        if found != version:
            raise InteropUnavailable(
                f"{package} {version} not installed in {NODE_DIR}/node_modules (found "
                f"{found}): run `npm ci` there (scripts/test does)")
    return node


def _start(name: str, args: list[str], ip: str, ports: dict[str, int],
           relay_ports: tuple[int, int] = (0, 0)) -> InteropServer:
    workdir = tempfile.mkdtemp(prefix="interop-")
    log_path = os.path.join(workdir, "server.log")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    server = InteropServer(name, ip, ports, process, workdir, log_path, relay_ports)
    try:
        server.ready_line = _wait_for_ready_line(server)
    except Exception:
        server.stop()
        raise
    return server


def _wait_for_ready_line(server: InteropServer, budget: float = READY_BUDGET) -> str:
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        for line in server.log().splitlines():
            if line.startswith("ready"):
                return line
        if server.process.poll() is not None:
            raise InteropUnavailable(f"{server.name} exited with {server.process.returncode}:"
                                     f"\n{server.log()[-2000:]}")
        time.sleep(0.02)
    raise InteropUnavailable(f"{server.name} not ready within {budget} s:\n"
                             f"{server.log()[-2000:]}")


def _relay_range() -> tuple[int, int]:
    first = next(_relay_ports)
    return first, first + 15


def start_pion(ip: str, *, users: dict[str, str] | None = None, tcp: bool = True,
               tls: tuple[str, str] | None = None, rest_secret: str | None = None,
               pion_secret: str | None = None, relay_ip: str | None = None,
               log_level: str = "error") -> InteropServer:
    """pion/turn on `ip`: UDP (and TCP unless `tcp` is false) on one port, TLS with the
    (cert, key) files on another; static users (default the lab's alice), coturn-format
    REST credentials with `rest_secret`, pion-format ones with `pion_secret`."""
    binary = build_pion()
    port = free_port()
    relay_ports = _relay_range()
    ports = {"udp": port, **({"tcp": port} if tcp else {})}
    args = [str(binary), "-listen", ip, "-udp-port", str(port),
            "-tcp-port", str(port if tcp else 0), "-realm", LAB_REALM,
            "-relay-ip", relay_ip or ip, "-min-port", str(relay_ports[0]),
            "-max-port", str(relay_ports[1]), "-log-level", log_level]
    if tls is not None:
        ports["tls"] = free_port()
        args += ["-tls-port", str(ports["tls"]), "-cert", tls[0], "-key", tls[1]]
    for name, password in (users if users is not None else {LAB_USER: LAB_PASSWORD}).items():
        args += ["-user", f"{name}={password}"]
    if rest_secret is not None:
        args += ["-rest-secret", rest_secret]
    if pion_secret is not None:
        args += ["-pion-secret", pion_secret]
    return _start("pion/turn 2.1.0", args, ip, ports, relay_ports)


def start_node_turn(ip: str, *, users: dict[str, str] | None = None,
                    relay_ip: str | None = None) -> InteropServer:
    """node-turn on `ip` over UDP with long-term credentials for `users` (default the lab's
    alice; an empty dict makes an open server, without authentication)."""
    node = _check_node_modules()
    port = free_port()
    relay_ports = _relay_range()
    args = [node, str(NODE_DIR / "turnserver.js"), "--ip", ip, "--port", str(port),
            "--relay-ip", relay_ip or ip, "--min-port", str(relay_ports[0]),
            "--max-port", str(relay_ports[1]), "--realm", LAB_REALM]
    for name, password in (users if users is not None else {LAB_USER: LAB_PASSWORD}).items():
        args += ["--user", f"{name}={password}"]
    return _start("node-turn 0.0.6", args, ip, {"udp": port}, relay_ports)


def start_stun_server(ip: str, *, mismatched_ids: bool = False) -> InteropServer:
    """The npm `stun` server on `ip` over UDP; with `mismatched_ids` it answers every
    request with a fresh transaction id."""
    node = _check_node_modules()
    port = free_port()
    args = [node, str(NODE_DIR / "stunserver.js"), "--ip", ip, "--port", str(port),
            "--mismatched-ids", "yes" if mismatched_ids else "no"]
    return _start("npm stun 2.1.0", args, ip, {"udp": port})
