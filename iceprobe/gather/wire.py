"""STUN/TURN messages: building requests and reading responses.

This is the only module that imports aioice. aioice's `stun` and `turn` modules are not part
of its public API and change between minor releases, so everything iceprobe needs from them
goes through the few functions here. Reading never raises: a datagram becomes a `Response`
or a `Malformed` value.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from aioice import stun, turn

MAGIC_COOKIE = stun.COOKIE
HEADER_LENGTH = stun.HEADER_LENGTH
UDP_TRANSPORT = turn.UDP_TRANSPORT

Address = tuple[str, int]

_ERROR_CODE_ATTR = 0x0009
#: RFC 8489 section 14.15; aioice's parser skips it.
_ALTERNATE_SERVER_ATTR = 0x8023
#: RFC 8656 section 18.1; not in aioice's attribute table.
_REQUESTED_ADDRESS_FAMILY_ATTR = 0x0017


@dataclass(frozen=True)
class Request:
    """An encoded request, ready to send, with the name trace lines use for it."""

    name: str
    transaction_id: bytes
    data: bytes
    #: For the trace: the USERNAME and REALM it carries (with NONCE and MESSAGE-INTEGRITY);
    #: None for a request without credentials.
    username: str | None = None
    realm: str | None = None
    #: The STUN method (RFC 8489 section 5): a reply must be a response of the same method.
    method: int = 0x001


@dataclass(frozen=True)
class Response:
    """The parts of a success or error response that iceprobe acts on."""

    is_error: bool
    error_code: int | None = None
    reason: str = ""
    xor_mapped_address: Address | None = None
    mapped_address: Address | None = None
    relayed_address: Address | None = None
    lifetime: int | None = None
    realm: str | None = None
    nonce: bytes | None = None
    alternate_server: Address | None = None
    attribute_names: tuple[str, ...] = field(default=())
    #: The STUN method of the reply (0x001 Binding, 0x003 Allocate, ...): RFC 8489 section 5.
    method: int = 0x001
    #: The SOFTWARE attribute (RFC 8489 section 14.14): the server's own name, when it says.
    software: str | None = None


@dataclass(frozen=True)
class Malformed:
    """A reply that carries our transaction id but cannot be read."""

    problem: str


@dataclass(frozen=True)
class LongTermAuth:
    """What a request needs to carry long-term credentials (RFC 8489 section 9.2).

    `key` is derived from the password: it is as secret as the password itself."""

    username: str
    realm: str
    nonce: bytes
    key: bytes = field(repr=False)


def transaction_id_of(data: bytes) -> bytes | None:
    """The transaction id of a STUN message, or None if `data` cannot be one."""
    if len(data) < HEADER_LENGTH or data[0] & 0xC0:
        return None
    if struct.unpack_from("!I", data, 4)[0] != MAGIC_COOKIE:
        return None
    return data[8:20]


def message_length(header: bytes) -> int:
    """The total length of the STUN message that starts with `header` (at least 4 bytes)."""
    (length,) = struct.unpack_from("!H", header, 2)
    return HEADER_LENGTH + int(length)


#: The names of the STUN/TURN methods (RFC 8489 section 18.2, RFC 8656 section 17).
METHOD_NAMES = {0x001: "Binding", 0x003: "Allocate", 0x004: "Refresh", 0x006: "Send",
                0x007: "Data", 0x008: "CreatePermission", 0x009: "ChannelBind"}


def method_name(method: int) -> str:
    return METHOD_NAMES.get(method, f"method 0x{method:03x}")


def binding_request() -> Request:
    """A STUN Binding request (RFC 8489 section 6)."""
    message = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    return Request("Binding", message.transaction_id, bytes(message))


def allocate_request(auth: LongTermAuth | None, family: int | None = None) -> Request:
    """A TURN Allocate request for a UDP relay (RFC 8656 section 7.1), asking for an IPv6
    relay (family 6) with REQUESTED-ADDRESS-FAMILY when told to (RFC 8656 section 18.1)."""
    message = stun.Message(message_method=stun.Method.ALLOCATE, message_class=stun.Class.REQUEST)
    message.attributes["REQUESTED-TRANSPORT"] = UDP_TRANSPORT
    if family is None:
        return _finish(message, "Allocate", auth)
    # aioice has no entry for REQUESTED-ADDRESS-FAMILY (0x0017): append it raw, then sign.
    value = bytes([0x02 if family == 6 else 0x01, 0, 0, 0])
    data = bytes(message) + struct.pack("!HH", _REQUESTED_ADDRESS_FAMILY_ATTR, 4) + value
    data = _with_length(data)
    if auth is not None:
        data = _append_auth(data, auth)
    return Request(f"Allocate(IPv{family})", message.transaction_id, data,
                   username=auth.username if auth else None, realm=auth.realm if auth else None,
                   method=int(stun.Method.ALLOCATE))


def _with_length(data: bytes) -> bytes:
    return data[:2] + struct.pack("!H", len(data) - HEADER_LENGTH) + data[4:]


def _append_auth(data: bytes, auth: LongTermAuth) -> bytes:
    """USERNAME, REALM, NONCE, MESSAGE-INTEGRITY and FINGERPRINT after raw attributes."""
    for attr_type, value in ((0x0006, auth.username.encode()), (0x0014, auth.realm.encode()),
                             (0x0015, auth.nonce)):
        data += struct.pack("!HH", attr_type, len(value)) + value + bytes(-len(value) % 4)
    integrity = stun.message_integrity(data, auth.key)
    data = _with_length(data + struct.pack("!HH", 0x0008, 20) + integrity)
    fingerprint = stun.message_fingerprint(data)
    return _with_length(data + struct.pack("!HHI", 0x8028, 4, fingerprint))


def release_request(auth: LongTermAuth | None) -> Request:
    """A TURN Refresh with LIFETIME 0, which deletes the allocation (RFC 8656 section 8)."""
    message = stun.Message(message_method=stun.Method.REFRESH, message_class=stun.Class.REQUEST)
    message.attributes["LIFETIME"] = 0
    return _finish(message, "Refresh(0)", auth)


def create_permission_request(peer: Address, auth: LongTermAuth | None) -> Request:
    """A TURN CreatePermission for one peer address (RFC 8656 section 9)."""
    message = stun.Message(message_method=stun.Method.CREATE_PERMISSION,
                           message_class=stun.Class.REQUEST)
    message.attributes["XOR-PEER-ADDRESS"] = peer
    return _finish(message, "CreatePermission", auth)


def refresh_request(lifetime: int, auth: LongTermAuth | None) -> Request:
    """A TURN Refresh asking for `lifetime` seconds more (RFC 8656 section 8); 0 releases."""
    message = stun.Message(message_method=stun.Method.REFRESH, message_class=stun.Class.REQUEST)
    message.attributes["LIFETIME"] = lifetime
    return _finish(message, "Refresh" if lifetime else "Refresh(0)", auth)


def channel_bind_request(channel: int, peer: Address, auth: LongTermAuth | None) -> Request:
    """A TURN ChannelBind of `channel` (0x4000..0x4FFF) to `peer`, which also installs or
    refreshes the permission for the peer's IP address (RFC 8656 section 11)."""
    message = stun.Message(message_method=stun.Method.CHANNEL_BIND,
                           message_class=stun.Class.REQUEST)
    message.attributes["CHANNEL-NUMBER"] = channel
    message.attributes["XOR-PEER-ADDRESS"] = peer
    return _finish(message, "ChannelBind", auth)


