"""Test-wide set-up: the lab network.

At import, before pytest starts any thread, this process moves into network and mount
namespaces of its own (see tests/lab/netns.py). Unit tests do not care; lab tests use the
`lab` fixture, which skips with the reason when the lab could not be built, except under
CI=true, where a lab that cannot start fails the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.lab.ci import in_ci
from tests.lab.dns import NxdomainResolver
from tests.lab.interop import (
    InteropServer,
    InteropUnavailable,
    start_node_turn,
    start_pion,
    start_stun_server,
)
from tests.lab.netns import DNS_ADDRESS, LAB_IPV4, LabNetwork, LabUnavailable, enter_lab_network
from tests.lab.prometheus import ENV, Exporter, start_exporter
from tests.lab.responder import Script, ScriptedResponder
from tests.lab.servers import Coturn, SilentServer, start_coturn

_lab: LabNetwork | None = None
_lab_problem: str | None = None
try:
    _lab = enter_lab_network()
except LabUnavailable as exc:
    _lab_problem = str(exc)


@pytest.fixture(scope="session")
def lab() -> Iterator[LabNetwork]:
    if _lab is None:
        message = f"lab unavailable: {_lab_problem}"
        if in_ci():
            pytest.fail(f"{message} (CI=true: lab tests must run)")
        pytest.skip(message)
    resolver = NxdomainResolver(DNS_ADDRESS)
    try:
        yield _lab
    finally:
        resolver.close()


@pytest.fixture
def coturn(lab: LabNetwork) -> Iterator[Callable[..., Coturn]]:
    """Start coturn servers for one test; all are stopped after it."""
    started: list[Coturn] = []

    def start(*extra: str, ip: str | None = None, tls: tuple[str, str] | None = None,
              relay_ip: str | None = None, relay_ports: tuple[int, int] | None = None
              ) -> Coturn:
        server = start_coturn(ip or lab.ipv4, *extra, tls=tls, relay_ip=relay_ip,
                              relay_ports=relay_ports)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def silent_server(lab: LabNetwork) -> Iterator[SilentServer]:
    server = SilentServer(lab.ipv4)
    yield server
    server.close()


@pytest.fixture
def responder(lab: LabNetwork) -> Iterator[Callable[[Script], ScriptedResponder]]:
    """Start scripted responders for one test; all are closed after it."""
    started: list[ScriptedResponder] = []

    def start(script: Script) -> ScriptedResponder:
        server = ScriptedResponder(lab.ipv4, script)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def _interop(lab: LabNetwork, launch: Callable[..., InteropServer]
             ) -> Iterator[Callable[..., InteropServer]]:
    """Start servers of the interop lab on the lab address for one test; all are stopped
    after it. One that cannot be built or started skips the test, or fails it under CI."""
    started: list[InteropServer] = []

    def start(**options: object) -> InteropServer:
        try:
            server = launch(lab.ipv4, **options)
        except InteropUnavailable as exc:
            if in_ci():
                pytest.fail(f"{exc} (CI=true: lab tests must run)")
            pytest.skip(str(exc))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def pion(lab: LabNetwork) -> Iterator[Callable[..., InteropServer]]:
    """Start pion/turn servers (tests/lab/interop.py: start_pion)."""
    yield from _interop(lab, start_pion)


@pytest.fixture
def node_turn(lab: LabNetwork) -> Iterator[Callable[..., InteropServer]]:
    """Start node-turn servers (tests/lab/interop.py: start_node_turn)."""
    yield from _interop(lab, start_node_turn)


@pytest.fixture
def npm_stun(lab: LabNetwork) -> Iterator[Callable[..., InteropServer]]:
    """Start npm `stun` servers (tests/lab/interop.py: start_stun_server)."""
    yield from _interop(lab, start_stun_server)


@pytest.fixture
def exporters() -> Iterator[Callable[[Path], Exporter]]:
    """Start `iceprobe exporter`s on the lab address for one test (tests/lab/prometheus.py,
    with its ENV of fleet secrets); all are stopped after it."""
    started: list[Exporter] = []

    def start(config: Path) -> Exporter:
        exporter = start_exporter(config, LAB_IPV4, ENV)
        started.append(exporter)
        return exporter

    yield start
    for exporter in started:
        exporter.stop()
