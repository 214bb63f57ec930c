"""Channels to one server address: what UDP and stream channels share.

A channel sends STUN requests to one server address and matches the replies to them by
transaction id (`Waiters`); `udp` and `stream` open the two kinds.

Every failure is raised as `ProbeFailure`, which carries the 701 cause and a text a person
can act on; callers turn it into an `ErrorEvent`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from typing import Protocol

from ..model import Cause
from . import wire
from .wire import Address, Malformed, Request, Response

log = logging.getLogger("iceprobe.gather")


class ProbeFailure(Exception):
    """A probe that could not complete; becomes an ErrorEvent."""

    def __init__(self, cause: Cause, text: str, code: int = 701,
                 problem: str | None = None, after_challenge: bool | None = None) -> None:
        super().__init__(text)
        self.cause = cause
        self.text = text
        self.code = code
        self.problem = problem
        #: For an error response to an Allocate: whether the request answered the server's
        #: 401 challenge with credentials (USERNAME, MESSAGE-INTEGRITY); None otherwise.
        self.after_challenge = after_challenge


class Channel(Protocol):
    local_address: Address
    server_address: Address
    #: udp, tcp or tls: how the channel reaches the server.
    transport: str
    #: When its first packet went out (time.monotonic()); None before.
    first_sent_at: float | None

    @property
    def software(self) -> str | None:
        """The server's SOFTWARE attribute, from the last response that carried one."""

    async def transact(self, request: Request, deadline: float) -> Response: ...

    def close(self) -> None: ...


def remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def describe(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def route(transport: str, local: Address | str | None, server: Address) -> str:
    """How a trace line names a channel: transport, local address:port -> server."""
    if isinstance(local, tuple):
        here = describe(local)
    elif local is None:
        here = "?"
    else:  # the address, before the system picks the port
        here = f"[{local}]:?" if ":" in local else f"{local}:?"
    return f"{transport} {here} -> {describe(server)}"


def _nonce(nonce: bytes | None) -> str:
    """A nonce for the trace: present or not, and its first bytes only."""
    if nonce is None:
        return "no NONCE"
    text = nonce.decode("ascii", errors="replace")
    return f"NONCE {text[:8]}{'…' if len(text) > 8 else ''} ({len(nonce)} bytes)"


def request_line(request: Request) -> str:
    """A request for the trace: never its key, only who it speaks for."""
    line = f"{request.name} request tid={request.transaction_id.hex()}"
    if request.username is not None:
        line += f" USERNAME {request.username!r} REALM {request.realm!r} NONCE MESSAGE-INTEGRITY"
    return line


def response_line(request: Request, response: Response) -> str:
    kind = (f"error response {response.error_code} {response.reason!r}" if response.is_error
            else "success response")
    realm = "no REALM" if response.realm is None else f"REALM {response.realm!r}"
    return (f"{request.name} {kind} tid={request.transaction_id.hex()} {realm} "
            f"{_nonce(response.nonce)}")


#: How many unrelated replies a channel describes (it counts them all).
MAX_STRAY_KEPT = 10


class Waiters:
    """Pending transactions keyed by transaction id, plus what went wrong on the wire."""

    def __init__(self, server: Address, transport: str = "udp") -> None:
        self.server = server
        #: How trace lines name the channel; completed once the local port is known.
        self.route = route(transport, None, server)
        self.pending: dict[bytes, asyncio.Future[Response]] = {}
        #: The method and name of each pending request: its reply must be of that method.
        self.methods: dict[bytes, tuple[int, str]] = {}
        self.failure: ProbeFailure | None = None
        #: Replies that belonged to no pending transaction: how many, and the first few.
        self.stray_count = 0
        self.stray: list[str] = []
        #: Of those, STUN messages whose transaction id matches no request ever sent on this
        #: channel (late duplicates of answered requests are not counted).
        self.mismatched_count = 0
        #: Transaction ids this channel sent (a reply to one is no mismatch, only late).
        self.sent: set[bytes] = set()
        #: The SOFTWARE attribute of the last response that carried one.
        self.software: str | None = None

    def expect(self, transaction_id: bytes, method: int = 0x001,
               name: str = "Binding") -> asyncio.Future[Response]:
        if self.failure is not None:
            raise self.failure
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.pending[transaction_id] = future
        self.methods[transaction_id] = (method, name)
        if len(self.sent) < 10_000:  # a channel sends a handful; never unbounded
            self.sent.add(transaction_id)
        return future

    def deliver(self, data: bytes) -> None:
        transaction_id = wire.transaction_id_of(data)
        future = self.pending.get(transaction_id) if transaction_id else None
        if future is None or future.done():
            what = "not a STUN message" if transaction_id is None else "an unknown transaction"
            self.stray_count += 1
            if transaction_id is not None and transaction_id not in self.sent:
                self.mismatched_count += 1
            if len(self.stray) < MAX_STRAY_KEPT:  # a flood must not grow memory
                self.stray.append(f"{len(data)} bytes, {what}")
            log.debug("%s < ignored %d bytes (%s)", self.route, len(data), what)
            return
        assert transaction_id is not None
        reply = wire.read_response(data)
        if isinstance(reply, Malformed):
            future.set_exception(ProbeFailure(
                Cause.MALFORMED,
                f"{describe(self.server)} sent a reply iceprobe cannot read: {reply.problem}",
            ))
            return
        if reply.software is not None:
            self.software = reply.software
        method, name = self.methods.get(transaction_id, (reply.method, ""))
        if reply.method != method:
            kind = "error" if reply.is_error else "success"
            got = wire.method_name(reply.method)
            log.debug("%s < %s %s response to the %s request (same transaction id)",
                      self.route, got, kind, name)
            future.set_exception(ProbeFailure(
                Cause.WRONG_METHOD,
                f"{describe(self.server)} answered the {name} request with a {got} {kind} "
                "response (same transaction id)",
                problem=f"{got.lower().replace(' ', '-')}-{kind}"))
            return
        future.set_result(reply)

    def fail(self, failure: ProbeFailure) -> None:
        if self.failure is None:
            self.failure = failure
        for future in self.pending.values():
            if not future.done():
                future.set_exception(failure)

    def forget(self, transaction_id: bytes) -> None:
        self.methods.pop(transaction_id, None)
        future = self.pending.pop(transaction_id, None)
        if future is not None and not future.done():
            future.cancel()
        elif future is not None and not future.cancelled():
            future.exception()  # mark retrieved


def _timeout_text(server: Address, request: Request, sends: int, waited: float,
                  stray: int) -> str:
    text = (f"No answer from {describe(server)} to the {request.name} request "
            f"within {waited:.1f} s ({sends} {'send' if sends == 1 else 'sends'})")
    if stray:
        text += f"; ignored {stray} unrelated {'reply' if stray == 1 else 'replies'}"
    return text


def timeout_failure(server: Address, request: Request, sends: int, waited: float,
                    waiters: Waiters, mismatched_before: int) -> ProbeFailure:
    """The timeout of one request; when the server did answer it, only with STUN messages
    whose transaction ids match nothing sent, the failure says so (problem
    `mismatched-transaction-ids`): a broken server, or a middlebox rewriting STUN."""
    mismatched = waiters.mismatched_count - mismatched_before
    text = _timeout_text(server, request, sends, waited, waiters.stray_count)
    if not mismatched:
        return ProbeFailure(Cause.TIMEOUT, text)
    replies = "reply" if mismatched == 1 else "replies"
    return ProbeFailure(
        Cause.TIMEOUT,
        f"No matching answer from {describe(server)} to the {request.name} request within "
        f"{waited:.1f} s ({sends} {'send' if sends == 1 else 'sends'}), but {mismatched} "
        f"STUN {replies} from it with transaction ids that match no request",
        problem="mismatched-transaction-ids")


def os_failure(exc: OSError, what: str) -> ProbeFailure:
    reason = exc.strerror or str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return ProbeFailure(Cause.REFUSED, f"{what}: connection refused")
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN):
        return ProbeFailure(Cause.UNREACHABLE, f"{what}: {reason}")
    if exc.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
        return ProbeFailure(Cause.CLOSED, f"{what}: {reason}")
    return ProbeFailure(Cause.SOCKET, f"{what}: {reason}")