def data_indication_peer(data: bytes) -> Address | None:
    """The XOR-PEER-ADDRESS of a TURN Data indication (RFC 8656 section 10.4): where a
    datagram that reached the relay without a channel came from; None for anything else.
    Never raises."""
    if transaction_id_of(data) is None:
        return None
    try:
        message = stun.parse_message(data)
    except Exception:
        return None
    if (message.message_method != stun.Method.DATA
            or message.message_class != stun.Class.INDICATION):
        return None
    return _address(message.attributes.get("XOR-PEER-ADDRESS"))


def long_term_auth(username: str, password: str, realm: str, nonce: bytes) -> LongTermAuth:
    """Credentials for a realm and nonce: key = MD5(username:realm:password), RFC 8489 9.2.2."""
    return LongTermAuth(username, realm, nonce, turn.make_integrity_key(username, realm, password))


def _finish(message: stun.Message, name: str, auth: LongTermAuth | None) -> Request:
    if auth is not None:
        message.attributes["USERNAME"] = auth.username
        message.attributes["REALM"] = auth.realm
        message.attributes["NONCE"] = auth.nonce
        message.add_message_integrity(auth.key)
        return Request(name, message.transaction_id, bytes(message), auth.username,
                       auth.realm, int(message.message_method))
    return Request(name, message.transaction_id, bytes(message),
                   method=int(message.message_method))


