"""The vocabulary of iceprobe's data: its enums and the constants that the command line's
option declarations need.

No dataclasses live here, so that `iceprobe --help` and `iceprobe gather --help` can import
this without paying for `iceprobe.model`'s generated methods; `iceprobe.model` re-exports all
of it.
"""

from __future__ import annotations

import enum

#: Probes in flight at once (each holds one socket), unless --concurrency says otherwise.
DEFAULT_CONCURRENCY = 500
#: How an unfinished probe says that it waited for a slot in vain (the rules then suggest
#: --concurrency, not only --timeout).
SLOTS_BUSY = "probe slots (--concurrency) stayed busy"


class Scheme(str, enum.Enum):
    """URI schemes of RFC 7064 (STUN) and RFC 7065 (TURN)."""

    STUN = "stun"
    STUNS = "stuns"
    TURN = "turn"
    TURNS = "turns"

    @property
    def is_turn(self) -> bool:
        return self in (Scheme.TURN, Scheme.TURNS)

    @property
    def is_secure(self) -> bool:
        return self in (Scheme.STUNS, Scheme.TURNS)


class Transport(str, enum.Enum):
    """How iceprobe talks to the server: the wire under the STUN messages."""

    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class CandidateType(str, enum.Enum):
    HOST = "host"
    SRFLX = "srflx"
    RELAY = "relay"


class Cause(str, enum.Enum):
    """Why an error event happened. `response` is a STUN/TURN error response; the others
    are the distinct reasons behind a browser's ambiguous 701."""

    RESPONSE = "response"
    DNS = "dns"
    SOCKET = "socket"
    UNREACHABLE = "unreachable"
    REFUSED = "refused"
    TLS = "tls"
    CLOSED = "closed"
    #: A browser's TCP/TLS connection to a TURN server failed and the browser did not say
    #: why (Chrome's "Failed to establish connection"); only recordings have it.
    CONNECT = "connect"
    #: A browser reported 701 with no errorText at all (Firefox does): the server could not
    #: be used, and the recording does not say why; only recordings have it.
    UNSPECIFIED = "unspecified"
    TIMEOUT = "timeout"
    MALFORMED = "malformed"
    #: The server answered our transaction with a response of another method (a Binding
    #: success to an Allocate: a STUN server that is not a TURN server).
    WRONG_METHOD = "wrong-method"
    INTERNAL = "internal"


class Severity(str, enum.Enum):
    OK = "ok"
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"


class Role(str, enum.Enum):
    """What a verdict is to the others: a *cause* (something wrong at a server or in the
    configuration, with its code and cause), a *consequence* of causes (no relay, only host
    candidates, ICE failed: what the causes mean for calls), or a *finding* that is neither
    (all is well, no NAT, a harmless 701)."""

    CAUSE = "cause"
    CONSEQUENCE = "consequence"
    FINDING = "finding"


class Confidence(str, enum.Enum):
    """How sure a verdict is of the cause it names: *certain* when the evidence shows it (a
    401 after the credentials were sent, an ICMP error), *likely* when it is inferred from
    what was seen (a browser that dropped a duplicate srflx), *possible* when it is one of
    several causes the evidence cannot tell apart (a browser's "Failed to establish
    connection")."""

    CERTAIN = "certain"
    LIKELY = "likely"
    POSSIBLE = "possible"


class Status(str, enum.Enum):
    """A run's outcome, the headline of its report. Derived in one place
    (`iceprobe.status.outcome`), together with `ok` and the exit code."""

    PASS = "pass"
    FAIL = "fail"
    #: Nothing could be judged: a recording whose PeerConnection recorded no event.
    INCONCLUSIVE = "inconclusive"
    #: Stopped by SIGINT or SIGTERM before the end: what is shown is what came before.
    INTERRUPTED = "interrupted"


class ExitCode(enum.IntEnum):
    OK = 0
    #: A failing verdict, or nothing to judge (inconclusive).
    FAIL = 1
    USAGE = 2
    INTERNAL = 3
    INTERRUPTED = 130  # 128 + SIGINT
    TERMINATED = 143  # 128 + SIGTERM


class Requirement(str, enum.Enum):
    """`each`: every server must yield its candidate; `any`: one working STUN and one
    working TURN server are enough."""

    EACH = "each"
    ANY = "any"


#: W3C WebRTC: "server not reachable", the browser's code for every failure to reach a server.
SERVER_UNREACHABLE_CODE = 701


class RelayStep(str, enum.Enum):
    """The steps of a relay data-path check, in order; a broken path names the first that
    did not complete."""

    ALLOCATE = "allocate"
    #: iceprobe's own data plane: CreatePermission and ChannelBind towards the other end.
    PERMISSION = "permission"
    ICE = "ice"
    DTLS = "dtls"
    CHANNEL = "channel"
    ECHO = "echo"
    BULK = "bulk"
    #: iceprobe's own data plane: the open-loop rate sweep (`--sweep`).
    SWEEP = "sweep"


#: A server whose first candidate arrives later than this is slow (milliseconds).
DEFAULT_SLOW_MS = 500.0
#: relay-slow thresholds: median echo round trip (ms), and the lower bulk throughput (bit/s).
DEFAULT_RELAY_MAX_RTT_MS = 300.0
DEFAULT_RELAY_MIN_BPS = 1_000_000.0
