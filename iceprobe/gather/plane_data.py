"""iceprobe's own TURN data plane: sockets it owns, ChannelData framing, and the loop that
sends numbered, time-stamped payloads at a rate and echoes them back.

Measured on the project's 2-core machines against loopback coturn (LAB.md): asyncio's
datagram transport reads one datagram per loop wake-up and holds a client to ~21 k round
trips/s, while one thread that drains every readable non-blocking socket per `select` wake-up
and paces its own sends goes several times faster. So the whole measurement (both ends of
every flow, the echo, the control plane's timers) runs in one thread, with no lock and no
event loop on the hot path.

ChannelData (RFC 8656 section 12.4): a 4-byte header (channel number, length) then the
data; over TCP and TLS every message is padded to a multiple of 4 bytes (section 12.5), and
the stream is split into messages by the first two bits (01 ChannelData, 00 STUN).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl
import struct
from dataclasses import dataclass, field

from .wire import Address

#: The payload's header: flow, phase, sequence number, send time (time.perf_counter_ns).
PAYLOAD = struct.Struct("!HHIQ")
MIN_PAYLOAD = PAYLOAD.size
_CHANNEL_HEADER = struct.Struct("!HH")
#: A stream link stops taking new packets while this much waits to be written.
STREAM_BACKLOG = 256 * 1024
#: Most messages read from one socket per wake-up, so that no socket starves the others.
READ_BATCH = 256
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def channel_data(channel: int, data: bytes, stream: bool) -> bytes:
    """A ChannelData message, padded to 4 bytes over a stream (RFC 8656 section 12.5)."""
    message = _CHANNEL_HEADER.pack(channel, len(data)) + data
    return message + bytes(-len(data) % 4) if stream else message


def frame_length(buffer: bytes | bytearray) -> int | None:
    """The length of the message at the start of a stream buffer (at least 4 bytes): a
    padded ChannelData, or a STUN message; None when the bytes are neither."""
    first = buffer[0] & 0xC0
    length = (buffer[2] << 8) | buffer[3]
    if first == 0x40:
        return 4 + length + (-length % 4)
    if first == 0:
        return 20 + length
    return None


def is_stun(message: bytes) -> bool:
    return len(message) >= 20 and message[0] & 0xC0 == 0


class LinkBroken(Exception):
    """The connection to the server broke, or the server's port is unreachable (ICMP)."""


@dataclass(eq=False)
class Link:
    """One connection to the TURN server, for one allocation: a connected UDP socket, or a
    TCP (or TLS) stream. Non-blocking; `send` never waits."""

    sock: socket.socket
    stream: bool
    server: Address
    local: Address
    #: Bytes waiting to be written (streams only).
    out: bytearray = field(default_factory=bytearray)
    #: Bytes read and not yet a whole message (streams only).
    buffered: bytearray = field(default_factory=bytearray)
    broken: str | None = None

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: bytes | bytearray) -> bool:
        """Send or queue one message; False when it was dropped (a full UDP socket buffer,
        a stream backlog, a broken link)."""
        if self.broken is not None:
            return False
        if not self.stream:
            try:
                self.sock.send(message)
                return True
            except _WOULD_BLOCK:
                return False
            except OSError as exc:
                return self._udp_error(exc)
        if len(self.out) >= STREAM_BACKLOG:
            self.flush()
            if len(self.out) >= STREAM_BACKLOG:
                return False
        self.out += message
        self.flush()
        return True

    def _udp_error(self, exc: OSError) -> bool:
        # A connected UDP socket reports an earlier ICMP error on a later send: the next
        # send goes through, unless the port stays closed.
        if exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
            self.broken = f"ICMP error from the server: {exc.strerror or exc}"
        else:
            self.broken = f"socket error: {exc.strerror or exc}"
        return False

    def flush(self) -> None:
        while self.out and self.broken is None:
            try:
                written = self.sock.send(self.out)
            except _WOULD_BLOCK:
                return
            except OSError as exc:
                self.broken = f"the connection to the server broke: {exc.strerror or exc}"
                return
            del self.out[:written]

    def receive(self) -> list[bytes]:
        """Every whole message that can be read now (up to READ_BATCH reads)."""
        if self.broken is not None:
            return []
        if not self.stream:
            messages = []
            recv = self.sock.recv
            try:
                for _ in range(READ_BATCH):
                    messages.append(recv(65535))
            except _WOULD_BLOCK:
                pass
            except OSError as exc:
                self._udp_error(exc)
            return messages
        for _ in range(16):
            try:
                chunk = self.sock.recv(262144)
            except _WOULD_BLOCK:
                break
            except OSError as exc:
                self.broken = f"the connection to the server broke: {exc.strerror or exc}"
                break
            if not chunk:
                self.broken = "the server closed the connection"
                break
            self.buffered += chunk
            if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
                continue
            if len(chunk) < 262144:
                break
        return self._messages()

    def _messages(self) -> list[bytes]:
        messages = []
        buffered = self.buffered
        while len(buffered) >= 4:
            length = frame_length(buffered)
            if length is None:
                self.broken = "the server sent bytes that are neither STUN nor ChannelData"
                buffered.clear()
                break
            if len(buffered) < length:
                break
            messages.append(bytes(buffered[:length]))
            del buffered[:length]
        return messages

    def pending_tls(self) -> bool:
        """Decrypted bytes that `select` cannot see."""
        return isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def open_link(server: Address, transport: str, timeout: float,
              tls: ssl.SSLContext | None, server_hostname: str,
              local_ip: str | None = None) -> Link:
    """Open a link to the server: UDP connected (so ICMP errors are seen), or TCP with TLS
    for turns:; raises OSError (ssl.SSLError included) when it cannot."""
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    if transport == "udp":
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
            if local_ip:
                sock.bind((local_ip, 0))
            sock.connect(server)
        except OSError:
            sock.close()
            raise
    else:
        sock = socket.create_connection(server, timeout=max(0.01, timeout),
                                        source_address=(local_ip, 0) if local_ip else None)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if transport == "tls":
                context = tls if tls is not None else ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=server_hostname)
        except OSError:
            sock.close()
            raise
    sock.setblocking(False)
    here = sock.getsockname()
    return Link(sock, transport != "udp", server, (str(here[0]), int(here[1])))


@dataclass(eq=False)
class PeerSocket:
    """A plain UDP socket of this process standing for a remote peer: it echoes every
    datagram the relay sends it back to where it came from."""

    sock: socket.socket
    local: Address

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def open_peer_socket(local_ip: str) -> PeerSocket:
    family = socket.AF_INET6 if ":" in local_ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.bind((local_ip, 0))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    here = sock.getsockname()
    return PeerSocket(sock, (str(here[0]), int(here[1])))
