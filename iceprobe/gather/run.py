"""Gathering: every server, from every local address, concurrently, inside one time budget.

This returns a `GatherReport` and never raises for anything the network or a server does:
each failure is an `ErrorEvent` in the result of the server it concerns.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from ..model import (
    Candidate,
    CandidateType,
    Cause,
    Credentials,
    ErrorEvent,
    GatherReport,
    ProbeResult,
    ServerSpec,
    Transport,
)
from . import probes
from .channel import Channel, ProbeFailure, describe, open_stream, open_udp, remaining
from .local import ResolutionError, host_addresses, resolve
from .wire import Address

log = logging.getLogger("iceprobe.gather")

_TYPE_PREFERENCE = {CandidateType.HOST: 126, CandidateType.SRFLX: 100, CandidateType.RELAY: 0}


@dataclass(frozen=True)
class GatherOptions:
    timeout: float = 5.0
    credentials: Credentials | None = None
    #: Extra trust anchors (PEM) on top of the system store, for stuns:/turns:.
    ca_file: str | None = None
    #: Skip certificate and hostname verification (the report says so).
    insecure: bool = False
    #: Relay address families to request: (None,) is the default IPv4 without the
    #: attribute, as browsers do; 6 asks for IPv6 with REQUESTED-ADDRESS-FAMILY.
    relay_families: tuple[int | None, ...] = (None,)


def priority(kind: CandidateType, address: str) -> int:
    """RFC 8445 section 5.1.2.1, component 1; IPv6 gets the higher local preference."""
    local_preference = 65535 if ":" in address else 65279
    return (_TYPE_PREFERENCE[kind] << 24) + (local_preference << 8) + 255


def foundation(kind: CandidateType, base: str, server: str = "") -> str:
    """Equal for candidates of one type, base and server (RFC 8445 section 5.1.1.3)."""
    return str(zlib.crc32(f"{kind.value}|udp|{base}|{server}".encode()))


@dataclass
class _Run:
    options: GatherOptions
    started: float
    deadline: float
    local_ips: list[str]
    tls: ssl.SSLContext | None = None

    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 1)

    def tls_context(self) -> ssl.SSLContext:
        if self.tls is None:
            self.tls = tls_context(self.options)
        return self.tls


def tls_context(options: GatherOptions) -> ssl.SSLContext:
    """The system trust store plus --ca-file, or no verification with --insecure."""
    context = ssl.create_default_context()
    if options.ca_file:
        context.load_verify_locations(cafile=options.ca_file)
    if options.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def gather(servers: Sequence[ServerSpec], options: GatherOptions) -> GatherReport:
    """Probe every server and return what each yielded."""
    started_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    started = time.monotonic()
    run = _Run(options, started, started + options.timeout, [])
    host_sockets, host_candidates = _bind_host_sockets(run)
    run.local_ips = [c.address for c in host_candidates]
    try:
        results = await asyncio.gather(*(_probe_server(run, spec) for spec in servers))
    finally:
        for sock in host_sockets:
            sock.close()
    return GatherReport(
        started_at=started_at,
        duration_ms=run.elapsed_ms(),
        host_candidates=tuple(host_candidates),
        results=tuple(results),
    )


def _bind_host_sockets(run: _Run) -> tuple[list[socket.socket], list[Candidate]]:
    """One UDP socket per local address, as a browser binds: its port is the host
    candidate's, and an address that cannot be bound yields no candidate."""
    sockets: list[socket.socket] = []
    candidates: list[Candidate] = []
    for ip in host_addresses():
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((ip, 0))
        except OSError as exc:
            log.debug("! cannot bind %s: %s", ip, exc)
            sock.close()
            continue
        sockets.append(sock)
        port = int(sock.getsockname()[1])
        candidates.append(Candidate(
            type=CandidateType.HOST, protocol="udp", address=ip, port=port,
            foundation=foundation(CandidateType.HOST, ip), priority=priority(
                CandidateType.HOST, ip), elapsed_ms=run.elapsed_ms()))
    return sockets, candidates


async def _probe_server(run: _Run, spec: ServerSpec) -> ProbeResult:
    start = time.monotonic()
    try:
        addresses = await resolve(spec.host, spec.port, remaining(run.deadline))
    except ResolutionError as exc:
        failure = ProbeFailure(Cause.DNS, f"DNS lookup for {spec.host} failed: {exc}")
        return _result(spec, start, [], [_event(run, spec, failure)])
    if not addresses:
        failure = ProbeFailure(Cause.DNS, f"DNS lookup for {spec.host} returned no addresses")
        return _result(spec, start, [], [_event(run, spec, failure)], addresses)

    pairs = [(local, server) for server in addresses for local in run.local_ips
             if (":" in local) == (":" in server)]
    if not pairs:
        families = " or ".join(sorted({"IPv6" if ":" in a else "IPv4" for a in addresses}))
        failure = ProbeFailure(Cause.SOCKET,
                               f"this machine has no {families} address to reach {spec.host} from")
        return _result(spec, start, [], [_event(run, spec, failure)], addresses)

    relay_families = run.options.relay_families if spec.is_turn else (None,)
    outcomes = await asyncio.gather(*(
        _attempt(run, spec, local, (server, spec.port), family=family)
        for local, server in pairs for family in relay_families))
    candidates = [c for found, _ in outcomes for c in found]
    errors = [e for _, events in outcomes for e in events]
    return _result(spec, start, candidates, errors, addresses)


