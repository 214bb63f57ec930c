"""From a /probe request to what iceprobe.pipeline probes: the target (named in the fleet
file, or a bare URL with an explicit `auth=`), its module and credentials, and the probe's
time budget. Pure code: the caller passes the clock and the headers' values.

Credentials never come from the query string: a request that names one is refused."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..fleet import plan as fleet_plan
from ..fleet.model import Auth, Fleet, Module, Target
from ..model import Credentials, ServerSpec
from ..pipeline import ProbeSettings
from ..urls import UrlError, parse_server_url

#: The query parameters /probe knows.
PARAMETERS = frozenset({"target", "module", "auth", "debug"})
#: Parameters that would put a secret in a URL (and so in logs and Prometheus's config).
_SECRET_PARAMETERS = frozenset({"username", "password", "credential", "secret", "user",
                                "pass", "turn_secret", "key", "token"})
#: The least time a probe is given, whatever the scrape timeout says.
MIN_BUDGET = 0.5
#: What the gathering leaves of the probe's budget: gather ends its probes by its own
#: --timeout, then takes up to about 1 s to release TURN allocations (`gather --help`); its
#: setup and the judging take the rest (measured: a silent STUN server's gathering of 2.4 s
#: returned after 2.50-2.58 s). Gathering to its own end records what did not answer
#: (timeouts, 701) as error events: the why of the failure, which an interruption at the
#: budget would lose.
RELEASE_ALLOWANCE = 1.0
JUDGE_ALLOWANCE = 0.5


class PlanError(ValueError):
    """A /probe request that cannot be probed (HTTP 400): `str()` is the one line."""


@dataclass(frozen=True)
class Plan:
    """One probe to run."""

    #: The target's name in the fleet file, or the URL itself.
    target: str
    module: Module
    server: ServerSpec
    auth: Auth | None
    labels: tuple[tuple[str, str], ...]
    #: What iceprobe.pipeline probes (iceprobe.fleet.plan, as `check` does), with the
    #: credentials minted for this probe and the budget of this scrape.
    specs: tuple[ServerSpec, ...]
    credentials: Credentials | None
    settings: ProbeSettings
    #: Seconds the whole probe may take (settings.timeout, the gathering's, is less): at
    #: this deadline whatever still runs (a relay check) is stopped.
    budget: float

    @property
    def key(self) -> str:
        """What the per-target concurrency limit counts: the same server with the same
        credentials, however it was named."""
        return f"{self.server.url} {self.auth.name if self.auth else '-'}"


def plan(fleet: Fleet, query: Mapping[str, str], scrape_timeout: str | None,
         timeout_offset: float, now: float) -> Plan:
    """The probe a request asks for, or PlanError saying why there is none."""
    secret = sorted(k for k in query if k.lower() in _SECRET_PARAMETERS)
    if secret:
        raise PlanError(f"credentials never come in the query string (got {secret[0]!r}): "
                        "name an auth of the fleet file with auth=NAME")
    unknown = sorted(set(query) - PARAMETERS)
    if unknown:
        raise PlanError(f"unknown parameter {unknown[0]!r} (known: "
                        f"{', '.join(sorted(PARAMETERS))})")
    name = query.get("target", "").strip()
    if not name:
        raise PlanError("missing target= (a target's name in the fleet file, or a URL "
                        "with module= and auth=)")
    named = fleet.target(name)
    overridden = bool(query.get("module")) and named is not None \
        and query["module"] != named.module
    if named is not None:
        if "auth" in query:
            raise PlanError(f"target {name!r} brings its own auth: auth= is only for a bare "
                            "URL")
        target = named
        if overridden:
            target = dataclasses.replace(target, module=query["module"])
    else:
        target = _bare_url(fleet, name, query)
    module = fleet.modules.get(target.module)
    if module is None:
        raise PlanError(f"unknown module {target.module!r} (the fleet file has: "
                        f"{', '.join(sorted(fleet.modules)) or 'none'})")
    auth = fleet.auths.get(target.auth) if target.auth is not None else None
    if target.auth is not None and auth is None:
        raise PlanError(f"unknown auth {target.auth!r} (the fleet file has: "
                        f"{', '.join(sorted(fleet.auths)) or 'none'})")
    budget = probe_budget(module, scrape_timeout, timeout_offset)
    try:
        # A target of the file is already over its module's transport; another module's
        # (module=) or a bare URL's is applied here.
        server = target.server
        if named is None or overridden:
            server = fleet_plan.with_transport(
                parse_server_url(target.url) if target.url else target.server,
                module.transport)
        probe = fleet_plan.plan_for(server, module, auth, now)
    except (fleet_plan.PlanError, UrlError) as exc:
        raise PlanError(f"target {target.name!r}, module {module.name!r}: {exc}") from None
    settings = dataclasses.replace(probe.settings,
                                   timeout=gathering_budget(budget, probe.specs))
    return Plan(target.name, module, server, auth, target.labels, probe.specs,
                probe.credentials, settings, budget)


def within(planned: Plan, budget: float) -> Plan:
    """The same probe in less time: what a scrape has left of its budget after waiting for
    a slot (at least MIN_BUDGET)."""
    budget = round(max(MIN_BUDGET, budget), 3)
    settings = dataclasses.replace(planned.settings,
                                   timeout=gathering_budget(budget, planned.specs))
    return dataclasses.replace(planned, budget=budget, settings=settings)


def gathering_budget(budget: float, specs: Sequence[ServerSpec]) -> float:
    """The gathering's --timeout within a probe's budget: room left for releasing TURN
    allocations and judging, so that the gathering ends by itself."""
    return round(max(MIN_BUDGET / 2, budget - _allowance(specs)), 3)


def least_to_probe(planned: Plan) -> float:
    """The least budget worth probing with: MIN_BUDGET of gathering, and its room."""
    return MIN_BUDGET + _allowance(planned.specs)


def _allowance(specs: Sequence[ServerSpec]) -> float:
    return JUDGE_ALLOWANCE + (RELEASE_ALLOWANCE if any(s.is_turn for s in specs) else 0)


def _bare_url(fleet: Fleet, url: str, query: Mapping[str, str]) -> Target:
    try:
        server = parse_server_url(url)
    except UrlError as exc:
        names = ", ".join(t.name for t in fleet.targets[:5]) or "none"
        raise PlanError(f"unknown target {url!r}: not a target of the fleet file (such as "
                        f"{names}) nor a server URL ({exc})") from None
    module = query.get("module", "")
    if not module:
        raise PlanError("a bare URL needs module=NAME")
    auth = query.get("auth") or None
    if server.is_turn and auth is None:
        raise PlanError("a bare TURN URL needs auth=NAME (an auth of the fleet file): "
                        "credentials never come in the query string")
    return Target(url, server, module, auth, url=url)


def probe_budget(module: Module, scrape_timeout: str | None, offset: float) -> float:
    """Seconds the probe may take: Prometheus's scrape timeout minus the offset, or the
    module's timeout where that is smaller (or when Prometheus sent none)."""
    if scrape_timeout is None:
        return module.timeout
    try:
        scrape = float(scrape_timeout)
    except ValueError:
        raise PlanError(f"X-Prometheus-Scrape-Timeout-Seconds is not a number: "
                        f"{scrape_timeout[:40]!r}") from None
    if not scrape > 0:  # NaN too
        raise PlanError("X-Prometheus-Scrape-Timeout-Seconds must be positive")
    return max(MIN_BUDGET, min(module.timeout, scrape - offset))


