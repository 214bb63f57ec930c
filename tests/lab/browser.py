"""Headless Chromium as a reference client, behind a NAT inside the lab (issue 9).

`lan_namespace()` builds, inside the lab's network namespace (tests/lab/netns.py), a child
namespace `iceprobe-lan-<pid>` joined to the lab by a veth pair: 10.77.0.2/24 inside, default
route via 10.77.0.1 on the lab side. An nftables `nat` chain on the lab's *input* hook
source-NATs what 10.77.0.2 sends to any lab address except the gateway to 198.18.0.77. The
lab's servers are local to the lab namespace, so those packets are delivered, not forwarded,
and a postrouting masquerade would never see them. No extra address is needed: conntrack
undoes the NAT on the replies, and on the ICMP errors too (iceprobe still sees a closed port
as `unreachable` within milliseconds). A STUN server in the lab maps the client to
198.18.0.77, an address no interface of the client has. That matters because Chromium does not
signal a srflx equal to a host address. The lan's own resolver (`RecordingResolver`, NXDOMAIN
for every name, on 10.77.0.1:53) is bind-mounted as /etc/resolv.conf for each command started
with `run_in_lan` / `LanNamespace.run`. Every lookup made in the lan, Chromium's included, goes
there, and the lab namespace has no route out.

`chromium_gather()` runs Debian's Chromium in the lan with the flags of issue 9, loading
parity_page.html from a small HTTP server on 10.77.0.1. The page gathers with the given
iceServers and posts back every icecandidate and icecandidateerror.

What Chromium 156 (Debian 156.0.8078.108) reported against coturn 4.6 in this lab, iceServers
as IP literals, times in ms after setLocalDescription (S = stun:198.18.0.10:P,
T = turn:198.18.0.10:P, Chromium spells T as `T?transport=udp`):

scenario                 url  what Chromium reported                                  at ms
(a) S + T, good password S    srflx 198.18.0.77 (raddr 0.0.0.0)                       ~30-60
                         T    relay, relayProtocol udp, raddr 198.18.0.77              ~85-105
                              gathering complete, no error                             ~130-165
    (T only, good)       S    srflx (T used as a STUN server), T relay: the same
(b) T only, wrong pw     S    srflx (T used as a STUN server)                          ~40-100
                         T    401 "Unauthorized."                                      ~105-170
                              complete                                                 ~160-180
(c) S + T at             S    701 "STUN host lookup received error." twice (IPv4, IPv6) ~70
    nonexistent.lab.test T    701 "TURN host lookup received error." twice (IPv4, IPv6) ~115
    :3478                     no candidate; complete                                   ~160-185
(d) T?transport=tcp      T    relay, relayProtocol tcp (no srflx: TCP is not used as   ~80-115
                              STUN); no error; complete                                ~150-175
(e) S + T on a closed    S    701 "STUN binding request timed out."                    39900-39915
    UDP port             T    701 "TURN allocate request timed out."                   39965-39975
                              no candidate; complete                                   39970
TCP and TLS (issue 15; C = turn:…?transport=tcp, L = turns:, which Chromium names
`L?transport=tcp`; "null" = the event's address and port are null, else they are the masked
local address and port):
(f) C, refused port      C    701 "Failed to establish connection", null               75-375
(g) C, accepted, silent  C    701 "TURN allocate request timed out.", address and port 40180
(h) L, untrusted cert    L    701 "Failed to establish connection", null               310-910
(i) L, cert for another  L    701 "Failed to establish connection", null               210-340
    name, CA trusted
(j) L, CA trusted        L    relay, relayProtocol tls; no error                       ~290
(k) L, accepted, TLS     L    701 "Failed to establish connection", null               30080
    never answered
(l) stuns:IP:P, P the    S'   srflx under stun:IP:P (plain STUN over UDP); no error    ~700
    UDP port of coturn

Measured outside the test scenarios (the same lab, by hand):
- C, the server accepts and closes at once: "Failed to establish connection", null, 80 ms.
  It reads the Allocate, then closes: the same text with address and port, 1.1 s. It answers
  HTTP, then closes: the same, with address and port, 1.3 s.
- C, SYNs dropped (nftables drop on the port): no event, and gathering never completed, in
  310 s.
- L, a refused port: "Failed to establish connection", null, 75 ms. L at coturn's plain TCP
  port (no TLS there): the same after 30.3 s.
- stuns:IP (no port): srflx under stun:IP:3478, so the default port is 3478, not 5349.
  stuns: at a port where nothing answers over UDP: 701 "STUN binding request timed out." on
  stun:IP:P after 40.4 s.
- The CA is trusted through the run's own NSS database ($HOME/.pki/nssdb, `trust_ca`), which
  Chromium on Linux honours for TURN over TLS too.

Measured outside the test scenarios:
- The error text is Chromium's own, not the server's reason phrase. coturn says
  "Unauthorized" and Chromium reports "Unauthorized."; a 442 (--no-udp-relay) and a 486
  (--user-quota=1) are both reported as "TURN allocate error.".
- A separate STUN server A plus TURN server B: one srflx only, under A's URL. The NAT maps both
  to the same address and port, and Chromium signals a candidate once.

Notes:
- The lookup errors fire once per local address family: IPv4 ("0.0.0.x") and IPv6
  ("[0:0:0:x:x:x:x:x]"), although the lan has no IPv6 address besides ::1 and link-local.
- Every run also has one UDP host candidate under an mDNS name (`<uuid>.local`), never its
  address (getStats() gives ""), and srflx candidates carry raddr 0.0.0.0. Parity therefore
  compares srflx and relay only.
- RTCIceCandidate.relayProtocol is undefined in this Chromium; getStats()'s local-candidate
  entries carry relayProtocol (udp or tcp), and `_parse_result` takes it from there.
- Even with --disable-background-networking, Chromium looks up clients2.google.com,
  update.googleapis.com and accounts.google.com: the lan resolver answers NXDOMAIN. It also
  sends an mDNS announcement and a few multicast packets. All of it ends in the lab namespace.
- Start-up to kill costs about 1.5 s a run on top of the gathering itself.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.lab.dns import nxdomain_reply
from tests.lab.udpserver import UdpThreadServer

#: The client's address inside the lan namespace, and the lab side of its veth pair.
LAN_ADDRESS = "10.77.0.2"
LAN_GATEWAY = "10.77.0.1"
#: What the lan's packets to the lab look like once NATed: the mapped (srflx) address.
NAT_ADDRESS = "198.18.0.77"
#: The lab-side and lan-side ends of the veth pair (names inside the lab namespace).
#: The lab side of the pair is the link the lan's packets arrive on in the lab namespace.
LAB_LINK, _LAN_LINK = "iplan0", "iplan1"
_NFT_TABLE = "iceprobe_lan"
_NETNS_DIR = "/run/netns"

PAGE = Path(__file__).with_name("parity_page.html")
#: Exactly the flags of issue 9 / shared/LAB.md, plus a fresh --user-data-dir per run.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync")


class BrowserLabUnavailable(Exception):
    """The lan namespace or Chromium cannot be had on this machine (the reason says why)."""


def _run(command: Sequence[str]) -> None:
    done = subprocess.run(list(command), capture_output=True, text=True)
    if done.returncode != 0:
        raise BrowserLabUnavailable(f"`{' '.join(command)}` failed: {done.stderr.strip()}")


def _quiet(command: Sequence[str]) -> None:
    """A teardown step: its failure must not hide the rest of the teardown."""
    subprocess.run(list(command), capture_output=True)


class RecordingResolver(UdpThreadServer):
    """The lan's DNS server: NXDOMAIN for everything, and the names it was asked about, so a
    test can show that lookups reached this resolver and nothing else."""

    def __init__(self, address: str) -> None:
        self.names: list[str] = []
        super().__init__(address, 53, self._answer, "lan-dns")

    def _answer(self, query: bytes, peer: tuple[str, int]) -> bytes | None:
        self.names.append(_question_name(query))
        return nxdomain_reply(query)


def _question_name(query: bytes) -> str:
    labels, offset = [], 12
    while offset < len(query) and query[offset] != 0:
        length = query[offset]
        labels.append(query[offset + 1:offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    return ".".join(labels)


@dataclass
class LanNamespace:
    """A network namespace behind a NAT, inside the lab namespace.

    Its only interface is one end of a veth pair (10.77.0.2/24, default route via 10.77.0.1,
    the other end, in the lab namespace). Packets it sends to any lab address are
    source-NATed to 198.18.0.77 when the lab namespace receives them, so a STUN server in the
    lab maps it to an address that no interface of the client has."""

    name: str
    workdir: str
    resolver: RecordingResolver
    address: str = LAN_ADDRESS
    gateway: str = LAN_GATEWAY
    nat_address: str = NAT_ADDRESS

    @property
    def resolv_conf(self) -> str:
        return os.path.join(self.workdir, "resolv.conf")

    def argv(self, argv: Sequence[str]) -> list[str]:
        """`argv` wrapped to run inside the namespace, with the lan's /etc/resolv.conf.

        `ip netns exec` gives the command a mount namespace of its own, so the bind mount
        affects that command only (and /etc/netns, which the host would see, is not used)."""
        return ["ip", "netns", "exec", self.name, "/bin/sh", "-c",
                'mount --bind "$0" /etc/resolv.conf && exec "$@"', self.resolv_conf,
                *argv]

    def run(self, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        return subprocess.run(self.argv(argv), **kwargs)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(self.argv(argv), **kwargs)


_active: LanNamespace | None = None


def run_in_lan(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """subprocess.run(argv, **kwargs) inside the lan namespace that is up now."""
    return active_lan().run(argv, **kwargs)


def active_lan() -> LanNamespace:
    if _active is None:
        raise RuntimeError("no lan namespace is up (use the lan_namespace() context manager)")
    return _active


@contextmanager
def lan_namespace() -> Iterator[LanNamespace]:
    """Build the lan namespace, its veth pair, the NAT and its resolver; tear all down after.

    Runs in the lab namespace (tests/lab/netns.py) as root; needs iproute2 and nftables."""
    global _active
    for tool in ("ip", "nft", "mount"):
        if shutil.which(tool) is None:
            raise BrowserLabUnavailable(f"`{tool}` is missing (scripts/test installs it)")
    name = f"iceprobe-lan-{os.getpid()}"
    workdir = tempfile.mkdtemp(prefix="iceprobe-lan-")
    with open(os.path.join(workdir, "resolv.conf"), "w") as handle:
        handle.write(f"nameserver {LAN_GATEWAY}\noptions timeout:1 attempts:1\n")
    undo: list[list[str]] = []
    resolver: RecordingResolver | None = None
    try:
        # A tmpfs of this (private) mount namespace over /run/netns: the namespace's name
        # file then never appears on the host, not even if this process dies.
        os.makedirs(_NETNS_DIR, exist_ok=True)
        _run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=755", "iceprobe-netns",
              _NETNS_DIR])
        undo.append(["umount", "-l", _NETNS_DIR])
        _run(["ip", "netns", "add", name])
        undo.append(["ip", "netns", "delete", name])
        _run(["ip", "link", "add", LAB_LINK, "type", "veth", "peer", "name", _LAN_LINK])
        undo.append(["ip", "link", "delete", LAB_LINK])
        for command in (
            ["ip", "link", "set", _LAN_LINK, "netns", name],
            ["ip", "addr", "add", f"{LAN_GATEWAY}/24", "dev", LAB_LINK],
            ["ip", "link", "set", LAB_LINK, "up"],
            ["ip", "-n", name, "link", "set", "lo", "up"],
            ["ip", "-n", name, "addr", "add", f"{LAN_ADDRESS}/24", "dev", _LAN_LINK],
            ["ip", "-n", name, "link", "set", _LAN_LINK, "up"],
            ["ip", "-n", name, "route", "add", "default", "via", LAN_GATEWAY],
        ):
            _run(command)
        # The lab's servers are local to the lab namespace: the lan's packets to them are
        # delivered, not forwarded, so the NAT happens on the input hook, not postrouting.
        # Conntrack undoes it on the replies (and on ICMP errors about the packets).
        _run(["nft", "add", "table", "ip", _NFT_TABLE])
        undo.append(["nft", "delete", "table", "ip", _NFT_TABLE])
        _run(["nft", "add", "chain", "ip", _NFT_TABLE, "input",
              "{ type nat hook input priority 100 ; }"])
        _run(["nft", "add", "rule", "ip", _NFT_TABLE, "input", "ip", "saddr", LAN_ADDRESS,
              "ip", "daddr", "!=", LAN_GATEWAY, "snat", "to", NAT_ADDRESS])
        resolver = RecordingResolver(LAN_GATEWAY)
        lan = LanNamespace(name, workdir, resolver)
        _active = lan
        yield lan
    finally:
        _active = None
        if resolver is not None:
            resolver.close()
        for command in reversed(undo):
            _quiet(command)
        shutil.rmtree(workdir, ignore_errors=True)


# --- STUN binding from inside the lan, to check the NAT -------------------------------------

_BINDING_SCRIPT = r"""
import os, socket, struct, sys
server = (sys.argv[1], int(sys.argv[2]))
tid = os.urandom(12)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(2)
sock.sendto(struct.pack("!HHI12s", 1, 0, 0x2112A442, tid), server)
data = sock.recv(2048)
assert data[8:20] == tid, "not our transaction"
offset = 20
while offset + 4 <= len(data):
    kind, length = struct.unpack_from("!HH", data, offset)
    if kind == 0x0020:  # XOR-MAPPED-ADDRESS, RFC 5389 section 15.2
        port = struct.unpack_from("!H", data, offset + 6)[0] ^ 0x2112
        raw = struct.unpack_from("!I", data, offset + 8)[0] ^ 0x2112A442
        print(socket.inet_ntoa(struct.pack("!I", raw)), port, sock.getsockname()[0])
        break
    offset += 4 + length + (-length % 4)
