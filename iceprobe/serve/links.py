"""Link tokens: what a test link carries, signed so that the server verifies it without a
database round trip (and two `serve` processes sharing one key agree).

token = base64url(json {"v": 1, "id": <16 random hex>, "l": <label>, "e": <expiry epoch s>})
        + "." + base64url(HMAC-SHA256(key, <the first part, as ASCII>))

Pure functions: the current time is always passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

VERSION = 1
#: Longest label kept in a link (a ticket number or a customer's name, not a letter).
MAX_LABEL = 200
#: Longest token looked at: anything longer is not one of ours.
MAX_TOKEN = 2048
REASONS = ("malformed", "tampered", "expired")


class LinkError(Exception):
    """A token that is not a valid link; `reason` is one of REASONS."""

    def __init__(self, reason: str) -> None:
        assert reason in REASONS, reason
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Link:
    id: str
    label: str
    expires_at: int


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    if not text or any(c not in _ALPHABET for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _signature(key: bytes, body: str) -> str:
    return _encode(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest())


def mint(key: bytes, label: str, expires_at: int, link_id: str | None = None) -> str:
    """A token for a new link (a fresh random id unless one is given)."""
    if len(label) > MAX_LABEL:
        raise ValueError(f"label longer than {MAX_LABEL} characters")
    payload = {"v": VERSION, "id": link_id or secrets.token_hex(8), "l": label,
               "e": int(expires_at)}
    body = _encode(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{body}.{_signature(key, body)}"


def verify(key: bytes, token: str, now: float) -> Link:
    """The link a token stands for; LinkError("malformed"|"tampered"|"expired") otherwise.
    The signature is checked before the payload is trusted, and in constant time."""
    if len(token) > MAX_TOKEN or token.count(".") != 1:
        raise LinkError("malformed")
    body, signature = token.split(".")
    try:
        _decode(body)
        _decode(signature)
    except (ValueError, binascii.Error):
        raise LinkError("malformed") from None
    if not hmac.compare_digest(_signature(key, body), signature):
        raise LinkError("tampered")
    try:
        payload = json.loads(_decode(body))
    except ValueError:  # signed by us but unreadable: cannot happen unless the key leaked
        raise LinkError("malformed") from None
    if not isinstance(payload, dict) or payload.get("v") != VERSION:
        raise LinkError("malformed")
    link_id, label, expires = payload.get("id"), payload.get("l"), payload.get("e")
    if not isinstance(link_id, str) or not isinstance(label, str) \
            or isinstance(expires, bool) or not isinstance(expires, int):
        raise LinkError("malformed")
    if now >= expires:
        raise LinkError("expired")
    return Link(link_id, label, expires)
