"""The data that flows through iceprobe: server specs in, candidates, error events and
verdicts out.

Everything here is a frozen value. The gatherer produces these, the rules judge them and the
renderers show them; none of those stages raises for a network failure, which is a value here.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

# Re-exported: the enums and constants are part of the model's vocabulary.
from .constants import (
    DEFAULT_CONCURRENCY as DEFAULT_CONCURRENCY,
)
from .constants import (
    SERVER_UNREACHABLE_CODE as SERVER_UNREACHABLE_CODE,
)
from .constants import (
    CandidateType as CandidateType,
)
from .constants import (
    Cause as Cause,
)
from .constants import (
    Confidence as Confidence,
)
from .constants import (
    RelayStep as RelayStep,
)
from .constants import (
    Requirement as Requirement,
)
from .constants import (
    Role as Role,
)
from .constants import (
    Scheme as Scheme,
)
from .constants import (
    Severity as Severity,
)
from .constants import (
    Transport as Transport,
)


@dataclass(frozen=True)
class ServerSpec:
    """One STUN or TURN server, as named by its URL (never holds credentials)."""

    url: str
    scheme: Scheme
    host: str
    port: int
    transport: Transport

    @property
    def is_turn(self) -> bool:
        return self.scheme.is_turn

    @property
    def expected_candidate(self) -> CandidateType:
        """The candidate type this server exists to provide."""
        return CandidateType.RELAY if self.is_turn else CandidateType.SRFLX


@dataclass(frozen=True)
class Credentials:
    """Long-term TURN credentials. The password is kept out of `repr` so that it never
    reaches a log line or a traceback by accident."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Candidate:
    """An ICE candidate (RFC 8445 section 5.1), as a browser's `icecandidate` reports it."""

    type: CandidateType
    protocol: str
    address: str
    port: int
    foundation: str
    priority: int
    #: Milliseconds since the start (of gathering, for a recording); None when unknown.
    elapsed_ms: float | None
    related_address: str | None = None
    related_port: int | None = None
    url: str | None = None
    #: For a relay candidate: the transport to the TURN server (udp, tcp or tls), as the
    #: browser's RTCIceCandidate.relayProtocol.
    relay_protocol: str | None = None
    #: For a TCP candidate: its RFC 6544 tcptype (active, passive or so); None for UDP.
    tcp_type: str | None = None


@dataclass(frozen=True)
class ErrorEvent:
    """One failure, with the fields of the browser's `icecandidateerror` event (url,
    address, port, errorCode, errorText) plus the server address and the precise cause."""

    url: str
    address: str | None
    port: int | None
    server_address: str | None
    server_port: int | None
    error_code: int
    error_text: str
    cause: Cause
    elapsed_ms: float | None
    #: A machine-readable refinement of the cause, e.g. for `tls`: certificate-untrusted,
    #: hostname-mismatch, certificate-expired or handshake.
    problem: str | None = None
    #: The relay address family (4 or 6) that the Allocate of this attempt asked for with
    #: REQUESTED-ADDRESS-FAMILY (`--relay-family`); None when it sent none, as browsers do.
    requested_family: int | None = None
    #: For an error response to a TURN Allocate: True when the request carried credentials
    #: (USERNAME, MESSAGE-INTEGRITY) answering the server's 401 challenge, False when it
    #: carried none; None when not known (a recording) or not an Allocate's error response.
    after_challenge: bool | None = None

    @property
    def is_unreachable(self) -> bool:
        """True for the browser's 701 family, where no usable answer came back."""
        return self.cause not in (Cause.RESPONSE, Cause.MALFORMED, Cause.WRONG_METHOD,
                                  Cause.INTERNAL)


@dataclass(frozen=True)
class PhaseTimes:
    """How long each step of a server's probe took, in milliseconds, from the first of its
    attempts that completed the step; None for a step that did not happen (or not to its
    end). The challenge is the unauthenticated Allocate answered with 401; the allocate is
    the authenticated one that succeeded (RFC 8656 section 7)."""

    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    binding_ms: float | None = None
    challenge_ms: float | None = None
    allocate_ms: float | None = None