"""


def mapped_address(lan: LanNamespace, server: tuple[str, int]) -> tuple[str, str]:
    """(the mapped address a STUN Binding from the lan gets from `server`, the local address
    it was sent from)."""
    done = lan.run([sys.executable, "-c", _BINDING_SCRIPT, server[0], str(server[1])],
                   capture_output=True, text=True, timeout=10)
    if done.returncode != 0 or not done.stdout.strip():
        raise AssertionError(f"STUN binding from the lan failed: {done.stderr}")
    mapped, _port, local = done.stdout.split()
    return mapped, local


# --- Chromium --------------------------------------------------------------------------------


def chromium_binary() -> str | None:
    """Debian's Chromium binary itself (its /usr/bin/chromium launcher adds flags of its own:
    extensions, GPU rasterization), or whatever ICEPROBE_CHROMIUM names."""
    configured = os.environ.get("ICEPROBE_CHROMIUM")
    for candidate in ((configured,) if configured else
                      ("/usr/lib/chromium/chromium", "chromium")):
        found = shutil.which(candidate)
        if found:
            return found
    return None


@dataclass(frozen=True)
class BrowserCandidate:
    candidate: str
    type: str
    url: str | None
    relay_protocol: str | None
    address: str
    port: int
    related_address: str | None
    ms: float


@dataclass(frozen=True)
class BrowserError:
    url: str
    address: str | None
    port: int | None
    error_code: int
    error_text: str
    ms: float


@dataclass(frozen=True)
class BrowserResult:
    candidates: tuple[BrowserCandidate, ...]
    errors: tuple[BrowserError, ...]
    #: "complete" (iceGatheringState reached complete) or "timeout" (the page's safety timer).
    reason: str
    #: When the page posted, ms after setLocalDescription.
    elapsed_ms: float
    states: tuple[dict[str, Any], ...] = field(default=())
    #: getStats()'s local-candidate entries (they carry relayProtocol).
    stats: tuple[dict[str, Any], ...] = field(default=())
    user_agent: str = ""


def _parse_result(document: dict[str, Any]) -> BrowserResult:
    if document.get("failure"):
        raise RuntimeError(f"the parity page failed: {document['failure']}")
    # Chromium 156 leaves RTCIceCandidate.relayProtocol undefined; getStats() has it.
    relay_protocols = {(s.get("address"), s.get("port")): s.get("relayProtocol")
                       for s in document.get("stats", ())
                       if s.get("candidateType") == "relay"}
    candidates = tuple(
        BrowserCandidate(c["candidate"], c["type"], c["url"] or None,
                         c["relayProtocol"] or relay_protocols.get((c["address"], c["port"])),
                         c["address"], int(c["port"]), c["relatedAddress"], float(c["ms"]))
        for c in document["candidates"])
    errors = tuple(
        BrowserError(e["url"], e["address"], e["port"], int(e["errorCode"]), e["errorText"],
                     float(e["ms"]))
        for e in document["errors"])
    return BrowserResult(candidates, errors, document["reason"], float(document["elapsedMs"]),
                         tuple(document.get("states", ())), tuple(document.get("stats", ())),
                         document.get("userAgent", ""))


class _PageServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: str) -> None:
        super().__init__((address, 0), _PageHandler)
        self.page = PAGE.read_bytes()
        self.results: queue.Queue[dict[str, Any]] = queue.Queue()


class _PageHandler(BaseHTTPRequestHandler):
    server: _PageServer

    def do_GET(self) -> None:
        if urllib.parse.urlsplit(self.path).path != "/":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.server.page)))
        self.end_headers()
        self.wfile.write(self.server.page)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.end_headers()
        if self.path == "/result":
            self.server.results.put(json.loads(body))

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows Chromium's own output when a test fails."""


