"""`iceprobe capacity`: how many TURN allocations one server grants, and how fast.

Allocates are pipelined (PIPELINE in flight at once), each from its own local port (its own
5-tuple, as each browser tab has), each with the long-term credential challenge and, over
UDP, retransmissions (RFC 8656 section 7.1; RFC 8489 sections 6.2.1 and 9.2). The run stops
at --max-allocations or at the first failure: a 486 Allocation Quota Reached or a 508
Insufficient Capacity (RFC 8656 section 19) is what it looks for, and it never keeps asking
after one, so that it never fills a server's relay port range. Every allocation is released
with a Refresh of LIFETIME 0 (RFC 8656 section 8) before the run returns, also when it is
stopped (SIGINT, SIGTERM): within STOP_BUDGET.

This returns a `CapacityResult` and never raises for anything the network or the server does.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..capacity_model import CAPACITY_CODE, QUOTA_CODE, CapacityError, CapacityResult
from ..model import Cause, Credentials, ServerSpec, Transport
from . import probes
from .channel import Channel, ProbeFailure, describe, remaining
from .local import ResolutionError, resolve
from .options import GatherOptions, tls_context
from .run import allow_descriptors
from .stream import open_stream
from .udp import open_udp

log = logging.getLogger("iceprobe.gather")

#: Allocates in flight at once: enough to measure the server rather than one round trip at a
#: time, few enough that only a handful more are refused once the first 486 or 508 comes.
PIPELINE = 10
#: How long the releases may take together (they run at once, each bounded by
#: probes.RELEASE_BUDGET), and how long a stopped run waits for the Allocates in flight to
#: delete what they may hold.
STOP_BUDGET = probes.RELEASE_BUDGET + 0.2
#: Ending the sessions a 508 left: past coturn's 1 s quota timer (see _end_session).
SESSION_BUDGET = 2.5
SESSION_RETRY = 0.2


@dataclass(frozen=True)
class CapacityOptions:
    max_allocations: int
    credentials: Credentials | None
    #: The budget of each allocation: the challenge and the authenticated Allocate.
    timeout: float = 5.0
    ca_file: str | None = None
    insecure: bool = False
    pipeline: int = PIPELINE


@dataclass
class _Held:
    channel: Channel
    allocation: probes.Allocation


@dataclass
class _Run:
    options: CapacityOptions
    spec: ServerSpec
    server: tuple[str, int]
    local_ip: str
    tls: ssl.SSLContext | None
    held: list[_Held] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    first_sent: float | None = None
    last_granted: float | None = None
    #: Allocations found and deleted while their Allocate was cut short (a stop).
    released_in_flight: int = 0
    #: UDP channels whose Allocate got a 508: coturn 4.6.1 keeps that 5-tuple's session, and
    #: with it one unit of the user's quota, until the session times out (measured: a 486
    #: for the same user after the run), unless an Allocate on it is granted and released.
    refused: list[Channel] = field(default_factory=list)
    #: Every failed Allocate, in the order the failures came.
    failures: list[ProbeFailure] = field(default_factory=list)


async def measure_capacity(spec: ServerSpec, options: CapacityOptions,
                           stop: asyncio.Event | None = None) -> CapacityResult:
    """Allocate up to `options.max_allocations` relays on `spec`, then release them all."""
    started_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    started = time.monotonic()
    stop = stop if stop is not None else asyncio.Event()

    def result(run: _Run | None, error: CapacityError | None, released: int,
               interrupted: bool) -> CapacityResult:
        allocating = 0.0
        if run is not None and run.first_sent is not None and run.last_granted is not None:
            allocating = max(0.0, run.last_granted - run.first_sent)
        return CapacityResult(
            url=spec.url, server_address=run.server[0] if run is not None else None,
            started_at=started_at, duration_ms=round((time.monotonic() - started) * 1000, 1),
            max_allocations=options.max_allocations,
            allocate_ms=tuple(run.latencies) if run is not None else (),
            allocating_seconds=allocating, first_error=error, released=released,
            interrupted=interrupted)

    try:
        addresses = await _bounded(resolve(spec.host, spec.port, options.timeout), stop)
    except ResolutionError as exc:
        text = f"DNS lookup for {spec.host} failed: {exc}"
        return result(None, CapacityError(701, text, Cause.DNS, 0), 0, False)
    if addresses is None:
        return result(None, None, 0, True)
    if not addresses:
        text = f"DNS lookup for {spec.host} returned no addresses"
        return result(None, CapacityError(701, text, Cause.DNS, 0), 0, False)
    server = (addresses[0], spec.port)
    tls = None
    if spec.transport is Transport.TLS:
        try:
            tls = tls_context(GatherOptions(ca_file=options.ca_file, insecure=options.insecure))
        except (ssl.SSLError, OSError) as exc:
            text = f"cannot set up TLS: {exc}"
            return result(None, CapacityError(701, text, Cause.TLS, 0), 0, False)
    allow_descriptors(options.max_allocations + 64)
    run = _Run(options, spec, server, "::" if ":" in server[0] else "0.0.0.0", tls)
    error: CapacityError | None = None
    interrupted = False
    try:
        error, interrupted = await _allocate_all(run, stop)
    finally:
        released = await _release_all(run)
    return result(run, error, released + run.released_in_flight, interrupted)


async def _bounded(work: Coroutine[Any, Any, list[str]], stop: asyncio.Event
                   ) -> list[str] | None:
    """`work`'s result, or None when `stop` is set first."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if not task.done():
        task.cancel()
        return None
    return task.result()


