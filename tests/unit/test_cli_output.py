"""Where the output goes (issue 15 items 5 and 13): a closed pipe ends quietly, `--output
FILE` is written whole or not at all, `analyze` reports an unreadable file in its place and
goes on, and shell completion works with the lazily loaded commands.

Probes only reach a closed port on this test's own loopback (tests/conftest.py puts the test
process in a network namespace of its own)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from iceprobe.cli.output import report_stream

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"
DUMP = FIXTURES / "chrome-m120-turn-401.json"  # one PeerConnection; its TURN got a 401
HEALTHY = FIXTURES / "events-healthy.jsonl"  # one PeerConnection, passes
CLOSED = "stun:127.0.0.1:9"
ICEPROBE = [sys.executable, "-m", "iceprobe"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ICEPROBE, *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd)


# --- item 5: a closed pipe ----------------------------------------------------------------

def into_closed_pipe(*args: str) -> tuple[int, str]:
    """Run with stdout a pipe whose reader has already gone: the first write fails."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run([*ICEPROBE, *args], stdout=writer, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    finally:
        os.close(writer)
    return done.returncode, done.stderr


@pytest.mark.parametrize("args, code", [
    (["explain", "701"], 0),
    (["explain"], 0),
    (["explain", "--json"], 0),
    (["analyze", str(HEALTHY)], 0),
    (["analyze", str(DUMP), "--json"], 1),  # the verdicts' code survives the pipe
    (["gather", "--stun", CLOSED, "--timeout", "2", "--json"], 1),
    (["gather", "--stun", CLOSED, "--timeout", "2"], 1),
    (["--help"], 0),
])
def test_a_closed_pipe_ends_quietly_with_the_code_the_output_would_have(
        args: list[str], code: int) -> None:
    returncode, stderr = into_closed_pipe(*args)
    assert (returncode, stderr) == (code, "")


@pytest.mark.parametrize("command", [
    "explain 701 | head -1",
    "explain | head -1",
    f"gather --stun {CLOSED} --timeout 2 --json | head -c 1",
])
def test_piped_into_head_iceprobe_itself_exits_as_usual(command: str) -> None:
    # The reproduction: `iceprobe explain 701 | head -1` exited 1.
    script = (f"{sys.executable} -m iceprobe {command} >/dev/null; "
              'echo "status=${PIPESTATUS[0]}"')
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    expected = 1 if command.startswith("gather") else 0
    assert done.stdout.strip() == f"status={expected}", done.stderr
    assert done.stderr == ""


# --- item 13: --output FILE ---------------------------------------------------------------

@pytest.mark.parametrize("args, check", [
    (["gather", "--stun", CLOSED, "--timeout", "2", "--json"],
     lambda text: json.loads(text)["servers"][0]["url"] == CLOSED),
    (["gather", "--stun", CLOSED, "--timeout", "2"], lambda text: "server-unreachable" in text),
    (["analyze", str(DUMP), "--json"], lambda text: len(json.loads(text)["sessions"]) == 1),
    (["analyze", str(DUMP)], lambda text: "PeerConnection" in text),
    (["relay", "--turn", "turn:127.0.0.1:9", "-u", "a", "-p", "b", "--json"],
     lambda text: json.loads(text)["relay"][0]["url"] == "turn:127.0.0.1:9"),
])
def test_output_writes_the_report_to_the_file_and_nothing_to_stdout(
        tmp_path: Path, args: list[str], check: object) -> None:
    target = tmp_path / "report.out"
    target.write_text("the previous report\n")
    done = run(*args, "--output", str(target))
    assert done.returncode == 1, done.stderr  # each of these fails on its verdicts
    assert done.stdout == ""
    text = target.read_text()
    assert callable(check) and check(text), text
    assert "\x1b[" not in text  # a file gets no colour codes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.out"]  # no temp left


