"""Move this test process into network and mount namespaces of its own.

Everything the lab tests do (coturn, responders, probes, name lookups) then happens inside a
network that only this process can see: a veth pair with 198.18.0.10/24 and fd00::10/64, plus
loopback. Nothing reaches the machine's real network or its resolver. /etc/hosts and
/etc/resolv.conf are bind-mounted in the private mount namespace, pointing at the lab's own
names and at the lab's own DNS responder on 127.0.0.53.

This must run before the process starts any thread (unshare(CLONE_NEWNS) refuses a
multithreaded process), which is why conftest calls it at import time.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000

LAB_IPV4 = "198.18.0.10"
LAB_IPV6 = "fd00::10"
#: A global-scope address put on the lab's veth only while a test needs it (see
#: `public_address`), inside the lab's own network namespace, which has no route out: a TURN
#: server "reached at a public address" for relay-address-private. Nothing leaves the namespace.
LAB_PUBLIC_IPV4 = "45.10.20.30"
#: A name with both an A and an AAAA record, for the harmless-701 case.
DUAL_STACK_NAME = "dual.lab.test"
#: A name with only an A record.
LAB_NAME = "turn.lab.test"
#: A name the lab's DNS responder answers with NXDOMAIN.
MISSING_NAME = "nonexistent.lab.test"
DNS_ADDRESS = "127.0.0.53"

HOSTS = f"""127.0.0.1 localhost
::1 localhost
{LAB_IPV4} {LAB_NAME}
{LAB_IPV4} {DUAL_STACK_NAME}
{LAB_IPV6} {DUAL_STACK_NAME}
"""

RESOLV_CONF = f"""nameserver {DNS_ADDRESS}
options timeout:1 attempts:1
"""


@dataclass(frozen=True)
class LabNetwork:
    ipv4: str
    ipv6: str
    workdir: str


class LabUnavailable(Exception):
    pass


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise LabUnavailable(f"{what} failed: {os.strerror(errno)}")


def enter_lab_network() -> LabNetwork:
    """Unshare the network and mount namespaces and build the lab network inside."""
    if os.geteuid() != 0:
        raise LabUnavailable("the lab needs root (network namespaces, coturn)")
    if shutil.which("ip") is None:
        raise LabUnavailable("the lab needs iproute2's `ip` (apt-get install iproute2)")
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNET | CLONE_NEWNS), "unshare(CLONE_NEWNET|CLONE_NEWNS)")
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None),
           "making / a private mount")

    workdir = tempfile.mkdtemp(prefix="iceprobe-lab-")
    # The bind mounts keep their inodes: the directory itself can go when the tests end.
    atexit.register(shutil.rmtree, workdir, True)
    for name, text in (("hosts", HOSTS), ("resolv.conf", RESOLV_CONF)):
        path = os.path.join(workdir, name)
        with open(path, "w") as handle:
            handle.write(text)
        _check(libc.mount(path.encode(), f"/etc/{name}".encode(), None, MS_BIND, None),
               f"bind-mounting /etc/{name}")

    commands = [
        "ip link set lo up",
        "ip link add lab0 type veth peer name lab1",
        "ip link set lab1 up",
        f"ip addr add {LAB_IPV4}/24 dev lab0",
        f"ip -6 addr add {LAB_IPV6}/64 dev lab0 nodad",
        "ip link set lab0 up",
    ]
    for command in commands:
        _ip(command)
    return LabNetwork(LAB_IPV4, LAB_IPV6, workdir)


def _ip(command: str) -> None:
    done = subprocess.run(command.split(), capture_output=True, text=True)
    if done.returncode != 0:
        raise LabUnavailable(f"`{command}` failed: {done.stderr.strip()}")


@contextmanager
def public_address(address: str = LAB_PUBLIC_IPV4) -> Iterator[str]:
    """Give the lab's veth a global-scope address for the duration of a block. It is an
    extra local address too, so gathering binds a host candidate on it meanwhile."""
    _ip(f"ip addr add {address}/32 dev lab0")
    try:
        yield address
    finally:
        _ip(f"ip addr del {address}/32 dev lab0")


@contextmanager
def relay_firewall(first: int, last: int) -> Iterator[None]:
    """Drop UDP between ports of a relay range inside the lab, as a firewall that closes a
    TURN server's relay ports would: relay-to-relay traffic dies, the TURN port still works."""
    _ip("nft add table inet iceprobe_relay_firewall")
    try:
        _ip("nft add chain inet iceprobe_relay_firewall input "
            "{ type filter hook input priority 0 ; }")
        _ip(f"nft add rule inet iceprobe_relay_firewall input "
            f"udp sport {first}-{last} udp dport {first}-{last} drop")
        yield
    finally:
        _ip("nft delete table inet iceprobe_relay_firewall")
