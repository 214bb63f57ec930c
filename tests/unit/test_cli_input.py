"""Bad input and small CLI manners (issue 15 items 5, 8 and 13): finite numbers, duplicate
and comma-joined URLs, nothing to probe, `--redact` that never swallows a file name,
`relay`'s growing default timeout, "did you mean", and which options belong to whom.

Each subprocess stops before gathering, or probes a closed port on this test's own
loopback (tests/conftest.py puts the test process in a network namespace of its own)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
import pytest

from iceprobe.cli import analyze as analyze_command
from iceprobe.cli import cli
from iceprobe.cli import gather as gather_command
from iceprobe.cli import relay as relay_command
from iceprobe.cli.options import duplicate_notes, unique_servers
from iceprobe.cli.params import FiniteFloatRange
from iceprobe.urls import parse_server_url

if TYPE_CHECKING:
    from iceprobe.gather.datapath import RelayOptions

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"
DUMP = FIXTURES / "chrome-m120-turn-401.json"  # one PeerConnection; a 401 from its TURN
CLOSED = "stun:127.0.0.1:9"  # nothing listens: ICMP port unreachable at once
TURN = ["--turn", "turn:127.0.0.1:9", "-u", "alice", "-p", "secret"]


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iceprobe", *args], capture_output=True,
                          text=True, timeout=60, input=stdin)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("iceprobe: error: "), done.stderr
    return lines[0]


# --- item 8: NaN and the infinities -------------------------------------------------------

COMMANDS = {"gather": gather_command.gather, "relay": relay_command.relay,
            "analyze": analyze_command.analyze}
#: Enough for each command to get past its required arguments.
BASE = {"gather": ["--stun", CLOSED], "relay": TURN, "analyze": [str(DUMP)]}
FLOAT_OPTIONS = [(name, param.opts[-1]) for name, command in COMMANDS.items()
                 for param in command.params
                 if isinstance(param, click.Option) and isinstance(param.type, click.FloatRange)]


def test_every_float_option_of_every_command_refuses_what_is_not_finite() -> None:
    # The whole list, so that a float option added later cannot slip past the type.
    assert {(n, o) for n, o in FLOAT_OPTIONS} >= {
        ("gather", "--timeout"), ("gather", "--slow-ms"), ("relay", "--duration"),
        ("relay", "--timeout"), ("relay", "--max-rtt"), ("relay", "--min-throughput"),
        ("analyze", "--slow-ms")}
    for name, command in COMMANDS.items():
        for param in command.params:
            if isinstance(param.type, click.FloatRange):
                assert isinstance(param.type, FiniteFloatRange), (name, param.opts)


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])
@pytest.mark.parametrize("command, option", FLOAT_OPTIONS)
def test_nan_and_infinity_are_one_line_and_exit_2(command: str, option: str,
                                                  value: str) -> None:
    line = one_error_line(run(command, *BASE[command], f"{option}={value}"))
    assert line == (f"iceprobe: error: Invalid value for '{option}': {value!r} is not a "
                    "finite number")


def test_finite_values_still_pass_the_range() -> None:
    kind = FiniteFloatRange(min=0, min_open=True, max=300)
    assert kind.convert("2.5", None, None) == 2.5
    with pytest.raises(click.BadParameter, match="not in the range"):
        kind.convert("301", None, None)


# --- item 8: duplicate URLs ---------------------------------------------------------------

def test_two_spellings_of_one_server_are_one_server() -> None:
    specs = [parse_server_url(u) for u in (
        "stun:Example.ORG", "stun:example.org:3478", "stun:example.org:3479",
        "turn:example.org?transport=udp", "turn:example.org", "turn:example.org?transport=tcp",
        "stun:[2001:db8::1]", "stun:[2001:DB8:0::1]:3478")]
    assert [s.url for s in unique_servers(specs)] == [
        "stun:Example.ORG", "stun:example.org:3479", "turn:example.org?transport=udp",
        "turn:example.org?transport=tcp", "stun:[2001:db8::1]"]
    assert duplicate_notes(specs) == [
        "stun:Example.ORG given twice (as stun:Example.ORG, stun:example.org:3478), probed "
        "once",
        "turn:example.org?transport=udp given twice (as turn:example.org?transport=udp, "
        "turn:example.org), probed once",
        "stun:[2001:db8::1] given twice (as stun:[2001:db8::1], stun:[2001:DB8:0::1]:3478), "
        "probed once"]


def test_a_duplicate_url_is_probed_once_with_a_note_and_json_stays_pure() -> None:
    done = run("gather", "--stun", CLOSED, "--stun", "STUN:127.0.0.1:9", "--stun", CLOSED,
               "--timeout", "2", "--json")
    assert done.returncode == 1, done.stderr  # the closed port fails; usage was fine
    document = json.loads(done.stdout)  # nothing but the document on stdout
    assert [s["url"] for s in document["servers"]] == [CLOSED]
    assert done.stderr == (f"iceprobe: note: {CLOSED} given 3 times (as {CLOSED}, "
                           "STUN:127.0.0.1:9), probed once\n")


def test_the_same_url_under_stun_and_as_turn_is_not_a_duplicate() -> None:
    specs = [parse_server_url("stun:h"), parse_server_url("turn:h")]
    assert unique_servers(specs) == tuple(specs) and duplicate_notes(specs) == []


# --- item 8: comma-separated URLs ---------------------------------------------------------

@pytest.mark.parametrize("args, option", [
    (["gather", "--stun", "stun:a.example,stun:b.example"], "--stun"),
    (["gather", "--turn", "turn:a.example, turn:b.example", "-u", "a", "-p", "b"], "--turn"),
    (["relay", "--turn", "turn:a.example,turn:b.example", "-u", "a", "-p", "b"], "--turn"),
])
def test_a_comma_separated_list_says_one_url_per_option(args: list[str], option: str) -> None:
    line = one_error_line(run(*args))
    assert f"one URL per {option}; repeat the option ({option} URL1 {option} URL2)" in line
    assert "host name" not in line  # not today's misleading "bad label 'a,stun'"


# --- item 5: nothing to probe -------------------------------------------------------------

@pytest.mark.parametrize("extra", [[], ["--json"], ["--timeout", "1", "--no-turn-as-stun"]])
def test_gather_without_servers_is_a_usage_error(extra: list[str]) -> None:
    assert one_error_line(run("gather", *extra)) == (
        "iceprobe: error: nothing to probe: give --stun URL or --turn URL")


# --- item 13: --redact needs '=' ----------------------------------------------------------

def redacted_session(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stderr  # the dump's 401 fails; the file was read
    [session] = json.loads(done.stdout)["sessions"]
    return json.dumps(session)


@pytest.mark.parametrize("args", [
    ["--redact", str(DUMP), "--json"],  # today: "'…json' is not one of 'ips', 'all'"
    [str(DUMP), "--redact", "--json"],
    ["--json", str(DUMP), "--redact"],
    ["--redact=ips", str(DUMP), "--json"],
])
def test_a_bare_redact_never_swallows_the_file_and_means_ips(args: list[str]) -> None:
    plain = json.dumps(json.loads(run("analyze", str(DUMP), "--json").stdout)["sessions"][0])
    text = redacted_session(run("analyze", *args))
    assert "192.168.1.23" in plain and "192.168.1.23" not in text  # the host address
    assert "host-1" in text
    assert "turn.example.com" in text  # ips only: names stay


def test_redact_all_also_hides_names() -> None:
    text = redacted_session(run("analyze", "--redact=all", str(DUMP), "--json"))
    assert "turn.example.com" not in text and "192.168.1.23" not in text


@pytest.mark.parametrize("command", ["gather", "relay", "analyze"])
def test_the_old_spaced_value_gets_a_hint_to_use_equals(command: str) -> None:
    line = one_error_line(run(command, *BASE[command], "--redact", "all"))
    assert line == "iceprobe: error: --redact takes its value after '=': write --redact=all"


def test_a_file_named_like_a_value_is_still_a_file(tmp_path: Path) -> None:
    (tmp_path / "all").write_bytes(DUMP.read_bytes())
    done = subprocess.run([sys.executable, "-m", "iceprobe", "analyze", "--redact", "all",
                           "--json"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert "host-1" in redacted_session(done)


@pytest.mark.parametrize("command", ["gather", "relay", "analyze"])
def test_help_shows_the_redact_value_after_equals(command: str) -> None:
    done = run(command, "--help")
    assert "--redact[=ips|all]" in done.stdout


def test_a_bad_redact_value_is_still_refused() -> None:
    assert "'some'" in one_error_line(run("gather", "--stun", CLOSED, "--redact=some"))


# --- item 13: relay's default timeout grows ------------------------------------------------

def relay_options(given: dict[str, float]) -> RelayOptions:
    from iceprobe.gather.datapath import RelayOptions
    from iceprobe.model import Credentials

    return RelayOptions(credentials=Credentials("a", "b"), duration=given.get("duration", 2.0),
                        count=int(given.get("count", 20)))


@pytest.mark.parametrize("given, expected", [
    ({}, 15.0),  # unchanged at the defaults
    ({"duration": 10}, 31.0),  # 2 x (10 + 1) + 1 + 1 for the later steps, 7 to connect
    ({"duration": 0.5}, 15.0 - 3.0),
    ({"count": 1000}, 15.0 + 9.0),  # 10 ms an echo beyond the 1 s echo reserve
    ({"duration": 60, "count": 10_000}, 2 * 61 + 2 + 99 + 7),
])
def test_relay_default_timeout_grows_with_duration_and_count(given: dict[str, float],
                                                             expected: float) -> None:
    options = relay_options(given)
    assert relay_command.default_timeout(options) == pytest.approx(expected)
    assert relay_command.default_timeout(options) >= options.reserve + relay_command.MIN_CONNECT


def test_relay_with_a_long_duration_runs_without_a_timeout_of_its_own() -> None:
    # Today: "--duration 10 needs --timeout of at least 25 s". Now the run goes ahead (and
    # fails on the closed port, exit 1, without waiting: the allocation is refused at once).
    done = run("relay", *TURN, "--webrtc", "--duration", "10", "--json", "--verbose")
    assert done.returncode == 1, done.stderr
    [check] = json.loads(done.stdout)["relay"]
    assert check["url"] == "turn:127.0.0.1:9"
    assert "time budget 31 s per server (--duration 10, --count 20)" in done.stderr
    given = run("relay", *TURN, "--duration", "10", "--timeout", "40", "--verbose")
    assert "time budget 40 s per server" in given.stderr


def test_an_explicit_timeout_too_short_for_the_duration_says_the_minimum() -> None:
    line = one_error_line(run("relay", *TURN, "--duration", "10", "--timeout", "20"))
    assert "--duration 10 needs --timeout of at least 25 s" in line


def test_relay_help_says_the_default_timeout_grows() -> None:
    text = " ".join(run("relay", "--help").stdout.split())
    assert "[default: 15, more with a longer --duration or a larger --count]" in text


# --- item 13: did you mean ----------------------------------------------------------------

@pytest.mark.parametrize("typed, meant", [("gahter", "gather"), ("gaher", "gather"),
                                          ("expalin", "explain"), ("analyse", "analyze"),
                                          ("rely", "relay"), ("Gather", "gather"),
                                          ("gath", "gather")])
def test_a_mistyped_command_gets_did_you_mean(typed: str, meant: str) -> None:
    assert one_error_line(run(typed, "--stun", CLOSED)) == (
        f"iceprobe: error: no such command {typed!r} (did you mean {meant!r}?)")


def test_did_you_mean_imports_no_command_module() -> None:
    code = ("import sys\nfrom iceprobe.cli import main\n"
            "try:\n    main(['gahter'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in sys.modules if m.startswith('iceprobe')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30)
    assert "LOADED ['iceprobe', 'iceprobe.cli', 'iceprobe.constants']" in done.stdout, \
        done.stdout


# --- -V/--version belongs to the group ----------------------------------------------------

@pytest.mark.parametrize("command", ["gather", "relay", "analyze", "explain"])
def test_version_is_no_option_of_a_command(command: str) -> None:
    assert "--version" not in run(command, "--help").stdout
    assert "--version" in run("--help").stdout
    assert cli.params and any("--version" in p.opts for p in cli.params)
