"""Gathering: every server, from every local address, concurrently, inside one time budget.

This returns a `GatherReport` and never raises for anything the network or a server does:
each failure is an `ErrorEvent` in the result of the server it concerns.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import ssl
import time
import zlib
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..constants import SLOTS_BUSY
from ..model import (
    DEFAULT_CONCURRENCY,
    Candidate,
    CandidateType,
    Cause,
    Credentials,
    ErrorEvent,
    GatherReport,
    ProbeResult,
    Scheme,
    ServerSpec,
    Transport,
)
from . import probes
from .channel import (
    Channel,
    ProbeFailure,
    describe,
    open_stream,
    open_udp,
    remaining,
    shareable_udp_socket,
)
from .local import ResolutionError, host_addresses, resolve
from .wire import Address

log = logging.getLogger("iceprobe.gather")

#: How long a stopped run (SIGINT, SIGTERM) waits for its probes to release their
#: allocations and close their sockets: a release's own budget, plus a little.
STOP_BUDGET = probes.RELEASE_BUDGET + 0.2

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
    #: At most this many probes (sockets) at once; the others wait for a slot, within the
    #: same budget.
    concurrency: int = DEFAULT_CONCURRENCY
    #: Probe each TURN server over UDP as a STUN server too, as browsers do: its srflx
    #: candidate (and its failures) come under `stun:host:port`, and the allocation's mapped
    #: address is not reported a second time. Off: the mapped address is the TURN server's
    #: srflx candidate.
    turn_as_stun: bool = True


def implied_stun_servers(servers: Sequence[ServerSpec]) -> list[tuple[ServerSpec, str]]:
    """The STUN servers a browser adds for these servers: one per TURN server over UDP
    (not TCP or TLS) whose host and port no named STUN server has, with the TURN URL."""
    taken = {(s.host.lower(), s.port) for s in servers if s.scheme is Scheme.STUN}
    implied = []
    for spec in servers:
        if spec.scheme is not Scheme.TURN or spec.transport is not Transport.UDP:
            continue
        key = (spec.host.lower(), spec.port)
        if key in taken:
            continue
        taken.add(key)
        host = f"[{spec.host}]" if ":" in spec.host else spec.host
        implied.append((ServerSpec(f"stun:{host}:{spec.port}", Scheme.STUN, spec.host,
                                   spec.port, Transport.UDP), spec.url))
    return implied


def priority(kind: CandidateType, address: str, protocol: str = "udp") -> int:
    """RFC 8445 section 5.1.2.1, component 1; IPv6 gets the higher local preference.

    A TCP candidate (all of iceprobe's are active: it opens the connection) takes its local
    preference from RFC 6544 section 4.2: 2^13 * direction-pref + other-pref, with
    direction-pref 6 for an active host or relayed candidate and 4 for an active srflx. That
    keeps it below every UDP candidate of the same type."""
    if protocol == "udp":
        local_preference = 65535 if ":" in address else 65279
    else:
        direction = 4 if kind is CandidateType.SRFLX else 6
        local_preference = (direction << 13) + (8191 if ":" in address else 8190)
    return (_TYPE_PREFERENCE[kind] << 24) + (local_preference << 8) + 255


def foundation(kind: CandidateType, base: str, server: str = "", protocol: str = "udp") -> str:
    """Equal for candidates of one type, base, server and transport protocol (RFC 8445
    section 5.1.1.3)."""
    return str(zlib.crc32(f"{kind.value}|{protocol}|{base}|{server}".encode()))


@dataclass
class _Run:
    options: GatherOptions
    started: float
    deadline: float
    local_ips: list[str]
    slots: asyncio.Semaphore
    tls: ssl.SSLContext | None = None
    #: Per server (by index): what its finished attempts found, the addresses it resolved
    #: to, and how many attempts never got a slot; read back when the run is stopped.
    found: dict[int, tuple[list[Candidate], list[ErrorEvent]]] = field(default_factory=dict)
    addresses: dict[int, list[str]] = field(default_factory=dict)
    starved: dict[int, int] = field(default_factory=dict)
    #: Of those, how many found every slot taken (the rest found the budget spent).
    busy: dict[int, int] = field(default_factory=dict)
    #: Per server: the REALM it challenged with, and when its first packet went out (ms).
    realms: dict[int, str] = field(default_factory=dict)
    first_sent: dict[int, float] = field(default_factory=dict)
    #: Per server: its SOFTWARE attribute (from any response), and whether it granted an
    #: allocation to an Allocate without credentials (no 401 challenge).
    software: dict[int, str] = field(default_factory=dict)
    unauthenticated: set[int] = field(default_factory=set)
    #: The host candidates' UDP ports by local address: STUN Binding probes share them, as a
    #: browser sends every Binding from its one socket per address.
    host_ports: dict[str, int] = field(default_factory=dict)
    #: (local address, server address, server port) of the Binding probes on a shared port:
    #: a second probe of the same server address from there needs a port of its own.
    shared: set[tuple[str, str, int]] = field(default_factory=set)
    #: The bases of server-reflexive candidates that are no shared host socket (a probe's
    #: own UDP port, a TCP connection): listed as host candidates of their own.
    bases: list[Candidate] = field(default_factory=list)

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


async def gather(servers: Sequence[ServerSpec], options: GatherOptions,
                 stop: asyncio.Event | None = None) -> GatherReport:
    """Probe every server and return what each yielded. When `stop` is set (the CLI sets it
    on SIGINT or SIGTERM) the probes still running are cancelled, release what they
    allocated within STOP_BUDGET, and the report holds what was found until then."""
    # Loading the trust store takes tens of milliseconds of CPU: done inside the run it would
    # stall every probe's event handling and show in every time measured (the matrix's cells).
    tls = _early_tls_context(options, servers)
    started_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    started = time.monotonic()
    _allow_descriptors(options.concurrency + _SPARE_DESCRIPTORS)
    run = _Run(options, started, started + options.timeout, [],
               asyncio.Semaphore(max(1, options.concurrency)), tls)
    host_sockets, host_candidates = _bind_host_sockets(run)
    run.local_ips = [c.address for c in host_candidates]
    implied = implied_stun_servers(servers) if options.turn_as_stun else []
    origin = [None] * len(servers) + [turn for _, turn in implied]
    servers = [*servers, *(spec for spec, _ in implied)]
    tasks = [asyncio.ensure_future(_probe_server(run, index, spec))
             for index, spec in enumerate(servers)]
    try:
        interrupted = await _wait(tasks, stop)
    finally:
        for sock in host_sockets:
            sock.close()
    results = tuple(dataclasses.replace(_outcome(run, index, spec, task), implied_by=turn)
                    for index, (spec, task, turn) in enumerate(
                        zip(servers, tasks, origin, strict=True)))
    credentials = options.credentials
    return GatherReport(
        started_at=started_at,
        duration_ms=run.elapsed_ms(),
        host_candidates=(*host_candidates, *run.bases),
        results=results,
        interrupted=interrupted,
        username=(credentials.username if credentials is not None
                  and any(s.is_turn for s in servers) else None),
    )


def _early_tls_context(options: GatherOptions,
                       servers: Sequence[ServerSpec]) -> ssl.SSLContext | None:
    """The TLS context, made before the run when a server needs it; None otherwise, or
    when it cannot be made (the probe that needs it then reports why)."""
    if not any(s.transport is Transport.TLS for s in servers):
        return None
    try:
        return tls_context(options)
    except (ssl.SSLError, OSError):
        return None


#: Descriptors beyond the probes' own: the interpreter, the host sockets, TLS, the terminal.
_SPARE_DESCRIPTORS = 64


def _allow_descriptors(wanted: int) -> None:
    """Raise the soft open-files limit (often 1024) towards `wanted`, within the hard limit,
    so that --concurrency probes can each hold a socket. Where it cannot be raised, a probe
    that finds no descriptor becomes a `socket` error event, never a crash."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            log.debug("! cannot raise the open-files limit to %d", target)


async def _wait(tasks: Sequence[asyncio.Future[ProbeResult]], stop: asyncio.Event | None) -> bool:
    """Wait for every probe, or until `stop` is set: then cancel the rest and give them
    STOP_BUDGET to clean up. Returns whether the run was stopped."""
    pending: set[asyncio.Future[Any]] = set(tasks)
    stopper: asyncio.Future[Any] | None = (asyncio.ensure_future(stop.wait())
                                           if stop is not None else None)
    try:
        while pending:
            waiting = pending | ({stopper} if stopper is not None else set())
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            pending -= done
            if stopper is not None and stopper in done and pending:
                break
        else:
            return False
    finally:
        if stopper is not None:
            stopper.cancel()
    for task in pending:
        task.cancel()
    await asyncio.wait(pending, timeout=STOP_BUDGET)
    return True


def _outcome(run: _Run, index: int, spec: ServerSpec,
             task: asyncio.Future[ProbeResult]) -> ProbeResult:
    """A finished probe's result, or what a stopped one had found so far."""
    if task.done() and not task.cancelled() and task.exception() is None:
        return task.result()
    if task.done() and not task.cancelled():
        log.debug("! internal error probing %s", spec.url, exc_info=task.exception())
    found, errors = run.found.get(index, ([], []))
    return ProbeResult(spec, tuple(found), tuple(errors), run.elapsed_ms(),
                       tuple(run.addresses.get(index, ())), unfinished="interrupted",
                       realm=run.realms.get(index), first_sent_ms=run.first_sent.get(index),
                       software=run.software.get(index),
                       unauthenticated_allocation=index in run.unauthenticated)


def _bind_host_sockets(run: _Run) -> tuple[list[socket.socket], list[Candidate]]:
    """One UDP socket per local address, as a browser binds: its port is the host
    candidate's, and an address that cannot be bound yields no candidate."""
    sockets: list[socket.socket] = []
    candidates: list[Candidate] = []
    for ip in host_addresses():
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        try:
            sock = shareable_udp_socket(family)
        except OSError as exc:
            log.debug("! cannot create a socket for %s: %s", ip, exc)
            continue
        try:
            sock.bind((ip, 0))
        except OSError as exc:
            log.debug("! cannot bind %s: %s", ip, exc)
            sock.close()
            continue
        sockets.append(sock)
        port = int(sock.getsockname()[1])
        run.host_ports[ip] = port
        candidates.append(Candidate(
            type=CandidateType.HOST, protocol="udp", address=ip, port=port,
            foundation=foundation(CandidateType.HOST, ip), priority=priority(
                CandidateType.HOST, ip), elapsed_ms=run.elapsed_ms()))
    return sockets, candidates


async def _probe_server(run: _Run, index: int, spec: ServerSpec) -> ProbeResult:
    try:
        addresses = await resolve(spec.host, spec.port, remaining(run.deadline))
    except ResolutionError as exc:
        failure = ProbeFailure(Cause.DNS, f"DNS lookup for {spec.host} failed: {exc}")
        return _result(run, index, spec, [], [_event(run, spec, failure)])
    if not addresses:
        failure = ProbeFailure(Cause.DNS, f"DNS lookup for {spec.host} returned no addresses")
        return _result(run, index, spec, [], [_event(run, spec, failure)], addresses)

    pairs = [(local, server) for server in addresses for local in run.local_ips
             if (":" in local) == (":" in server)]
    if not pairs:
        families = " or ".join(sorted({"IPv6" if ":" in a else "IPv4" for a in addresses}))
        failure = ProbeFailure(Cause.SOCKET,
                               f"this machine has no {families} address to reach {spec.host} from")
        return _result(run, index, spec, [], [_event(run, spec, failure)], addresses)

    run.addresses[index] = list(addresses)
    relay_families = run.options.relay_families if spec.is_turn else (None,)
    candidates, errors = run.found.setdefault(index, ([], []))
    # --relay-family both: the IPv4 Allocate first, the IPv6 one once it is done (or after
    # at most first_family_wait): coturn checks a user's quota before the family, so with a
    # quota of one, IPv6 first would have the IPv4 Allocate refused (486) by iceprobe's own
    # attempt, whose refused (440) session holds the quota.
    sequenced = 6 in relay_families and None in relay_families
    ipv4_done = {pair: asyncio.Event() for pair in pairs} if sequenced else {}

    async def attempt(local: str, server: str, family: int | None) -> None:
        done = ipv4_done.get((local, server))
        try:
            if done is not None and family == 6:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(done.wait(), first_family_wait(run.deadline))
            found, events = await _slotted(run, index, spec, local, (server, spec.port),
                                           family)
        finally:
            if done is not None and family is None:
                done.set()
        candidates.extend(found)
        errors.extend(events)

    await asyncio.gather(*(attempt(local, server, family)
                           for local, server in pairs for family in relay_families))
    result = _result(run, index, spec, candidates, errors, addresses)
    starved = run.starved.get(index, 0)
    if starved and not result.ok:
        busy = run.busy.get(index, 0)
        why = (f"all {run.options.concurrency} {SLOTS_BUSY} until the "
               f"{run.options.timeout:g} s budget ran out" if busy else
               f"the {run.options.timeout:g} s budget (--timeout) ran out before the probe "
               "could start")
        tried = len(pairs) * len(relay_families)
        result = dataclasses.replace(result, unfinished=(
            f"not probed from {starved} of {tried} local "
            f"{'address' if tried == 1 else 'addresses'}: {why}"))
    return result


async def _slotted(run: _Run, index: int, spec: ServerSpec, local_ip: str, server: Address,
                   family: int | None) -> tuple[list[Candidate], list[ErrorEvent]]:
    """One attempt once a probe slot is free (--concurrency), within the same deadline."""
    try:
        await asyncio.wait_for(run.slots.acquire(), remaining(run.deadline))
    except asyncio.TimeoutError:
        run.starved[index] = run.starved.get(index, 0) + 1
        if run.slots.locked():  # every slot taken: --concurrency, not only the budget
            run.busy[index] = run.busy.get(index, 0) + 1
        return [], []
    if remaining(run.deadline) <= 0:  # a slot freed at the deadline itself is no slot
        run.slots.release()
        run.starved[index] = run.starved.get(index, 0) + 1
        return [], []
    try:
        return await _attempt(run, index, spec, local_ip, server, family=family)
    finally:
        run.slots.release()


#: How long the IPv6 attempt of --relay-family both waits for the IPv4 one: a server that
#: never answers must not cost it more than this, nor more than half the budget.
FIRST_FAMILY_WAIT = 1.0


def first_family_wait(deadline: float) -> float:
    return min(FIRST_FAMILY_WAIT, remaining(deadline) / 2)


def _result(run: _Run, index: int, spec: ServerSpec, candidates: list[Candidate],
            errors: list[ErrorEvent], addresses: Sequence[str] = ()) -> ProbeResult:
    """The finished probe, timed like its candidates and errors: from the run's start."""
    return ProbeResult(server=spec, candidates=tuple(candidates), errors=tuple(errors),
                       duration_ms=run.elapsed_ms(), addresses=tuple(addresses),
                       realm=run.realms.get(index), first_sent_ms=run.first_sent.get(index),
                       software=run.software.get(index),
                       unauthenticated_allocation=index in run.unauthenticated)


def _event(run: _Run, spec: ServerSpec, failure: ProbeFailure, local_ip: str | None = None,
           local_port: int | None = None, server: Address | None = None,
           family: int | None = None) -> ErrorEvent:
    return ErrorEvent(
        url=spec.url, address=local_ip, port=local_port,
        server_address=server[0] if server else None, server_port=server[1] if server else None,
        error_code=failure.code, error_text=failure.text, cause=failure.cause,
        elapsed_ms=run.elapsed_ms(), problem=failure.problem,
        requested_family=family if spec.is_turn else None,
        after_challenge=failure.after_challenge)


async def _attempt(run: _Run, index: int, spec: ServerSpec, local_ip: str, server: Address,
                   follow_redirect: bool = True, family: int | None = None
                   ) -> tuple[list[Candidate], list[ErrorEvent]]:
    """One local address against one server address: candidates and error events."""
    channel: Channel | None = None
    connecting_at = time.monotonic()  # a TCP connection attempt is the first packet
    shared: tuple[str, str, int] | None = None
    try:
        if spec.transport is Transport.UDP and not spec.is_turn:
            shared = _share_host_port(run, local_ip, server)
        channel = await _open(run, spec, local_ip, server, shared is not None)
        if spec.is_turn:
            return await _turn(run, index, spec, channel, family)
        mapped = await probes.binding(channel, run.deadline)
        return [_reflexive(run, spec, mapped, channel)], []
    except probes.Redirect as redirect:
        local_port = channel.local_address[1] if channel else None
        event = _event(run, spec, redirect, local_ip, local_port, server, family)
        if not follow_redirect or (":" in redirect.alternate[0]) != (":" in local_ip):
            return [], [event]
        # RFC 8489 section 10: follow ALTERNATE-SERVER once, and report both.
        if channel is not None:
            _sent(run, index, spec, channel, connecting_at)
            channel.close()
            channel = None
        found, events = await _attempt(run, index, spec, local_ip, redirect.alternate, False,
                                       family)
        return found, [event, *events]
    except ProbeFailure as failure:
        local_port = channel.local_address[1] if channel else None
        return [], [_event(run, spec, failure, local_ip, local_port, server, family)]
    except Exception as exc:  # a bug must still be a value, not a crash
        log.debug("! internal error probing %s", spec.url, exc_info=True)
        internal = ProbeFailure(Cause.INTERNAL, f"iceprobe failed while probing "
                                                f"{describe(server)}: {type(exc).__name__}: {exc}")
        return [], [_event(run, spec, internal, local_ip, None, server, family)]
    finally:
        _sent(run, index, spec, channel, connecting_at)
        if shared is not None:
            run.shared.discard(shared)
        if channel is not None:
            channel.close()


def _share_host_port(run: _Run, local_ip: str, server: Address) -> tuple[str, str, int] | None:
    """Claim the host candidate's port of `local_ip` for a Binding probe of `server`; None
    when there is no such port or a probe of the same server address holds it (the two
    connected sockets could not tell their datagrams apart)."""
    key = (local_ip, server[0], server[1])
    if local_ip not in run.host_ports or key in run.shared:
        return None
    run.shared.add(key)
    return key


def _sent(run: _Run, index: int, spec: ServerSpec, channel: Channel | None,
          connecting_at: float) -> None:
    """Note when this attempt's first packet went out, if it is the server's first, and the
    server's SOFTWARE attribute if it sent one."""
    if channel is not None and channel.software is not None:
        run.software.setdefault(index, channel.software)
    if channel is not None:
        at = channel.first_sent_at
    else:  # a TCP connection attempt that failed; a UDP socket that never sent is nothing
        at = connecting_at if spec.transport is not Transport.UDP else None
    if at is None:
        return
    ms = round((at - run.started) * 1000, 1)
    if index not in run.first_sent or ms < run.first_sent[index]:
        run.first_sent[index] = ms


async def _open(run: _Run, spec: ServerSpec, local_ip: str, server: Address,
                share_port: bool = False) -> Channel:
    if spec.transport is Transport.UDP:
        return await open_udp(local_ip, server, run.host_ports[local_ip] if share_port else 0)
    tls = run.tls_context() if spec.transport is Transport.TLS else None
    return await open_stream(local_ip, server, run.deadline, tls, spec.host)


async def _turn(run: _Run, index: int, spec: ServerSpec, channel: Channel,
                family: int | None) -> tuple[list[Candidate], list[ErrorEvent]]:
    """Allocate (and release) a relay of `family`. A 440 leaves coturn's session of this
    5-tuple holding the user's quota (about 60 s over UDP; a TCP or TLS session ends with
    its connection, and a Refresh only gets 437): over UDP, that session is ended."""
    try:
        return await _allocate_and_release(run, index, spec, channel, family)
    except ProbeFailure as failure:
        if (failure.code == 440 and failure.cause is Cause.RESPONSE
                and channel.transport == "udp"):
            await _shielded(_end_session(channel, run.options.credentials))
        raise


async def _end_session(channel: Channel, credentials: Credentials | None) -> None:
    """End coturn's session of a 5-tuple whose Allocate got a 440: an Allocate of the
    default family on it, released at once, is the only thing that ends it (measured on
    coturn 4.6.1: the quota is then free again after its 1 s timer, instead of about 60 s).
    coturn answers that Allocate with a relayed address of 0.0.0.0 port 0: no relay, and
    never reported as one."""
    if credentials is None:
        return
    try:
        allocation = await probes.allocate(channel, credentials,
                                           time.monotonic() + probes.RELEASE_BUDGET)
    except ProbeFailure as failure:
        log.debug("%s could not end the refused session: %s", describe(channel.server_address),
                  failure.text)
        return
    await probes.release(channel, allocation, credentials)
    log.debug("%s ended the session the 440 left", describe(channel.server_address))


async def _shielded(work: Coroutine[Any, Any, Any]) -> None:
    """Run `work` to its end even when the probe is cancelled (a stop): it is bounded on its
    own, and cutting an Allocate short could leave an allocation behind."""
    running = asyncio.ensure_future(work)
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        await running
        raise


async def _allocate_and_release(run: _Run, index: int, spec: ServerSpec, channel: Channel,
                                family: int | None) -> tuple[list[Candidate], list[ErrorEvent]]:
    credentials = run.options.credentials
    attempt = probes.Attempt()
    try:
        allocation = await probes.allocate(channel, credentials, run.deadline, family, attempt)
    except asyncio.CancelledError:
        # Stopped with an authenticated Allocate out: the server may have made the
        # allocation, so delete it (a 437 says there was none) before the socket closes.
        if attempt.auth is not None:
            await probes.release_with(channel, attempt.auth, credentials)
        raise
    except ProbeFailure as failure:
        # The same when its answer did not come in time (or the connection broke): only an
        # error response says for sure that nothing was allocated.
        if attempt.auth is not None and failure.cause is not Cause.RESPONSE:
            await probes.release_with(channel, attempt.auth, credentials)
        raise
    finally:
        if attempt.realm is not None:
            run.realms[index] = attempt.realm
    if allocation.auth is None:  # granted without a 401 challenge: an open relay
        run.unauthenticated.add(index)
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
    # Without TURN-as-STUN, the mapped address of a UDP allocation stands for the srflx
    # candidate browsers get from that server; over TCP it is a TCP mapping, useless for UDP.
    if mapped is not None and spec.transport is Transport.UDP and not run.options.turn_as_stun:
        found.append(_reflexive(run, spec, mapped, channel))
    await _shielded(probes.release(channel, allocation, credentials))
    local = channel.local_address
    recovered = [_event(run, spec, failure, local[0], local[1], channel.server_address, family)
                 for failure in allocation.recovered]
    return found, recovered


def _reflexive(run: _Run, spec: ServerSpec, mapped: Address, channel: Channel) -> Candidate:
    """The server-reflexive candidate, labelled with the transport of the mapping (a stuns:
    server maps a TCP connection, RFC 6544), its base listed among the host candidates."""
    base = channel.local_address
    protocol = "udp" if channel.transport == "udp" else "tcp"
    tcp_type = None if protocol == "udp" else "active"
    _list_base(run, spec, base, protocol, tcp_type)
    return Candidate(
        type=CandidateType.SRFLX, protocol=protocol, address=mapped[0], port=mapped[1],
        related_address=base[0], related_port=base[1], url=spec.url,
        foundation=foundation(CandidateType.SRFLX, base[0], spec.host, protocol),
        priority=priority(CandidateType.SRFLX, base[0], protocol),
        elapsed_ms=run.elapsed_ms(), tcp_type=tcp_type)


def _list_base(run: _Run, spec: ServerSpec, base: Address, protocol: str,
               tcp_type: str | None) -> None:
    """A srflx's related address is its base, a host candidate (RFC 8445 section 5.1.1.2):
    a base that is not a shared host socket is listed as one, with the URL it served."""
    if protocol == "udp" and run.host_ports.get(base[0]) == base[1]:
        return
    if any(c.address == base[0] and c.port == base[1] and c.protocol == protocol
           for c in run.bases):
        return
    run.bases.append(Candidate(
        type=CandidateType.HOST, protocol=protocol, address=base[0], port=base[1],
        foundation=foundation(CandidateType.HOST, base[0], protocol=protocol),
        priority=priority(CandidateType.HOST, base[0], protocol), elapsed_ms=run.elapsed_ms(),
        url=spec.url, tcp_type=tcp_type))
