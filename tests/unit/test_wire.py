"""Requests iceprobe encodes itself parse and verify with aioice's reader."""

from __future__ import annotations

from aioice import stun

from iceprobe.gather import wire


def test_ipv6_allocate_carries_requested_address_family_and_valid_integrity() -> None:
    auth = wire.long_term_auth("alice", "pw", "lab", b"nonce-1")
    request = wire.allocate_request(auth, family=6)
    message = stun.parse_message(request.data)  # also checks FINGERPRINT
    assert message.transaction_id == request.transaction_id
    assert message.attributes["USERNAME"] == "alice"
    assert message.attributes["NONCE"] == b"nonce-1"
    assert message.check_message_integrity(auth.key)
    raw = request.data
    index = raw.index(bytes.fromhex("00170004"))
    assert raw[index + 4] == 0x02  # IPv6


def test_unauthenticated_ipv6_allocate_is_well_formed() -> None:
    request = wire.allocate_request(None, family=6)
    message = stun.parse_message(request.data)
    assert message.message_method == stun.Method.ALLOCATE
    assert "MESSAGE-INTEGRITY" not in message.attributes
