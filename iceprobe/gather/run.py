"""Gathering: every server, from every local address, concurrently, inside one time budget.

This returns a `GatherReport` and never raises for anything the network or a server does:
each failure is an `ErrorEvent` in the result of the server it concerns.

This module runs the probes: the deadline, the concurrency slots, each server's attempts and
the report. A TURN attempt's allocation is in `allocation`, the candidates are built in
`candidates`, and the run's shared record and its events and results are in `record`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from ..constants import SLOTS_BUSY
from ..model import (
    Candidate,
    Cause,
    ErrorEvent,
    GatherReport,
    ProbeResult,
    Scheme,
    ServerSpec,
    Transport,
)
from . import probes
from .allocation import first_family_wait, turn
from .candidates import bind_host_sockets, reflexive, share_host_port
from .channel import Channel, ProbeFailure, describe, remaining
from .local import ResolutionError, resolve
from .options import GatherOptions, tls_context
from .record import Run, error_event, probe_result
from .stream import StreamChannel, open_stream
from .udp import open_udp
from .wire import Address

log = logging.getLogger("iceprobe.gather")

#: How long a stopped run (SIGINT, SIGTERM) waits for its probes to release their
#: allocations and close their sockets: a release's own budget, plus a little.
STOP_BUDGET = probes.RELEASE_BUDGET + 0.2
#: Allocation Mismatch (RFC 8656 section 6.2): the 5-tuple already has an allocation.
STALE_FIVE_TUPLE_CODE = 437


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
    allow_descriptors(options.concurrency + _SPARE_DESCRIPTORS)
    run = Run(options, started, started + options.timeout, [],
              asyncio.Semaphore(max(1, options.concurrency)), tls)
    host_sockets, host_candidates = bind_host_sockets(run)
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


def allow_descriptors(wanted: int) -> None:
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


def _outcome(run: Run, index: int, spec: ServerSpec,
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
                       unauthenticated_allocation=index in run.unauthenticated,
                       phases=run.phase_times(index),
                       certificate_expires=run.certificate_expires.get(index))



async def _probe_server(run: Run, index: int, spec: ServerSpec) -> ProbeResult:
    resolving_at = time.monotonic()
    try:
        addresses = await resolve(spec.host, spec.port, remaining(run.deadline))
        run.phase(index, "dns", time.monotonic() - resolving_at)
    except ResolutionError as exc:
        failure = ProbeFailure(Cause.DNS, f"DNS lookup for {spec.host} failed: {exc}")
        return probe_result(run, index, spec, [], [error_event(run, spec, failure)])
    if not addresses:
        failure = ProbeFailure(Cause.DNS, f"DNS lookup for {spec.host} returned no addresses")
        return probe_result(run, index, spec, [], [error_event(run, spec, failure)], addresses)

    pairs = [(local, server) for server in addresses for local in run.local_ips
             if (":" in local) == (":" in server)]
    if not pairs:
        families = " or ".join(sorted({"IPv6" if ":" in a else "IPv4" for a in addresses}))
        failure = ProbeFailure(Cause.SOCKET,
                               f"this machine has no {families} address to reach {spec.host} from")
        return probe_result(run, index, spec, [], [error_event(run, spec, failure)], addresses)

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
    result = probe_result(run, index, spec, candidates, errors, addresses)
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


async def _slotted(run: Run, index: int, spec: ServerSpec, local_ip: str, server: Address,
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


async def _attempt(run: Run, index: int, spec: ServerSpec, local_ip: str, server: Address,
                   follow_redirect: bool = True, family: int | None = None,
                   new_port_on_mismatch: bool = True
                   ) -> tuple[list[Candidate], list[ErrorEvent]]:
    """One local address against one server address: candidates and error events."""
    channel: Channel | None = None
    connecting_at = time.monotonic()  # a TCP connection attempt is the first packet
    shared: tuple[str, str, int] | None = None
    try:
        if spec.transport is Transport.UDP and not spec.is_turn:
            shared = share_host_port(run, local_ip, server)
        channel = await _open(run, spec, local_ip, server, shared is not None)
        if isinstance(channel, StreamChannel):
            run.phase(index, "connect", channel.connect_seconds)
            run.phase(index, "tls", channel.tls_seconds)
            if channel.certificate_expires is not None:
                run.certificate_expires.setdefault(index, channel.certificate_expires)
        if spec.is_turn:
            return await turn(run, index, spec, channel, family)
        binding_at = time.monotonic()
        mapped = await probes.binding(channel, run.deadline)
        run.phase(index, "binding", time.monotonic() - binding_at)
        return [reflexive(run, spec, mapped, channel)], []
    except probes.Redirect as redirect:
        local_port = channel.local_address[1] if channel else None
        event = error_event(run, spec, redirect, local_ip, local_port, server, family)
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
        if (failure.code == STALE_FIVE_TUPLE_CODE and new_port_on_mismatch and spec.is_turn
                and spec.transport is Transport.UDP and remaining(run.deadline) > 0):
            # A 437 to a fresh socket's Allocate: the server still keeps an allocation of
            # this 5-tuple, left by an earlier client of the same local port (coturn holds a
            # released one for about a second; probing again and again, the kernel hands out
            # a port again soon enough). Not the server's fault: try once from another port,
            # and report a 437 only if it comes again.
            log.debug("437 on local port %s: once more from another port", local_port)
            if channel is not None:
                _sent(run, index, spec, channel, connecting_at)
                channel.close()
                channel = None
            return await _attempt(run, index, spec, local_ip, server, follow_redirect,
                                  family, new_port_on_mismatch=False)
        return [], [error_event(run, spec, failure, local_ip, local_port, server, family)]
    except Exception as exc:  # a bug must still be a value, not a crash
        log.debug("! internal error probing %s", spec.url, exc_info=True)
        internal = ProbeFailure(Cause.INTERNAL, f"iceprobe failed while probing "
                                                f"{describe(server)}: {type(exc).__name__}: {exc}")
        return [], [error_event(run, spec, internal, local_ip, None, server, family)]
    finally:
        _sent(run, index, spec, channel, connecting_at)
        if shared is not None:
            run.shared.discard(shared)
        if channel is not None:
            channel.close()


def _sent(run: Run, index: int, spec: ServerSpec, channel: Channel | None,
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


async def _open(run: Run, spec: ServerSpec, local_ip: str, server: Address,
                share_port: bool = False) -> Channel:
    if spec.transport is Transport.UDP:
        return await open_udp(local_ip, server, run.host_ports[local_ip] if share_port else 0)
    tls = run.tls_context() if spec.transport is Transport.TLS else None
    return await open_stream(local_ip, server, run.deadline, tls, spec.host)
