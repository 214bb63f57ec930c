"""Reading a fleet file (TOML) into an `iceprobe.fleet.model.Fleet`.

Every problem is a `FleetError` naming the file, the line and the key; nothing in a message
ever shows a password or secret (their values are not even type-checked aloud). Files named
in the fleet file (password_file, secret_file, ca_file) are relative to its directory.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

from ..constants import Requirement
from ..urls import UrlError, parse_server_url
from .lines import KeyLines, Path
from .model import Auth, Check, Fleet, FleetError, Module, Target
from .plan import PlanError, needs_credentials, specs_for, with_transport

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover (3.10)
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

#: Every key the file accepts, by section (docs/fleet.md has a row for each: tested).
TOP_KEYS = ("modules", "auth", "targets")
MODULE_KEYS = ("checks", "transport", "timeout", "relay_family", "require", "ca_file",
               "insecure")
AUTH_KEYS = ("username", "password", "password_env", "password_file", "secret", "secret_env",
             "secret_file", "user", "ttl", "separator")
TARGET_KEYS = ("name", "url", "module", "auth", "labels")
KEYS = {"": TOP_KEYS, "modules": MODULE_KEYS, "auth": AUTH_KEYS, "targets": TARGET_KEYS}

TRANSPORTS = ("udp", "tcp", "tls")
RELAY_FAMILIES = ("ipv4", "ipv6", "both")
#: gather's --timeout range.
MAX_TIMEOUT = 300.0
MAX_TTL = 10 * 365 * 86400
_SECRET_KEYS = {"password", "secret"}
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@-]*$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_AT = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)\s*$")


def load(path: str, environ: Mapping[str, str]) -> Fleet:
    """The fleet file at `path`, with `*_env` keys read from `environ`."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise FleetError(path, None, "", f"cannot read the fleet file: "
                                         f"{exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise FleetError(path, line, "", "not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(path, text, str(exc)) from None
    return _Loader(path, text, environ).fleet(data)


def _syntax_error(path: str, text: str, message: str) -> FleetError:
    """tomllib says where in its message: `… (at line 3, column 10)`."""
    found = _AT.search(message)
    problem = _AT.sub("", message) if found else message
    if found is None:
        return FleetError(path, None, "", f"TOML syntax error: {problem}")
    if found.group(1) is None:
        line = max(1, len(text.splitlines()))
        return FleetError(path, line, "", f"TOML syntax error: {problem} (at the end)")
    return FleetError(path, int(found.group(1)), "",
                      f"TOML syntax error: {problem} (column {found.group(2)})")