@dataclass(frozen=True)
class ProbeResult:
    """Everything one server yielded: candidates, error events and how long it took."""

    server: ServerSpec
    candidates: tuple[Candidate, ...]
    errors: tuple[ErrorEvent, ...]
    #: When the probe finished, in milliseconds since the start of the run: the same origin
    #: as every candidate's and error's elapsed_ms, so it is never smaller than theirs.
    duration_ms: float | None
    #: The addresses the server's name resolved to (the literal itself for an IP).
    addresses: tuple[str, ...] = ()
    #: Why the probe did not finish (interrupted, or never given a probe slot within the
    #: budget); None when it finished. Its candidates and errors are what came before.
    unfinished: str | None = None
    #: The TURN URL this STUN server was probed for: browsers use every TURN server over UDP
    #: as a STUN server too. None for a server that was named.
    implied_by: str | None = None
    #: The REALM the (TURN) server sent in its challenge; None when it sent none.
    realm: str | None = None
    #: When the probe's first packet went out (a request, or a TCP connection attempt), in
    #: milliseconds since the start of the run; None when nothing was sent.
    first_sent_ms: float | None = None
    #: The server's SOFTWARE attribute (RFC 8489 section 14.14), from any of its responses
    #: in this run; None when it sent none.
    software: str | None = None
    #: The TURN server granted an allocation to an Allocate that carried no credentials: it
    #: never challenged with a 401, so anyone can relay through it.
    unauthenticated_allocation: bool = False
    phases: PhaseTimes = field(default_factory=PhaseTimes)
    #: For stuns:/turns:: when the server's TLS certificate expires (unix time), from the
    #: first handshake that completed; None without one.
    certificate_expires: float | None = None

    @property
    def ok(self) -> bool:
        """The server yielded the candidate type it exists for, from at least one address."""
        wanted = self.server.expected_candidate
        return any(c.type is wanted for c in self.candidates)



def _when(item: Candidate | ErrorEvent) -> float:
    """Sort key: by time, unknown times last (in their recorded order: sorting is stable)."""
    return float("inf") if item.elapsed_ms is None else item.elapsed_ms


@dataclass(frozen=True)
class GatherReport:
    """The result of one gathering run."""

    started_at: str | None
    duration_ms: float | None
    host_candidates: tuple[Candidate, ...]
    results: tuple[ProbeResult, ...]
    #: Server candidates that cannot be tied to a server (a recording's SDP or candidate lines
    #: name none); gathering always knows the server, so it never has any.
    unattributed: tuple[Candidate, ...] = ()
    #: The run was stopped by a signal (SIGINT, SIGTERM) before every probe finished.
    interrupted: bool = False
    #: The TURN username the run used (not a secret; --redact replaces it); None without
    #: TURN credentials.
    username: str | None = None

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        gathered = tuple(c for r in self.results for c in r.candidates) + self.unattributed
        return self.host_candidates + tuple(sorted(gathered, key=_when))

    @property
    def errors(self) -> tuple[ErrorEvent, ...]:
        return tuple(sorted((e for r in self.results for e in r.errors), key=_when))


@dataclass(frozen=True)
class Verdict:
    """A conclusion drawn from the results, with a stable id that scripts may match on.

    The rule engine (`iceprobe.rules.evaluate`) fills in the last fields: its role, a key
    unique within the report, the keys of the causes a consequence follows from, and the
    group of identical findings it belongs to."""

    id: str
    severity: Severity
    title: str
    detail: str
    hint: str
    urls: tuple[str, ...] = ()
    role: Role = Role.CAUSE
    #: Unique within one report: the id, and the URL for a verdict about one server.
    key: str = ""
    #: For a consequence: the keys of the verdicts it follows from.
    caused_by: tuple[str, ...] = ()
    #: Verdicts with the same group say the same thing about different servers; shown as one.
    group: str = ""
    #: The title of the group when it has several members: "{n}" stands for their number.
    group_title: str = ""
    #: The severity was lowered to info by --ignore.
    ignored: bool = False
    #: How sure the verdict is of what it says (certain, likely, possible).
    confidence: Confidence = Confidence.CERTAIN


