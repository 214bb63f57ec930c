"""The results store of `iceprobe serve`: a real SQLite file, WAL, a schema version, one key
for the links, upload ids accepted once, and no partial row when a write fails or its
process is killed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iceprobe.serve.judge import envelope, judge
from iceprobe.serve.store import (
    CODE_ALPHABET,
    SCHEMA_VERSION,
    Store,
    StoreError,
    Summary,
    UploadRefused,
    default_path,
    new_code,
    normal_code,
)
from tests.serve_uploads import events, upload

STUN, TURN = "stun:198.18.0.10:3478", "turn:198.18.0.10:3478?transport=udp"


def _summary(link_id: str = "link-1", label: str = "ticket 1") -> Summary:
    return Summary("", link_id, label, time.time(), "Chromium 156", "pass")


def test_a_new_database_has_wal_a_schema_version_and_the_tables(tmp_path: Path) -> None:
    store = Store(tmp_path / "sub" / "results.db")
    assert store.schema_version == SCHEMA_VERSION
    store.close()
    db = sqlite3.connect(tmp_path / "sub" / "results.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"schema_version", "meta", "uploads", "results"} <= tables


def test_the_default_path_is_under_the_users_data_directory(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_path() == tmp_path / "iceprobe" / "results.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_path() == tmp_path / ".local" / "share" / "iceprobe" / "results.db"


def test_a_database_of_a_later_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "r.db").close()
    db = sqlite3.connect(tmp_path / "r.db")
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema version 99"):
        Store(tmp_path / "r.db")


def test_a_file_that_is_no_database_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"not sqlite " * 100)
    with pytest.raises(StoreError, match="not an iceprobe results database"):
        Store(tmp_path / "junk.db")


def test_the_link_key_is_made_once_and_shared_by_two_connections(tmp_path: Path) -> None:
    first, second = Store(tmp_path / "r.db"), Store(tmp_path / "r.db")
    key = first.link_key()
    assert len(key) == 32
    assert second.link_key() == key
    first.close()
    assert Store(tmp_path / "r.db").link_key() == key  # survives a restart


def test_an_upload_id_is_accepted_once_and_only_for_its_link(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    upload_id = store.issue_upload("link-1")
    with pytest.raises(UploadRefused, match="unknown"):
        store.check_upload(upload_id, "link-2")
    with pytest.raises(UploadRefused, match="unknown"):
        store.check_upload("never-issued", "link-1")
    store.check_upload(upload_id, "link-1")
    stored = store.store_result(upload_id, _summary(), b"{}", "{}")
    with pytest.raises(UploadRefused, match="already used"):
        store.check_upload(upload_id, "link-1")
    with pytest.raises(UploadRefused, match="already used"):
        store.store_result(upload_id, _summary(), b"{}", "{}")
    assert [s.code for s in store.results()] == [stored.code]


def test_an_old_upload_id_has_expired(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    upload_id = store.issue_upload("link-1", now=time.time() - 2 * 86400)
    with pytest.raises(UploadRefused, match="expired"):
        store.check_upload(upload_id, "link-1")


def test_a_failing_insert_leaves_no_row_and_the_upload_id_unused(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    upload_id = store.issue_upload("link-1")
    # A status that is not text (a list) makes the INSERT itself fail, after the UPDATE
    # that consumed the upload id ran inside the same transaction.
    broken = Summary("", "link-1", "x", time.time(), None, ["not", "text"])  # type: ignore[arg-type]
    with pytest.raises(sqlite3.Error):
        store.store_result(upload_id, broken, b"{}", "{}")
    assert store.results() == []
    store.check_upload(upload_id, "link-1")  # still unused: the UPDATE was rolled back
    store.store_result(upload_id, _summary(), b"{}", "{}")
    assert len(store.results()) == 1


_WRITER = """
import sys, time
from iceprobe.serve.store import Store, Summary
store = Store(sys.argv[1])
blob = b"x" * 4_000_000
for n in range(10_000):
    upload_id = store.issue_upload("link-1")
    store.store_result(upload_id, Summary("", "link-1", f"n{n}", time.time(), None, "pass"),
                       blob, '{"n": %d}' % n)
    if n == 3:
        print("writing", flush=True)
"""


def test_killing_a_writer_mid_way_leaves_whole_rows_and_a_sound_database(
        tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    Store(path).close()
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)],
                              stdout=subprocess.PIPE, env={**os.environ})
    assert writer.stdout is not None
    assert writer.stdout.readline() == b"writing\n"
    time.sleep(0.3)  # somewhere inside a 4 MB write
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = db.execute("SELECT length(recording), analysis, upload_id FROM results").fetchall()
    assert len(rows) >= 4
    assert all(length == 4_000_000 for length, _, _ in rows)
    used = {r[0] for r in db.execute("SELECT upload_id FROM uploads WHERE used_at IS NOT NULL")}
    assert used == {upload_id for _, _, upload_id in rows}  # consumed exactly when stored


def test_codes_are_short_unambiguous_and_read_as_typed(tmp_path: Path) -> None:
    codes = {new_code() for _ in range(2000)}
    assert len(codes) > 1990
    for code in codes:
        assert len(code) == 7 and code[3] == "-"
        assert set(code.replace("-", "")) <= set(CODE_ALPHABET)
    assert not set("0O1IL2Z5S8B") & set(CODE_ALPHABET)
    assert normal_code("k7q4mx") == "K7Q-4MX"
    assert normal_code(" k7q-4mx ") == "K7Q-4MX"


def test_results_are_newest_first_and_filtered_by_label(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    made = []
    for number, label in enumerate(["a", "b", "a"]):
        summary = Summary("", "l", label, 1000.0 + number, None, "pass")
        made.append(store.store_result(store.issue_upload("l"), summary, b"{}", "{}"))
    assert [s.code for s in store.results()] == [m.code for m in reversed(made)]
    assert [s.code for s in store.results("a")] == [made[2].code, made[0].code]
    found = store.result(made[1].code.lower().replace("-", ""))
    assert found is not None and found.summary == made[1]


def test_a_judged_upload_stores_its_recording_and_analysis(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    upload_id = store.issue_upload("link-1")
    data = upload(upload_id, events(STUN, TURN, turn_error=(401, "Unauthorized")))
    judged = judge(data, envelope(data))
    assert judged.status == "fail"
    assert judged.browser == "Chromium 156"
    ids = {v["id"] for s in judged.document["sessions"] for v in s["verdicts"]}
    assert "turn-credentials-rejected" in ids, ids