def describe(plan: Plan) -> str:
    """The module and auth a probe used, for ?debug=true: secrets as <secret>."""
    module = plan.module
    lines = [f"target: {plan.target}", f"server: {plan.server.url}",
             f"module: {module.name}",
             f"  checks: {', '.join(c.value for c in module.checks)}",
             f"  transport: {module.transport or '(the URL’s)'}",
             f"  timeout: {module.timeout:g}s (this probe: {plan.budget:g}s, gathering "
             f"{plan.settings.timeout:g}s)",
             f"  relay_family: {module.relay_family}",
             f"  require: {module.require.value}",
             f"  ca_file: {module.ca_file or 'none'}",
             f"  insecure: {str(module.insecure).lower()}"]
    auth = plan.auth
    if auth is None:
        lines.append("auth: none")
    elif auth.secret is not None:
        lines += [f"auth: {auth.name} (TURN REST)", "  secret: <secret>",
                  f"  user: {auth.user}", f"  ttl: {auth.ttl}",
                  f"  separator: {auth.separator!r}"]
    else:
        lines += [f"auth: {auth.name}", f"  username: {auth.username}",
                  "  password: <secret>"]
    lines += [f"labels: {', '.join(f'{k}={v}' for k, v in plan.labels) or 'none'}"]
    return "\n".join(lines) + "\n"
