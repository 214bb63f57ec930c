"""The TURN allocation of one attempt: Allocate and release, ending the session a 440
leaves behind, and how long --relay-family both's IPv6 attempt waits for the IPv4 one."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from ..model import Candidate, CandidateType, Cause, Credentials, ErrorEvent, ServerSpec, Transport
from . import probes
from .candidates import foundation, priority, reflexive
from .channel import Channel, ProbeFailure, describe, remaining
from .record import Run, error_event

log = logging.getLogger("iceprobe.gather")

#: How long the IPv6 attempt of --relay-family both waits for the IPv4 one: a server that
#: never answers must not cost it more than this, nor more than half the budget.
FIRST_FAMILY_WAIT = 1.0


def first_family_wait(deadline: float) -> float:
    return min(FIRST_FAMILY_WAIT, remaining(deadline) / 2)


async def turn(run: Run, index: int, spec: ServerSpec, channel: Channel,
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


async def _allocate_and_release(run: Run, index: int, spec: ServerSpec, channel: Channel,
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
    run.phase(index, "challenge", allocation.challenge_seconds)
    run.phase(index, "allocate", allocation.allocate_seconds)
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
        found.append(reflexive(run, spec, mapped, channel))
    await _shielded(probes.release(channel, allocation, credentials))
    local = channel.local_address
    recovered = [error_event(run, spec, failure, local[0], local[1], channel.server_address,
                             family)
                 for failure in allocation.recovered]
    return found, recovered
