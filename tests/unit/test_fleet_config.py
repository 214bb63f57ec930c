"""The fleet file parser (issue 18 item 1): what a good file gives, and every way a file can
be wrong, each reported with the file, the line and the key, and never with a secret."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from iceprobe.constants import Requirement, Scheme, Transport
from iceprobe.fleet.config import KEYS, load, parse_duration
from iceprobe.fleet.lines import KeyLines
from iceprobe.fleet.model import Check, FleetError
from iceprobe.fleet.plan import PlanError, plan_for, specs_for, target_plan
from iceprobe.urls import parse_server_url

PASSWORD = "pw-Zq8xLm3v"
SECRET = "rest-Kd92hfQ1"
ENV = {"TURN_PASSWORD": PASSWORD, "TURN_SECRET": SECRET, "EMPTY": ""}

GOOD = """\
# the issue's example, and more
[modules.turn_udp]
checks = ["binding", "allocate"]
transport = "udp"
timeout = "3s"

[modules.turn_tls]
checks = ["allocate", "relay"]
transport = "tls"
timeout = 10
relay_family = "both"
require = "any"
insecure = true

[modules.stun]
checks = ["binding"]
timeout = "500ms"

[auth.prod]
username = "alice"
password_env = "TURN_PASSWORD"

[auth.rest]
secret_env = "TURN_SECRET"
user = "probe"
ttl = "1h"
separator = "-"

[[targets]]
name = "eu-1"
url = "turn:turn-eu-1.example.org:3478"
module = "turn_udp"
auth = "prod"
labels = { region = "eu", env = "prod" }

[[targets]]
name = "us-1"
url = "turn:turn-us-1.example.org"
module = "turn_tls"
auth = "rest"

[[targets]]
name = "stun-1"
url = "stun:stun.example.org"
module = "stun"
"""


def write(tmp_path: Path, text: str, name: str = "fleet.toml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def error_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> FleetError:
    path = write(tmp_path, text)
    with pytest.raises(FleetError) as caught:
        load(path, ENV if environ is None else environ)
    message = str(caught.value)
    assert message.startswith(path), message
    assert "\n" not in message
    for secret in (PASSWORD, SECRET, "literal-pw-123"):
        assert secret not in message
    return caught.value


# --- a good file ----------------------------------------------------------------------------

def test_the_issues_example_loads_into_modules_auths_and_targets(tmp_path: Path) -> None:
    fleet = load(write(tmp_path, GOOD), ENV)
    assert set(fleet.modules) == {"turn_udp", "turn_tls", "stun"}
    udp, tls, stun = fleet.modules["turn_udp"], fleet.modules["turn_tls"], fleet.modules["stun"]
    assert udp.checks == (Check.BINDING, Check.ALLOCATE) and udp.timeout == 3.0
    assert tls.checks == (Check.ALLOCATE, Check.RELAY) and tls.timeout == 10.0
    assert (tls.relay_family, tls.require, tls.insecure) == ("both", Requirement.ANY, True)
    assert stun.timeout == 0.5
    assert fleet.auths["prod"].password == PASSWORD and fleet.auths["prod"].username == "alice"
    rest = fleet.auths["rest"]
    assert (rest.secret, rest.user, rest.ttl, rest.separator) == (SECRET, "probe", 3600, "-")
    assert [t.name for t in fleet.targets] == ["eu-1", "us-1", "stun-1"]
    eu = fleet.targets[0]
    assert eu.labels == (("region", "eu"), ("env", "prod"))
    assert eu.server.url == "turn:turn-eu-1.example.org:3478"  # already UDP: unchanged
    us = fleet.target("us-1")
    assert us is not None and us.url == "turn:turn-us-1.example.org"
    assert (us.server.scheme, us.server.transport, us.server.port) == (
        Scheme.TURNS, Transport.TLS, 3478)
    assert fleet.warnings == ()


def test_no_secret_in_any_repr(tmp_path: Path) -> None:
    fleet = load(write(tmp_path, GOOD), ENV)
    shown = repr(fleet)
    assert PASSWORD not in shown and SECRET not in shown


def test_files_are_read_relative_to_the_fleet_file(tmp_path: Path) -> None:
    (tmp_path / "pw.txt").write_text(PASSWORD + "\n")
    (tmp_path / "secret.txt").write_text(SECRET)
    fleet = load(write(tmp_path, """\
        [auth.a]
        username = "alice"
        password_file = "pw.txt"
        [auth.b]
        secret_file = "secret.txt"
        """), {})
    assert fleet.auths["a"].password == PASSWORD  # line ending stripped
    assert fleet.auths["b"].secret == SECRET


def test_a_literal_password_loads_with_a_warning_that_does_not_show_it(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        [auth.a]
        username = "alice"
        password = "literal-pw-123"
        """)
    fleet = load(path, {})
    assert fleet.auths["a"].literal and fleet.auths["a"].password == "literal-pw-123"
    [warning] = fleet.warnings
    assert warning.startswith(f"{path}:3: auth.a.password: ")
    assert "literal-pw-123" not in warning