@dataclass(frozen=True)
class Spread:
    """Summary of a set of samples (milliseconds)."""

    min: float
    median: float
    p95: float
    max: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Spread:
        """The spread of one or more samples."""
        ordered = sorted(samples)
        p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
        return cls(min=ordered[0], median=round(statistics.median(ordered), 2), p95=p95,
                   max=ordered[-1])


@dataclass(frozen=True)
class RelayPair:
    """The candidate pair ICE selected: both peers' relay addresses, and the transport to
    the TURN server (the browser's relayProtocol)."""

    local: str
    local_port: int
    remote: str
    remote_port: int
    relay_protocol: Transport


@dataclass(frozen=True)
class TurnExchange:
    """One TURN request a peer of the relay check made to the server, and what came of it,
    as seen on the wire between them."""

    #: offerer or answerer.
    peer: str
    #: ChannelBind, CreatePermission, Refresh or Refresh(0) (the release).
    request: str
    #: The first send, in milliseconds since the start of the check.
    elapsed_ms: float
    sends: int
    #: Answers that came back (to any of the sends).
    answers: int
    #: success; error (an error response the client accepted); discarded (answers came, and
    #: the client discarded every one: see `problem`); unanswered.
    outcome: str
    error_code: int | None = None
    reason: str = ""
    #: Why the answers were discarded: no-message-integrity (the answer to an authenticated
    #: request carried none) or bad-message-integrity (it did not match); else None.
    problem: str | None = None
    #: From the last send to the accepted answer; None without one.
    rtt_ms: float | None = None


#: A sweep step whose loss (or shortfall) is above this share is past the knee.
KNEE_LOSS = 0.01


@dataclass(frozen=True)
class Percentiles:
    """Summary of a set of samples in microseconds, with the 99th percentile."""

    min: float
    median: float
    p95: float
    p99: float
    max: float


@dataclass(frozen=True)
class SweepStep:
    """One step of an open-loop rate sweep: offered, really sent, and delivered back."""

    payload_bytes: int
    offered_pps: float
    #: What the client managed to send: below the offered rate, the client was the limit.
    sent_pps: float
    delivered_pps: float
    #: Payload delivered back to the sender, megabits per second (one direction's worth).
    mbit_s: float
    loss: float
    #: The client could not send at the offered rate (its CPU, or its UDP socket): the step
    #: measures the client, not the server.
    client_bound: bool = False

    @property
    def past_knee(self) -> bool:
        """More than 1 % lost, or delivered more than 1 % short of the offered rate (a
        stream the server does not read fast enough loses nothing, but falls behind)."""
        return self.loss > KNEE_LOSS or self.delivered_pps < (1 - KNEE_LOSS) * self.offered_pps


@dataclass(frozen=True)
class PlaneMeasurement:
    """What iceprobe's own TURN data plane measured: ChannelData echoed through the server
    at a steady rate, and optionally an open-loop rate sweep."""

    #: relay-relay (two allocations: each packet crosses the server twice each way) or
    #: relay-peer (an allocation and a plain UDP socket of this process: once each way).
    topology: str
    #: How many times a round trip crosses the server.
    crossings: int
    flows: int
    rate_pps: float
    payload_bytes: int
    sent: int
    received: int
    reordered: int
    duplicates: int
    rtt_us: Percentiles | None
    #: RFC 3550 interarrival jitter of the echoes, microseconds.
    jitter_us: float | None
    #: The engine's own CPU seconds per wall-clock second while measuring.
    client_cpu: float
    #: The client, not the server, was the limit somewhere (its CPU near one core, or a
    #: sweep step it could not send at the offered rate).
    client_bound: bool
    #: The clock's resolution, microseconds (time.perf_counter).
    clock_resolution_us: float
    sweep: tuple[SweepStep, ...] = ()
    #: With a sweep: the lowest offered rate whose loss exceeded 1 %; None when none did.
    knee_pps: float | None = None
    #: With a sweep: the payload size the knee was found at (the largest that had one).
    knee_payload_bytes: int | None = None

    @property
    def loss(self) -> float | None:
        return None if self.sent == 0 else max(0.0, (self.sent - self.received) / self.sent)