def _result(spec: ServerSpec, start: float, candidates: list[Candidate],
            errors: list[ErrorEvent], addresses: Sequence[str] = ()) -> ProbeResult:
    return ProbeResult(server=spec, candidates=tuple(candidates), errors=tuple(errors),
                       duration_ms=round((time.monotonic() - start) * 1000, 1),
                       addresses=tuple(addresses))


def _event(run: _Run, spec: ServerSpec, failure: ProbeFailure, local_ip: str | None = None,
           local_port: int | None = None, server: Address | None = None) -> ErrorEvent:
    return ErrorEvent(
        url=spec.url, address=local_ip, port=local_port,
        server_address=server[0] if server else None, server_port=server[1] if server else None,
        error_code=failure.code, error_text=failure.text, cause=failure.cause,
        elapsed_ms=run.elapsed_ms(), problem=failure.problem)


async def _attempt(run: _Run, spec: ServerSpec, local_ip: str, server: Address,
                   follow_redirect: bool = True, family: int | None = None
                   ) -> tuple[list[Candidate], list[ErrorEvent]]:
    """One local address against one server address: candidates and error events."""
    channel: Channel | None = None
    try:
        channel = await _open(run, spec, local_ip, server)
        if spec.is_turn:
            return await _turn(run, spec, channel, family)
        mapped = await probes.binding(channel, run.deadline)
        return [_reflexive(run, spec, mapped, channel.local_address)], []
    except probes.Redirect as redirect:
        local_port = channel.local_address[1] if channel else None
        event = _event(run, spec, redirect, local_ip, local_port, server)
        if not follow_redirect or (":" in redirect.alternate[0]) != (":" in local_ip):
            return [], [event]
        # RFC 8489 section 10: follow ALTERNATE-SERVER once, and report both.
        if channel is not None:
            channel.close()
            channel = None
        found, events = await _attempt(run, spec, local_ip, redirect.alternate, False, family)
        return found, [event, *events]
    except ProbeFailure as failure:
        local_port = channel.local_address[1] if channel else None
        return [], [_event(run, spec, failure, local_ip, local_port, server)]
    except Exception as exc:  # a bug must still be a value, not a crash
        log.debug("! internal error probing %s", spec.url, exc_info=True)
        internal = ProbeFailure(Cause.INTERNAL, f"iceprobe failed while probing "
                                                f"{describe(server)}: {type(exc).__name__}: {exc}")
        return [], [_event(run, spec, internal, local_ip, None, server)]
    finally:
        if channel is not None:
            channel.close()


async def _open(run: _Run, spec: ServerSpec, local_ip: str, server: Address) -> Channel:
    if spec.transport is Transport.UDP:
        return await open_udp(local_ip, server)
    tls = run.tls_context() if spec.transport is Transport.TLS else None
    return await open_stream(local_ip, server, run.deadline, tls, spec.host)


async def _turn(run: _Run, spec: ServerSpec, channel: Channel,
                family: int | None) -> tuple[list[Candidate], list[ErrorEvent]]:
    allocation = await probes.allocate(channel, run.options.credentials, run.deadline, family)
    found: list[Candidate] = []
    mapped = allocation.mapped_address
    relayed = allocation.relayed_address
    found.append(Candidate(
        type=CandidateType.RELAY, protocol="udp", address=relayed[0], port=relayed[1],
        related_address=mapped[0] if mapped else None, related_port=mapped[1] if mapped else None,
        url=spec.url, foundation=foundation(CandidateType.RELAY, channel.local_address[0],
                                            channel.server_address[0]),
        priority=priority(CandidateType.RELAY, relayed[0]), elapsed_ms=run.elapsed_ms(),
        relay_protocol=spec.transport.value))
    # The mapped address of a UDP allocation is the server-reflexive candidate browsers add;
    # over TCP it is a TCP mapping, useless for UDP media.
    if mapped is not None and spec.transport is Transport.UDP:
        found.append(_reflexive(run, spec, mapped, channel.local_address))
    await probes.release(channel, allocation, run.options.credentials)
    local = channel.local_address
    recovered = [_event(run, spec, failure, local[0], local[1], channel.server_address)
                 for failure in allocation.recovered]
    return found, recovered


def _reflexive(run: _Run, spec: ServerSpec, mapped: Address, base: Address) -> Candidate:
    return Candidate(
        type=CandidateType.SRFLX, protocol="udp", address=mapped[0], port=mapped[1],
        related_address=base[0], related_port=base[1], url=spec.url,
        foundation=foundation(CandidateType.SRFLX, base[0], spec.host),
        priority=priority(CandidateType.SRFLX, base[0]), elapsed_ms=run.elapsed_ms())
