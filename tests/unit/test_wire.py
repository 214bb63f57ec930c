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


def _reply(method: stun.Method, message_class: stun.Class, transaction_id: bytes,
           **attributes: object) -> bytes:
    message = stun.Message(message_method=method, message_class=message_class,
                           transaction_id=transaction_id)
    message.attributes.update(attributes)
    return bytes(message)


def test_a_response_says_its_method_and_the_software_that_sent_it() -> None:
    request = wire.allocate_request(None)
    assert request.method == stun.Method.ALLOCATE
    data = _reply(stun.Method.BINDING, stun.Class.RESPONSE, request.transaction_id,
                  **{"XOR-MAPPED-ADDRESS": ("198.18.0.10", 4000),
                     "SOFTWARE": "node/v20 stun/v2.1.0"})
    response = wire.read_response(data)
    assert isinstance(response, wire.Response)
    assert response.method == stun.Method.BINDING
    assert response.software == "node/v20 stun/v2.1.0"


def test_an_unreadable_error_response_still_says_its_method() -> None:
    # A reason phrase that is not UTF-8 makes aioice reject the message; the lenient reader
    # keeps the code and the method (0x0113: Allocate error response).
    body = bytes.fromhex("00090008") + bytes([0, 0, 4, 0]) + b"\xff\xfe\xfa\x00"
    data = bytes.fromhex("0113") + len(body).to_bytes(2, "big") + bytes.fromhex(
        "2112a442") + bytes(12) + body
    response = wire.read_response(data)
    assert isinstance(response, wire.Response)
    assert (response.error_code, response.method) == (400, stun.Method.ALLOCATE)
