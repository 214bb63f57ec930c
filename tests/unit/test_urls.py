"""Parsing STUN/TURN server URLs (RFC 7064, RFC 7065): what is accepted and how every bad
URL is named in the error. Pure: nothing here resolves a name or opens a socket."""

from __future__ import annotations

import pytest

from iceprobe.model import Scheme, Transport
from iceprobe.urls import DEFAULT_PORT, DEFAULT_SECURE_PORT, UrlError, parse_server_url

STUN, STUNS, TURN, TURNS = Scheme.STUN, Scheme.STUNS, Scheme.TURN, Scheme.TURNS
UDP, TCP, TLS = Transport.UDP, Transport.TCP, Transport.TLS

LONG_LABEL = "a" * 64
# Five labels of 63 characters: 319 characters, under the URL limit but over 253.
LONG_NAME = ".".join(["b" * 63] * 5)

GOOD: list[tuple[str, Scheme, str, int, Transport]] = [
    # The four schemes and their default ports and transports.
    ("stun:stun.example.com", STUN, "stun.example.com", 3478, UDP),
    ("stuns:stun.example.com", STUNS, "stun.example.com", 5349, TLS),
    ("turn:turn.example.com", TURN, "turn.example.com", 3478, UDP),
    ("turns:turn.example.com", TURNS, "turn.example.com", 5349, TLS),
    # Explicit ports.
    ("stun:stun.l.google.com:19302", STUN, "stun.l.google.com", 19302, UDP),
    ("stuns:example.com:443", STUNS, "example.com", 443, TLS),
    ("turn:example.com:1", TURN, "example.com", 1, UDP),
    ("turns:example.com:65535", TURNS, "example.com", 65535, TLS),
    # IPv4.
    ("stun:192.0.2.1", STUN, "192.0.2.1", 3478, UDP),
    ("turn:198.51.100.7:3479", TURN, "198.51.100.7", 3479, UDP),
    # Bracketed IPv6, with and without a port, normalised to its compressed form.
    ("turn:[2001:db8::1]:3478", TURN, "2001:db8::1", 3478, UDP),
    ("stun:[2001:db8::1]", STUN, "2001:db8::1", 3478, UDP),
    ("stuns:[::1]:5350", STUNS, "::1", 5350, TLS),
    ("turn:[2001:DB8:0:0:0:0:0:2]?transport=tcp", TURN, "2001:db8::2", 3478, TCP),
    # ?transport= on turn: and turns:.
    ("turn:example.com?transport=udp", TURN, "example.com", 3478, UDP),
    ("turn:example.com:3478?transport=tcp", TURN, "example.com", 3478, TCP),
    ("turns:example.com:443?transport=tcp", TURNS, "example.com", 443, TLS),
    # Case-insensitive scheme, query key and transport value.
    ("STUN:example.com", STUN, "example.com", 3478, UDP),
    ("TuRnS:example.com", TURNS, "example.com", 5349, TLS),
    ("turn:example.com?transport=TCP", TURN, "example.com", 3478, TCP),
    ("TURN:example.com?TRANSPORT=Udp", TURN, "example.com", 3478, UDP),
    # Host names are lower-cased; a trailing dot is dropped.
    ("stun:STUN.Example.COM", STUN, "stun.example.com", 3478, UDP),
    ("stun:stun.example.com.", STUN, "stun.example.com", 3478, UDP),
    ("turn:Turn.Example.org.:3479", TURN, "turn.example.org", 3479, UDP),
    ("stun:localhost", STUN, "localhost", 3478, UDP),
    ("stun:_stun._udp.example.com", STUN, "_stun._udp.example.com", 3478, UDP),
    ("stun:" + "c" * 63 + ".example", STUN, "c" * 63 + ".example", 3478, UDP),
    # Surrounding whitespace is stripped.
    ("  stun:example.com  ", STUN, "example.com", 3478, UDP),
    ("\tturn:example.com:3479\n", TURN, "example.com", 3479, UDP),
]


@pytest.mark.parametrize(("text", "scheme", "host", "port", "transport"), GOOD)
def test_good_url_parses_to_scheme_host_port_transport(
    text: str, scheme: Scheme, host: str, port: int, transport: Transport
) -> None:
    spec = parse_server_url(text)
    assert spec.scheme is scheme
    assert spec.host == host
    assert spec.port == port
    assert spec.transport is transport


def test_default_ports_are_3478_and_5349() -> None:
    assert DEFAULT_PORT == 3478
    assert DEFAULT_SECURE_PORT == 5349


def test_spec_url_is_the_stripped_text() -> None:
    assert parse_server_url("  turn:example.com:3479  ").url == "turn:example.com:3479"


@pytest.mark.parametrize(("text", "is_turn"), [
    ("stun:h", False), ("stuns:h", False), ("turn:h", True), ("turns:h", True),
])
def test_is_turn_follows_the_scheme(text: str, is_turn: bool) -> None:
    assert parse_server_url(text).is_turn is is_turn