@contextmanager
def _page_server(address: str) -> Iterator[_PageServer]:
    server = _PageServer(address)
    thread = threading.Thread(target=server.serve_forever, name="parity-page", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def chromium_gather(ice_servers: list[dict[str, Any]], timeout: float = 60.0,
                    lan: LanNamespace | None = None,
                    trusted_ca: Path | None = None) -> BrowserResult:
    """Gather ICE candidates in headless Chromium inside the lan namespace with these
    iceServers (RTCConfiguration form); return what its page saw. The page reports when
    gathering completes, or after `timeout` - 10 s; Chromium is killed before returning.
    `trusted_ca` (PEM) is added as a trusted root to this run's own NSS database."""
    lan = lan or active_lan()
    binary = chromium_binary()
    if binary is None:
        raise BrowserLabUnavailable("chromium is missing (apt-get install chromium; "
                                    "scripts/test installs it)")
    config = {"iceServers": ice_servers, "safetyMs": int(max(1.0, timeout - 10.0) * 1000)}
    with _page_server(lan.gateway) as server, tempfile.TemporaryDirectory(
            prefix="iceprobe-chromium-", ignore_cleanup_errors=True) as profile:
        port = server.server_address[1]
        query = urllib.parse.urlencode({"config": json.dumps(config)})
        url = f"http://{lan.gateway}:{port}/?{query}"
        log_path = os.path.join(profile, "chromium.log")
        # HOME and XDG dirs in the fresh profile: Chromium writes an NSS database under
        # $HOME/.pki, which must not land in the machine's /root.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": profile,
               "XDG_CONFIG_HOME": os.path.join(profile, "config"),
               "XDG_CACHE_HOME": os.path.join(profile, "cache"), "LANG": "C.UTF-8"}
        user_data = os.path.join(profile, "user-data")
        if trusted_ca is not None:
            trust_ca(profile, trusted_ca)
        argv = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={user_data}", url]
        with open(log_path, "wb") as log:
            process = lan.popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            document = _wait_for_result(server, process, timeout, log_path)
        finally:
            stop_browser(process, profile)
    return _parse_result(document)


