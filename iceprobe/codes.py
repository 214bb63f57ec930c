"""Every error code a STUN server, a TURN server or a browser can produce: what it means,
who sends it, what to do, and the verdict iceprobe gives for it.

Pure data with lookups; imports nothing heavy, so `iceprobe explain` starts fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .model import Cause

STUN_SERVER = "STUN server"
TURN_SERVER = "TURN server"
BROWSER = "browser"
_BOTH = (STUN_SERVER, TURN_SERVER)
_RFC8489 = "RFC 8489 section 14.8"
_RFC8656 = "RFC 8656 section 19 (RFC 5766 section 15)"
_RFC6156 = "RFC 8656 section 19 (RFC 6156 section 10.2)"
_RFC3489 = "RFC 3489 section 11.2.9 (legacy)"
_W3C = "W3C WebRTC, RTCPeerConnectionIceErrorEvent"


@dataclass(frozen=True)
class CodeInfo:
    code: int
    name: str
    reference: str
    emitted_by: tuple[str, ...]
    meaning: str
    remedy: str
    verdict: str
    cause: str | None = None
    generic: bool = False
    #: Other texts that mean this entry (reason phrases servers use, browser errorTexts).
    aliases: tuple[str, ...] = ()


def _entry(code: int, name: str, reference: str, emitted_by: tuple[str, ...], meaning: str,
           remedy: str, verdict: str = "server-error", aliases: tuple[str, ...] = ()
           ) -> CodeInfo:
    return CodeInfo(code, name, reference, emitted_by, meaning, remedy, verdict,
                    aliases=aliases)


CODES: tuple[CodeInfo, ...] = (
    _entry(300, "Try Alternate", _RFC8489, _BOTH,
           "The server redirects the client to another server, named in its ALTERNATE-SERVER "
           "attribute (load balancing or maintenance).",
           "Nothing, if the alternate server works: iceprobe follows the redirect once and "
           "reports the result there. Otherwise point clients straight at a working server.",
           "alternate-server"),
    _entry(400, "Bad Request", _RFC8489, _BOTH,
           "The server could not parse the request or found it invalid. pion/turn (inside "
           "LiveKit and many Go services) also answers a failed credential check (wrong "
           "password, unknown user, expired REST credentials) with a bare 400, without a "
           "reason phrase: after the 401 challenge was answered, iceprobe reads such a 400 as "
           "probably the credentials (turn-credentials-rejected, likely).",
           "The client and server disagree on the protocol: check the server software and "
           "version, and that the port really runs STUN/TURN. If it came after the "
           "credentials were sent, check them first.", "server-incompatible"),
    _entry(401, "Unauthenticated", _RFC8489, (TURN_SERVER,),
           "The request lacked valid credentials. The first 401 of every TURN allocation is "
           "the normal challenge (it brings REALM and NONCE); a 401 after the credentials "
           "were sent means they were rejected. Called \"Unauthorized\" in RFC 5389.",
           "Check the username and credential against the server's user database and realm; "
           "for TURN REST credentials, check the shared secret, the clock and the expiry.",
           "turn-credentials-rejected", aliases=("Unauthorized", "Unauthorised")),
    _entry(403, "Forbidden", _RFC8656, (TURN_SERVER,),
           "The request was valid but the server refuses it by policy, for example a peer "
           "address it does not allow (coturn: \"Forbidden IP\").",
           "Check the server's access rules (coturn: denied-peer-ip, allowed-peer-ip, "
           "no-loopback-peers, no-multicast-peers) for this user and peer.",
           "forbidden", aliases=("Forbidden IP",)),
    _entry(405, "Mobility Forbidden", "RFC 8016 section 3.4", (TURN_SERVER,),
           "The client asked for a mobile allocation (MOBILITY-TICKET) that the server does "
           "not allow.",
           "Do not request TURN mobility from this server, or enable it on the server.",
           "forbidden"),
    _entry(420, "Unknown Attribute", _RFC8489, _BOTH,
           "The request carried a comprehension-required attribute the server does not "
           "understand (listed in UNKNOWN-ATTRIBUTES).",
           "The server is older or different than the client expects: update the server or "
           "use a client without that extension.", "server-incompatible"),
    _entry(430, "Stale Credentials", _RFC3489, (STUN_SERVER,),
           "Legacy RFC 3489: the shared-secret credentials expired.",
           "Obtain fresh credentials; better, move the server to RFC 8489 long-term "
           "credentials."),
    _entry(431, "Integrity Check Failure", _RFC3489, (STUN_SERVER,),
           "Legacy RFC 3489: MESSAGE-INTEGRITY did not verify, so the password is wrong.",
           "Check the credential; modern servers answer 401 for this.",
           "turn-credentials-rejected"),
    _entry(432, "Missing Username", _RFC3489, (STUN_SERVER,),
           "Legacy RFC 3489: the request carried MESSAGE-INTEGRITY but no USERNAME.",
           "Give a username (and credential) for this server.", "turn-credentials-missing"),
    _entry(433, "Use TLS", _RFC3489, (STUN_SERVER,),
           "Legacy RFC 3489: the server requires the shared-secret request over TLS.",
           "Use the server's TLS URL (stuns:/turns:) or a modern server."),
    _entry(437, "Allocation Mismatch", _RFC8656, (TURN_SERVER,),
           "An Allocate arrived on a 5-tuple that already has an allocation, or a request "
           "other than Allocate arrived on one that has none. coturn sends it without "
           "MESSAGE-INTEGRITY, which aioice ignores.",
           "A previous client on the same local address and port still holds an allocation: "
           "wait for it to expire or use a fresh local port; a client that reuses ports must "
           "release allocations (Refresh with LIFETIME 0).", "allocation-mismatch"),
    _entry(438, "Stale Nonce", _RFC8489, (TURN_SERVER,),
           "The nonce the client used has expired; the response carries a new one. Clients "
           "retry with it, so this is normal unless it repeats: it is not an authentication "
           "failure.",
           "Nothing if the retry succeeded. If it repeats, check the server's clock and "
           "nonce lifetime (coturn: stale-nonce).", "stale-nonce"),
    _entry(440, "Address Family not Supported", _RFC6156, (TURN_SERVER,),
           "The server cannot allocate a relay of the address family the client asked for "
           "(REQUESTED-ADDRESS-FAMILY).",
           "Ask for the other family (IPv4 is the default), or give the server a relay "
           "address of that family.", "address-family-not-supported"),
    _entry(441, "Wrong Credentials", _RFC8656, (TURN_SERVER,),
           "A request on an existing allocation used credentials other than the ones that "
           "created it.", "Use the same username and credential for the whole allocation.",
           "turn-credentials-rejected"),
    _entry(442, "Unsupported Transport Protocol", _RFC8656, (TURN_SERVER,),
           "The server does not relay the transport requested in REQUESTED-TRANSPORT (UDP "
           "for WebRTC).",
           "Enable UDP relaying on the server (coturn: remove no-udp-relay).",
           "transport-not-supported"),
    _entry(443, "Peer Address Family Mismatch", _RFC6156, (TURN_SERVER,),
           "A permission or channel was requested for a peer whose address family differs "
           "from the relayed address's.",
           "Allocate a relay of the peer's family, or use a peer candidate of the relay's."),
    _entry(446, "Connection Already Exists", "RFC 6062 section 6.3", (TURN_SERVER,),
           "TURN-TCP: a Connect request named a peer the allocation already has a TCP "
           "connection to.", "Reuse the existing connection instead of connecting again."),
    _entry(447, "Connection Timeout or Failure", "RFC 6062 section 6.3", (TURN_SERVER,),
           "TURN-TCP: the server could not open the TCP connection to the peer.",
           "Check that the peer accepts TCP connections from the relay address."),
    _entry(486, "Allocation Quota Reached", _RFC8656, (TURN_SERVER,),
           "This user already holds as many allocations as the server allows.",
           "Release old allocations. Clients that were killed or never sent a Refresh with "
           "LIFETIME 0 leave allocations behind, which hold the quota until they expire "
           "(600 s by default in coturn); raise the quota (coturn: user-quota) if the load "
           "is real.", "allocation-quota-reached"),
    _entry(487, "Role Conflict", "RFC 8445 section 16.2 (RFC 5245 section 19.2)", (BROWSER,),
           "ICE: both agents claimed the same controlling or controlled role in a "
           "connectivity check; the agents swap roles and retry. Not sent by STUN/TURN "
           "servers.", "Nothing normally; if it repeats, the two ICE agents disagree on "
           "role tie-breakers (an application bug)."),
    _entry(500, "Server Error", _RFC8489, _BOTH,
           "The server hit a temporary error of its own.",
           "Retry later and check the server's logs.", "server-internal-error"),
    _entry(508, "Insufficient Capacity", _RFC8656, (TURN_SERVER,),
           "The server has no relay ports (or other resources) left for a new allocation.",
           "Widen the relay port range (coturn: min-port/max-port), release idle "
           "allocations, or add servers.", "server-at-capacity"),
    _entry(600, "Global Failure", _RFC3489, (STUN_SERVER,),
           "Legacy RFC 3489: the server refuses the request and no other server will do "
           "better.", "Use a different, modern STUN server."),
    _entry(701, "Server not reachable", _W3C, (BROWSER,),
           "The browser's catch-all for a server it could not use: DNS failure, socket "
           "error, unreachable network or port, refused or closed connection, TLS failure, or "
           "no answer (browsers wait about 40 s to say so; a failed TCP or TLS connection "
           "is reported at once). iceprobe names the precise cause.",
           "See the cause: iceprobe explain dns, unreachable, timeout, …",
           "server-unreachable"),
)

_701 = "W3C WebRTC 701, iceprobe cause"


def _cause(cause: Cause, meaning: str, remedy: str, aliases: tuple[str, ...] = (),
           verdict: str | None = None) -> CodeInfo:
    if verdict is None:
        verdict = ("server-error" if cause in (Cause.MALFORMED, Cause.INTERNAL)
                   else "server-unreachable")
    return CodeInfo(701, f"Server not reachable: {cause.value}", f"{_701} {cause.value!r}",
                    (BROWSER,), meaning, remedy, verdict, cause=cause.value, aliases=aliases)


#: One entry per iceprobe cause, in `Cause` order. The aliases are libwebrtc's errorText
#: strings (stun_port.cc, turn_port.cc), so `match_text` maps what a browser printed to its
#: cause. Some are a judgement call, since libwebrtc says them for more than one cause:
#: "Failed to connect to TURN server." comes from a TCP/TLS connect that failed, which is
#: almost always a reset (nothing listens), so it maps to `refused`; "TURN server
#: connection closed" comes once the connection was up, so it maps to `closed`. Chromium
#: 156's "Failed to establish connection" covers refused, TLS and closed alike (measured,
#: docs/chrome.md), so it maps to `connect`, which claims none of them; a recording can
#: narrow it (iceprobe.recordings.evidence). MALFORMED, WRONG_METHOD and INTERNAL are not
#: reachability failures (`ErrorEvent.is_unreachable` is False), so they lead to
#: `server-error` or `not-a-turn-server`, not `server-unreachable`.
CAUSES_701: tuple[CodeInfo, ...] = (
    _cause(Cause.DNS, "The server's name did not resolve (NXDOMAIN, no A/AAAA record, or no "
           "resolver answer).",
           "Check the host name and the DNS seen by the client; a name with only an AAAA "
           "record fails on IPv4-only networks.",
           ("STUN host lookup received error.", "TURN host lookup received error.")),
    _cause(Cause.SOCKET, "No socket could be created or bound towards the server, or the "
           "client has no local address of the server's address family.",
           "Check the client's interfaces and local firewall; an IPv6-only server needs an "
           "IPv6 address on the client.",
           ("Failed to create TURN client socket.", "STUN server address is incompatible.",
            "TURN server address is incompatible.")),
    _cause(Cause.UNREACHABLE, "An ICMP error came back: nothing listens on that UDP port, or "
           "the host or network is unreachable. iceprobe sees it at once on a connected "
           "socket; browsers ignore it and time out after about 40 s.",
           "Check the port, that the server runs, and firewalls that reject traffic."),
    _cause(Cause.REFUSED, "The TCP connection was refused (reset): nothing listens on that "
           "TCP port.",
           "Check the port and that the server listens on TCP/TLS there.",
           ("Failed to connect to TURN server.",)),
    _cause(Cause.TLS, "The TLS handshake failed: untrusted or expired certificate, hostname "
           "mismatch, or no common protocol.",
           "Fix the certificate (full chain, matching name, valid dates) or the TLS "
           "settings of the server."),
    _cause(Cause.CLOSED, "The server closed or reset the connection in the middle of a "
           "request.", "Check the server's logs: it may reject the client or crash.",
           ("TURN server connection closed.",)),
    _cause(Cause.CONNECT, "Chrome's TCP or TLS connection to the TURN server (turn:…?transport="
           "tcp, turns:) failed, and Chrome does not say why. Measured in Chromium 156: a "
           "refused port, a TLS handshake rejected (untrusted, expired or misnamed "
           "certificate), the server closing the connection, and, after about 30 s, a TLS "
           "handshake that got no answer. A silent server gives a timeout instead.",
           "Not certain which: run iceprobe gather on the URL, which names the cause. On "
           "turns: the likely causes are, in order, the certificate (chain, name, dates), a "
           "port that does not speak TLS, and a refused port; on turn:…?transport=tcp, "
           "nothing listening on that TCP port or a firewall rejecting it.",
           ("Failed to establish connection",)),
    _cause(Cause.UNSPECIFIED, "A browser reported 701 and did not say why: its errorText is "
           "empty (Firefox 153 does this, e.g. for a name that did not resolve). The server "
           "could not be used; the recording cannot tell a failed name lookup from a closed, "
           "refused or filtered port.",
           "Not certain which: check that the server's name resolves on that network and "
           "that the server runs and listens on that port; run iceprobe gather on the URL "
           "from that network, which names the cause.", ()),
    _cause(Cause.TIMEOUT, "No answer arrived within the time budget: the server is down, or "
           "a firewall silently drops the traffic (often UDP on corporate networks). Browsers "
           "take about 40 s to report this; iceprobe reports it after its own budget.",
           "Check that the server runs and that UDP 3478 (or the port used) is open; where "
           "UDP is blocked, offer TURN over TCP or TLS on port 443.",
           ("STUN binding request timed out.", "TURN allocate request timed out.",
            # older libwebrtc's text for a STUN *binding* timeout
            "STUN allocate request timed out.")),
    _cause(Cause.MALFORMED, "Something answered, but not with a STUN message iceprobe could "
           "read.", "Check what really listens on that port (another service, a proxy).",
           ()),
    _cause(Cause.WRONG_METHOD, "The server answered the request's transaction, but with a "
           "response of another method: a Binding success to a TURN Allocate (the npm stun "
           "server does so) means the server speaks STUN but is not a TURN server. Browsers "
           "ignore such an answer and time out.",
           "Point the turn: URL at a TURN server, or use this server as stun:.", (),
           verdict="not-a-turn-server"),
    _cause(Cause.INTERNAL, "iceprobe itself failed while probing: a bug.",
           "Report it with the output of --verbose.", ()),
)

_BY_CODE = {info.code: info for info in CODES}
_BY_CAUSE = {info.cause: info for info in CAUSES_701}

_CLASSES = (
    (300, 399, "redirect", "The server sends the client elsewhere.",
     "Follow the redirect, or configure the target server directly.", "server-error"),
    (400, 499, "client-side problem", "The server rejected the request as the client sent "
     "it.", "Check the credentials and what the client asks for.", "server-error"),
    (500, 599, "server problem", "The server failed on its own side.",
     "Check the server's logs and capacity.", "server-error"),
    (600, 699, "global failure", "The server refuses, and says no server would do better.",
     "Use a different server.", "server-error"),
    (700, 799, "browser-side failure", "Produced by the browser, not sent by a server: it "
     "could not reach or use the server.", "See iceprobe explain 701.", "server-unreachable"),
)


def lookup(code: int) -> CodeInfo:
    """The entry for `code`, or one that explains it by its class."""
    if not 0 <= code <= 999:
        raise ValueError(f"{code} is not an error code (0-999)")
    if code in _BY_CODE:
        return _BY_CODE[code]
    for low, high, kind, meaning, remedy, verdict in _CLASSES:
        if low <= code <= high:
            browser = code >= 700
            return CodeInfo(code, f"Unknown {code // 100}xx ({kind})",
                            _W3C if browser else _RFC8489, (BROWSER,) if browser else _BOTH,
                            meaning, remedy, verdict, generic=True)
    return CodeInfo(code, "Not a valid STUN error code", "RFC 8489 section 14.8", (),
                    "STUN error codes run from 300 to 699; this value is outside that range "
                    "(a broken server, or not a STUN server).",
                    "Check what listens on that port.", "server-error", generic=True)


def for_cause(cause: Cause) -> CodeInfo:
    """The 701 entry for a cause; a `response` is explained by its own code instead."""
    info = _BY_CAUSE.get(cause.value)
    if info is None:
        raise ValueError(f"{cause.value!r} is not a 701 cause: look up the response's code")
    return info


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().rstrip(".").strip()).casefold()


def match_text(text: str) -> CodeInfo | None:
    """The entry a browser errorText, a reason phrase, a code name or a cause name means."""
    wanted = _normalise(text)
    if not wanted:
        return None
    for info in CAUSES_701:
        if wanted == info.cause or any(wanted == _normalise(a) for a in info.aliases):
            return info
    for info in CODES:
        if wanted == _normalise(info.name) or any(wanted == _normalise(a) for a in info.aliases):
            return info
    return None
