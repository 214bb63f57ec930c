"""The STUN and TURN exchanges iceprobe runs over a channel.

A Binding yields the server-reflexive address (RFC 8489 section 6). An Allocate yields the
relayed and mapped addresses (RFC 8656 section 7), after the long-term credential challenge:
the first request goes without credentials, the 401 brings REALM and NONCE, the second carries
MESSAGE-INTEGRITY (RFC 8489 section 9.2). A 438 Stale Nonce is retried with the new nonce, as
browsers do. Every allocation made is released with a Refresh of LIFETIME 0.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..model import Cause, Credentials
from . import wire
from .channel import Channel, ProbeFailure, describe, route
from .wire import Address, LongTermAuth, Response

log = logging.getLogger("iceprobe.gather")

#: How long releasing an allocation may take, on top of the probe's own budget.
RELEASE_BUDGET = 1.0
_MAX_STALE_NONCE_RETRIES = 2


@dataclass(frozen=True)
class Allocation:
    relayed_address: Address
    mapped_address: Address | None
    lifetime: int | None
    auth: LongTermAuth | None
    #: Error responses the allocation recovered from (a 438 answered with the new nonce).
    recovered: tuple[ProbeFailure, ...] = ()
    #: Seconds: the unauthenticated Allocate answered with the 401 challenge (None without
    #: one), and the Allocate that succeeded.
    challenge_seconds: float | None = None
    allocate_seconds: float | None = None


@dataclass
class Attempt:
    """What an Allocate in progress has sent: once an authenticated request is out, the
    server may hold an allocation even if its answer never arrives, and a run that stops
    then (Ctrl-C, SIGTERM) must still delete it with these credentials."""

    auth: LongTermAuth | None = None
    #: The REALM the server challenged with (its last one); None while it sent none.
    realm: str | None = None


class Redirect(ProbeFailure):
    """A 300 Try Alternate with its ALTERNATE-SERVER (RFC 8489 section 10)."""

    def __init__(self, text: str, alternate: Address) -> None:
        super().__init__(Cause.RESPONSE, text, code=300)
        self.alternate = alternate


def _route(channel: Channel) -> str:
    return route(channel.transport, channel.local_address, channel.server_address)


def _error_failure(response: Response, after_challenge: bool | None = None) -> ProbeFailure:
    """An error response as a failure whose text is the server's reason phrase, as browsers
    report it: empty when the server sent none (pion/turn does), never one made up here."""
    code = response.error_code if response.error_code is not None else 0
    text = response.reason
    if code == 300 and response.alternate_server is not None:
        where = f"redirected to {describe(response.alternate_server)}"
        return Redirect(f"{text}: {where}" if text else where, response.alternate_server)
    return ProbeFailure(Cause.RESPONSE, text, code=code, after_challenge=after_challenge)


async def binding(channel: Channel, deadline: float) -> Address:
    """Send a Binding request; return the server-reflexive address."""
    response = await channel.transact(wire.binding_request(), deadline)
    if response.is_error:
        raise _error_failure(response)
    mapped = response.xor_mapped_address or response.mapped_address
    if mapped is None:
        raise ProbeFailure(Cause.MALFORMED,
                           f"{describe(channel.server_address)} answered the Binding request "
                           "without XOR-MAPPED-ADDRESS or MAPPED-ADDRESS")
    return mapped


async def allocate(channel: Channel, credentials: Credentials | None,
                   deadline: float, family: int | None = None,
                   attempt: Attempt | None = None) -> Allocation:
    """Create a TURN allocation, answering the long-term credential challenge; `attempt`
    follows which credentials went out, for a release if the caller is cancelled."""
    auth: LongTermAuth | None = None
    attempt = attempt if attempt is not None else Attempt()
    stale_retries = 0
    recovered: list[ProbeFailure] = []
    sent_at = time.monotonic()
    response = await channel.transact(wire.allocate_request(None, family), deadline)
    challenge = time.monotonic() - sent_at if response.error_code == 401 else None
    while response.is_error:
        if response.realm is not None:
            attempt.realm = response.realm
        code = response.error_code
        if (code == 401 and auth is None and credentials is not None
                and response.realm is not None and response.nonce is not None):
            auth = wire.long_term_auth(credentials.username, credentials.password,
                                       response.realm, response.nonce)
        elif (code == 438 and auth is not None and credentials is not None
                and response.nonce is not None and stale_retries < _MAX_STALE_NONCE_RETRIES):
            stale_retries += 1
            recovered.append(_error_failure(response))
            log.debug("%s 438 stale nonce: retrying with the new nonce", _route(channel))
            auth = wire.long_term_auth(credentials.username, credentials.password,
                                       response.realm or auth.realm, response.nonce)
        else:
            raise _error_failure(response, after_challenge=auth is not None)
        attempt.auth = auth
        sent_at = time.monotonic()
        response = await channel.transact(wire.allocate_request(auth, family), deadline)

    if response.relayed_address is None:
        raise ProbeFailure(Cause.MALFORMED,
                           f"{describe(channel.server_address)} answered the Allocate request "
                           "without XOR-RELAYED-ADDRESS")
    return Allocation(response.relayed_address, response.xor_mapped_address,
                      response.lifetime, auth, tuple(recovered), challenge,
                      time.monotonic() - sent_at)


async def release(channel: Channel, allocation: Allocation,
                  credentials: Credentials | None) -> bool:
    """Delete the allocation so that repeated runs never exhaust the user's quota.
    Bounded by RELEASE_BUDGET; returns whether the server confirmed."""
    return await release_with(channel, allocation.auth, credentials,
                              describe(allocation.relayed_address))


async def release_with(channel: Channel, auth: LongTermAuth | None,
                       credentials: Credentials | None, what: str = "pending") -> bool:
    """A Refresh of LIFETIME 0 on this 5-tuple with these credentials: deletes the
    allocation, or (437) finds there was none. Bounded by RELEASE_BUDGET."""
    deadline = time.monotonic() + RELEASE_BUDGET
    server = _route(channel)
    try:
        for _ in range(_MAX_STALE_NONCE_RETRIES + 1):
            response = await channel.transact(wire.release_request(auth), deadline)
            if not response.is_error:
                log.debug("%s allocation %s released", server, what)
                return True
            if (response.error_code == 438 and auth is not None and credentials is not None
                    and response.nonce is not None):
                log.debug("%s 438 stale nonce on release: retrying with the new nonce",
                          server)
                auth = wire.long_term_auth(credentials.username, credentials.password,
                                           response.realm or auth.realm, response.nonce)
                continue
            log.debug("%s release refused: %s %s", server, response.error_code,
                      response.reason)
            return False
    except ProbeFailure as failure:
        log.debug("%s ! release failed: %s", server, failure.text)
    return False


async def create_permission(channel: Channel, allocation: Allocation, peer: Address,
                            deadline: float) -> None:
    """Install a permission for `peer` on the allocation; raises ProbeFailure on an error
    response (a 403 when the server's policy denies that peer)."""
    response = await channel.transact(wire.create_permission_request(peer, allocation.auth),
                                      deadline)
    if response.is_error:
        raise _error_failure(response)
