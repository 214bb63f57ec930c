"""`iceprobe explain`: golden outputs, lookups by code and by browser text, bad input.

Set ICEPROBE_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change, then
review the diff."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from rich.console import Console

from iceprobe import codes
from iceprobe.cli.explain import _explain_entries
from iceprobe.codes import CodeInfo
from iceprobe.render.explain import render_code_table, render_entries, render_explain_json
from tests.schema import validated

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def rendered(entries: Sequence[CodeInfo], how: str) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, color_system=None, force_terminal=False)
    if how == "json":
        render_explain_json(entries, buffer)
    else:
        {"entries": render_entries, "table": render_code_table}[how](entries, console)
    return buffer.getvalue()


@pytest.mark.parametrize("query, how, golden", [
    ("701", "entries", "explain-701.txt"),
    ("486", "entries", "explain-486.txt"),
    ("TURN allocate request timed out.", "entries", "explain-turn-allocate-timed-out.txt"),
    ("STUN host lookup received error.", "entries", "explain-stun-host-lookup.txt"),
    ("Unauthorized", "json", "explain-unauthorized.json"),
    (None, "table", "explain-table.txt"),
])
def test_explain_output_matches_golden(query: str | None, how: str, golden: str) -> None:
    entries = [*codes.CODES, *codes.CAUSES_701] if query is None else _explain_entries(query)
    output = rendered(entries, how)
    assert_matches_golden(output, GOLDEN / golden)


def assert_matches_golden(output: str, path: Path) -> None:
    """The output equals the golden file; with ICEPROBE_UPDATE_GOLDEN set, rewrite the file
    and fail all the same, so that a run with it set can never pass unreviewed."""
    if os.environ.get("ICEPROBE_UPDATE_GOLDEN"):
        path.write_text(output)
        pytest.fail("golden rewritten: review the diff")
    assert output == path.read_text()


def test_updating_a_golden_file_rewrites_it_and_fails(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "golden.txt"
    path.write_text("stale\n")
    monkeypatch.setenv("ICEPROBE_UPDATE_GOLDEN", "1")
    with pytest.raises(pytest.fail.Exception, match="golden rewritten: review the diff"):
        assert_matches_golden("fresh\n", path)
    assert path.read_text() == "fresh\n"
    monkeypatch.delenv("ICEPROBE_UPDATE_GOLDEN")
    assert_matches_golden("fresh\n", path)
    with pytest.raises(AssertionError):
        assert_matches_golden("other\n", path)


def test_701_lists_every_cause_separately() -> None:
    entries = _explain_entries("701")
    assert [e.cause for e in entries[1:]] == [i.cause for i in codes.CAUSES_701]
    assert {"dns", "socket", "unreachable", "refused", "tls", "closed", "timeout"} <= {
        e.cause for e in entries}


@pytest.mark.parametrize("text, cause", [
    ("STUN host lookup received error.", "dns"),
    ("TURN host lookup received error.", "dns"),
    ("Failed to create TURN client socket.", "socket"),
    ("TURN allocate request timed out.", "timeout"),
    ("STUN binding request timed out.", "timeout"),
    ("  turn allocate request timed out ", "timeout"),
    ("unreachable", "unreachable"),
])
def test_browser_error_texts_map_to_their_701_cause(text: str, cause: str) -> None:
    [entry] = _explain_entries(text)
    assert (entry.code, entry.cause) == (701, cause)


def test_explain_failed_to_establish_connection_names_tcp_and_tls_causes() -> None:
    """Issue 15 item 1: Chromium 156's text for a failed TURN/TCP or TLS connection used to
    exit 2."""
    done = subprocess.run([sys.executable, "-m", "iceprobe", "explain",
                           "Failed to establish connection", "--json"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    [entry] = validated(done.stdout, "explain")
    assert (entry["code"], entry["cause"], entry["verdict"]) == (701, "connect",
                                                                 "server-unreachable")
    for words in ("refused", "certificate", "TLS handshake", "30 s"):
        assert words in entry["meaning"]
    assert "Not certain" in entry["remedy"] and "turns:" in entry["remedy"]


@pytest.mark.parametrize("code, name", [(438, "Stale Nonce"), (300, "Try Alternate"),
                                        (487, "Role Conflict"), (447, "Connection Timeout "
                                                                      "or Failure")])
def test_codes_are_found_by_number(code: int, name: str) -> None:
    [entry] = _explain_entries(str(code))
    assert entry.name == name and not entry.generic


@pytest.mark.parametrize("code, words", [(399, "redirect"), (470, "client-side"),
                                         (555, "server problem"), (650, "global failure"),
                                         (777, "browser"), (799, "browser"),
                                         (301, "redirect")])
def test_unknown_codes_are_explained_by_class(code: int, words: str) -> None:
    [entry] = _explain_entries(str(code))
    assert entry.generic
    assert words in entry.name or words in entry.meaning


@pytest.mark.parametrize("argument", ["1000", "-1", "hello world", "4o1", "٤٠١",
                                      # issue 15 item 5: outside every code range
                                      "999", "800", "299", "42", "0"])
def test_explain_rejects_what_is_neither_code_nor_text_with_exit_2(argument: str) -> None:
    done = subprocess.run([sys.executable, "-m", "iceprobe", "explain", argument],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("iceprobe: error: ")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("code", ["999", "42"])
def test_a_code_outside_every_range_says_so_and_exits_2(code: str) -> None:
    done = subprocess.run([sys.executable, "-m", "iceprobe", "explain", code],
                          capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"iceprobe: error: Invalid value for CODE_OR_TEXT: {code} is not a "
                           "STUN, TURN or browser error code (STUN and TURN codes run from 300 "
                           "to 699, browser codes from 700 to 799)\n")


@pytest.mark.parametrize("code", ["300", "470", "699", "700", "799"])
def test_a_code_explained_by_its_class_exits_0(code: str) -> None:
    done = subprocess.run([sys.executable, "-m", "iceprobe", "explain", code],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(code)


def code_table(width: int) -> list[str]:
    buffer = io.StringIO()
    render_code_table([*codes.CODES, *codes.CAUSES_701],
                      Console(file=buffer, width=width, color_system=None))
    return buffer.getvalue().splitlines()


def code_rows(lines: list[str]) -> list[str]:
    """The first line of each entry's row (a row starts with its code)."""
    return [line for line in lines if line[:4].strip().isdigit()]


