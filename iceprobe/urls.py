"""Parse STUN and TURN server URLs (RFC 7064 and RFC 7065).

    stunURI = scheme ":" host [ ":" port ]                           ; RFC 7064 section 3.1
    turnURI = scheme ":" host [ ":" port ] [ "?transport=" transport ] ; RFC 7065 section 3.1

The host is a bracketed IPv6 literal, an IPv4 address or a DNS name (RFC 3986 section 3.2.2).
Every way a URL can be wrong raises `UrlError` with a message that names the bad part.
"""

from __future__ import annotations

import ipaddress
import re

from .model import Scheme, ServerSpec, Transport

DEFAULT_PORT = 3478
DEFAULT_SECURE_PORT = 5349

_MAX_URL_LENGTH = 1024
_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_DIGITS = re.compile(r"^[0-9]+$")


class UrlError(ValueError):
    """A server URL that iceprobe cannot use; the message names the bad part."""


def parse_server_url(text: str) -> ServerSpec:
    """Parse one `stun:`, `stuns:`, `turn:` or `turns:` URL into a `ServerSpec`."""
    url = text.strip()
    if not url:
        raise UrlError("empty server URL")
    if len(url) > _MAX_URL_LENGTH:
        raise UrlError(f"server URL is {len(url)} characters long (at most {_MAX_URL_LENGTH})")
    for ch in url:
        if ch.isspace() or not ch.isprintable():
            raise UrlError(f"{url!r}: contains the character {ch!r}")

    scheme_text, sep, rest = url.partition(":")
    if not sep:
        raise UrlError(f"{url!r}: missing scheme (expected stun:, stuns:, turn: or turns:)")
    try:
        scheme = Scheme(scheme_text.lower())
    except ValueError:
        raise UrlError(
            f"{url!r}: unknown scheme {scheme_text!r} (expected stun, stuns, turn or turns)"
        ) from None

    if rest.startswith("//"):
        raise UrlError(f"{url!r}: STUN/TURN URLs have no '//' (write {scheme.value}:{rest[2:]})")
    if "#" in rest:
        raise UrlError(f"{url!r}: a fragment ('#…') is not allowed")

    authority, qmark, query = rest.partition("?")
    transport = _parse_query(url, scheme, query) if qmark else None

    if "@" in authority:
        raise UrlError(
            f"{url!r}: user information ('…@') is not allowed in the URL; "
            "give credentials with -u/--username and -p/--credential"
        )
    host, port = _parse_authority(url, authority, scheme)
    return ServerSpec(
        url=url,
        scheme=scheme,
        host=host,
        port=port,
        transport=_wire_transport(url, scheme, transport),
    )


def _parse_query(url: str, scheme: Scheme, query: str) -> str:
    if not scheme.is_turn:
        raise UrlError(f"{url!r}: '?transport=' is only allowed on turn: and turns: URLs")
    key, eq, value = query.partition("=")
    if key.lower() != "transport" or not eq:
        raise UrlError(f"{url!r}: unknown query {query!r} (only '?transport=udp|tcp' is allowed)")
    value = value.lower()
    if value not in ("udp", "tcp"):
        raise UrlError(f"{url!r}: unknown transport {value!r} (expected udp or tcp)")
    return value


def _parse_authority(url: str, authority: str, scheme: Scheme) -> tuple[str, int]:
    if not authority:
        raise UrlError(f"{url!r}: empty host")
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise UrlError(f"{url!r}: unterminated IPv6 literal (missing ']')")
        host = _parse_ipv6(url, authority[1:end])
        after = authority[end + 1 :]
        if after and not after.startswith(":"):
            raise UrlError(f"{url!r}: unexpected {after!r} after the IPv6 literal")
        port_text = after[1:] if after else None
    else:
        if authority.count(":") > 1:
            try:
                ipaddress.IPv6Address(authority)
            except ValueError:
                raise UrlError(f"{url!r}: more than one ':' after the host "
                               "(IPv6 addresses go in brackets, as in [2001:db8::1])") from None
            raise UrlError(f"{url!r}: IPv6 addresses must be in brackets, as in [{authority}]")
        host_text, colon, port = authority.partition(":")
        host = _parse_host(url, host_text)
        port_text = port if colon else None

    if port_text is None:
        return host, DEFAULT_SECURE_PORT if scheme.is_secure else DEFAULT_PORT
    return host, _parse_port(url, port_text)


def _parse_ipv6(url: str, literal: str) -> str:
    if "%" in literal:
        raise UrlError(f"{url!r}: IPv6 zone identifiers ('%…') are not supported")
    try:
        return str(ipaddress.IPv6Address(literal))
    except ValueError:
        raise UrlError(f"{url!r}: {literal!r} is not a valid IPv6 address") from None


def _parse_host(url: str, host: str) -> str:
    if not host:
        raise UrlError(f"{url!r}: empty host")
    if re.fullmatch(r"[0-9.]*[0-9][0-9.]*", host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise UrlError(f"{url!r}: {host!r} is not a valid IPv4 address") from None
    if not host.isascii():
        suggestion = _idna_form(host)
        hint = f" (its IDNA form is {suggestion!r})" if suggestion else ""
        raise UrlError(f"{url!r}: host {host!r} is not ASCII{hint}")
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253:
        raise UrlError(f"{url!r}: host name is longer than 253 characters")
    for label in name.split("."):
        if not _LABEL.match(label):
            raise UrlError(f"{url!r}: {host!r} is not a valid host name (bad label {label!r})")
    return name.lower()


def _idna_form(host: str) -> str | None:
    """The A-label form a registry would use (RFC 5891): each non-ASCII label as
    "xn--" + Punycode. Python's "idna" codec implements IDNA 2003, which maps "ß" to "ss" and
    would name a different host."""
    labels = []
    for label in host.rstrip(".").split("."):
        if label.isascii():
            labels.append(label.lower())
            continue
        try:
            labels.append("xn--" + label.lower().encode("punycode").decode("ascii"))
        except UnicodeError:
            return None
    return ".".join(labels)


def _parse_port(url: str, text: str) -> int:
    if not text:
        raise UrlError(f"{url!r}: empty port after ':'")
    if not _DIGITS.match(text) or len(text) > 5:
        raise UrlError(f"{url!r}: port {text!r} is not a number from 1 to 65535")
    port = int(text)
    if not 1 <= port <= 65535:
        raise UrlError(f"{url!r}: port {port} is out of range (1-65535)")
    return port


def _wire_transport(url: str, scheme: Scheme, transport: str | None) -> Transport:
    if scheme is Scheme.STUN:
        return Transport.UDP
    if scheme is Scheme.STUNS:
        return Transport.TLS
    if scheme is Scheme.TURN:
        return Transport.TCP if transport == "tcp" else Transport.UDP
    if transport == "udp":
        raise UrlError(f"{url!r}: turns: over UDP (TURN over DTLS) is not supported")
    return Transport.TLS