def parse_duration(value: object) -> float | None:
    """Seconds from a number or a text with a unit ("3s", "500ms", "1.5m", "1h", "2d");
    None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    return None


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


def _suggestion(name: str, known: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _did_you_mean(name: str, known: list[str] | tuple[str, ...], what: str) -> str:
    """A suggestion for a mistyped name: the closest known one, else the list of them."""
    return (_suggestion(name, known) or (f" ({what}: {', '.join(known)})" if known
                                         else f" (the file defines no {what})"))


class _Loader:
    def __init__(self, path: str, text: str, environ: Mapping[str, str]) -> None:
        self.path = path
        self.lines = KeyLines(text)
        self.environ = environ
        self.base = os.path.dirname(os.path.abspath(path))
        self.warnings: list[str] = []

    # --- reporting -------------------------------------------------------------------

    def error(self, at: Path, problem: str) -> FleetError:
        return FleetError(self.path, self.lines.line_of(at), _dotted(at), problem)

    def warn(self, at: Path, problem: str) -> None:
        self.warnings.append(str(self.error(at, problem)))

    # --- typed values ------------------------------------------------------------------

    def table(self, value: object, at: Path) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(at, f"expected a table, got {_type_name(value)}")
        return value

    def keys(self, table: dict[str, Any], at: Path, allowed: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                raise self.error((*at, key), "unknown key" + _did_you_mean(key, allowed, "keys"))

    def string(self, table: dict[str, Any], key: str, at: Path,
               choices: tuple[str, ...] = ()) -> str | None:
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, str):
            raise self.error((*at, key), f"expected a string, got {_type_name(value)}")
        if key in _SECRET_KEYS:
            return value
        if choices and value not in choices:
            raise self.error((*at, key), f"{value!r} is not one of {', '.join(choices)}"
                             + _suggestion(value, choices))
        return value

    def required(self, table: dict[str, Any], key: str, at: Path) -> str:
        value = self.string(table, key, at)
        if value is None:
            raise self.error(at, f"{key} is missing")
        if not value.strip():
            raise self.error((*at, key), "is empty")
        return value

    def duration(self, table: dict[str, Any], key: str, at: Path, maximum: float) -> float | None:
        if key not in table:
            return None
        seconds = parse_duration(table[key])
        if seconds is None:
            raise self.error((*at, key), "expected a duration: seconds as a number, or a "
                                         "string like \"3s\", \"500ms\", \"2m\"")
        if not 0 < seconds <= maximum:
            raise self.error((*at, key), f"must be more than 0 and at most {maximum:g} s")
        return seconds

    def file_path(self, value: str) -> str:
        return value if os.path.isabs(value) else os.path.join(self.base, value)

    # --- sections ----------------------------------------------------------------------

    def fleet(self, data: dict[str, Any]) -> Fleet:
        self.keys(data, (), TOP_KEYS)
        modules = {name: self.module(name, value) for name, value
                   in self.table(data.get("modules", {}), ("modules",)).items()}
        auths = {name: self.auth(name, value) for name, value
                 in self.table(data.get("auth", {}), ("auth",)).items()}
        raw_targets = data.get("targets", [])
        if not isinstance(raw_targets, list):
            raise self.error(("targets",), "expected an array of tables ([[targets]]), got "
                                           f"{_type_name(raw_targets)}")
        targets: list[Target] = []
        first: dict[str, int | None] = {}
        for index, raw in enumerate(raw_targets):
            target = self.target(index, raw, modules, auths)
            if target.name in first:
                line = first[target.name]
                seen = f" (first at line {line})" if line is not None else ""
                raise self.error(("targets", index, "name"),
                                 f"duplicate target name {target.name!r}{seen}")
            first[target.name] = self.lines.line_of(("targets", index, "name"))
            targets.append(target)
        return Fleet(self.path, modules, auths, tuple(targets), tuple(self.warnings))

    def module(self, name: str, value: object) -> Module:
        at: Path = ("modules", name)
        table = self.table(value, at)
        self.keys(table, at, MODULE_KEYS)
        checks = Module(name).checks
        if "checks" in table:
            raw = table["checks"]
            if not isinstance(raw, list) or not raw:
                raise self.error((*at, "checks"), "expected a non-empty array of checks "
                                                  f"({', '.join(c.value for c in Check)})")
            found = []
            for item in raw:
                known = [c.value for c in Check]
                if not isinstance(item, str) or item not in known:
                    shown = repr(item) if isinstance(item, str) else _type_name(item)
                    raise self.error((*at, "checks"), f"unknown check {shown}"
                                     + _did_you_mean(str(item), known, "checks"))
                if Check(item) in found:
                    raise self.error((*at, "checks"), f"{item!r} is named twice")
                found.append(Check(item))
            checks = tuple(c for c in Check if c in found)  # in the order they build up
        transport = self.string(table, "transport", at, TRANSPORTS)
        timeout = self.duration(table, "timeout", at, MAX_TIMEOUT)
        relay_family = self.string(table, "relay_family", at, RELAY_FAMILIES)
        require = self.string(table, "require", at, tuple(r.value for r in Requirement))
        insecure = table.get("insecure", False)
        if not isinstance(insecure, bool):
            raise self.error((*at, "insecure"), f"expected true or false, got "
                                                f"{_type_name(insecure)}")
        ca_file = self.string(table, "ca_file", at)
        if ca_file is not None:
            ca_file = self.ca_file(ca_file, (*at, "ca_file"))
        if insecure and ca_file is not None:
            raise self.error((*at, "insecure"), "insecure does not go with ca_file")
        defaults = Module(name)
        module = Module(name, checks, transport,
                        timeout if timeout is not None else defaults.timeout,
                        relay_family or defaults.relay_family,
                        Requirement(require) if require else defaults.require,
                        ca_file, insecure)
        if Check.RELAY in module.checks and Check.ALLOCATE not in module.checks:
            raise self.error((*at, "checks"), "relay builds on allocate: name allocate too")
        return module

    def ca_file(self, value: str, at: Path) -> str:
        import ssl

        path = self.file_path(value)
        try:
            ssl.create_default_context().load_verify_locations(cafile=path)
        except ssl.SSLError:  # before OSError, of which it is a subclass
            raise self.error(at, f"{value!r} holds no PEM certificate") from None
        except OSError as exc:
            raise self.error(at, f"{value!r}: {exc.strerror or exc}") from None
        return path

    def auth(self, name: str, value: object) -> Auth:
        at: Path = ("auth", name)
        table = self.table(value, at)
        self.keys(table, at, AUTH_KEYS)
        for key in AUTH_KEYS:
            if key != "ttl":
                self.string(table, key, at)  # every other key is a string
        username = self.string(table, "username", at)
        password = self.secret(table, at, "password")
        secret = self.secret(table, at, "secret")
        rest_keys = [k for k in ("user", "ttl", "separator") if k in table]
        if secret is None:
            if rest_keys:
                raise self.error((*at, rest_keys[0]), f"{rest_keys[0]} goes with a REST "
                                 "secret (secret_env or secret_file)")
            if password is None and username is None:
                raise self.error(at, "no credentials: give username with password_env "
                                     "(or password_file), or secret_env (or secret_file)")
            if username is None:
                raise self.error(at, "username is missing (a password needs a username)")
            if not username.strip():
                raise self.error((*at, "username"), "is empty")
            if password is None:
                raise self.error(at, "the password is missing: give password_env, "
                                     "password_file or password")
            return Auth(name, username=username, password=password,
                        literal="password" in table)
        if password is not None or username is not None:
            key = "username" if username is not None else _given(table, "password")
            raise self.error((*at, key), "static credentials (username, password) or a REST "
                             "secret, not both: the secret makes the username (see user)")
        defaults = Auth(name)
        user = self.string(table, "user", at)
        separator = self.string(table, "separator", at)
        user = defaults.user if user is None else user
        separator = defaults.separator if separator is None else separator
        bare_expiry = user == "" and separator == ""
        if not bare_expiry and (not separator or not user or separator.isdigit()):
            key = "separator" if (not separator or separator.isdigit()) else "user"
            raise self.error((*at, key), "user and separator must be non-empty, and the "
                             "separator not a digit; or both \"\" for a username that is a "
                             "bare expiry (pion/turn's format)")
        ttl = defaults.ttl
        if "ttl" in table:
            seconds = self.duration(table, "ttl", at, MAX_TTL)
            assert seconds is not None
            if seconds < 1 or seconds != int(seconds):
                raise self.error((*at, "ttl"), "must be a whole number of seconds, at least 1")
            ttl = int(seconds)
        return Auth(name, secret=secret, user=user, ttl=ttl, separator=separator,
                    literal="secret" in table)

    def secret(self, table: dict[str, Any], at: Path, kind: str) -> str | None:
        """The password or REST secret, from the file, `<kind>_env` or `<kind>_file`
        (exactly one of them), never echoed."""
        given = [k for k in (kind, f"{kind}_env", f"{kind}_file") if k in table]
        if not given:
            return None
        if len(given) > 1:
            raise self.error((*at, given[1]), f"give the {kind} once: {', '.join(given)} "
                                              "are all set")
        key = given[0]
        value: str = table[key]
        if key == kind:
            if not value:
                raise self.error((*at, key), "is empty")
            self.warn((*at, key), f"a literal {kind} in the fleet file: prefer {kind}_env "
                                  f"or {kind}_file")
            return value
        if key.endswith("_env"):
            if not _ENV.match(value):
                raise self.error((*at, key), f"{value!r} is not an environment variable name")
            if value not in self.environ:
                raise self.error((*at, key), f"environment variable {value} is not set")
            if not self.environ[value]:
                raise self.error((*at, key), f"environment variable {value} is empty")
            return self.environ[value]
        if not value:
            raise self.error((*at, key), "is empty")
        try:
            with open(self.file_path(value), encoding="utf-8") as handle:
                content = handle.read().strip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
            raise self.error((*at, key), f"{value!r}: {reason}") from None
        if not content:
            raise self.error((*at, key), f"{value!r} is empty")
        return content

    def target(self, index: int, value: object, modules: dict[str, Module],
               auths: dict[str, Auth]) -> Target:
        at: Path = ("targets", index)
        table = self.table(value, at)
        self.keys(table, at, TARGET_KEYS)
        name = self.required(table, "name", at)
        if not _NAME.match(name):
            raise self.error((*at, "name"), f"{name!r}: a target name is letters, digits and "
                                            "_ . : @ - (not starting with a punctuation mark)")
        url = self.required(table, "url", at)
        try:
            server = parse_server_url(url)
        except UrlError as exc:
            # A URL with user information may hold a password: never echo it.
            problem = ("user information ('…@') is not allowed in the URL: credentials go in "
                       "[auth]") if "@" in url else str(exc)
            raise self.error((*at, "url"), f"bad URL: {problem}") from None
        module_name = self.required(table, "module", at)
        if module_name not in modules:
            raise self.error((*at, "module"), f"unknown module {module_name!r}"
                             + _did_you_mean(module_name, sorted(modules), "modules"))
        module = modules[module_name]
        auth_name = self.string(table, "auth", at)
        if auth_name is not None and auth_name not in auths:
            raise self.error((*at, "auth"), f"unknown auth {auth_name!r}"
                             + _did_you_mean(auth_name, sorted(auths), "auths"))
        try:
            server = with_transport(server, module.transport)
            specs_for(server, module)
        except PlanError as exc:
            raise self.error((*at, "module"), f"module {module_name!r}: {exc}") from None
        if auth_name is None and needs_credentials(server, module):
            raise self.error(at, f"auth is missing: module {module_name!r} checks allocate, "
                                 "which needs TURN credentials")
        return Target(name, server, module_name, auth_name, self.labels(table, at), url)

    def labels(self, table: dict[str, Any], at: Path) -> tuple[tuple[str, str], ...]:
        if "labels" not in table:
            return ()
        labels = self.table(table["labels"], (*at, "labels"))
        found = []
        for key, value in labels.items():
            if not _LABEL.match(key) or key.startswith("__"):
                raise self.error((*at, "labels", key), "a label name is letters, digits and "
                                 "_, not starting with a digit or __")
            if not isinstance(value, str):
                raise self.error((*at, "labels", key), f"expected a string, got "
                                                       f"{_type_name(value)}")
            found.append((key, value))
        return tuple(found)


def _given(table: dict[str, Any], kind: str) -> str:
    return next(k for k in (kind, f"{kind}_env", f"{kind}_file") if k in table)


def _dotted(at: Path) -> str:
    """`modules.turn_udp.timeout`, `targets[2].url` (1-based: the second [[targets]])."""
    text = ""
    for part in at:
        if isinstance(part, int):
            text += f"[{part + 1}]"
        else:
            shown = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'
            text += f".{shown}" if text else shown
    return text


__all__ = ["KEYS", "load", "parse_duration"]
