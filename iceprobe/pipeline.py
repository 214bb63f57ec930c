"""One probe of a set of servers, from URLs to a judged Report: gather (iceprobe.gather),
the optional relay check, then the rules (iceprobe.rules). `iceprobe gather` runs it under the
CLI's signal handling; `iceprobe check` and the exporter run it for each fleet target. It never
raises for what the network did: failures are in the report."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .constants import DEFAULT_CONCURRENCY, DEFAULT_SLOW_MS, Requirement

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Sequence

    from .model import Credentials, GatherReport, RelayCheck, ServerSpec
    from .render.report import Report


@dataclass(frozen=True)
class ProbeSettings:
    """How to probe: the options of `iceprobe gather` that are not servers or credentials."""

    timeout: float = 5.0
    require: Requirement = Requirement.EACH
    slow_ms: float = DEFAULT_SLOW_MS
    ca_file: str | None = None
    insecure: bool = False
    matrix: bool = False
    #: "ipv4", "ipv6" or "both".
    relay_family: str = "ipv4"
    relay_check: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    turn_as_stun: bool = True
    no_auth: bool = False


@dataclass(frozen=True)
class Probed:
    """What the network gave: the gathering and the relay checks (empty unless asked)."""

    gathered: GatherReport
    relays: tuple[RelayCheck, ...] = ()


async def probe(specs: Sequence[ServerSpec], credentials: Credentials | None,
                settings: ProbeSettings, stop: asyncio.Event) -> Probed:
    """Gather from `specs`, then (with `settings.relay_check` and credentials) check that
    data flows through each working TURN server. Setting `stop` ends it early."""
    from .gather import GatherOptions
    from .gather import gather as gather_candidates

    options = GatherOptions(timeout=settings.timeout, credentials=credentials,
                            ca_file=settings.ca_file, insecure=settings.insecure,
                            concurrency=settings.concurrency,
                            turn_as_stun=settings.turn_as_stun,
                            relay_families={"ipv4": (None,), "ipv6": (6,),
                                            "both": (None, 6)}[settings.relay_family])
    gathered = await gather_candidates(specs, options, stop)
    if not settings.relay_check or credentials is None or stop.is_set():
        return Probed(gathered)
    from .gather.datapath import RelayOptions, check_relays
    from .gather.options import tls_context

    return Probed(gathered, await check_relays(gathered, RelayOptions(
        credentials=credentials, tls=tls_context(options)), stop))


def judge(probed: Probed, credentials: Credentials | None, settings: ProbeSettings,
          ignore: Sequence[str] = (), stopped_by: int | None = None) -> Report:
    """The rules' verdicts on what `probe` found, as the Report every renderer takes."""
    from .credentials import ephemeral_expiry
    from .render.report import Report
    from .rules import Evidence, evaluate

    gathered, relays = probed.gathered, probed.relays
    ephemeral = ephemeral_expiry(credentials.username, time.time()) if credentials else None
    evidence = Evidence(gathered.host_candidates, gathered.results, settings.require,
                        turn_credentials=credentials is not None, slow_ms=settings.slow_ms,
                        ephemeral=ephemeral, insecure=settings.insecure, matrix=settings.matrix,
                        relay_family=settings.relay_family, relays=relays,
                        no_auth=settings.no_auth)
    return Report(gathered, tuple(evaluate(evidence, ignore)), settings.require,
                  matrix=settings.matrix, relays=relays, stopped_by=stopped_by)
