"""From a fleet target to what `iceprobe.pipeline.probe` takes: the servers to probe, the
credentials and the probe settings. `check` and the exporter both probe through this, so
that a module means the same in both.

Pure: the time is passed in (REST credentials are minted for it), nothing is read.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import Scheme, Transport
from ..model import Credentials, ServerSpec
from ..pipeline import ProbeSettings
from .model import Auth, Check, Module, Target


class PlanError(ValueError):
    """A module that cannot check a server (allocate on a stun: URL, …); the fleet loader
    reports it with the file and line, the exporter as a bad request."""


def with_transport(server: ServerSpec, transport: str | None) -> ServerSpec:
    """`server` over a module's transport: udp and tcp keep the scheme's security (turn:
    over TCP is `?transport=tcp`), tls makes turn: turns: and stun: stuns:, on the same
    host and port."""
    if transport is None or transport == server.transport.value:
        return server
    wanted = Transport(transport)
    host = f"[{server.host}]" if ":" in server.host else server.host
    if server.scheme in (Scheme.STUN, Scheme.STUNS):
        if wanted is Transport.TCP:
            raise PlanError(f"{server.url}: STUN over plain TCP is not supported (udp or tls)")
        scheme = Scheme.STUNS if wanted is Transport.TLS else Scheme.STUN
        if wanted is Transport.UDP and server.scheme is Scheme.STUNS:
            raise PlanError(f"{server.url}: a stuns: URL is TLS; transport udp needs stun:")
        return ServerSpec(f"{scheme.value}:{host}:{server.port}", scheme, server.host,
                          server.port, wanted)
    if wanted is Transport.TLS:
        return ServerSpec(f"turns:{host}:{server.port}?transport=tcp", Scheme.TURNS,
                          server.host, server.port, Transport.TLS)
    if server.scheme is Scheme.TURNS:
        raise PlanError(f"{server.url}: a turns: URL is TLS; transport {wanted.value} needs "
                        "turn:")
    return ServerSpec(f"turn:{host}:{server.port}?transport={wanted.value}", Scheme.TURN,
                      server.host, server.port, wanted)


def binding_server(server: ServerSpec) -> ServerSpec:
    """The STUN server a TURN server over UDP also is (browsers use it as one)."""
    host = f"[{server.host}]" if ":" in server.host else server.host
    return ServerSpec(f"stun:{host}:{server.port}", Scheme.STUN, server.host, server.port,
                      Transport.UDP)


def needs_credentials(server: ServerSpec, module: Module) -> bool:
    return server.is_turn and (Check.ALLOCATE in module.checks or Check.RELAY in module.checks)


def specs_for(server: ServerSpec, module: Module) -> tuple[ServerSpec, ...]:
    """The servers one probe of `server` with `module` gathers from (the binding of a TURN
    server over UDP is gathered as its implied STUN server: see `settings_for`)."""
    checks = set(module.checks)
    if Check.RELAY in checks and Check.ALLOCATE not in checks:
        raise PlanError("relay builds on allocate: checks must name allocate too")
    if not server.is_turn:
        if checks != {Check.BINDING}:
            raise PlanError(f"{server.url} is a STUN server: its only check is binding")
        return (server,)
    if Check.BINDING in checks and server.transport is not Transport.UDP:
        raise PlanError(f"{server.url}: binding goes over UDP; a TURN server over "
                        f"{server.transport.value.upper()} is checked with allocate (and "
                        "relay)")
    if Check.ALLOCATE not in checks:
        return (binding_server(server),)
    return (server,)


def settings_for(server: ServerSpec, module: Module) -> ProbeSettings:
    checks = set(module.checks)
    return ProbeSettings(
        timeout=module.timeout, require=module.require, ca_file=module.ca_file,
        insecure=module.insecure, relay_family=module.relay_family,
        relay_check=Check.RELAY in checks,
        turn_as_stun=server.is_turn and Check.ALLOCATE in checks and Check.BINDING in checks)


def credentials_for(auth: Auth | None, now: float) -> Credentials | None:
    """Static credentials as they are; REST ones minted for `now` (see
    iceprobe.credentials)."""
    if auth is None:
        return None
    if auth.secret is not None:
        from ..credentials import rest_credentials

        return rest_credentials(auth.secret, auth.user, auth.ttl, auth.separator, now)
    if auth.username is None or auth.password is None:
        return None
    return Credentials(auth.username, auth.password)


@dataclass(frozen=True)
class Plan:
    """One probe: what `pipeline.probe` and `pipeline.judge` take."""

    specs: tuple[ServerSpec, ...]
    credentials: Credentials | None
    settings: ProbeSettings


def plan_for(server: ServerSpec, module: Module, auth: Auth | None, now: float) -> Plan:
    """The probe of `server` (already over the module's transport) with `module` and
    `auth`; PlanError when the module cannot check it or credentials are missing."""
    specs = specs_for(server, module)
    credentials = credentials_for(auth, now) if needs_credentials(server, module) else None
    if needs_credentials(server, module) and credentials is None:
        raise PlanError(f"{server.url}: allocate needs TURN credentials: name an auth")
    return Plan(specs, credentials, settings_for(server, module))


def target_plan(target: Target, modules: dict[str, Module], auths: dict[str, Auth],
                now: float) -> Plan:
    """The probe of a fleet target (its server, module and auth as the file gives them)."""
    auth = auths[target.auth] if target.auth is not None else None
    return plan_for(target.server, modules[target.module], auth, now)


__all__ = ["Plan", "PlanError", "binding_server", "credentials_for", "needs_credentials",
           "plan_for", "settings_for", "specs_for", "target_plan", "with_transport"]
