"""What a gathering run is asked to do: its options, and the TLS context they make."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from ..model import DEFAULT_CONCURRENCY, Credentials


@dataclass(frozen=True)
class GatherOptions:
    timeout: float = 5.0
    credentials: Credentials | None = None
    #: Extra trust anchors (PEM) on top of the system store, for stuns:/turns:.
    ca_file: str | None = None
    #: Skip certificate and hostname verification (the report says so).
    insecure: bool = False
    #: Relay address families to request: (None,) is the default IPv4 without the
    #: attribute, as browsers do; 6 asks for IPv6 with REQUESTED-ADDRESS-FAMILY.
    relay_families: tuple[int | None, ...] = (None,)
    #: At most this many probes (sockets) at once; the others wait for a slot, within the
    #: same budget.
    concurrency: int = DEFAULT_CONCURRENCY
    #: Probe each TURN server over UDP as a STUN server too, as browsers do: its srflx
    #: candidate (and its failures) come under `stun:host:port`, and the allocation's mapped
    #: address is not reported a second time. Off: the mapped address is the TURN server's
    #: srflx candidate.
    turn_as_stun: bool = True


def tls_context(options: GatherOptions) -> ssl.SSLContext:
    """The system trust store plus --ca-file, or no verification with --insecure."""
    context = ssl.create_default_context()
    if options.ca_file:
        context.load_verify_locations(cafile=options.ca_file)
    if options.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