def trust_ca(home: str, ca: Path) -> None:
    """Make `ca` a trusted root for a Chromium whose $HOME is `home`: Chromium on Linux
    honours the roots of the user's NSS database ($HOME/.pki/nssdb), made here with
    certutil (Debian libnss3-tools)."""
    certutil = shutil.which("certutil")
    if certutil is None:
        raise BrowserLabUnavailable("certutil is missing (apt-get install libnss3-tools; "
                                    "scripts/test installs it)")
    database = os.path.join(home, ".pki", "nssdb")
    os.makedirs(database)
    _run([certutil, "-d", f"sql:{database}", "-N", "--empty-password"])
    _run([certutil, "-d", f"sql:{database}", "-A", "-n", "iceprobe-lab-ca", "-t", "C,,",
          "-i", str(ca)])


def _wait_for_result(server: _PageServer, process: subprocess.Popen[Any], timeout: float,
                     log_path: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return server.results.get(timeout=0.1)
        except queue.Empty:
            if process.poll() is not None:
                break
    with open(log_path, errors="replace") as handle:
        log = handle.read()[-3000:]
    state = ("exited with " + str(process.returncode) if process.poll() is not None
             else f"sent nothing within {timeout} s")
    raise RuntimeError(f"headless Chromium {state}; its output:\n{log}")


def stop_browser(process: subprocess.Popen[Any], profile: str) -> None:
    """A browser (Chromium or Firefox) and every process it started: its process group
    first, then any straggler whose command line names this run's directory (the crash
    handlers start sessions of their own; nothing else is touched)."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    deadline = time.monotonic() + 5
    while (left := processes_using(profile)) and time.monotonic() < deadline:
        for pid in left:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def processes_using(directory: str) -> list[int]:
    """Live processes whose command line contains `directory` (every process of a Chromium
    run names its --user-data-dir or, for the crash handlers, a database under $HOME)."""
    found = []
    needle = os.path.join(directory, "").encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if needle in handle.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


# --- A TCP server that never answers -----------------------------------------------------------


class SilentTcpServer:
    """A TCP listener that accepts every connection and never sends a byte: a TURN server
    whose process hangs, or a middlebox that holds connections. Reached with `turns:` it is
    a TLS server that never answers the ClientHello."""

    def __init__(self, ip: str, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET)
        self.sock.bind((ip, port))
        self.sock.listen(16)
        self.ip = ip
        self.port = int(self.sock.getsockname()[1])
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="silent-tcp", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return  # closed
            self._held.append(connection)

    def close(self) -> None:
        # shutdown() wakes the accept() in the thread; close() alone would not.
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)
        for connection in self._held:
            connection.close()


# --- Comparing the two -----------------------------------------------------------------------


def normalise_url(url: str) -> str:
    """One spelling for a STUN/TURN URL from either side: lower-case scheme, the port made
    explicit (3478, 5349 for turns:), `?transport=udp` dropped for turn: (the default) and
    kept for tcp; Chromium rebuilds URLs in its events (e.g. adding `?transport=udp`)."""
    scheme, _, rest = url.partition(":")
    scheme = scheme.lower()
    hostport, _, query = rest.partition("?")
    params = urllib.parse.parse_qs(query)
    transport = params.get("transport", [""])[0].lower()
    if hostport.startswith("["):
        host, _, port_text = hostport[1:].partition("]")
        host = f"[{host.lower()}]"
        port_text = port_text.lstrip(":")
    else:
        host, _, port_text = hostport.partition(":")
        host = host.lower()
    port = int(port_text) if port_text else (5349 if scheme in ("stuns", "turns") else 3478)
    suffix = ""
    if scheme == "turn" and transport not in ("", "udp"):
        suffix = f"?transport={transport}"
    if scheme == "turns" and transport not in ("", "tcp"):
        suffix = f"?transport={transport}"
    return f"{scheme}:{host}:{port}{suffix}"
