"""Fuzzing the receive path: generated replies (garbage, truncated headers, wrong cookies,
foreign transaction ids, lengths past the end, overrunning attributes, broken ERROR-CODEs,
unknown address families, huge attributes) go through the code that handles every datagram
and every TCP/TLS byte iceprobe receives. Nothing may raise: each reply becomes a response,
a `malformed` failure, a `wrong-method` failure (a readable response of another method than
the request's), or is ignored as unrelated. No network: the protocol objects are fed
directly, as the event loop would feed them."""

from __future__ import annotations

import asyncio
import random
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iceprobe.gather.channel import MAX_STRAY_KEPT, ProbeFailure, Waiters
from iceprobe.gather.stream import _StreamProtocol
from iceprobe.gather.udp import _UdpProtocol
from iceprobe.gather.wire import Response
from iceprobe.model import Cause

TID = bytes(range(12))
COOKIE = b"\x21\x12\xa4\x42"
SERVER = ("198.18.0.10", 3478)
#: Hypothesis examples (each shrinks to a minimal reply when it fails), plus a seeded corpus
#: of plain random replies of the same shapes, cheaper to generate: 12,000 replies in all.
EXAMPLES = 2_000
CORPUS = 10_000

_ATTRIBUTE_TYPES = [0x0001, 0x0006, 0x0008, 0x0009, 0x000A, 0x000D, 0x0014, 0x0015, 0x0016,
                    0x0017, 0x0020, 0x8022, 0x8023, 0x8028]


@st.composite
def attribute(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(_ATTRIBUTE_TYPES) | st.integers(0, 0xFFFF))
    if kind == 0x0009 and draw(st.booleans()):  # ERROR-CODE: class/number in or out of range
        value = (b"\x00\x00" + bytes([draw(st.integers(0, 255)), draw(st.integers(0, 255))])
                 + draw(st.binary(max_size=40) | st.just(b"\xff\xfe\xfa")))
    elif kind in (0x0001, 0x0020, 0x0016, 0x8023) and draw(st.booleans()):  # addresses
        family = draw(st.sampled_from([1, 2, 0, 3, 255]))
        value = bytes([0, family]) + draw(st.binary(min_size=0, max_size=20))
    else:
        value = draw(st.binary(max_size=draw(st.sampled_from([8, 64, 1500]))))
    declared = draw(st.sampled_from([len(value), len(value) + 4, max(0, len(value) - 1),
                                     0xFFFF]))
    padding = bytes(-len(value) % 4) if draw(st.booleans()) else b""
    return struct.pack("!HH", kind, declared) + value + padding


