"""TURN REST API ephemeral credentials (draft-uberti-behave-turn-rest, coturn's
use-auth-secret): making them from a shared secret, and checking given ones.

username = "<expiry unix time><separator><user>"
password = base64(HMAC-SHA1(secret, username))

Pure functions: the current time is always passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from .model import Credentials

DEFAULT_TTL = 3600
DEFAULT_USER = "iceprobe"
DEFAULT_SEPARATOR = ":"
#: An expiry further ahead than this is implausible: a TTL of a day is already generous.
FAR_FUTURE_SECONDS = 7 * 24 * 3600

_EPHEMERAL = re.compile(r"^(\d{9,11})(?:\D|$)")


def rest_credentials(secret: str, user: str, ttl: int, separator: str,
                     now: float) -> Credentials:
    """Credentials valid for `ttl` seconds from `now`."""
    username = f"{int(now) + ttl}{separator}{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return Credentials(username, base64.b64encode(digest).decode("ascii"))


@dataclass(frozen=True)
class EphemeralExpiry:
    """The expiry a TURN REST username carries, and when it was checked."""

    expires_at: int
    checked_at: float

    @property
    def seconds_left(self) -> float:
        return self.expires_at - self.checked_at


def ephemeral_expiry(username: str, now: float) -> EphemeralExpiry | None:
    """The expiry of a username that looks ephemeral (a leading unix timestamp), else None."""
    match = _EPHEMERAL.match(username)
    if match is None:
        return None
    return EphemeralExpiry(int(match.group(1)), now)


def describe_duration(seconds: float) -> str:
    seconds = abs(int(seconds))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
