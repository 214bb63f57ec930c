"""The benchmark's own network: a namespace, coturn, and small UDP servers of our own.

Standard library only: the benchmark builds its lab before it knows whether iceprobe's
dependencies are installed. Everything here stays inside network and mount namespaces that this
process creates: a veth pair with BENCH_IPV4 and BENCH_IPV6 plus loopback. /etc/resolv.conf and
/etc/hosts are bind-mounted in the private mount namespace; the resolver they name is our own
NXDOMAIN responder on DNS_ADDRESS, so no lookup ever reaches a real resolver.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import heapq
import itertools
import os
import selectors
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000

#: RFC 2544's benchmarking range, inside our own namespace only.
BENCH_IPV4 = "198.18.0.10"
BENCH_IPV6 = "fd00:b::10"
DNS_ADDRESS = "127.0.0.53"
#: A name our resolver answers with NXDOMAIN.
MISSING_NAME = "nonexistent.bench.test"
USER = "bench"
PASSWORD = "bench-secret-9"
REALM = "bench"

HOSTS = "127.0.0.1 localhost\n::1 localhost\n"
RESOLV_CONF = f"nameserver {DNS_ADDRESS}\noptions timeout:1 attempts:1\n"

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_RESPONSE = 0x0101
XOR_MAPPED_ADDRESS = 0x0020


class LabError(Exception):
    """The benchmark's lab cannot be built here (not root, no iproute2, ...)."""


@dataclass(frozen=True)
class Network:
    ipv4: str
    ipv6: str
    workdir: str


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        raise LabError(f"{what} failed: {os.strerror(ctypes.get_errno())}")


def _ip(command: str) -> None:
    done = subprocess.run(command.split(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LabError(f"`{command}` failed: {done.stderr.strip()}")


def enter_namespace() -> Network:
    """Move this process into new network and mount namespaces and build the network there.

    Must run before this process starts any thread: unshare(CLONE_NEWNS) refuses a
    multithreaded process. Child processes inherit both namespaces."""
    if os.geteuid() != 0:
        raise LabError("the benchmark needs root (network namespaces, coturn)")
    if shutil.which("ip") is None:
        raise LabError("iproute2's `ip` is missing")
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNET | CLONE_NEWNS), "unshare(CLONE_NEWNET|CLONE_NEWNS)")
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "making / private")
    workdir = tempfile.mkdtemp(prefix="iceprobe-bench-")
    for name, text in (("hosts", HOSTS), ("resolv.conf", RESOLV_CONF)):
        path = os.path.join(workdir, name)
        with open(path, "w") as handle:
            handle.write(text)
        _check(libc.mount(path.encode(), f"/etc/{name}".encode(), None, MS_BIND, None),
               f"bind-mounting /etc/{name}")
    for command in (
        "ip link set lo up",
        "ip link add bench0 type veth peer name bench1",
        "ip link set bench1 up",
        f"ip addr add {BENCH_IPV4}/24 dev bench0",
        f"ip -6 addr add {BENCH_IPV6}/64 dev bench0 nodad",
        "ip link set bench0 up",
    ):
        _ip(command)
    return Network(BENCH_IPV4, BENCH_IPV6, workdir)


# --- wire formats of our own small servers ---------------------------------------------------

def binding_reply(request: bytes, peer: tuple[str, int]) -> bytes | None:
    """A STUN Binding success response with XOR-MAPPED-ADDRESS (RFC 8489 sections 6.3.3 and
    14.2) for a Binding request; None for anything else."""
    if len(request) < 20:
        return None
    kind, _length, cookie = struct.unpack_from("!HHI", request, 0)
    if kind != BINDING_REQUEST or cookie != MAGIC_COOKIE:
        return None
    transaction_id = request[8:20]
    host, port = peer
    xport = port ^ (MAGIC_COOKIE >> 16)
    if ":" in host:
        raw = socket.inet_pton(socket.AF_INET6, host.split("%")[0])
        mask = struct.pack("!I", MAGIC_COOKIE) + transaction_id
        value = struct.pack("!BBH", 0, 2, xport) + bytes(a ^ b for a, b in zip(raw, mask,
                                                                               strict=True))
    else:
        (address,) = struct.unpack("!I", socket.inet_aton(host))
        value = struct.pack("!BBHI", 0, 1, xport, address ^ MAGIC_COOKIE)
    attribute = struct.pack("!HH", XOR_MAPPED_ADDRESS, len(value)) + value
    return struct.pack("!HHI", BINDING_RESPONSE, len(attribute), MAGIC_COOKIE) + \
        transaction_id + attribute


