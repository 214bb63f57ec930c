"""Lab tests never skip in CI: one place that knows whether this run is CI, and turns a lab
part that cannot start into a skip with its reason (a developer without root) or a failure
(CI=true)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str, what: str = "lab tests") -> NoReturn:
    """Skip with the reason, or fail under CI=true."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the {what} must run)")
    pytest.skip(reason)