async def _allocate_all(run: _Run, stop: asyncio.Event) -> tuple[CapacityError | None, bool]:
    """Keep PIPELINE Allocates in flight until max_allocations were sent, the first failure
    came, or `stop` was set. Returns the first failure and whether the run was stopped."""
    wanted = run.options.max_allocations
    in_flight: set[asyncio.Future[_Held]] = set()
    stopper = asyncio.ensure_future(stop.wait())
    sent = 0
    failure: ProbeFailure | None = None
    try:
        while True:
            while failure is None and sent < wanted and len(in_flight) < run.options.pipeline:
                in_flight.add(asyncio.ensure_future(_allocate_one(run)))
                sent += 1
            if not in_flight:
                break
            waiting: set[asyncio.Future[Any]] = {*in_flight, stopper}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if stopper in done:
                await _cancel(in_flight)
                return _first_error(run), True
            for task in done:
                in_flight.discard(task)
                problem = _problem(task)
                if problem is None:
                    continue
                if not any(problem is seen for seen in run.failures):
                    run.failures.append(problem)  # opening the channel failed, or a bug
                if failure is None:
                    failure = run.failures[0]
                    log.debug("%s stopping: %s %s after %d allocations",
                              describe(run.server), failure.code, failure.text,
                              len(run.held))
        return _first_error(run), False
    finally:
        stopper.cancel()
        if in_flight:  # only when this is cancelled itself
            await _cancel(in_flight)


def _problem(task: asyncio.Future[_Held]) -> ProbeFailure | None:
    """The failure of a finished Allocate, or None when it was granted (and is held)."""
    exc = task.exception()
    if exc is None:
        return None
    if isinstance(exc, ProbeFailure):
        return exc
    log.debug("! internal error while allocating", exc_info=exc)
    return ProbeFailure(Cause.INTERNAL, f"iceprobe failed while allocating: "
                                        f"{type(exc).__name__}: {exc}")


def _first_error(run: _Run) -> CapacityError | None:
    """The failure that came first, after the allocations granted before it (those in
    flight then count when they were granted: nothing was sent after it)."""
    if not run.failures:
        return None
    first = run.failures[0]
    return CapacityError(first.code, first.text, first.cause, len(run.held))


async def _cancel(tasks: set[asyncio.Future[_Held]]) -> None:
    """Cancel Allocates in flight; each deletes what it may have been granted (bounded)."""
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=STOP_BUDGET)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a failure after a stop is no news


async def _allocate_one(run: _Run) -> _Held:
    """One allocation from a local port of its own; the channel stays open while it is
    held. A failure is raised as ProbeFailure, after closing the channel."""
    deadline = time.monotonic() + run.options.timeout
    if run.first_sent is None:
        run.first_sent = time.monotonic()
    channel = await _open(run, deadline)
    credentials = run.options.credentials
    attempt = probes.Attempt()
    try:
        allocation = await probes.allocate(channel, credentials, deadline, None, attempt)
    except asyncio.CancelledError:
        # Stopped with an authenticated Allocate out: the server may hold the allocation.
        if attempt.auth is not None:
            await _release_pending(run, channel, attempt)
        channel.close()
        raise
    except ProbeFailure as failure:
        run.failures.append(failure)
        # No answer in time: only an error response says for sure nothing was allocated.
        if attempt.auth is not None and failure.cause is not Cause.RESPONSE:
            await _release_pending(run, channel, attempt)
        if (failure.code == CAPACITY_CODE and failure.cause is Cause.RESPONSE
                and channel.transport == "udp"):
            run.refused.append(channel)  # its session holds a unit of quota: ended later
        else:
            channel.close()
        raise
    except BaseException:
        channel.close()
        raise
    held = _Held(channel, allocation)
    run.held.append(held)
    run.latencies.append(round((allocation.allocate_seconds or 0.0) * 1000, 3))
    run.last_granted = time.monotonic()
    return held


