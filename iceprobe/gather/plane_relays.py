"""The asyncio face of iceprobe's own TURN data plane (plane.py): each measurement runs in a
daemon thread of its own, which the event loop awaits, bounded by the sum of the
measurement's own bounds; a set `stop` (SIGINT, SIGTERM) makes the thread finish the phase in
progress at once and release every allocation within RELEASE_BUDGET."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from ..model import GatherReport, RelayCheck, RelayStep, ServerSpec
from .plane import (
    QUOTA_TIMER,
    RELEASE_BUDGET,
    SETTLE,
    SWEEP_BUDGET,
    PlaneOptions,
    measure,
)
from .plane_loop import DRAIN_MAX


def longest(options: PlaneOptions) -> float:
    """The most a measurement can take, every bound added up (set-up, the steady phase and
    its drain, the sweep, the release), with a margin: past it, the caller stops it."""
    sweep = (SWEEP_BUDGET + 2 * (options.sweep_step + DRAIN_MAX) + SETTLE
             if options.sweep else 0.0)
    return (options.setup_timeout + QUOTA_TIMER + options.duration + DRAIN_MAX + sweep
            + RELEASE_BUDGET + 2.0)


async def measure_relay(spec: ServerSpec, options: PlaneOptions,
                        stop: asyncio.Event | None = None) -> RelayCheck:
    """`measure` in a thread of its own; a set `stop` ends it (the allocations released)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[RelayCheck] = loop.create_future()
    halt = threading.Event()

    def work() -> None:
        result = measure(spec, options, halt)

        def deliver() -> None:
            if not done.done():
                done.set_result(result)

        loop.call_soon_threadsafe(deliver)

    thread = threading.Thread(target=work, name="iceprobe-plane", daemon=True)
    thread.start()
    stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
    try:
        waiting: set[asyncio.Future[Any]] = {done}
        if stopper is not None:
            waiting.add(stopper)
        await asyncio.wait(waiting, timeout=longest(options),
                           return_when=asyncio.FIRST_COMPLETED)
        if not done.done():
            halt.set()
            await asyncio.wait({done}, timeout=RELEASE_BUDGET + 1.0)
    finally:
        halt.set()
        if stopper is not None:
            stopper.cancel()
    if done.done():
        return done.result()
    return RelayCheck(server=spec, duration_ms=0.0, engine="turn", failed_step=RelayStep.ECHO,
                      failure="not finished: the run was interrupted", interrupted=True)


async def measure_relays(gathered: GatherReport, options: PlaneOptions,
                         stop: asyncio.Event | None = None) -> tuple[RelayCheck, ...]:
    """The data plane through each TURN server of a gathering run whose allocation worked,
    one after the other."""
    checks: list[RelayCheck] = []
    for result in gathered.results:
        spec = result.server
        if not spec.is_turn:
            continue
        if stop is not None and stop.is_set():
            checks.append(RelayCheck(server=spec, duration_ms=0.0, attempted=False,
                                     engine="turn", failed_step=RelayStep.ALLOCATE,
                                     failure="not finished: the run was interrupted"))
            continue
        if not result.ok:
            checks.append(RelayCheck(server=spec, duration_ms=0.0, attempted=False,
                                     engine="turn", failed_step=RelayStep.ALLOCATE,
                                     failure="not tried: the allocation failed (see the "
                                             "error events)"))
            continue
        checks.append(await measure_relay(spec, options, stop))
    return tuple(checks)