def read_response(data: bytes) -> Response | Malformed:
    """Read a reply whose transaction id already matched one of ours."""
    try:
        message = stun.parse_message(data)
    except Exception as exc:
        return _read_error_leniently(data, exc)
    if message.message_class == stun.Class.RESPONSE:
        is_error = False
    elif message.message_class == stun.Class.ERROR:
        is_error = True
    else:
        return Malformed(f"a {message.message_class.name.lower()} where a response was expected")

    attrs = message.attributes
    code: int | None = None
    reason = ""
    if is_error:
        error = attrs.get("ERROR-CODE")
        if error is None:
            return Malformed("an error response without an ERROR-CODE attribute")
        code, reason = int(error[0]), clean_reason(str(error[1]))
    return Response(
        is_error=is_error,
        error_code=code,
        reason=reason,
        xor_mapped_address=_address(attrs.get("XOR-MAPPED-ADDRESS")),
        mapped_address=_address(attrs.get("MAPPED-ADDRESS")),
        relayed_address=_address(attrs.get("XOR-RELAYED-ADDRESS")),
        lifetime=attrs.get("LIFETIME"),
        realm=attrs.get("REALM"),
        nonce=attrs.get("NONCE"),
        alternate_server=_alternate_server(data) if code == 300 else None,
        attribute_names=tuple(attrs),
        method=int(message.message_method),
        software=_software(attrs.get("SOFTWARE")),
    )


def _software(value: object) -> str | None:
    """The SOFTWARE attribute, cleaned like a reason phrase (coturn pads with NULs)."""
    if not isinstance(value, str):
        return None
    return clean_reason(value) or None


def clean_reason(reason: str) -> str:
    """coturn pads the reason phrase with NULs; browsers show it without them."""
    return reason.rstrip("\x00").strip()


def _address(value: object) -> Address | None:
    if isinstance(value, tuple) and len(value) == 2:
        return (str(value[0]), int(value[1]))
    return None


def _attributes(data: bytes) -> list[tuple[int, bytes]]:
    """The raw (type, value) attributes of a message, stopping at the first that overruns."""
    found = []
    pos = HEADER_LENGTH
    end = min(len(data), message_length(data))
    while pos + 4 <= end:
        attr_type, attr_len = struct.unpack_from("!HH", data, pos)
        if pos + 4 + attr_len > end:
            break
        found.append((attr_type, data[pos + 4 : pos + 4 + attr_len]))
        pos += 4 + attr_len + (-attr_len % 4)
    return found


def _method_of(message_type: int) -> int:
    """The method bits of a STUN message type (RFC 8489 section 5: M11..M0 around C1, C0)."""
    return (message_type & 0x000F) | ((message_type & 0x00E0) >> 1) | ((message_type & 0x3E00) >> 2)


