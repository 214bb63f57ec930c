"""Replies are matched to requests by transaction id, method and class (RFC 8489 section
6.3): what a server sends to our transaction with another method, and what it sends with
transaction ids of its own, are evidence (issue 16 items 3 and 4). No network: the protocol
objects are fed as the event loop would feed them."""

from __future__ import annotations

import asyncio
import struct

from aioice import stun

from iceprobe.gather import wire
from iceprobe.gather.channel import ProbeFailure, Waiters, timeout_failure
from iceprobe.gather.probes import _error_failure
from iceprobe.gather.udp import _UdpProtocol
from iceprobe.model import Cause

SERVER = ("198.18.0.10", 3478)


def _reply(method: stun.Method, transaction_id: bytes) -> bytes:
    message = stun.Message(message_method=method, message_class=stun.Class.RESPONSE,
                           transaction_id=transaction_id)
    message.attributes["XOR-MAPPED-ADDRESS"] = ("198.18.0.10", 4000)
    message.attributes["SOFTWARE"] = "node/v20 stun/v2.1.0"
    return bytes(message)


def test_binding_success_to_an_allocate_is_a_wrong_method_failure() -> None:
    async def feed() -> tuple[BaseException | None, str | None]:
        request = wire.allocate_request(None)
        waiters = Waiters(SERVER)
        future = waiters.expect(request.transaction_id, request.method, request.name)
        _UdpProtocol(waiters).datagram_received(
            _reply(stun.Method.BINDING, request.transaction_id), SERVER)
        return future.exception(), waiters.software

    failure, software = asyncio.run(feed())
    assert isinstance(failure, ProbeFailure)
    assert failure.cause is Cause.WRONG_METHOD and failure.problem == "binding-success"
    assert "answered the Allocate request with a Binding success" in failure.text
    assert software == "node/v20 stun/v2.1.0"  # the server's name is kept even so


def test_a_reply_of_the_right_method_is_the_response() -> None:
    async def feed() -> object:
        request = wire.binding_request()
        waiters = Waiters(SERVER)
        future = waiters.expect(request.transaction_id, request.method, request.name)
        _UdpProtocol(waiters).datagram_received(
            _reply(stun.Method.BINDING, request.transaction_id), SERVER)
        return future.result()

    response = asyncio.run(feed())
    assert isinstance(response, wire.Response)
    assert response.xor_mapped_address == ("198.18.0.10", 4000)


def test_replies_with_foreign_ids_are_counted_as_mismatched_and_named_in_the_timeout() -> None:
    async def feed() -> ProbeFailure:
        request = wire.binding_request()
        waiters = Waiters(SERVER)
        waiters.expect(request.transaction_id, request.method, request.name)
        protocol = _UdpProtocol(waiters)
        for number in range(3):
            protocol.datagram_received(_reply(stun.Method.BINDING,
                                              number.to_bytes(12, "big")), SERVER)
        protocol.datagram_received(b"not stun at all", SERVER)
        waiters.forget(request.transaction_id)
        return timeout_failure(SERVER, request, 4, 2.0, waiters, 0)

    failure = asyncio.run(feed())
    assert failure.cause is Cause.TIMEOUT
    assert failure.problem == "mismatched-transaction-ids"
    assert "3 STUN replies" in failure.text


def test_a_late_duplicate_of_an_answered_request_is_no_mismatch() -> None:
    async def feed() -> ProbeFailure:
        first, second = wire.binding_request(), wire.binding_request()
        waiters = Waiters(SERVER)
        protocol = _UdpProtocol(waiters)
        waiters.expect(first.transaction_id, first.method, first.name)
        protocol.datagram_received(_reply(stun.Method.BINDING, first.transaction_id), SERVER)
        waiters.forget(first.transaction_id)
        before = waiters.mismatched_count
        waiters.expect(second.transaction_id, second.method, second.name)
        # The answer to a retransmission of the first request arrives late.
        protocol.datagram_received(_reply(stun.Method.BINDING, first.transaction_id), SERVER)
        waiters.forget(second.transaction_id)
        return timeout_failure(SERVER, second, 4, 2.0, waiters, before)

    failure = asyncio.run(feed())
    assert failure.problem is None and "unrelated reply" in failure.text


def test_an_error_response_without_a_reason_phrase_gets_none_made_up() -> None:
    data = struct.pack("!HHI12s", 0x0113, 8, stun.COOKIE, bytes(12)) + bytes.fromhex(
        "00090004") + bytes([0, 0, 4, 0])
    response = wire.read_response(data)
    assert isinstance(response, wire.Response) and response.reason == ""
    failure = _error_failure(response, after_challenge=True)
    assert (failure.code, failure.text, failure.after_challenge) == (400, "", True)