def test_output_file_gets_the_mode_a_plain_open_would_give(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    done = subprocess.run(["sh", "-c", f"umask 022; exec {sys.executable} -m iceprobe analyze "
                                       f"{HEALTHY} --json -o {target}"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    target.chmod(0o600)  # an existing report keeps its mode
    done = subprocess.run([*ICEPROBE, "analyze", str(HEALTHY), "--json", "-o", str(target)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and json.loads(target.read_text())["ok"] is True
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_report_that_fails_half_way_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt), report_stream(str(target)) as stream:
        stream.write("{ half a report")
        raise KeyboardInterrupt  # Ctrl-C while rendering
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_complete_report_replaces_the_file_in_one_step(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old\n")
    with report_stream(str(target)) as stream:
        stream.write("new\n")
        assert target.read_text() == "old\n"  # not touched until the report is whole
    assert target.read_text() == "new\n"


@pytest.mark.parametrize("where, words", [
    ("missing/report.json", "no such directory"),
    (".", "is a directory"),
])
def test_an_unusable_output_path_is_refused_before_probing(tmp_path: Path, where: str,
                                                           words: str) -> None:
    done = run("gather", "--stun", CLOSED, "--output", where, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("iceprobe: error: ") and words in line.lower(), line


def test_an_unwritable_directory_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            # root writes anywhere: then the file cannot be made when the report is
            # written (after the probe), which must end the same way
            done = run("gather", "--stun", CLOSED, "--output", "/proc/iceprobe-report.json")
        else:
            done = run("gather", "--stun", CLOSED, "--output", str(locked / "r.json"))
    finally:
        locked.chmod(0o700)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("iceprobe: error: ") and len(done.stderr.splitlines()) == 1


# --- item 13: one unreadable file among many ----------------------------------------------

JUNK = {
    "empty.json": b"",
    "random.bin": bytes(range(256)) * 4,
    "cut.json": DUMP.read_bytes()[: len(DUMP.read_bytes()) // 2],
    "bad.gz": b"\x1f\x8b\x08\x00garbage",
    "half.gz": gzip.compress(DUMP.read_bytes())[:200],
    "not-a-recording.json": b'{"hello": "world"}',
    "list.json": b"[1, 2, 3]",
    "deep.json": b"[" * 100_000 + b"]" * 100_000,
    "deep-line.jsonl": HEALTHY.read_bytes().splitlines()[0] + b"\n" + b"[" * 100_000,
    "nul.txt": b"a=candidate:1 1 udp 1 1.2.3.4 5 typ host\x00",
}


@pytest.fixture
def junk(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name, data in JUNK.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    paths["directory"] = tmp_path / "a-directory"
    paths["directory"].mkdir()
    paths["missing"] = tmp_path / "missing.json"
    return paths


def test_junk_among_good_files_is_reported_in_place_and_the_rest_analysed(
        junk: dict[str, Path]) -> None:
    bad = list(junk.values())
    done = run("analyze", str(HEALTHY), *map(str, bad), str(DUMP), "--json")
    assert done.returncode == 2, done.stderr  # bad input wins over the verdicts
    assert "Traceback" not in done.stderr
    document = json.loads(done.stdout)  # stdout stays one JSON document
    assert [s["source"]["file"] for s in document["sessions"]] == [str(HEALTHY), str(DUMP)]
    assert [u["file"] for u in document["unreadable"]] == [str(p) for p in bad]
    assert all(u["error"] and "\n" not in u["error"] for u in document["unreadable"])
    assert "internal error" not in done.stdout  # junk is bad input, not a bug of ours
    assert document["ok"] is False
    # One line on stderr for each, naming it.
    lines = done.stderr.splitlines()
    assert len(lines) == len(bad)
    for line, path in zip(lines, bad, strict=True):
        assert line.startswith(f"iceprobe: error: {path}: ")


def test_the_table_names_the_unreadable_file_where_it_was_given(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"PeerConnections": {')
    done = subprocess.run([*ICEPROBE, "analyze", str(HEALTHY), str(broken), str(DUMP)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    assert done.returncode == 2
    healthy, rest = done.stdout.split("UNREADABLE", 1)
    assert "PeerConnection" in healthy
    assert rest.startswith(f"  {broken}: ") and "PeerConnection" in rest


def test_when_every_file_is_unreadable_there_is_no_report(junk: dict[str, Path]) -> None:
    done = run("analyze", str(junk["missing"]), str(junk["empty.json"]), "--json")
    assert (done.returncode, done.stdout) == (2, "")
    assert len(done.stderr.splitlines()) == 2


def test_all_good_files_keep_an_empty_unreadable_list() -> None:
    done = run("analyze", str(HEALTHY), "--json")
    assert done.returncode == 0
    assert json.loads(done.stdout)["unreadable"] == []


# --- item 13: shell completion ------------------------------------------------------------

def complete(shell: str, words: str, cword: int) -> str:
    env = {**os.environ, "_ICEPROBE_COMPLETE": f"{shell}_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(cword)}
    done = subprocess.run(ICEPROBE, capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o nosort -F "
                                                    "_iceprobe_completion iceprobe"),
                                           ("zsh", "#compdef iceprobe"),
                                           ("fish", "complete --no-files --command iceprobe")])
def test_completion_prints_a_script_for_each_shell(shell: str, marker: str) -> None:
    done = subprocess.run(ICEPROBE, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "_ICEPROBE_COMPLETE": f"{shell}_source"})
    assert done.returncode == 0 and marker in done.stdout, done.stdout + done.stderr


def test_completion_offers_commands_and_their_options() -> None:
    assert complete("bash", "iceprobe ga", 1).splitlines() == ["plain,gather"]
    assert complete("bash", "iceprobe ", 1).splitlines() == [
        "plain,analyze", "plain,capacity", "plain,check", "plain,explain", "plain,exporter",
        "plain,gather", "plain,link", "plain,relay", "plain,results", "plain,serve"]
    assert "plain,--timeout" in complete("bash", "iceprobe gather --ti", 2).splitlines()
    assert "plain,--output" in complete("bash", "iceprobe analyze --out", 2).splitlines()


def test_completion_works_in_a_real_bash(tmp_path: Path) -> None:
    # The documented set-up: eval "$(_ICEPROBE_COMPLETE=bash_source iceprobe)". The script
    # runs `iceprobe`, so put one on PATH that runs this tree's code.
    program = tmp_path / "iceprobe"
    program.write_text(f'#!/bin/sh\nexec {sys.executable} -m iceprobe "$@"\n')
    program.chmod(0o755)
    bash = shutil.which("bash")
    assert bash is not None
    script = ('eval "$(_ICEPROBE_COMPLETE=bash_source iceprobe)"\n'
              "COMP_WORDS=(iceprobe ga); COMP_CWORD=1; _iceprobe_completion iceprobe\n"
              'echo "reply=${COMPREPLY[*]}"\n')
    done = subprocess.run([bash, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert done.stdout.strip() == "reply=gather", done.stdout + done.stderr