@dataclass(frozen=True)
class RelayCheck:
    """One end-to-end data-path check through one TURN server: two WebRTC peers, both
    relay-only, a data channel between them, echoes and a bulk transfer."""

    server: ServerSpec
    duration_ms: float
    #: False when the check was not tried because the allocation itself failed (the gather
    #: verdicts say why).
    attempted: bool = True
    #: Milliseconds from the start to both peers' ICE connected, DTLS connected, and the
    #: data channel open on both sides; None when the step did not complete.
    ice_connected_ms: float | None = None
    dtls_connected_ms: float | None = None
    channel_open_ms: float | None = None
    pair: RelayPair | None = None
    sent: int = 0
    received: int = 0
    rtt: Spread | None = None
    #: Bulk transfer, bits per second at the receiving peer: offerer to answerer, and back.
    throughput_up_bps: float | None = None
    throughput_down_bps: float | None = None
    #: The first step that did not complete, and what went wrong there.
    failed_step: RelayStep | None = None
    failure: str | None = None
    #: Error events captured on the way, e.g. a 403 on ChannelBind / CreatePermission.
    errors: tuple[ErrorEvent, ...] = ()
    #: ICE connectivity checks (STUN Binding requests through the relays) sent again before
    #: both peers connected: each one costs aioice's 500 ms retransmission timer.
    ice_check_retransmissions: int = 0
    #: Why ice_connected_ms is what it is, when something beyond one round of checks made it
    #: (a retransmitted check); None otherwise.
    ice_note: str | None = None
    #: The run was stopped (SIGINT, SIGTERM) during `failed_step`: the measurements are those
    #: made until then.
    interrupted: bool = False
    #: The TURN requests the peers made during the check (ChannelBind, CreatePermission,
    #: Refresh; their Allocates came before), each with what came of it.
    turn_requests: tuple[TurnExchange, ...] = ()
    #: ChannelData messages the peers sent to the server, and received from it (relayed
    #: data, Data indications included).
    channel_data_sent: int = 0
    channel_data_received: int = 0
    #: "webrtc" for the aiortc check, "turn" for iceprobe's own data plane (`plane`).
    engine: str = "webrtc"
    plane: PlaneMeasurement | None = None

    @property
    def ok(self) -> bool:
        return self.attempted and self.failed_step is None

    @property
    def loss(self) -> float | None:
        """The fraction of echo messages that never came back."""
        return None if self.sent == 0 else (self.sent - self.received) / self.sent


@dataclass(frozen=True)
class StateChange:
    """A PeerConnection state change a browser recorded: `kind` is ice, connection or
    gathering."""

    kind: str
    state: str
    elapsed_ms: float | None


@dataclass(frozen=True)
class Recording:
    """What a browser's recording tells beyond candidates and error events: how the
    PeerConnection was configured and what happened to it. Evidence read from a recording
    carries one; gathered evidence does not."""

    #: chrome-webrtc-internals, rtcstats, firefox-about-webrtc, iceprobe-events or sdp.
    format: str
    #: "all" or "relay"; None when the recording does not say.
    ice_transport_policy: str | None = None
    #: The configured ICE servers are known (an SDP, for one, does not carry them).
    configuration_known: bool = True
    #: The format records icecandidateerror events (Firefox and SDP do not: unknown, not none).
    errors_recorded: bool = True
    #: How many events the recording holds (0: recording started after the call).
    events: int = 0
    #: The event log is empty but candidates were read from elsewhere (Chrome's stats):
    #: states and errors were not recorded.
    log_missing: bool = False
    states: tuple[StateChange, ...] = ()
    #: The precision of its timestamps: 1000 ms for a locale time string, 1 for epoch ms.
    time_resolution_ms: float = 1.0


@dataclass(frozen=True)
class Source:
    """Where a report was read from, for its header: the file, the format, the
    PeerConnection in it, and the page and browser when recorded."""

    file: str
    format: str
    session: str
    page_url: str | None = None
    browser: str | None = None
