"""Link tokens: minted and verified with the HMAC key, refused when expired, tampered or
malformed."""

from __future__ import annotations

import base64
import json

import pytest

from iceprobe.serve.links import Link, LinkError, mint, verify

KEY = b"k" * 32
NOW = 1_800_000_000


def test_a_minted_link_verifies_with_its_label_id_and_expiry() -> None:
    token = mint(KEY, "ticket 4711 <b>", NOW + 60)
    link = verify(KEY, token, NOW)
    assert link == Link(link.id, "ticket 4711 <b>", NOW + 60)
    assert len(link.id) == 16 and int(link.id, 16) >= 0


def test_two_links_for_one_label_have_different_ids_and_tokens() -> None:
    first, second = mint(KEY, "same", NOW + 60), mint(KEY, "same", NOW + 60)
    assert first != second
    assert verify(KEY, first, NOW).id != verify(KEY, second, NOW).id


def test_an_expired_link_is_expired() -> None:
    token = mint(KEY, "old", NOW)
    with pytest.raises(LinkError) as caught:
        verify(KEY, token, NOW)
    assert caught.value.reason == "expired"
    assert verify(KEY, token, NOW - 1).label == "old"


def _forge(token: str, **changes: object) -> str:
    body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{forged}.{signature}"


@pytest.mark.parametrize("changes", [{"e": NOW + 10**6}, {"l": "other"}, {"id": "0" * 16}])
def test_a_changed_payload_is_tampered(changes: dict[str, object]) -> None:
    token = _forge(mint(KEY, "x", NOW + 60), **changes)
    with pytest.raises(LinkError) as caught:
        verify(KEY, token, NOW)
    assert caught.value.reason == "tampered"


def test_another_key_makes_it_tampered() -> None:
    with pytest.raises(LinkError) as caught:
        verify(b"other" * 8, mint(KEY, "x", NOW + 60), NOW)
    assert caught.value.reason == "tampered"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "!!!.???", "a" * 5000, ".", "abc."])
def test_junk_is_malformed(token: str) -> None:
    with pytest.raises(LinkError) as caught:
        verify(KEY, token, NOW)
    assert caught.value.reason == "malformed"


def test_a_too_long_label_is_refused_at_minting() -> None:
    with pytest.raises(ValueError):
        mint(KEY, "x" * 201, NOW + 60)
