"""The command line's contract: exit codes, one-line errors, no tracebacks, lean start-up.
None of these reach the network: they stop before gathering."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from iceprobe import __version__, cli
from iceprobe.cli import gather as gather_command
from tests.schema import validated


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iceprobe", *args], capture_output=True,
                          text=True, timeout=30, env=env)


def test_version_prints_the_version() -> None:
    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"iceprobe {__version__}"


@pytest.mark.parametrize("args, names", [
    (["--stun", "stun:host:0"], "port 0"),
    (["--stun", "stun:host:65536"], "65536"),
    (["--stun", "http://host"], "'http'"),
    (["--stun", "stun:host?transport=udp"], "?transport="),
    (["--turn", "turn:host?transport=sctp", "-u", "a", "-p", "b"], "'sctp'"),
    (["--turn", "turn:alice@host", "-u", "a", "-p", "b"], "user information"),
    (["--stun", "stun:"], "empty host"),
    (["--stun", "stun:ho$t"], "ho$t"),
    (["--stun", "turn:host"], "not a STUN URL"),
    (["--turn", "stun:host", "-u", "a", "-p", "b"], "not a TURN URL"),
    (["--turn", "turn:host"], "needs TURN credentials"),
    (["--turn", "turn:host", "-u", "alice"], "-p/--credential"),
    (["--turn", "turn:host", "-u", "", "-p", "x"], "-u/--username is empty"),
    (["--stun", "stun:host", "--timeout", "0"], "--timeout"),
    (["--stun", "stun:host", "--timeout", "-1"], "--timeout"),
    (["--stun", "stun:host", "--concurrency", "0"], "--concurrency"),
    (["--stun", "stun:host", "--concurrency", "many"], "--concurrency"),
    (["--stun", "stun:host", "--require", "all"], "'all'"),
    (["--bogus"], "--bogus"),
    (["--stun", "stun:host", "--ignore", "no-such-verdict"], "'no-such-verdict'"),
    (["--stun", "stun:host", "--slow-ms", "0"], "--slow-ms"),
    (["--turn", "turn:host", "--turn-secret", "s", "-u", "a", "-p", "b"], "drop -u"),
    (["--turn", "turn:host", "--turn-secret", "s", "--turn-secret-file", "/etc/hostname"],
     "give the TURN secret once"),
    (["--turn", "turn:host", "--turn-secret-file", "/nonexistent/secret"],
     "No such file or directory"),
    (["--turn", "turn:host", "--turn-secret-file", "/dev/null"], "is empty"),
    (["--turn", "turn:host", "--turn-secret", ""], "--turn-secret is empty"),
    (["--turn", "turn:host", "--turn-secret", "s", "--separator", ""], "--separator"),
    # Only both empty make pion/turn's bare-expiry username (issue 16 item 2).
    (["--turn", "turn:host", "--turn-secret", "s", "--turn-user", ""], "both ''"),
    (["--turn", "turn:host", "--turn-secret", "s", "--turn-user", "", "--separator", "1"],
     "both ''"),
    (["--turn", "turn:host", "--no-auth", "-u", "a", "-p", "b"], "--no-auth probes TURN"),
    (["--turn", "turn:host", "--no-auth", "--turn-secret", "s"], "drop --turn-secret"),
    (["--turn", "turn:h", "--no-auth", "--relay-check"], "does not go with --no-auth"),
    (["--turn", "turn:host", "--turn-secret", "s", "--ttl", "0"], "--ttl"),
    (["--stun", "stuns:host", "--ca-file", "/nonexistent/ca.pem"], "No such file"),
    (["--stun", "stuns:host", "--ca-file", "/etc/hostname"], "no PEM certificate"),
    (["--stun", "stun:host", "--matrix"], "--matrix needs a --turn URL"),
    (["--turn", "turn:h", "-u", "a", "-p", "b", "--credential-file", "/etc/hostname"],
     "give the TURN password once"),
    (["--turn", "turn:h", "-u", "a", "--credential-file", "/dev/null"], "is empty"),
    (["--turn", "turn:h", "-u", "a", "--credential-file", "/nope"], "No such file"),
    (["--stun", "stun:host", "--port", "443"], "--port goes with --matrix"),
    (["--turn", "turn:h", "-u", "a", "-p", "b", "--matrix", "--port", "0"], "--port"),
    (["--stun", "stun:host", "--redact=some"], "'some'"),
    (["--stun", "stun:ho st"], "ho st"),
    (["--stun", "stun:ho\x01st"], "stun:ho"),
    (["--stun", "stun:" + "a" * 5000], "5005 characters"),
    (["--stun", "stun:bücher.example"], "xn--bcher-kva.example"),
    (["--stun", ""], "--stun"),
    (["--turn", "turn:host", "-u", "alice", "-p", ""], "-p/--credential is empty"),
])
def test_bad_input_is_one_line_naming_it_and_exit_2(args: list[str], names: str) -> None:
    done = run("gather", *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("iceprobe: error: ")
    assert names in lines[0]
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("args, names", [
    ([], "--turn"),
    (["--turn", "stun:host", "-u", "a", "-p", "b"], "not a TURN URL"),
    (["--turn", "turn:host"], "needs TURN credentials"),
    (["--turn", "turn:[fd00::1]", "-u", "a", "-p", "b"], "IPv6 literal"),
    (["--turn", "turn:host", "-u", "a", "-p", "b", "--timeout", "3"], "at least 9 s"),
    (["--turn", "turn:host", "-u", "a", "-p", "b", "--duration", "0"], "--duration"),
    (["--turn", "turn:host", "-u", "a", "-p", "b", "--count", "0"], "--count"),
    (["--turn", "turn:host", "-u", "a", "-p", "b", "--size", "3"], "--size"),
    (["--turn", "turn:host", "-u", "a", "-p", "b", "--max-rtt", "0"], "--max-rtt"),
    (["--turn", "turn:host", "-u", "a", "-p", "b", "--ignore", "nope"], "'nope'"),
    # relay's two peers need credentials: it has no --no-auth.
    (["--turn", "turn:host", "--no-auth"], "--no-auth"),
])
def test_relay_bad_input_is_one_line_and_exit_2(args: list[str], names: str) -> None:
    done = run("relay", *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("iceprobe: error: "), done.stderr
    assert names in lines[0]
    assert done.stdout == ""


def test_relay_check_and_matrix_do_not_mix() -> None:
    done = run("gather", "--turn", "turn:h", "-u", "a", "-p", "b", "--matrix", "--relay-check")
    assert done.returncode == 2
    assert "--relay-check does not go with --matrix" in done.stderr


def test_credential_from_environment_satisfies_turn_and_is_not_echoed() -> None:
    # A bad URL after the credentials: exits 2 before any network, but only if the
    # environment's credentials were accepted first is the URL the complaint.
    env = {**os.environ, "ICEPROBE_USERNAME": "alice", "ICEPROBE_CREDENTIAL": "env-Secret-9"}
    done = run("gather", "--turn", "turn:host:0", env=env)
    assert done.returncode == 2
    assert "port 0" in done.stderr
    assert "env-Secret-9" not in done.stderr + done.stdout


def test_internal_error_is_one_line_asking_for_a_report(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(gather_command, "_gather", broken)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["gather", "--stun", "stun:127.0.0.1"])
    assert exit_info.value.code == cli.ExitCode.INTERNAL
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"iceprobe: internal error: RuntimeError: boom ({cli.BUG_REPORT})"]


def test_internal_error_shows_traceback_with_verbose(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(gather_command, "_gather", broken)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["gather", "--stun", "stun:127.0.0.1", "--verbose"])
    assert exit_info.value.code == cli.ExitCode.INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom" in err


def test_the_command_list_is_every_command_with_its_own_short_help() -> None:
    # `iceprobe --help` lists COMMANDS without importing the commands: the table must say
    # what each command's own docstring says, and miss none.
    import importlib
    import pkgutil

    import click

    for info in pkgutil.iter_modules(cli.__path__):
        importlib.import_module(f"iceprobe.cli.{info.name}")
    registered = {name: command for name, command in cli.cli.commands.items()
                  if isinstance(command, click.Command)}
    assert set(registered) == set(cli.COMMANDS)
    for name, command in registered.items():
        assert cli.COMMANDS[name] == command.get_short_help_str(limit=1000), name


def test_help_lists_every_command_and_an_unknown_one_is_a_usage_error() -> None:
    listed = run("--help")
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.split("Commands:")[1].splitlines()
            if line.startswith("  ") and not line.startswith("   ")] == sorted(cli.COMMANDS)
    unknown = run("frobnicate")
    assert unknown.returncode == cli.ExitCode.USAGE
    assert unknown.stderr == ("iceprobe: error: no such command 'frobnicate' (commands: "
                              "analyze, capacity, check, explain, exporter, gather, link, "
                              "relay, results, serve)\n")


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_help_and_version_import_no_command(args: list[str]) -> None:
    code = ("import sys\nfrom iceprobe.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in sys.modules if m.startswith('iceprobe')))\n")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=30)
    # iceprobe.constants holds the exit codes: enums only, no dataclass, no command.
    assert "LOADED ['iceprobe', 'iceprobe.cli', 'iceprobe.constants']" in done.stdout, \
        done.stdout[-500:]


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["gather", "--help"],
                                  ["relay", "--help"]])
def test_help_and_version_import_neither_aioice_nor_aiortc(args: list[str]) -> None:
    code = ("import sys\nfrom iceprobe.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('aioice', 'aiortc'))\n"
            "print('HEAVY', heavy)\n")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=30)
    assert "HEAVY []" in done.stdout, done.stdout


def test_gather_json_imports_aioice_but_neither_aiortc_nor_rich() -> None:
    # A probe of a closed port on loopback: the gatherer runs, the relay check does not.
    code = ("import sys\nfrom iceprobe.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'aioice', 'aiortc', 'rich'})\n"
            "print('HEAVY', heavy)\n")
    done = subprocess.run([sys.executable, "-c", code, "gather", "--stun", "stun:127.0.0.1:9",
                           "--timeout", "1", "--json"], capture_output=True, text=True,
                          timeout=30)
    validated(done.stdout.split("HEAVY")[0], "gather")
    # Nor rich: the JSON goes straight to stdout, and stderr is no terminal for a spinner.
    assert "HEAVY ['aioice']" in done.stdout, done.stdout[-500:] + done.stderr


def test_on_a_terminal_gather_shows_the_spinner_then_the_coloured_table() -> None:
    # The one path that loads rich for stderr: a spinner while probing (a closed port on
    # loopback, so the probe ends at once), then the table in colour on stdout.
    import pty

    primary, secondary = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "iceprobe", "gather", "--stun", "stun:127.0.0.1:9",
         "--timeout", "2"], stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary,
        env=env)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert process.wait(timeout=30) == cli.ExitCode.FAIL
    out = b"".join(chunks).decode(errors="replace")
    assert "Probing 1 server…" in out  # the spinner's status line
    assert "\x1b[" in out  # colour
    assert "server-unreachable" in out and "Traceback" not in out
