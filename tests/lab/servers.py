"""Servers for the lab: real coturn, and small responders of our own."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

LAB_USER = "alice"
LAB_PASSWORD = "lab-secret-Zq7"
LAB_REALM = "lab"

# Every server in the lab gets ports of its own: coturn binds with SO_REUSEPORT, so two
# servers on one port would silently share the traffic.
_listening_ports = itertools.count(40000, 2)
_relay_ports = itertools.count(50000, 32)
#: Relay ranges of a size a test chooses (relay_range): below the kernel's ephemeral ports
#: (32768 on), so that no client socket of the test takes one of them.
_sized_relay_ports = itertools.count(20000, 256)


def free_port() -> int:
    """A port number no lab server uses (nothing listens on it)."""
    return next(_listening_ports)


def relay_range(count: int) -> tuple[int, int]:
    """A relay port range of `count` ports (at most 256) that no other lab server uses, for
    start_coturn's `relay_ports`."""
    if not 1 <= count <= 256:
        raise ValueError(f"a relay range of {count} ports")
    first = next(_sized_relay_ports)
    return first, first + count - 1


@dataclass
class Coturn:
    ip: str
    port: int
    process: subprocess.Popen[bytes]
    workdir: str
    log_path: str
    extra: tuple[str, ...] = field(default=())
    #: The relay port range, first and last.
    relay_ports: tuple[int, int] = (0, 0)

    def url(self, scheme: str = "turn", host: str | None = None, query: str = "") -> str:
        host = host or (f"[{self.ip}]" if ":" in self.ip else self.ip)
        port = self.port + 1 if scheme.endswith("s") else self.port  # the TLS listener
        return f"{scheme}:{host}:{port}{query}"

    def log(self) -> str:
        with open(self.log_path, errors="replace") as handle:
            return handle.read()

    def stop(self) -> None:
        stop_server(self.process, self.workdir)


def start_coturn(ip: str, *extra: str, user: str = LAB_USER,
                 password: str = LAB_PASSWORD, tls: tuple[str, str] | None = None,
                 relay_ip: str | None = None, port: int | None = None,
                 relay_ports: tuple[int, int] | None = None) -> Coturn:
    """Start a foreground coturn on `ip` and wait until it answers; its own listening port
    and a range of 32 relay ports unless `port` and `relay_ports` say otherwise."""
    binary = shutil.which("turnserver")
    if binary is None:
        raise RuntimeError("turnserver not found: apt-get install coturn (scripts/test does)")
    port = next(_listening_ports) if port is None else port
    if relay_ports is None:
        first = next(_relay_ports)
        relay_ports = (first, first + 31)
    workdir = tempfile.mkdtemp(prefix="coturn-")
    empty_conf = os.path.join(workdir, "empty.conf")
    open(empty_conf, "w").close()
    log_path = os.path.join(workdir, "turn.log")
    args = [
        binary, "-c", empty_conf, "-n",
        f"--listening-ip={ip}", f"--listening-port={port}", f"--relay-ip={relay_ip or ip}",
        f"--min-port={relay_ports[0]}", f"--max-port={relay_ports[1]}",
        f"--realm={LAB_REALM}", "--lt-cred-mech", f"--user={user}:{password}",
        *(("--no-tls",) if tls is None else
          (f"--cert={tls[0]}", f"--pkey={tls[1]}", f"--tls-listening-port={port + 1}")),
        "--no-dtls", "--no-cli", "--allow-loopback-peers",
        "--log-file=stdout", "--simple-log",
        f"--userdb={workdir}/db.sqlite", f"--pidfile={workdir}/turn.pid",
        *extra,
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    server = Coturn(ip, port, process, workdir, log_path, extra, relay_ports)
    try:
        _wait_until_answering(server)
    except Exception:
        server.stop()
        raise
    return server


def _wait_until_answering(server: Coturn, budget: float = 10.0) -> None:
    family = socket.AF_INET6 if ":" in server.ip else socket.AF_INET
    if "--no-udp" in server.extra:
        _wait_until_accepting(server, family, budget)
        return
    request = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, os.urandom(12))
    deadline = time.monotonic() + budget
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.05)
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"coturn exited with {server.process.returncode}:\n"
                                   f"{server.log()[-2000:]}")
            try:
                sock.sendto(request, (server.ip, server.port))
                if sock.recv(2048)[8:20] == request[8:20]:
                    return
            except OSError:
                time.sleep(0.02)
    raise RuntimeError(f"coturn did not answer within {budget} s:\n{server.log()[-2000:]}")


def _wait_until_accepting(server: Coturn, family: int, budget: float) -> None:
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"coturn exited with {server.process.returncode}:\n"
                               f"{server.log()[-2000:]}")
        try:
            with socket.create_connection((server.ip, server.port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"coturn did not accept TCP within {budget} s:\n{server.log()[-2000:]}")


class SilentServer:
    """A UDP socket that receives and never answers, like a server behind a firewall that
    drops replies."""

    def __init__(self, ip: str) -> None:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        self.ip = ip
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((ip, 0))
        self.port = int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()


#: How long a server gets to stop on SIGTERM before it is killed (and again after the kill).
STOP_BUDGET = 5.0


def stop_server(process: subprocess.Popen[bytes], workdir: str) -> None:
    """Stop a server started by a test (SIGTERM, then SIGKILL: bounded either way) and
    remove its working directory."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_BUDGET)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_BUDGET)
    shutil.rmtree(workdir, ignore_errors=True)
