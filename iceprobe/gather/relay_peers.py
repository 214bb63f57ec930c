"""The two peers of a relay check, and every reach into aiortc's and aioice's insides that
the check needs (private attributes, pinned by the version ranges in pyproject.toml):

- each peer's relay protocols, to record what aioice would swallow (a failed ChannelBind is
  only logged at DEBUG) and to count the ICE checks sent again;
- the TURN client protocol under each relay protocol, for the TURN recorder's view of the
  wire (turn_recorder.py);
- closing, bounded: aioice closes a TURN connection over TLS with a TLS shutdown, and asyncio
  then waits (up to 30 s) for the server's close_notify, which pion/turn never sends. Each
  TURN connection is aborted `SHUTDOWN_GRACE` after aioice closed it, and whatever is still
  open when the close budget runs out is aborted too: the command never waits for a peer's
  courtesy.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection

from ..model import Cause
from .turn_recorder import TurnRecorder

log = logging.getLogger("iceprobe.relay")

#: How long a closed TURN connection may take over its TLS (or TCP) shutdown.
SHUTDOWN_GRACE = 0.5
#: After the close budget: how long aborted connections get to report themselves closed.
ABORT_WAIT = 0.2


@dataclass
class Peer:
    """One side: its peer connection, its channels and what happened to it."""

    name: str
    pc: RTCPeerConnection
    echo: RTCDataChannel
    bulk: RTCDataChannel
    ice_connected: asyncio.Event = field(default_factory=asyncio.Event)
    dtls_connected: asyncio.Event = field(default_factory=asyncio.Event)
    open: asyncio.Event = field(default_factory=asyncio.Event)
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    ice_state: str = "new"
    connection_state: str = "new"
    bulk_bytes: int = 0
    bulk_last: float = 0.0


def ice_connection(pc: RTCPeerConnection) -> Any:
    """aioice's Connection behind a peer connection. Exists once a data channel was
    created."""
    return pc.sctp.transport.transport.iceGatherer._connection  # type: ignore[union-attr]


def relay_protocols(pc: RTCPeerConnection) -> list[Any]:
    """aioice's protocols behind a peer connection's relay candidates."""
    try:
        return [p for p in ice_connection(pc)._protocols
                if getattr(p.local_candidate, "type", None) == "relay"]
    except AttributeError:
        log.debug("! cannot reach aioice's relay protocols: 403s will show as ICE failures")
        return []


def local_relay(protocol: Any) -> tuple[str | None, int | None]:
    """The relay address (host, port) of a relay protocol's candidate."""
    candidate = getattr(protocol, "local_candidate", None)
    return getattr(candidate, "host", None), getattr(candidate, "port", None)


def _turn_client(protocol: Any) -> Any:
    """The TURN client protocol (aioice's TurnClientUdpProtocol or TurnClientTcpProtocol)
    under a relay protocol's TurnTransport; None when it cannot be reached."""
    return getattr(getattr(protocol, "transport", None), "_TurnTransport__inner_protocol",
                   None)


def hook_errors(protocol: Any, record: Callable[[Exception], None]) -> None:
    """Route what aioice passes to the relay protocol's `error_received` (a failed send,
    e.g. a ChannelBind that got an error) to `record` instead of a DEBUG log line."""
    protocol.error_received = record


def hook_sends(protocol: Any, seen: Callable[[Any, tuple[str, int]], None]) -> None:
    """Call `seen(message, addr)` for every STUN message the relay protocol sends to a
    peer (ICE connectivity checks, through the relay)."""
    original = protocol.send_stun

    def send_stun(message: Any, addr: tuple[str, int]) -> None:
        seen(message, addr)
        original(message, addr)

    protocol.send_stun = send_stun