def nxdomain_reply(query: bytes, peer: tuple[str, int]) -> bytes | None:
    """The answer to a DNS query (RFC 1035 section 4.1.1): same id and question, QR=1,
    RD copied, RA=1, RCODE=3 (NXDOMAIN)."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack_from("!HHH", query, 0)
    reply_flags = 0x8000 | (flags & 0x0100) | 0x0080 | 3
    return struct.pack("!HHHHHH", ident, reply_flags, qdcount, 0, 0, 0) + query[12:]


Handler = Callable[[bytes, tuple[str, int]], bytes | None]


class UdpServers:
    """UDP sockets served by one thread: each answers with its handler's reply (None: stays
    silent; a silent socket keeps its port taken, so no ICMP error comes back), at once or
    after a fixed delay, as a server far away would."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._sockets: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        #: Replies waiting for their time: (due, sequence, socket, reply, peer).
        self._due: list[tuple[float, int, socket.socket, bytes, tuple[str, int]]] = []
        self._sequence = itertools.count()

    def add(self, address: str, port: int, handler: Handler | None, delay: float = 0.0) -> int:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((address, port))
        sock.setblocking(False)
        self._sockets.append(sock)
        if handler is not None:
            self._selector.register(sock, selectors.EVENT_READ, (handler, delay))
        return int(sock.getsockname()[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="bench-udp", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            wait = 0.1 if not self._due else max(0.0, min(0.1, self._due[0][0] - time.monotonic()))
            for key, _events in self._selector.select(timeout=wait):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                handler, delay = key.data
                while True:
                    try:
                        data, peer = sock.recvfrom(4096)
                    except OSError:  # drained (BlockingIOError) or closed
                        break
                    address = (str(peer[0]), int(peer[1]))
                    reply = handler(data, address)
                    if reply is not None:
                        heapq.heappush(self._due, (time.monotonic() + delay,
                                                   next(self._sequence), sock, reply, address))
            while self._due and self._due[0][0] <= time.monotonic():
                _due, _sequence, sock, reply, address = heapq.heappop(self._due)
                with contextlib.suppress(OSError):
                    sock.sendto(reply, address)

    def close(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._selector.close()
        for sock in self._sockets:
            sock.close()


# --- coturn ----------------------------------------------------------------------------------

@dataclass
class Coturn:
    ip: str
    port: int
    process: subprocess.Popen[bytes]
    workdir: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def coturn_version() -> str:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "coturn"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def start_coturn(ip: str, port: int, workdir: str, relay_ports: tuple[int, int]) -> Coturn:
    """A foreground coturn on ip:port (UDP and TCP, no TLS), long-term credentials USER /
    PASSWORD; waits until it answers a Binding request."""
    binary = shutil.which("turnserver")
    if binary is None:
        raise LabError("turnserver not found (apt-get install coturn)")
    empty = os.path.join(workdir, "empty.conf")
    open(empty, "w").close()
    args = [
        binary, "-c", empty, "-n",
        f"--listening-ip={ip}", f"--listening-port={port}", f"--relay-ip={ip}",
        f"--min-port={relay_ports[0]}", f"--max-port={relay_ports[1]}",
        f"--realm={REALM}", "--lt-cred-mech", f"--user={USER}:{PASSWORD}",
        "--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers",
        "--log-file=stdout", "--simple-log",
        f"--userdb={workdir}/turn.sqlite", f"--pidfile={workdir}/turn.pid",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL)
    server = Coturn(ip, port, process, workdir)
    request = struct.pack("!HHI12s", BINDING_REQUEST, 0, MAGIC_COOKIE, os.urandom(12))
    deadline = time.monotonic() + 10
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.05)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LabError(f"coturn exited with {process.returncode}")
            try:
                sock.sendto(request, (ip, port))
                if sock.recv(2048)[8:20] == request[8:20]:
                    return server
            except OSError:
                time.sleep(0.02)
    server.stop()
    raise LabError("coturn did not answer within 10 s")