# Each bad URL with the substrings its message must contain: the offending part, and
# (where it helps) a phrase saying what is wrong with it.
BAD: list[tuple[str, tuple[str, ...]]] = [
    # Scheme.
    ("ftp:example.com", ("'ftp'", "unknown scheme")),
    ("http://example.com", ("'http'", "unknown scheme")),
    ("https://example.com:3478", ("'https'", "unknown scheme")),
    ("stun.example.com", ("missing scheme",)),
    (":example.com", ("''", "unknown scheme")),
    ("stun://example.com", ("'//'", "stun:example.com")),
    ("TURN://example.com:3478", ("'//'", "turn:example.com:3478")),
    # Port.
    ("stun:example.com:0", ("port 0", "out of range")),
    ("stun:example.com:65536", ("65536", "out of range")),
    ("stun:example.com:99999999", ("'99999999'",)),
    ("stun:example.com:abc", ("'abc'", "port")),
    ("stun:example.com:-1", ("'-1'", "port")),
    ("stun:example.com:34 78", ("' '",)),
    ("stun:h:", ("empty port",)),
    ("turn:[2001:db8::1]:", ("empty port",)),
    ("turn:[2001:db8::1]:0", ("port 0", "out of range")),
    # Query and transport.
    ("stun:example.com?transport=udp", ("?transport=", "turn: and turns:")),
    ("stuns:example.com?transport=tcp", ("?transport=", "turn: and turns:")),
    ("turn:example.com?transport=sctp", ("'sctp'", "unknown transport")),
    ("turn:example.com?transport=tls", ("'tls'", "unknown transport")),
    ("turn:example.com?transport=", ("''", "unknown transport")),
    ("turn:example.com?proto=udp", ("'proto=udp'", "unknown query")),
    ("turn:example.com?transport", ("'transport'", "unknown query")),
    ("turns:example.com?transport=udp", ("turns:", "UDP", "DTLS")),
    ("TURNS:example.com:443?transport=UDP", ("DTLS",)),
    # User information.
    ("turn:user@example.com", ("user information", "'turn:user@example.com'")),
    ("turn:user:pass@example.com:3478", ("user information",)),
    # Host.
    ("stun:", ("empty host",)),
    ("stun::3478", ("empty host",)),
    ("   ", ("empty server URL",)),
    ("", ("empty server URL",)),
    ("stun:2001:db8::1", ("brackets", "[2001:db8::1]")),
    ("turn:2001:db8::1:3478", ("brackets",)),
    ("stun:[2001:db8::g]", ("'2001:db8::g'", "not a valid IPv6")),
    ("stun:[1.2.3.4]", ("'1.2.3.4'", "not a valid IPv6")),
    ("stun:[]", ("''", "not a valid IPv6")),
    ("stun:[2001:db8::1", ("unterminated", "']'")),
    ("stun:[2001:db8::1]x", ("'x'", "after the IPv6 literal")),
    ("stun:[fe80::1%25eth0]", ("zone",)),
    ("stun:[fe80::1%eth0]:3478", ("zone",)),
    ("stun:300.1.1.1", ("'300.1.1.1'", "not a valid IPv4")),
    ("stun:1.2.3", ("'1.2.3'", "not a valid IPv4")),
    ("stun:" + LONG_LABEL + ".example", (LONG_LABEL, "bad label")),
    ("stun:" + LONG_NAME, ("longer than 253",)),
    ("stun:-bad.example", ("'-bad'", "bad label")),
    ("stun:a..b", ("bad label ''",)),
    ("stun:ho$t", ("ho$t",)),
    # Stray characters.
    ("stun:ho st", ("' '",)),
    ("stun:host/path", ("'host/path'", "bad label")),
    ("stun:host:3478/path", ("'3478/path'", "port")),
    ("stun:host#frag", ("fragment",)),
    ("turn:host?transport=udp#x", ("fragment",)),
    ("stun:ho\x00st", ("'\\x00'",)),
    ("stun:host\x07", ("'\\x07'",)),
    ("stun:ho\tst", ("'\\t'",)),
    ("stun:ho\u200bst", ("'\\u200b'",)),
    # Non-ASCII host: the message gives its IDNA (xn--) form.
    ("stun:bücher.example", ("bücher.example", "not ASCII", "xn--bcher-kva.example")),
    ("turn:münchen.de:3478", ("münchen.de", "xn--mnchen-3ya.de")),
    # IDNA 2008 (RFC 5891, used by registries and browsers) keeps "ß" as xn--strae-oqa;
    # IDNA 2003 maps it to "ss" and so names a different host, strasse.example.
    ("stun:straße.example", ("straße.example", "xn--strae-oqa.example")),
    # Too long.
    ("stun:" + "a." * 520 + "com", ("1048 characters", "at most 1024")),
]


@pytest.mark.parametrize(("text", "names"), BAD, ids=[repr(t)[:60] for t, _ in BAD])
def test_bad_url_raises_url_error_naming_the_bad_part(text: str, names: tuple[str, ...]) -> None:
    with pytest.raises(UrlError) as info:
        parse_server_url(text)
    message = str(info.value)
    for name in names:
        assert name in message, f"{name!r} not in {message!r}"


def test_there_are_at_least_20_good_and_30_bad_cases() -> None:
    assert len(GOOD) >= 20
    assert len(BAD) >= 30


def test_url_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown scheme"):
        parse_server_url("http:example.com")


def test_url_length_limit_is_1024_characters_after_stripping() -> None:
    at_limit = "stun:" + "a" * 1019
    assert len(at_limit) == 1024
    with pytest.raises(UrlError) as info:
        parse_server_url("  " + at_limit + "  ")
    assert "characters long" not in str(info.value)  # rejected for its label, not its length
    with pytest.raises(UrlError, match="1025 characters long"):
        parse_server_url(at_limit + "a")
