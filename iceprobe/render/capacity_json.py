"""The JSON document of `iceprobe capacity --json` (schema `capacity`, docs/json.md)."""

from __future__ import annotations

import json
from typing import Any, TextIO

from .. import __version__
from ..capacity_model import CapacityResult

SCHEMA_VERSION = 2


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def capacity_document(result: CapacityResult) -> dict[str, Any]:
    error = result.first_error
    rate = result.allocations_per_s
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "iceprobe", "version": __version__},
        "url": result.url,
        "server_address": result.server_address,
        "started_at": result.started_at,
        "duration_ms": result.duration_ms,
        "max_allocations": result.max_allocations,
        "allocations_ok": result.allocations_ok,
        "allocations_per_s": None if rate is None else round(rate, 1),
        "allocate_ms": {"p50": _ms(result.p50_ms), "p99": _ms(result.p99_ms)},
        "first_error": None if error is None else {
            "error_code": error.error_code, "error_text": error.error_text,
            "cause": error.cause.value, "after": error.after},
        "released": result.released,
        "interrupted": result.interrupted,
    }


def render_capacity_json(result: CapacityResult, file: TextIO) -> None:
    file.write(json.dumps(capacity_document(result), indent=2) + "\n")


__all__ = ["capacity_document", "render_capacity_json"]