def test_a_literal_rest_secret_warns_too(tmp_path: Path) -> None:
    fleet = load(write(tmp_path, '[auth.a]\nsecret = "literal-pw-123"\n'), {})
    assert fleet.auths["a"].literal
    assert "auth.a.secret" in fleet.warnings[0] and "literal-pw-123" not in fleet.warnings[0]


@pytest.mark.parametrize("text, seconds", [
    ("3s", 3.0), ("500ms", 0.5), ("1.5s", 1.5), ("2m", 120.0), ("1h", 3600.0), ("1d", 86400.0),
    (3, 3.0), (2.5, 2.5), (" 3s ", 3.0),
    ("3", None), ("3 sec", None), ("s", None), ("-1s", None), (True, None), ([], None),
    (float("nan"), None), (float("inf"), None),
])
def test_durations(text: object, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


# --- every error path -----------------------------------------------------------------------

def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.toml")
    with pytest.raises(FleetError, match="cannot read the fleet file: No such file"):
        load(path, {})


def test_a_directory_is_not_a_fleet_file(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="cannot read the fleet file"):
        load(str(tmp_path), {})


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_bytes(b'[modules.a]\n\n# caf\xe9\n')
    with pytest.raises(FleetError) as caught:
        load(str(path), {})
    assert caught.value.line == 3 and "UTF-8" in str(caught.value)


@pytest.mark.parametrize("text, line", [
    ('[modules.a]\ntimeout = "3s\n', 2),  # unterminated string
    ('[modules.a]\ntimeout = 3\ntimeout = 4\n', 3),  # a key twice
    ('[modules.a]\n\n[modules.a]\n', 3),  # a table twice
    ('[modules.a\n', 1),
    ('a = "x', 1),  # tomllib: "at end of document"
])
def test_a_toml_syntax_error_names_its_line(tmp_path: Path, text: str, line: int) -> None:
    error = error_of(tmp_path, text)
    assert error.line == line and "TOML syntax error" in str(error)


def test_a_syntax_error_on_a_password_line_does_not_show_the_password(tmp_path: Path) -> None:
    error = error_of(tmp_path, '[auth.a]\nusername = "alice"\npassword = "literal-pw-123\n')
    assert error.line == 3


@pytest.mark.parametrize("text, line, key, suggestion", [
    ('modules = {}\ntarget = []\n', 2, "target", "targets"),
    ('[modules.a]\nchecks = ["binding"]\ntimout = "3s"\n', 3, "modules.a.timout", "timeout"),
    ('[auth.a]\nusername = "u"\npasword_env = "X"\n', 3, "auth.a.pasword_env", "password_env"),
    ('[modules.m]\n[[targets]]\nname = "a"\nurl = "stun:a.example.org"\nmodule = "m"\n'
     'lables = {}\n', 6, "targets[1].lables", "labels"),
])
def test_an_unknown_key_names_its_line_and_the_key_it_resembles(
        tmp_path: Path, text: str, line: int, key: str, suggestion: str) -> None:
    error = error_of(tmp_path, text)
    assert (error.line, error.key) == (line, key)
    assert f"did you mean {suggestion!r}" in str(error)


@pytest.mark.parametrize("text, line, key, problem", [
    ('modules = 3\n', 1, "modules", "expected a table, got an integer"),
    ('[modules]\na = "x"\n', 2, "modules.a", "expected a table, got a string"),
    ('targets = {a = 1}\n', 1, "targets", "expected an array of tables"),
    ('[modules.a]\nchecks = "binding"\n', 2, "modules.a.checks", "non-empty array"),
    ('[modules.a]\nchecks = []\n', 2, "modules.a.checks", "non-empty array"),
    ('[modules.a]\nchecks = ["bindng"]\n', 2, "modules.a.checks",
     "unknown check 'bindng' (did you mean 'binding'?)"),
    ('[modules.a]\nchecks = [1]\n', 2, "modules.a.checks", "unknown check an integer"),
    ('[modules.a]\nchecks = ["binding", "binding"]\n', 2, "modules.a.checks", "named twice"),
    ('[modules.a]\nchecks = ["relay"]\n', 2, "modules.a.checks", "relay builds on allocate"),
    ('[modules.a]\ntransport = "udpp"\n', 2, "modules.a.transport",
     "'udpp' is not one of udp, tcp, tls (did you mean 'udp'?)"),
    ('[modules.a]\ntransport = 1\n', 2, "modules.a.transport", "expected a string, got an int"),
    ('[modules.a]\ntimeout = "3 seconds"\n', 2, "modules.a.timeout", "expected a duration"),
    ('[modules.a]\ntimeout = true\n', 2, "modules.a.timeout", "expected a duration"),
    ('[modules.a]\ntimeout = 0\n', 2, "modules.a.timeout", "more than 0 and at most 300"),
    ('[modules.a]\ntimeout = "10m"\n', 2, "modules.a.timeout", "at most 300 s"),
    ('[modules.a]\nrelay_family = "ipv5"\n', 2, "modules.a.relay_family", "not one of"),
    ('[modules.a]\nrequire = "all"\n', 2, "modules.a.require", "not one of each, any"),
    ('[modules.a]\ninsecure = "yes"\n', 2, "modules.a.insecure", "expected true or false"),
    ('[modules.a]\nca_file = "nope.pem"\n', 2, "modules.a.ca_file", "No such file"),
    ('[modules.a]\nca_file = "fleet.toml"\n', 2, "modules.a.ca_file", "holds no PEM"),
])
def test_module_errors(tmp_path: Path, text: str, line: int, key: str, problem: str) -> None:
    error = error_of(tmp_path, text)
    assert (error.line, error.key) == (line, key), str(error)
    assert problem in error.problem


@pytest.mark.parametrize("text, line, key, problem", [
    ('[auth.a]\nuser = "x"\n', 2, "auth.a.user", "goes with a REST secret"),
    ('[auth.a]\n', 1, "auth.a", "no credentials"),
    ('[auth.a]\npassword_env = "TURN_PASSWORD"\n', 1, "auth.a", "username is missing"),
    ('[auth.a]\nusername = "alice"\n', 1, "auth.a", "the password is missing"),
    ('[auth.a]\nusername = " "\npassword_env = "TURN_PASSWORD"\n', 2, "auth.a.username",
     "is empty"),
    ('[auth.a]\nusername = 7\npassword_env = "TURN_PASSWORD"\n', 2, "auth.a.username",
     "expected a string, got an integer"),
    ('[auth.a]\nusername = "alice"\npassword = 12345\n', 3, "auth.a.password",
     "expected a string, got an integer"),
    ('[auth.a]\nusername = "alice"\npassword = ""\n', 3, "auth.a.password", "is empty"),
    ('[auth.a]\nusername = "alice"\npassword_env = "NOPE"\n', 3, "auth.a.password_env",
     "environment variable NOPE is not set"),
    ('[auth.a]\nusername = "alice"\npassword_env = "EMPTY"\n', 3, "auth.a.password_env",
     "environment variable EMPTY is empty"),
    ('[auth.a]\nusername = "alice"\npassword_env = "$X"\n', 3, "auth.a.password_env",
     "not an environment variable name"),
    ('[auth.a]\nusername = "alice"\npassword_file = "missing.txt"\n', 3,
     "auth.a.password_file", "'missing.txt': No such file or directory"),
    ('[auth.a]\nusername = "alice"\npassword_env = "TURN_PASSWORD"\npassword_file = "f"\n', 4,
     "auth.a.password_file", "give the password once"),
    ('[auth.a]\nsecret_env = "NOPE"\n', 2, "auth.a.secret_env", "NOPE is not set"),
    ('[auth.a]\nsecret_file = "missing.txt"\n', 2, "auth.a.secret_file", "No such file"),
    ('[auth.a]\nsecret_env = "TURN_SECRET"\nsecret = "x"\n', 2, "auth.a.secret_env",
     "give the secret once"),
    ('[auth.a]\nsecret_env = "TURN_SECRET"\nusername = "u"\n', 3, "auth.a.username",
     "not both"),
    ('[auth.a]\nsecret_env = "TURN_SECRET"\npassword_env = "TURN_PASSWORD"\n', 3,
     "auth.a.password_env", "not both"),
    ('[auth.a]\nsecret_env = "TURN_SECRET"\nseparator = "1"\n', 3, "auth.a.separator",
     "not a digit"),
    ('[auth.a]\nsecret_env = "TURN_SECRET"\nuser = ""\n', 3, "auth.a.user", "non-empty"),
    ('[auth.a]\nsecret_env = "TURN_SECRET"\nttl = "1.5s"\n', 3, "auth.a.ttl", "whole number"),
    ('[auth.a]\nsecret_env = "TURN_SECRET"\nttl = "soon"\n', 3, "auth.a.ttl",
     "expected a duration"),
])
def test_auth_errors(tmp_path: Path, text: str, line: int, key: str, problem: str) -> None:
    error = error_of(tmp_path, text)
    assert (error.line, error.key) == (line, key), str(error)
    assert problem in error.problem


def test_an_empty_or_unreadable_password_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("\n")
    error = error_of(tmp_path, '[auth.a]\nusername = "u"\npassword_file = "empty.txt"\n')
    assert "'empty.txt' is empty" in error.problem
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe")
    error = error_of(tmp_path, '[auth.a]\nusername = "u"\npassword_file = "binary.txt"\n')
    assert "not text" in error.problem


def test_a_password_file_is_never_echoed_even_when_it_is_the_fleet_file(
        tmp_path: Path) -> None:
    # A secret file whose content looks like TOML is read as a secret, not shown.
    (tmp_path / "pw.txt").write_text(PASSWORD)
    fleet = load(write(tmp_path, '[auth.a]\nusername = "u"\npassword_file = "pw.txt"\n'), {})
    assert fleet.auths["a"].password == PASSWORD


def test_a_pem_ca_file_is_accepted_relative_to_the_fleet_file(tmp_path: Path) -> None:
    from tests.lab.certs import make_ca

    files, _key, _cert = make_ca(tmp_path)
    fleet = load(write(tmp_path, f'[modules.a]\nca_file = "{files.cert.name}"\n'), {})
    assert fleet.modules["a"].ca_file == os.path.join(str(tmp_path), files.cert.name)


TARGET_HEAD = """\
[modules.turn]
[modules.stun]
checks = ["binding"]
[modules.tls]
checks = ["allocate"]
transport = "tls"
[auth.prod]
username = "alice"
password_env = "TURN_PASSWORD"
"""


@pytest.mark.parametrize("body, line, key, problem", [
    ('[[targets]]\nurl = "stun:a.example.org"\nmodule = "stun"\n', 10, "targets[1]",
     "name is missing"),
    ('[[targets]]\nname = ""\nurl = "stun:a.example.org"\nmodule = "stun"\n', 11,
     "targets[1].name", "is empty"),
    ('[[targets]]\nname = "a b"\nurl = "stun:a.example.org"\nmodule = "stun"\n', 11,
     "targets[1].name", "a target name is"),
    ('[[targets]]\nname = "a"\nmodule = "stun"\n', 10, "targets[1]", "url is missing"),
    ('[[targets]]\nname = "a"\nurl = "http://a.example.org"\nmodule = "stun"\n', 12,
     "targets[1].url", "bad URL: 'http://a.example.org': unknown scheme 'http'"),
    ('[[targets]]\nname = "a"\nurl = "turn:a.example.org:99999"\nmodule = "turn"\n'
     'auth = "prod"\n', 12, "targets[1].url", "out of range"),
    ('[[targets]]\nname = "a"\nurl = "stun:a.example.org"\n', 10, "targets[1]",
     "module is missing"),
    ('[[targets]]\nname = "a"\nurl = "stun:a.example.org"\nmodule = "stn"\n', 13,
     "targets[1].module", "unknown module 'stn' (did you mean 'stun'?)"),
    ('[[targets]]\nname = "a"\nurl = "stun:a.example.org"\nmodule = "zzz"\n', 13,
     "targets[1].module", "unknown module 'zzz' (modules: stun, tls, turn)"),
    ('[[targets]]\nname = "a"\nurl = "turn:a.example.org"\nmodule = "turn"\n'
     'auth = "prd"\n', 14, "targets[1].auth", "unknown auth 'prd' (did you mean 'prod'?)"),
    ('[[targets]]\nname = "a"\nurl = "turn:a.example.org"\nmodule = "turn"\n', 10,
     "targets[1]", "auth is missing: module 'turn' checks allocate"),
    ('[[targets]]\nname = "a"\nurl = "stun:a.example.org"\nmodule = "turn"\n', 13,
     "targets[1].module", "is a STUN server: its only check is binding"),
    ('[[targets]]\nname = "a"\nurl = "turn:a.example.org?transport=tcp"\nmodule = "turn"\n'
     'auth = "prod"\n', 13, "targets[1].module", "binding goes over UDP"),
    ('[[targets]]\nname = "a"\nurl = "turns:a.example.org"\nmodule = "stun"\n', 13,
     "targets[1].module", "binding goes over UDP"),
    ('[[targets]]\nname = "a"\nurl = "stun:a.example.org"\nmodule = "stun"\n'
     'labels = "eu"\n', 14, "targets[1].labels", "expected a table, got a string"),
    ('[[targets]]\nname = "a"\nurl = "stun:a.example.org"\nmodule = "stun"\n'
     'labels = { region = 1 }\n', 14, "targets[1].labels.region", "expected a string"),
    ('[[targets]]\nname = "a"\nurl = "stun:a.example.org"\nmodule = "stun"\n'
     '[targets.labels]\n"9lives" = "x"\n', 15, "targets[1].labels.9lives",
     "a label name is"),
    ('[[targets]]\nname = "a"\nurl = "stun:a.example.org"\nmodule = "stun"\n'
     '[[targets]]\nname = "b"\nurl = "stun:b.example.org"\nmodule = "stun"\n'
     '[[targets]]\nname = "a"\nurl = "stun:c.example.org"\nmodule = "stun"\n', 19,
     "targets[3].name", "duplicate target name 'a' (first at line 11)"),
])
def test_target_errors(tmp_path: Path, body: str, line: int, key: str, problem: str) -> None:
    error = error_of(tmp_path, TARGET_HEAD + body)
    assert (error.line, error.key) == (line, key), str(error)
    assert problem in error.problem


def test_a_url_with_user_information_is_refused_without_echoing_it(tmp_path: Path) -> None:
    error = error_of(tmp_path, TARGET_HEAD + '[[targets]]\nname = "a"\n'
                     'url = "turn:alice:literal-pw-123@a.example.org"\nmodule = "turn"\n'
                     'auth = "prod"\n')
    assert error.key == "targets[1].url" and "credentials go in [auth]" in error.problem


def test_a_message_names_file_line_and_key(tmp_path: Path) -> None:
    error = error_of(tmp_path, '[modules.a]\n\ntimeout = "fast"\n')
    assert str(error) == (f"{tmp_path / 'fleet.toml'}:3: modules.a.timeout: expected a "
                          "duration: seconds as a number, or a string like \"3s\", \"500ms\", "
                          "\"2m\"")


# --- finding lines --------------------------------------------------------------------------

def test_lines_are_found_for_dotted_quoted_and_nested_keys() -> None:
    lines = KeyLines(textwrap.dedent("""\
        # comment = "not a key"
        [modules."turn udp"]
        timeout = 3
        doc = '''
        checks = "inside a string"
        '''
        checks = [
          "binding",
        ]
        [modules]
        other.timeout = 4
        [[targets]]
        name = "a"
        [[targets]]
        name = "b"
        [targets.labels]
        region = "eu"
        """))
    assert lines.line_of(("modules", "turn udp")) == 2
    assert lines.line_of(("modules", "turn udp", "timeout")) == 3
    assert lines.line_of(("modules", "turn udp", "checks")) == 7
    assert lines.line_of(("modules", "other", "timeout")) == 11
    assert lines.line_of(("targets", 0, "name")) == 13
    assert lines.line_of(("targets", 1, "name")) == 15
    assert lines.line_of(("targets", 1, "labels", "region")) == 17
    assert lines.line_of(("targets", 1, "labels", "zone")) == 16  # nearest enclosing key


# --- from a target to a probe ---------------------------------------------------------------

def test_a_target_plan_probes_turn_with_its_binding_and_credentials(tmp_path: Path) -> None:
    fleet = load(write(tmp_path, GOOD), ENV)
    eu = target_plan(fleet.targets[0], fleet.modules, fleet.auths, 1_700_000_000)
    assert [s.url for s in eu.specs] == ["turn:turn-eu-1.example.org:3478"]
    assert eu.settings.turn_as_stun and not eu.settings.relay_check
    assert eu.settings.timeout == 3.0
    assert eu.credentials is not None and eu.credentials.password == PASSWORD
    us = target_plan(fleet.targets[1], fleet.modules, fleet.auths, 1_700_000_000)
    assert us.settings.relay_check and not us.settings.turn_as_stun and us.settings.insecure
    assert us.credentials is not None and us.credentials.username == "1700003600-probe"
    stun = target_plan(fleet.targets[2], fleet.modules, fleet.auths, 1_700_000_000)
    assert stun.credentials is None and [s.url for s in stun.specs] == [
        "stun:stun.example.org"]


def test_a_binding_only_module_probes_a_turn_server_as_stun(tmp_path: Path) -> None:
    fleet = load(write(tmp_path, TARGET_HEAD + '[[targets]]\nname = "a"\n'
                       'url = "turn:[2001:db8::1]:3479"\nmodule = "stun"\n'), ENV)
    plan = target_plan(fleet.targets[0], fleet.modules, fleet.auths, 0)
    assert [s.url for s in plan.specs] == ["stun:[2001:db8::1]:3479"]
    assert plan.credentials is None and not plan.settings.turn_as_stun


def test_plan_errors_for_a_bare_url() -> None:
    from iceprobe.fleet.model import Module

    module = Module("m", (Check.ALLOCATE,))
    with pytest.raises(PlanError, match="needs TURN credentials"):
        plan_for(parse_server_url("turn:a.example.org"), module, None, 0)
    with pytest.raises(PlanError, match="only check is binding"):
        specs_for(parse_server_url("stun:a.example.org"), module)


def test_every_key_is_in_the_reference_table_of_docs_fleet_md() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "fleet.md").read_text()
    rows = {line.split("|")[1].strip().strip("`") for line in text.splitlines()
            if line.startswith("| `")}
    for section, keys in KEYS.items():
        for key in keys:
            name = f"{section}.{key}" if section else key
            assert name in rows, f"docs/fleet.md has no row for `{name}`"
    documented = {r for r in rows if "." in r}
    assert documented <= {f"{s}.{k}" for s, keys in KEYS.items() if s for k in keys}