def attach_recorder(peer: str, protocol: Any, recorder: TurnRecorder) -> None:
    """Let `recorder` see everything the relay protocol's TURN client sends to and receives
    from the server, and notice the server going away; bound its connection's shutdown."""
    client = _turn_client(protocol)
    if client is None:
        log.debug("! cannot reach aioice's TURN client: its transactions go unrecorded")
        return
    local = local_relay(protocol)
    send, received = client._send, client.datagram_received
    #: UDP only (a stream protocol has no error_received).
    error_received = getattr(client, "error_received", None)
    connection_lost = client.connection_lost

    def _send(data: bytes) -> None:
        recorder.sent(peer, data, getattr(client, "integrity_key", None), local)
        send(data)

    def datagram_received(data: bytes, addr: Any) -> None:
        recorder.received(peer, data)
        received(data, addr)

    def on_error(exc: Exception) -> None:
        if isinstance(exc, OSError):
            text = _icmp_text(exc, f"{recorder.spec.host}:{recorder.spec.port}")
            recorder.server_lost(peer, Cause.UNREACHABLE, text, local)
        if error_received is not None:
            error_received(exc)

    def on_lost(exc: Exception | None) -> None:
        reason = f" ({exc})" if exc else ""
        recorder.server_lost(peer, Cause.CLOSED,
                             f"the TURN server closed the connection during the "
                             f"check{reason}", local)
        connection_lost(exc)

    client._send = _send
    client.datagram_received = datagram_received
    if error_received is not None:
        client.error_received = on_error
    client.connection_lost = on_lost
    _bound_shutdown(client)


def _icmp_text(exc: OSError, server: str) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return (f"ICMP port unreachable from {server}: nothing listens on the TURN server's "
                "port any more")
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
        return f"ICMP {exc.strerror or exc} towards {server}: the TURN server is out of reach"
    return f"socket error towards the TURN server {server}: {exc.strerror or exc}"


def _bound_shutdown(client: Any) -> None:
    """Abort the TURN client's stream connection SHUTDOWN_GRACE after it was closed (UDP
    closes at once and needs nothing)."""
    transport = getattr(client, "transport", None)
    if not isinstance(transport, asyncio.Transport):
        return
    close = transport.close

    def bounded_close() -> None:
        close()
        asyncio.get_running_loop().call_later(SHUTDOWN_GRACE, _abort, transport)

    transport.close = bounded_close  # type: ignore[method-assign]


def _abort(transport: asyncio.BaseTransport) -> None:
    abort = getattr(transport, "abort", None)
    if abort is not None and not getattr(transport, "_iceprobe_aborted", False):
        try:
            transport._iceprobe_aborted = True  # type: ignore[attr-defined]
            abort()
        except Exception:  # an aborted transport is all we want; nothing to report
            log.debug("! aborting a TURN connection failed", exc_info=True)


def force_close(peer: Peer) -> None:
    """Stop every TURN client of the peer at once: cancel aioice's release in progress
    (its Refresh would be resent for a minute) and abort the connection to the server."""
    for protocol in relay_protocols(peer.pc):
        turn = getattr(protocol, "transport", None)
        task = getattr(turn, "_TurnTransport__close_task", None)
        if isinstance(task, asyncio.Task) and not task.done():
            task.cancel()
        client = _turn_client(protocol)
        inner = getattr(client, "transport", None)
        if inner is not None:
            _abort(inner)


async def close_peers(peers: list[Peer], budget: float, recorder: TurnRecorder) -> None:
    """Close the peers (which releases their allocations) within `budget` seconds; past
    it, abort what is left. A server that went away gets no release at all."""
    if not peers:
        return
    recorder.closing = True
    if recorder.gone.is_set():
        budget = 0.0
    started = time.monotonic()
    closing = asyncio.ensure_future(
        asyncio.gather(*(p.pc.close() for p in peers), return_exceptions=True))
    done, _ = await asyncio.wait({closing}, timeout=budget)
    if done:
        log.debug("peers closed in %.0f ms", (time.monotonic() - started) * 1000)
        return
    if budget > 0:
        log.debug("! closing the peers took longer than %.1f s: aborting their TURN "
                  "connections", budget)
    else:
        log.debug("the TURN server is gone: aborting the peers' TURN connections")
    for peer in peers:
        force_close(peer)
    done, _ = await asyncio.wait({closing}, timeout=ABORT_WAIT)
    if not done:
        closing.cancel()
        log.debug("! the peers did not report closed after the abort")
