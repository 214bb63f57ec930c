"""iceprobe's own TURN data plane, end to end: allocations and channels (plane_control),
a steady echo at `rate_pps`, an optional open-loop rate sweep to the loss knee
(plane_loop, plane_stats), and the release of every allocation, always.

It measures the TURN server rather than the client: no DTLS, no SCTP, no event loop on the
hot path, its own CPU time reported beside the figures (`client_cpu`), and a result marked
`client_bound` when the client, not the server, was the limit.

Topologies:
- relay-relay: two allocations per flow, channels bound to each other's relay address. It
  needs no reachable peer, and each packet crosses the server twice each way (4 crossings
  per round trip): a call between two relayed users looks like this.
- relay-peer: one allocation and a plain UDP socket of this process as the peer, which
  echoes. Once each way (2 crossings), but the server's datagrams must reach this machine
  on a port it did not contact first through the server (a NAT or firewall may drop them).

`measure` is the blocking work; plane_relays runs it in a thread of its own for the CLI,
and a set `stop` makes it finish the phase in progress at once and release everything
within RELEASE_BUDGET.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from ..model import (
    Cause,
    Credentials,
    ErrorEvent,
    PlaneMeasurement,
    RelayCheck,
    RelayPair,
    RelayStep,
    ServerSpec,
    Spread,
    SweepStep,
)
from .channel import ProbeFailure, describe
from .plane_control import (
    CHANNEL_EVERY,
    FIRST_CHANNEL,
    PERMISSION_EVERY,
    Relay,
    Upkeep,
    allocate,
    release_all,
)
from .plane_data import MIN_PAYLOAD, Link, PeerSocket, open_link, open_peer_socket
from .plane_loop import Flow, Phase, run_phase
from .plane_stats import (
    is_client_bound,
    is_past_knee,
    knee,
    merge,
    next_rate,
    percentiles_us,
    sweep_step,
)
from .wire import Address, data_indication_peer

log = logging.getLogger("iceprobe.plane")

#: Releasing every allocation may take this long (seconds), stopped or not.
RELEASE_BUDGET = 1.5
#: A sweep never takes longer than this (seconds), whatever its steps.
SWEEP_BUDGET = 90.0
#: After a step past the knee, the sweep rests this long: the server's queues and a
#: limiter counting bytes per second (coturn's max-bps) recover, and the next step is not
#: charged for this one's excess.
SETTLE = 1.0
#: The client's own CPU, in CPU seconds per second, from which it is the likely limit.
CPU_BOUND = 0.9
TOPOLOGIES = ("relay-relay", "relay-peer")
#: After a 486, how long to wait for the quota the allocation check held (coturn frees a
#: released allocation's quota about 1 s later).
QUOTA_TIMER = 1.2


@dataclass(frozen=True)
class PlaneOptions:
    credentials: Credentials
    #: Packets per second of each flow in the steady phase, for `duration` seconds.
    rate_pps: float = 50.0
    duration: float = 2.0
    payload_bytes: int = 200
    flows: int = 1
    topology: str = "relay-relay"
    sweep: bool = False
    #: The payload sizes swept, in order; each from `sweep_start` packets/s (all flows
    #: together) upwards by `sweep_factor`, then bisected to `sweep_precision`.
    sweep_sizes: tuple[int, ...] = (64, 1200)
    #: Two seconds always hold one whole second of the wall clock: a limiter that counts
    #: bytes per second (coturn's max-bps does) cannot pass a step on its bursts.
    sweep_step: float = 2.0
    sweep_start: float = 200.0
    sweep_factor: float = 2.0
    sweep_limit: float = 400_000.0
    sweep_precision: float = 0.08
    #: Set-up (connections, allocations, channels) gets at most this long.
    setup_timeout: float = 5.0
    #: How often permissions and channel bindings are refreshed (seconds); the allocation
    #: itself a minute before its LIFETIME ends.
    permission_every: float = PERMISSION_EVERY
    channel_every: float = CHANNEL_EVERY
    tls: ssl.SSLContext | None = None


def measure(spec: ServerSpec, options: PlaneOptions, stop: threading.Event) -> RelayCheck:
    """The whole measurement against one TURN server, blocking; never raises."""
    run = _Run(spec, options, stop)
    try:
        return run.measure()
    except Exception as exc:  # a bug is still a value
        log.debug("! the data plane crashed", exc_info=True)
        return run.check(failed_step=run.step,
                         failure=f"internal error: {type(exc).__name__}: {exc}")
    finally:
        run.release()


class _Run:
    def __init__(self, spec: ServerSpec, options: PlaneOptions, stop: threading.Event) -> None:
        self.spec = spec
        self.options = options
        self.stop = stop
        self.started = time.monotonic()
        self.step = RelayStep.ALLOCATE
        self.links: list[Link] = []
        self.peers: list[PeerSocket] = []
        self.relays: list[Relay] = []
        self.pending: list[Relay] = []
        self.flows: list[Flow] = []
        self.errors: list[ErrorEvent] = []
        self.released = 0

    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 1)

    def event(self, failure: ProbeFailure, local: Address | None = None) -> ErrorEvent:
        event = ErrorEvent(
            url=self.spec.url, address=local[0] if local else None,
            port=local[1] if local else None, server_address=self.spec.host,
            server_port=self.spec.port, error_code=failure.code, error_text=failure.text,
            cause=failure.cause, elapsed_ms=self.elapsed_ms(), problem=failure.problem)
        self.errors.append(event)
        return event

    def check(self, **fields: object) -> RelayCheck:
        return RelayCheck(server=self.spec, duration_ms=self.elapsed_ms(), engine="turn",
                          errors=tuple(self.errors), **fields)  # type: ignore[arg-type]

    def measure(self) -> RelayCheck:
        options = self.options
        deadline = self.started + options.setup_timeout + QUOTA_TIMER
        try:
            server = _resolve(self.spec)
            for index in range(options.flows):
                if self.stop.is_set():
                    return self.check(failed_step=self.step, interrupted=True,
                                      failure="not finished: the run was interrupted while "
                                              "setting up")
                self.flows.append(self._flow(index, server, deadline))
        except ProbeFailure as failure:
            self.event(failure, self.links[-1].local if self.links else None)
            return self.check(failed_step=self.step, failure=self._why(failure))
        except OSError as exc:
            broken = ProbeFailure(Cause.TLS if isinstance(exc, ssl.SSLError) else Cause.SOCKET,
                                  f"could not reach {self.spec.host}:{self.spec.port}: "
                                  f"{exc.strerror or exc}")
            self.event(broken)
            return self.check(failed_step=self.step, failure=broken.text)
        return self._phases()

    def _why(self, failure: ProbeFailure) -> str:
        """The failure of the set-up, saying which request of the data plane it was."""
        if failure.cause is not Cause.RESPONSE:
            return failure.text
        code = f"{failure.code} {failure.text}".strip()
        if self.step is RelayStep.ALLOCATE:
            made = len(self.relays)
            need = self.options.flows * (2 if self.options.topology == "relay-relay" else 1)
            return (f"allocation {made + 1} of the {need} the data plane needs was refused "
                    f"with {code}" + (" (relay-relay takes two per flow; relay-peer one)"
                                      if self.options.topology == "relay-relay" else ""))
        return f"{failure.problem or 'a request'} was refused with {code}"

    def _link(self, server: Address, deadline: float) -> Link:
        link = open_link(server, self.spec.transport.value, deadline - time.monotonic(),
                         self.options.tls, self.spec.host)
        self.links.append(link)
        return link

    def _allocate(self, server: Address, deadline: float) -> Relay:
        self.step = RelayStep.ALLOCATE
        for attempt in range(2):
            link = self._link(server, deadline)
            try:
                relay = allocate(link, self.spec.transport.value, self.options.credentials,
                                 deadline, self.pending, self.stop)
            except ProbeFailure as failure:
                # The allocation check (or the WebRTC check) just before released its
                # allocations, but coturn frees their quota on a 1 s timer (LAB.md): a 486
                # now may be those. Once more, after it.
                if failure.code != 486 or attempt or self.stop.wait(QUOTA_TIMER):
                    raise
                log.debug("486 right after the allocation check: again in %.1f s",
                          QUOTA_TIMER)
                continue
            self.relays.append(relay)
            return relay
        raise AssertionError("unreachable")

    def _flow(self, index: int, server: Address, deadline: float) -> Flow:
        sender = self._allocate(server, deadline)
        if self.options.topology == "relay-relay":
            far = self._allocate(server, deadline)
            self.step = RelayStep.PERMISSION
            sender.bind(FIRST_CHANNEL, far.relayed, deadline)
            far.bind(FIRST_CHANNEL, sender.relayed, deadline)
            return Flow(index, sender.link, FIRST_CHANNEL, far.link)
        self.step = RelayStep.PERMISSION
        peer = open_peer_socket(sender.link.local[0])
        self.peers.append(peer)
        for ip in dict.fromkeys([*([sender.mapped[0]] if sender.mapped else []),
                                 peer.local[0]]):
            sender.permit(ip, deadline)
        seen = _introduce(peer, sender, deadline)
        sender.bind(FIRST_CHANNEL, seen, deadline)
        return Flow(index, sender.link, FIRST_CHANNEL, peer)

    def _phases(self) -> RelayCheck:
        options = self.options
        upkeep = Upkeep(self.relays, time.monotonic(), options.permission_every,
                        options.channel_every)
        self.step = RelayStep.ECHO
        payload = max(MIN_PAYLOAD, options.payload_bytes)
        wall = cpu = 0.0
        steady = run_phase(self.flows, upkeep, 1, options.rate_pps * options.flows,
                           options.duration, payload, self.stop)
        wall, cpu = wall + steady.wall_seconds, cpu + steady.cpu_seconds
        steps: list[SweepStep] = []
        broken = steady.broken
        if options.sweep and not steady.interrupted and broken is None:
            self.step = RelayStep.SWEEP
            phase = 2
            budget_end = time.monotonic() + SWEEP_BUDGET
            for size in options.sweep_sizes:
                series: list[SweepStep] = []
                while not self.stop.is_set() and time.monotonic() < budget_end:
                    rate = next_rate(series, options.sweep_start, options.sweep_factor,
                                     options.sweep_limit, options.sweep_precision)
                    if rate is None:
                        break
                    step = None
                    # The first lossy step of a series is measured once more and the better
                    # kept: a passing burst of load on this machine is not the server's knee.
                    first_loss = not any(is_past_knee(s) for s in series)
                    for _ in range(2 if first_loss else 1):
                        done = run_phase(self.flows, upkeep, phase, rate,
                                         options.sweep_step, max(MIN_PAYLOAD, size), self.stop)
                        phase += 1
                        wall, cpu = wall + done.wall_seconds, cpu + done.cpu_seconds
                        if done.interrupted or done.broken is not None:
                            break
                        busy = done.cpu_seconds >= CPU_BOUND * done.wall_seconds
                        again = sweep_step(size, rate, sum(done.sent), merge(
                            zip(done.sent, done.tallies, strict=True)), done.send_seconds,
                            client_limited=busy or self.spec.transport.value == "udp")
                        if step is None or again.delivered_pps > step.delivered_pps:
                            step = again
                        if not is_past_knee(step):
                            break
                    if done.interrupted or done.broken is not None or step is None:
                        broken = done.broken
                        break
                    if step.past_knee and self.stop.wait(SETTLE):
                        break
                    log.debug("sweep %d B at %.0f pps: sent %.0f, delivered %.0f pps, "
                              "loss %.2f%%, client CPU %.2f", size, rate, step.sent_pps,
                              step.delivered_pps, step.loss * 100,
                              done.cpu_seconds / max(1e-9, done.wall_seconds))
                    series.append(step)
                steps.extend(series)
                if broken is not None or self.stop.is_set():
                    break
        for failure in upkeep.failures:
            self.event(failure)
        return self._result(steady, steps, cpu / wall if wall > 0 else 0.0, broken)

    def _result(self, steady: Phase, steps: list[SweepStep], client_cpu: float,
                broken: str | None) -> RelayCheck:
        options = self.options
        tally = merge(zip(steady.sent, steady.tallies, strict=True))
        # The knee at the largest payload first: bandwidth limits bite there first, and
        # video sends large packets.
        knee_pps, knee_size = None, None
        for size in sorted(options.sweep_sizes, reverse=True):
            found = knee([s for s in steps if s.payload_bytes == size])
            if found is not None and knee_pps is None:
                knee_pps, knee_size = found, size
        client_bound = client_cpu >= CPU_BOUND or any(is_client_bound(s) for s in steps)
        rtt_us = percentiles_us(tally.rtts_ns)
        plane = PlaneMeasurement(
            topology=options.topology, crossings=4 if options.topology == "relay-relay" else 2,
            flows=options.flows, rate_pps=options.rate_pps, payload_bytes=options.payload_bytes,
            sent=tally.sent, received=tally.received, reordered=tally.reordered,
            duplicates=tally.duplicates, rtt_us=rtt_us,
            jitter_us=None if tally.jitter_ns is None else round(tally.jitter_ns / 1000, 1),
            client_cpu=round(client_cpu, 3), client_bound=client_bound,
            clock_resolution_us=time.get_clock_info("perf_counter").resolution * 1e6,
            sweep=tuple(steps), knee_pps=knee_pps, knee_payload_bytes=knee_size)
        clean = [s.mbit_s for s in steps if s.loss <= 0.01]
        throughput = max(clean) * 1e6 if clean else None
        first = self.flows[0]
        far = (self.relays[1].relayed if options.topology == "relay-relay"
               else first.far.local)
        pair = RelayPair(local=self.relays[0].relayed[0], local_port=self.relays[0].relayed[1],
                         remote=far[0], remote_port=far[1], relay_protocol=self.spec.transport)
        fields: dict[str, object] = dict(
            pair=pair, sent=tally.sent, received=tally.received,
            rtt=None if not tally.rtts_ns
            else Spread.of([round(r / 1e6, 3) for r in tally.rtts_ns]),
            throughput_up_bps=throughput, throughput_down_bps=throughput, plane=plane,
            channel_data_sent=tally.sent, channel_data_received=tally.received)
        if steady.interrupted or self.stop.is_set():
            fields.update(failed_step=self.step, interrupted=True,
                          failure=f"not finished: the run was interrupted during the "
                                  f"{self.step.value} step (the measurements until then are "
                                  "kept)")
        elif broken is not None:
            self.event(ProbeFailure(Cause.CLOSED, broken, problem="server-lost"))
            fields.update(failed_step=self.step,
                          failure=f"the TURN server went away during the {self.step.value} "
                                  f"step: {broken}")
        elif tally.sent and not tally.received:
            fields.update(failed_step=RelayStep.ECHO,
                          failure=f"the channels were bound but all {tally.sent} packets "
                                  "were lost")
        return self.check(**fields)

    def release(self) -> None:
        """Release every allocation made (or perhaps made), then close every socket."""
        try:
            self.released = release_all(self.relays + self.pending, RELEASE_BUDGET)
        finally:
            for link in self.links:
                link.close()
            for peer in self.peers:
                peer.close()


def _resolve(spec: ServerSpec) -> Address:
    try:
        infos = socket.getaddrinfo(spec.host, spec.port, proto=socket.IPPROTO_UDP)
    except socket.gaierror as exc:
        raise ProbeFailure(Cause.DNS, f"cannot resolve {spec.host}: {exc.strerror or exc}"
                           ) from exc
    address = infos[0][4]
    return (str(address[0]), int(address[1]))


def _introduce(peer: PeerSocket, relay: Relay, deadline: float) -> Address:
    """The peer socket's address as the relay sees it (through a NAT, not its own): the
    peer sends to the relayed address, and the server hands the datagram to us in a Data
    indication carrying XOR-PEER-ADDRESS (RFC 8656 section 10.4)."""
    until = min(deadline, time.monotonic() + 1.0)
    channel = relay.channel
    while time.monotonic() < until:
        try:
            peer.sock.sendto(b"iceprobe", relay.relayed)
        except OSError as exc:
            raise ProbeFailure(Cause.SOCKET, f"the peer socket cannot send to the relay "
                                             f"{describe(relay.relayed)}: {exc}") from exc
        channel.pump(min(0.1, max(0.0, until - time.monotonic())))
        for message in channel.indications:
            seen = data_indication_peer(message)
            if seen is not None:
                channel.indications.clear()
                return seen
    raise ProbeFailure(Cause.TIMEOUT, f"the relay {describe(relay.relayed)} did not pass on "
                                      "a datagram from this machine's peer socket within 1 s: "
                                      "inbound UDP to this machine is filtered, or the server "
                                      "refuses this peer (use the relay-relay topology)",
                       problem="CreatePermission")
