"""What `iceprobe capacity` measured: how many TURN allocations one server granted, how fast,
what stopped it, and how many were released. Pure values; the gatherer fills them in
(iceprobe/gather/capacity.py) and the renderers show them (iceprobe/render/capacity.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .constants import Cause, ExitCode

#: The most allocations one run may ask for: a load test of the user's own server, never an
#: attempt to fill its relay port range (coturn 4.6.1, its range full, logs ~1.8 M failed
#: binds and takes up to 26 s to refuse).
MAX_ALLOCATIONS = 100
#: Codes that mean "the server is full": 486 Allocation Quota Reached (the user's quota)
#: and 508 Insufficient Capacity (the server's), RFC 8656 section 19.
QUOTA_CODE = 486
CAPACITY_CODE = 508


@dataclass(frozen=True)
class CapacityError:
    """The first Allocate that failed, and how many had been granted before it.

    `after` counts the allocations the server granted before it refused: with pipelined
    requests, those still in flight when the refusal came count too when they were granted
    (no new request goes out after it)."""

    error_code: int
    error_text: str
    cause: Cause
    after: int


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile (`fraction` 0.5 is the median, 0.99 the p99): the
    smallest value that at least that fraction of the values do not exceed; None for none."""
    if not values:
        return None
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction {fraction} is not in (0, 1]")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class CapacityResult:
    """One `iceprobe capacity` run against one TURN server."""

    url: str
    #: The address the Allocates went to (the first the name resolved to); None when the
    #: name did not resolve.
    server_address: str | None
    started_at: str
    duration_ms: float
    max_allocations: int
    #: The latency of each granted allocation's authenticated Allocate (request to success,
    #: retransmissions included), in milliseconds, in the order they were granted.
    allocate_ms: tuple[float, ...]
    #: From the first Allocate sent to the last one granted, in seconds (0 when none was).
    allocating_seconds: float
    first_error: CapacityError | None
    #: Allocations deleted with a Refresh of LIFETIME 0 that the server confirmed.
    released: int
    #: Stopped by SIGINT or SIGTERM before it reached max_allocations or an error.
    interrupted: bool = False

    @property
    def allocations_ok(self) -> int:
        return len(self.allocate_ms)

    @property
    def allocations_per_s(self) -> float | None:
        """Granted allocations per second of allocating; None when none was granted."""
        if not self.allocate_ms or self.allocating_seconds <= 0:
            return None
        return self.allocations_ok / self.allocating_seconds

    @property
    def p50_ms(self) -> float | None:
        return percentile(self.allocate_ms, 0.5)

    @property
    def p99_ms(self) -> float | None:
        return percentile(self.allocate_ms, 0.99)

    @property
    def reached(self) -> bool:
        """Every allocation asked for was granted, with no error."""
        return (self.first_error is None and not self.interrupted
                and self.allocations_ok >= self.max_allocations)

    @property
    def unreleased(self) -> int:
        """Granted allocations whose release the server did not confirm."""
        return max(0, self.allocations_ok - self.released)

    def exit_code(self, stopped_by: int | None) -> int:
        """0 when it reached --max-allocations with no error; 1 when an error stopped it
        (486, 508 or any other: a finding); 128 + the signal when a signal stopped it."""
        if stopped_by is not None:
            return 128 + stopped_by
        if self.interrupted:
            return ExitCode.INTERRUPTED
        return ExitCode.OK if self.reached else ExitCode.FAIL


__all__ = ["CAPACITY_CODE", "MAX_ALLOCATIONS", "QUOTA_CODE", "CapacityError", "CapacityResult",
           "percentile"]
