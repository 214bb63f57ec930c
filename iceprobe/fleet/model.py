"""The parsed fleet file: what `iceprobe.fleet.config.load` returns, what `check` and the
exporter probe with (through iceprobe.pipeline). Pure data; secrets stay out of every repr."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ..constants import Requirement
from ..model import ServerSpec


class Check(str, Enum):
    """What a module proves about a target, in the order they build on each other."""

    #: A STUN Binding answered (a srflx candidate).
    BINDING = "binding"
    #: A TURN Allocate succeeded (a relay candidate).
    ALLOCATE = "allocate"
    #: Data went through the relay (the check of `iceprobe relay`).
    RELAY = "relay"


@dataclass(frozen=True)
class Module:
    """`[modules.NAME]`: how to probe."""

    name: str
    checks: tuple[Check, ...] = (Check.BINDING, Check.ALLOCATE)
    #: Forces the target URL's transport ("udp", "tcp", "tls"), or None to keep the URL's.
    transport: str | None = None
    #: Seconds: the whole probe's budget (gather's --timeout).
    timeout: float = 5.0
    #: "ipv4", "ipv6" or "both" (gather's --relay-family).
    relay_family: str = "ipv4"
    require: Requirement = Requirement.EACH
    #: Extra trust anchors for stuns:/turns: (gather's --ca-file), resolved against the
    #: fleet file's directory.
    ca_file: str | None = None
    #: Do not verify TLS certificates (gather's --insecure).
    insecure: bool = False


@dataclass(frozen=True)
class Auth:
    """`[auth.NAME]`: static credentials, or a TURN REST secret to mint them from. The
    secret values are resolved at load time (from the file, `*_env` or `*_file`)."""

    name: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    user: str = "iceprobe"
    ttl: int = 3600
    separator: str = ":"
    #: The password was written in the fleet file itself (check warns about it).
    literal: bool = False


@dataclass(frozen=True)
class Target:
    """`[[targets]]`: where to probe. `server` is the URL over the module's transport
    (iceprobe.fleet.plan.with_transport); `url` is the URL as the file gives it."""

    name: str
    server: ServerSpec
    module: str
    auth: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    url: str = ""


@dataclass(frozen=True)
class Fleet:
    """A whole fleet file: its modules and auths by name, its targets in file order."""

    path: str
    modules: dict[str, Module]
    auths: dict[str, Auth]
    targets: tuple[Target, ...]
    #: Warnings found while loading (a literal password, …): one line each, no secret.
    warnings: tuple[str, ...] = ()

    def target(self, name: str) -> Target | None:
        """The target called `name`, or None."""
        return next((t for t in self.targets if t.name == name), None)


class FleetError(ValueError):
    """A fleet file that cannot be used: `str()` is the one line for stderr, naming the file,
    the line (when known) and the key."""

    def __init__(self, path: str, line: int | None, key: str, problem: str) -> None:
        self.path, self.line, self.key, self.problem = path, line, key, problem
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")