@st.composite
def reply(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))  # plain garbage
    message_type = draw(st.sampled_from([0x0101, 0x0111, 0x0103, 0x0113, 0x0001, 0x0017])
                        | st.integers(0, 0xFFFF))
    body = b"".join(draw(st.lists(attribute(), max_size=6)))
    length = draw(st.sampled_from([len(body), len(body) + 8, max(0, len(body) - 4), 0,
                                   0xFFFC]))
    cookie = COOKIE if draw(st.integers(0, 9)) else draw(st.binary(min_size=4, max_size=4))
    tid = TID if draw(st.integers(0, 9)) else draw(st.binary(min_size=12, max_size=12))
    message = struct.pack("!HH", message_type, length) + cookie + tid + body
    cut = draw(st.sampled_from([len(message), len(message), 3, 19, 20, len(message) // 2]))
    return message[:cut]


def _outcome(future: asyncio.Future[Response], *failures: Cause) -> str:
    if not future.done():
        return "ignored"
    failure = future.exception()
    if failure is None:
        assert isinstance(future.result(), Response)
        return "response"
    assert isinstance(failure, ProbeFailure) and failure.cause in failures, failure
    return failure.cause.value


LOOP = asyncio.new_event_loop()


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=reply())
def test_every_udp_reply_is_a_response_a_malformed_failure_or_ignored(data: bytes) -> None:
    async def feed() -> str:
        waiters = Waiters(SERVER)
        future = waiters.expect(TID)
        _UdpProtocol(waiters).datagram_received(data, SERVER)
        outcome = _outcome(future, Cause.MALFORMED, Cause.WRONG_METHOD)
        waiters.forget(TID)
        return outcome

    assert LOOP.run_until_complete(feed()) in ("response", "malformed", "wrong-method",
                                               "ignored")


@settings(max_examples=EXAMPLES // 4, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(messages=st.lists(reply(), min_size=1, max_size=4),
       chunk=st.sampled_from([1, 3, 7, 64, 4096]))
def test_every_stream_reply_dripped_or_whole_is_handled(messages: list[bytes],
                                                        chunk: int) -> None:
    async def feed() -> str:
        waiters = Waiters(SERVER)
        future = waiters.expect(TID)
        protocol = _StreamProtocol(waiters)
        stream = b"".join(messages)
        for start in range(0, len(stream), chunk):  # a server that drips its bytes
            protocol.data_received(stream[start:start + chunk])
        protocol.connection_lost(None)
        # The connection is gone: a reply that never completed ends as `closed`, not silence.
        assert future.done()
        outcome = _outcome(future, Cause.MALFORMED, Cause.WRONG_METHOD, Cause.CLOSED)
        waiters.forget(TID)
        return outcome

    assert LOOP.run_until_complete(feed()) in ("response", "malformed", "wrong-method",
                                               "closed")


def _random_reply(rng: random.Random) -> bytes:
    """The shapes of `reply()`, drawn with a seeded generator."""
    if rng.random() < 0.1:
        return rng.randbytes(rng.randrange(200))
    body = b""
    for _ in range(rng.randrange(6)):
        kind = rng.choice(_ATTRIBUTE_TYPES) if rng.random() < 0.8 else rng.randrange(0x10000)
        value = rng.randbytes(rng.choice([0, 2, 4, 8, 20, 64, 1500]))
        if kind == 0x0009 and rng.random() < 0.5:
            value = b"\x00\x00" + bytes([rng.randrange(256), rng.randrange(256)]) + value[:40]
        declared = rng.choice([len(value), len(value) + 4, max(0, len(value) - 1), 0xFFFF])
        body += struct.pack("!HH", kind, declared) + value + bytes(-len(value) % 4)
    message_type = rng.choice([0x0101, 0x0111, 0x0103, 0x0113, rng.randrange(0x10000)])
    length = rng.choice([len(body), len(body) + 8, max(0, len(body) - 4), 0xFFFC])
    cookie = COOKIE if rng.random() < 0.9 else rng.randbytes(4)
    tid = TID if rng.random() < 0.9 else rng.randbytes(12)
    message = struct.pack("!HH", message_type, length) + cookie + tid + body
    return message[:rng.choice([len(message), len(message), 3, 19, 20, len(message) // 2])]


def test_a_seeded_corpus_of_replies_through_the_udp_path() -> None:
    rng = random.Random(20261128)
    outcomes: dict[str, int] = {}

    async def feed(data: bytes) -> str:
        waiters = Waiters(SERVER)
        future = waiters.expect(TID)
        _UdpProtocol(waiters).datagram_received(data, SERVER)
        outcome = _outcome(future, Cause.MALFORMED, Cause.WRONG_METHOD)
        waiters.forget(TID)
        return outcome

    for _ in range(CORPUS):
        outcome = LOOP.run_until_complete(feed(_random_reply(rng)))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    # The corpus reaches every branch: readable replies, unreadable ones, unrelated ones.
    assert set(outcomes) == {"response", "malformed", "wrong-method", "ignored"}, outcomes


def test_a_flood_of_foreign_replies_is_counted_not_kept_unbounded() -> None:
    async def feed() -> tuple[int, int]:
        waiters = Waiters(SERVER)
        waiters.expect(TID)
        protocol = _UdpProtocol(waiters)
        for number in range(20_000):
            protocol.datagram_received(struct.pack("!HHI12s", 0x0101, 0, 0x2112A442,
                                                   number.to_bytes(12, "big")), SERVER)
        return waiters.stray_count, len(waiters.stray)

    assert LOOP.run_until_complete(feed()) == (20_000, MAX_STRAY_KEPT)
