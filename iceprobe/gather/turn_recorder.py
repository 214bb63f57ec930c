"""The relay check's own TURN transactions, as seen on the wire between each peer and the
server: what was asked (ChannelBind, CreatePermission, Refresh), how often, and what came
back, including the answers aioice throws away.

aioice discards a response to an authenticated request that carries no valid
MESSAGE-INTEGRITY, and keeps resending (RFC 8489 section 9.2.5), without a word: node-turn
0.0.6 answers ChannelBind that way, and the check then fails at ICE with nothing to show.
The recorder sits on the peers' TURN client protocols (relay_peers.attach_recorder hooks it
in), reads every datagram they send and receive, and turns what it saw into `TurnExchange`
values and, for what went wrong, error events. It also notices the server going away during
the check (an ICMP port unreachable on UDP, a closed TCP/TLS connection).

It only observes: it never changes what aioice sends or accepts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from ..model import Cause, ErrorEvent, ServerSpec, TurnExchange
from .wire import Seen, is_channel_data, read_turn_message, transaction_id_of

log = logging.getLogger("iceprobe.relay")

#: The requests a peer makes after its allocation; the Allocate itself came before the hook.
TRACKED = frozenset({"ChannelBind", "CreatePermission", "Refresh"})
#: Errors the long-term credential mechanism answers and the client retries with a new nonce.
_RETRIED = frozenset({401, 438})


@dataclass
class _Exchange:
    peer: str
    request: str
    transaction_id: bytes
    key: bytes | None
    local: tuple[str | None, int | None]
    first_sent: float
    last_sent: float = 0.0
    sends: int = 0
    answers: int = 0
    outcome: str | None = None
    error_code: int | None = None
    reason: str = ""
    problem: str | None = None
    answered_at: float | None = None


class TurnRecorder:
    """What one relay check's peers exchanged with the TURN server, since their
    allocations."""

    def __init__(self, spec: ServerSpec, started: float) -> None:
        self.spec = spec
        self.started = started
        self._exchanges: dict[bytes, _Exchange] = {}
        self.channel_data_sent = 0
        self.channel_data_received = 0
        #: Set on a 403 to any of the requests (the server refuses the other peer).
        self.denied = asyncio.Event()
        #: Set when the server went away during the check; `lost` says how.
        self.gone = asyncio.Event()
        self.lost: ErrorEvent | None = None
        #: Set by the check before it closes the peers: a connection closed from then on is
        #: our own doing.
        self.closing = False

    def elapsed_ms(self, at: float | None = None) -> float:
        return round(((time.monotonic() if at is None else at) - self.started) * 1000, 1)

    # --- what the hooks call ----------------------------------------------------------

    def sent(self, peer: str, data: bytes, key: bytes | None,
             local: tuple[str | None, int | None]) -> None:
        """A message a peer's TURN client is about to send to the server."""
        if is_channel_data(data):
            self.channel_data_sent += 1
            return
        seen = read_turn_message(data)
        if seen is None or seen.kind != "request" or seen.method not in TRACKED:
            return
        exchange = self._exchanges.get(seen.transaction_id)
        if exchange is None:
            name = "Refresh(0)" if seen.method == "Refresh" and seen.lifetime == 0 \
                else seen.method
            exchange = _Exchange(peer, name, seen.transaction_id, key, local,
                                 time.monotonic())
            self._exchanges[seen.transaction_id] = exchange
        exchange.sends += 1
        exchange.last_sent = time.monotonic()
        log.debug("  %s turn > %s request tid=%s (send %d)", peer, exchange.request,
                  seen.transaction_id.hex(), exchange.sends)

    def received(self, peer: str, data: bytes) -> None:
        """A message a peer's TURN client received from the server."""
        if is_channel_data(data):
            self.channel_data_received += 1
            return
        transaction_id = transaction_id_of(data)
        exchange = self._exchanges.get(transaction_id) if transaction_id else None
        if exchange is None:
            seen = read_turn_message(data)
            if seen is not None and seen.method == "Data" and seen.kind == "indication":
                self.channel_data_received += 1
            return
        seen = read_turn_message(data, exchange.key)
        if seen is None or seen.kind not in ("success", "error"):
            return
        exchange.answers += 1
        self._judge(exchange, seen)

    def _judge(self, exchange: _Exchange, seen: Seen) -> None:
        now = time.monotonic()
        took = f"in {(now - exchange.last_sent) * 1000:.1f} ms"
        what = (f"error {seen.error_code} {seen.reason!r}" if seen.kind == "error"
                else "success")
        if seen.error_code == 403:
            self.denied.set()
        authenticated = exchange.key is None or seen.integrity is True
        accepted = authenticated or (seen.kind == "error" and seen.error_code in _RETRIED)
        if exchange.outcome is not None:
            log.debug("  %s turn < %s %s tid=%s %s (again)", exchange.peer, exchange.request,
                      what, exchange.transaction_id.hex(), took)
            return
        if accepted:
            exchange.outcome = "success" if seen.kind == "success" else "error"
            exchange.problem = None
            exchange.answered_at = now
            note = ""
        else:
            exchange.problem = ("no-message-integrity" if seen.integrity is None
                                else "bad-message-integrity")
            note = (": no MESSAGE-INTEGRITY, discarded by the client"
                    if seen.integrity is None
                    else ": MESSAGE-INTEGRITY does not match, discarded by the client")
        if seen.kind == "error":
            exchange.error_code, exchange.reason = seen.error_code, seen.reason
        log.debug("  %s turn < %s %s tid=%s %s%s", exchange.peer, exchange.request, what,
                  exchange.transaction_id.hex(), took, note)

    def server_lost(self, peer: str, cause: Cause, text: str,
                    local: tuple[str | None, int | None]) -> None:
        """The server went away (ICMP error, closed connection) while the check ran."""
        if self.closing or self.lost is not None:
            return
        log.debug("  %s turn ! %s", peer, text)
        self.lost = ErrorEvent(
            url=self.spec.url, address=local[0], port=local[1],
            server_address=self.spec.host, server_port=self.spec.port,
            error_code=701, error_text=text, cause=cause, elapsed_ms=self.elapsed_ms(),
            problem="server-lost")
        self.gone.set()

    # --- the results -------------------------------------------------------------------

    def exchanges(self) -> tuple[TurnExchange, ...]:
        return tuple(self._value(e) for e in self._exchanges.values())

    def _value(self, exchange: _Exchange) -> TurnExchange:
        outcome = exchange.outcome or ("discarded" if exchange.answers else "unanswered")
        rtt = (None if exchange.answered_at is None
               else round((exchange.answered_at - exchange.last_sent) * 1000, 2))
        return TurnExchange(
            peer=exchange.peer, request=exchange.request,
            elapsed_ms=self.elapsed_ms(exchange.first_sent), sends=exchange.sends,
            answers=exchange.answers, outcome=outcome, error_code=exchange.error_code,
            reason=exchange.reason, problem=exchange.problem if outcome == "discarded" else None,
            rtt_ms=rtt)

    def error_events(self, failed: bool) -> list[ErrorEvent]:
        """An event for each way the requests went wrong (one per request, outcome and
        peer address): error answers, answers the client discarded, and, when the check
        failed, requests that got no answer at all. A 401/438 the client retried past is
        part of the credential exchange, not a failure."""
        done = {(e.peer, e.request) for e in self._exchanges.values()
                if e.outcome == "success"}
        groups: dict[tuple[object, ...], list[_Exchange]] = {}
        for exchange in self._exchanges.values():
            value = self._value(exchange)
            if value.outcome == "success":
                continue
            if value.outcome == "unanswered" and (not failed or exchange.request
                                                  == "Refresh(0)"):
                continue
            if value.error_code in _RETRIED and (exchange.peer, exchange.request) in done:
                continue
            key = (exchange.request, value.outcome, value.error_code, value.problem,
                   exchange.local)
            groups.setdefault(key, []).append(exchange)
        events = [self._event(found) for found in groups.values()]
        if self.lost is not None:
            events.append(self.lost)
        return events

    def _event(self, found: list[_Exchange]) -> ErrorEvent:
        first = found[0]
        value = self._value(first)
        sends = sum(e.sends for e in found)
        answers = sum(e.answers for e in found)
        counted = (f"{answers} {'answer' if answers == 1 else 'answers'} to "
                   f"{sends} {'send' if sends == 1 else 'sends'}")
        request = first.request
        code, cause = 701, Cause.MALFORMED
        if value.outcome == "error":
            code, cause = int(value.error_code or 0), Cause.RESPONSE
            text = f"{value.reason} (on {request})"
        elif value.outcome == "discarded":
            kind = (f"error {value.error_code} {value.reason!r}" if value.error_code
                    else "success")
            missing = ("carried no MESSAGE-INTEGRITY" if value.problem == "no-message-integrity"
                       else "carried a MESSAGE-INTEGRITY that does not match the credentials")
            text = (f"the server's {request} {kind} {missing}, so the client discarded it "
                    f"and kept resending ({counted})")
        else:
            cause = Cause.TIMEOUT
            waited = time.monotonic() - first.first_sent
            text = (f"no answer to the {request} request ({sends} "
                    f"{'send' if sends == 1 else 'sends'} in {waited:.1f} s)")
        return ErrorEvent(
            url=self.spec.url, address=first.local[0], port=first.local[1],
            server_address=self.spec.host, server_port=self.spec.port, error_code=code,
            error_text=text, cause=cause, elapsed_ms=value.elapsed_ms, problem=request)