async def _release_pending(run: _Run, channel: Channel, attempt: probes.Attempt) -> None:
    """Delete an allocation the server may hold though its Allocate got no answer (a 437
    says there was none)."""
    assert attempt.auth is not None
    if await _shielded(probes.release_with(channel, attempt.auth, run.options.credentials)):
        run.released_in_flight += 1


async def _open(run: _Run, deadline: float) -> Channel:
    if run.spec.transport is Transport.UDP:
        return await open_udp(run.local_ip, run.server)
    return await open_stream(run.local_ip, run.server, deadline, run.tls, run.spec.host)


async def _shielded(work: Coroutine[Any, Any, bool]) -> bool:
    """`work`'s result even when the caller is cancelled meanwhile (it is bounded itself)."""
    running = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        await running
        raise


async def _release_all(run: _Run) -> int:
    """Release every held allocation at once (each bounded by probes.RELEASE_BUDGET, all
    within STOP_BUDGET), then end each session a 508 left (within SESSION_BUDGET), and close
    the channels; how many allocations the server confirmed released."""
    held, run.held = run.held, []
    refused, run.refused = run.refused, []
    credentials = run.options.credentials
    releases: list[asyncio.Future[Any]] = [
        asyncio.ensure_future(probes.release(h.channel, h.allocation, credentials))
        for h in held]
    try:
        if releases:
            await _settle(releases, STOP_BUDGET)
        if refused:
            deadline = time.monotonic() + SESSION_BUDGET
            await _settle([asyncio.ensure_future(_end_session(channel, credentials, deadline))
                           for channel in refused], SESSION_BUDGET)
    finally:
        for channel in (*(h.channel for h in held), *refused):
            channel.close()
    confirmed = sum(1 for t in releases if t.done() and not t.cancelled()
                    and t.exception() is None and t.result())
    if confirmed < len(held):
        log.debug("! %d of %d allocations not confirmed released", len(held) - confirmed,
                  len(held))
    return confirmed


async def _settle(tasks: list[asyncio.Future[Any]], budget: float) -> None:
    """Wait for `tasks` up to `budget` seconds (even when cancelled meanwhile: they are
    what frees the server), then cancel what is left."""
    try:
        await _shielded_wait(tasks, budget)
    finally:
        for task in tasks:
            task.cancel()


async def _shielded_wait(tasks: list[asyncio.Future[Any]], budget: float) -> None:
    waiting = asyncio.ensure_future(asyncio.wait(tasks, timeout=budget))
    try:
        await asyncio.shield(waiting)
    except asyncio.CancelledError:
        await waiting
        raise


async def _end_session(channel: Channel, credentials: Credentials | None,
                       deadline: float) -> None:
    """End the session a 508 left on this 5-tuple: an Allocate on it, granted (coturn
    answers with a relayed address of 0.0.0.0 port 0) and released at once. Measured on
    coturn 4.6.1: without it the user's quota stays one short after the run. While the
    run's own released allocations still hold the quota and their ports (coturn frees them
    on a 1 s timer) that Allocate gets a 486 or a 508: it is repeated until the deadline."""
    while True:
        try:
            allocation = await probes.allocate(channel, credentials, deadline)
        except ProbeFailure as failure:
            if (failure.code in (QUOTA_CODE, CAPACITY_CODE)
                    and remaining(deadline) > SESSION_RETRY):
                await asyncio.sleep(SESSION_RETRY)
                continue
            log.debug("%s could not end the session the 508 left: %s %s",
                      describe(channel.server_address), failure.code, failure.text)
            return
        await probes.release(channel, allocation, credentials)
        log.debug("%s ended the session the 508 left", describe(channel.server_address))
        return


__all__ = ["PIPELINE", "CapacityOptions", "measure_capacity"]