def _alternate_server(data: bytes) -> Address | None:
    for attr_type, value in _attributes(data):
        if attr_type == _ALTERNATE_SERVER_ATTR:
            try:
                return _address(stun.unpack_address(value))
            except ValueError:
                return None
    return None


def _read_error_leniently(data: bytes, exc: Exception) -> Response | Malformed:
    """aioice rejects a whole message for, say, a reason phrase that is not UTF-8. An error
    response is still worth its code, so look for ERROR-CODE by hand before giving up."""
    problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if len(data) < HEADER_LENGTH:
        return Malformed(f"only {len(data)} bytes, shorter than a STUN header")
    (message_type,) = struct.unpack_from("!H", data, 0)
    if message_type & 0x0110 != 0x0110:
        return Malformed(problem)
    for attr_type, value in _attributes(data):
        if attr_type == _ERROR_CODE_ATTR and len(value) >= 4:
            code = (value[2] & 0x07) * 100 + value[3]
            reason = clean_reason(value[4:].decode("utf-8", errors="replace"))
            return Response(is_error=True, error_code=code, reason=reason,
                            alternate_server=_alternate_server(data) if code == 300 else None,
                            method=_method_of(message_type))
    return Malformed(problem)


#: aioice's method names -> the names trace lines and reports use.
_METHOD_NAMES = {"BINDING": "Binding", "ALLOCATE": "Allocate", "REFRESH": "Refresh",
                 "SEND": "Send", "DATA": "Data", "CREATE_PERMISSION": "CreatePermission",
                 "CHANNEL_BIND": "ChannelBind"}
_CLASS_NAMES = {"REQUEST": "request", "INDICATION": "indication", "RESPONSE": "success",
                "ERROR": "error"}


@dataclass(frozen=True)
class Seen:
    """A STUN message seen on a TURN client's connection to its server (the relay check
    records its peers' TURN transactions from these)."""

    #: ChannelBind, CreatePermission, Refresh, Allocate, Binding, Send, Data.
    method: str
    #: request, indication, success or error.
    kind: str
    transaction_id: bytes
    error_code: int | None = None
    reason: str = ""
    #: The LIFETIME attribute (a Refresh with 0 releases the allocation); None without.
    lifetime: int | None = None
    #: MESSAGE-INTEGRITY: None when the message has none; else whether it matches the key
    #: it was checked against (always False without a key).
    integrity: bool | None = None


def is_channel_data(data: bytes) -> bool:
    """A TURN ChannelData message (RFC 8656 section 12.4): first two bits 01."""
    return len(data) >= 4 and turn.is_channel_data(data)


def read_turn_message(data: bytes, key: bytes | None = None) -> Seen | None:
    """Read a STUN message from a TURN client's wire, checking its MESSAGE-INTEGRITY against
    `key` (the client's long-term key); None for anything that is not a readable STUN
    message. Never raises."""
    if transaction_id_of(data) is None:
        return None
    try:
        message = stun.parse_message(data)
    except Exception:
        return None
    method = _METHOD_NAMES.get(message.message_method.name, message.message_method.name)
    kind = _CLASS_NAMES.get(message.message_class.name, message.message_class.name.lower())
    error = message.attributes.get("ERROR-CODE")
    integrity: bool | None = None
    if "MESSAGE-INTEGRITY" in message.attributes:
        try:
            integrity = key is not None and message.check_message_integrity(key)
        except Exception:
            integrity = False
    lifetime = message.attributes.get("LIFETIME")
    return Seen(method=method, kind=kind, transaction_id=bytes(message.transaction_id),
                error_code=int(error[0]) if error else None,
                reason=clean_reason(str(error[1])) if error else "",
                lifetime=int(lifetime) if isinstance(lifetime, int) else None,
                integrity=integrity)