@pytest.mark.parametrize("width", [80, 100, 160])
def test_the_whole_table_is_one_line_a_code_at_80_columns_and_wider(width: int) -> None:
    # issue 15 item 10: `explain` ran to 134 lines at 80 columns.
    entries = [*codes.CODES, *codes.CAUSES_701]
    lines = code_table(width)
    rows = code_rows(lines)
    assert len(lines) == len(entries) + 4  # title, header, rule, footer: nothing wraps
    assert all(len(line.rstrip()) <= width for line in lines)
    for info, row in zip(entries, rows, strict=True):
        reference = re.match(r"RFC \d+|W3C WebRTC", info.reference)
        assert reference is not None
        assert row.split()[0] == str(info.code)
        assert f" {reference.group()} " in row and f" {info.verdict}" in row


@pytest.mark.parametrize("width", [40, 50, 60, 70])
def test_on_a_narrow_terminal_codes_and_verdicts_still_never_split(width: int) -> None:
    entries = [*codes.CODES, *codes.CAUSES_701]
    rows = code_rows(code_table(width))
    assert len(rows) == len(entries)
    for info, row in zip(entries, rows, strict=True):
        assert row.split()[0] == str(info.code) and f" {info.verdict}" in row
        assert "RFC" not in row or re.search(r"RFC \d{4} ", row)


def test_explain_json_via_cli_is_one_document() -> None:
    done = subprocess.run([sys.executable, "-m", "iceprobe", "explain", "486", "--json"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    [entry] = validated(done.stdout, "explain")
    assert entry["verdict"] == "allocation-quota-reached"


def test_explain_imports_neither_aioice_nor_aiortc() -> None:
    code = ("import sys\nfrom iceprobe.cli import main\n"
            "try:\n    main(['explain', '701'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('aioice', 'aiortc')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30)
    assert "HEAVY []" in done.stdout
