"""The results of `iceprobe serve`, in SQLite.

- WAL mode and a busy timeout, so that two `serve` processes (and `iceprobe results`) can
  share one database file;
- a `schema_version` table, so that a later version can migrate the file;
- one transaction per upload: the upload id is consumed and the result row written together,
  or neither is (a crash or a kill in between leaves nothing);
- the link key (HMAC) is made once and kept in the `meta` table, so that links survive a
  restart and every process on the database verifies the same links.

Nothing here holds a credential: the recording the page uploads never carries one.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 5000
#: An upload id is accepted this long after /config issued it.
UPLOAD_ID_LIFETIME = 24 * 3600
#: Reference codes: letters and digits that cannot be mistaken for one another when read
#: aloud or typed from a screenshot (no 0/O, 1/I/L, 2/Z, 5/S, 8/B).
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS uploads (upload_id TEXT PRIMARY KEY, link_id TEXT NOT NULL,"
    " issued_at REAL NOT NULL, used_at REAL)",
    "CREATE TABLE IF NOT EXISTS results (code TEXT PRIMARY KEY, link_id TEXT NOT NULL,"
    " label TEXT NOT NULL, received_at REAL NOT NULL, browser TEXT, status TEXT NOT NULL,"
    " upload_id TEXT NOT NULL UNIQUE REFERENCES uploads(upload_id),"
    " recording BLOB NOT NULL, analysis TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS results_received ON results (received_at)",
)


class StoreError(Exception):
    """The database cannot be opened or used (one line)."""


class UploadRefused(Exception):
    """An upload id that is unknown, issued for another link, expired or already used."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Summary:
    """One stored result, without its recording and analysis."""

    code: str
    link_id: str
    label: str
    received_at: float
    browser: str | None
    status: str


@dataclass(frozen=True)
class Stored:
    summary: Summary
    recording: bytes
    #: The `iceprobe analyze --json` document of the recording, as text.
    analysis: str


def default_path() -> Path:
    """$XDG_DATA_HOME/iceprobe/results.db, or ~/.local/share/iceprobe/results.db."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return Path(base) / "iceprobe" / "results.db"


def new_code() -> str:
    """A reference code such as K7Q-4MX: 6 characters of 25, about 2.4e8 codes."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))
    return f"{chars[:3]}-{chars[3:]}"


def normal_code(text: str) -> str:
    """A code as a person may type it (lower case, without the dash, with spaces)."""
    chars = "".join(c for c in text.upper() if c.isalnum())
    return f"{chars[:3]}-{chars[3:]}" if len(chars) == 6 else text.strip().upper()


class Store:
    """One connection to the results database (use from one thread)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), isolation_level=None,
                                       timeout=BUSY_TIMEOUT_MS / 1000)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open {str(self.path)!r}: {exc}") from None
        try:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._create()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"{str(self.path)!r} is not an iceprobe results database: "
                             f"{exc}") from None

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _create(self) -> None:
        with self._transaction() as db:
            for statement in _SCHEMA:
                db.execute(statement)
            row = db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"schema version {row[0]} (this iceprobe knows "
                                            f"{SCHEMA_VERSION})")

    @property
    def schema_version(self) -> int:
        version: int = self._db.execute("SELECT version FROM schema_version").fetchone()[0]
        return version

    def link_key(self) -> bytes:
        """The HMAC key of the links: made by the first process that asks, then shared."""
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('link_key', ?)",
                       (secrets.token_bytes(32),))
            key: bytes = db.execute("SELECT value FROM meta WHERE name = 'link_key'"
                                    ).fetchone()[0]
        return key

    def issue_upload(self, link_id: str, now: float | None = None) -> str:
        """A fresh upload id for one page load of a link."""
        upload_id = secrets.token_urlsafe(16)
        with self._transaction() as db:
            db.execute("INSERT INTO uploads VALUES (?, ?, ?, NULL)",
                       (upload_id, link_id, time.time() if now is None else now))
        return upload_id

    def check_upload(self, upload_id: str, link_id: str, now: float | None = None) -> None:
        """UploadRefused unless the id was issued for this link, recently, and is unused."""
        row = self._db.execute("SELECT link_id, issued_at, used_at FROM uploads WHERE "
                               "upload_id = ?", (upload_id,)).fetchone()
        _refusal(row, link_id, time.time() if now is None else now)

    def store_result(self, upload_id: str, summary: Summary, recording: bytes,
                     analysis: str, now: float | None = None) -> Summary:
        """Consume the upload id and store the result in one transaction; the summary as
        stored (with a fresh unique code, whatever `summary.code` was)."""
        now = time.time() if now is None else now
        with self._transaction() as db:
            row = db.execute("SELECT link_id, issued_at, used_at FROM uploads WHERE "
                             "upload_id = ?", (upload_id,)).fetchone()
            _refusal(row, summary.link_id, now)
            db.execute("UPDATE uploads SET used_at = ? WHERE upload_id = ?", (now, upload_id))
            while True:
                code = new_code()
                if db.execute("SELECT 1 FROM results WHERE code = ?", (code,)).fetchone() \
                        is None:
                    break
            stored = Summary(code, summary.link_id, summary.label, summary.received_at,
                             summary.browser, summary.status)
            db.execute("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (stored.code, stored.link_id, stored.label, stored.received_at,
                        stored.browser, stored.status, upload_id, recording, analysis))
        return stored

    def results(self, label: str | None = None) -> list[Summary]:
        """Every result, newest first; only those of one label when it is given."""
        query = "SELECT code, link_id, label, received_at, browser, status FROM results"
        args: tuple[str, ...] = ()
        if label is not None:
            query += " WHERE label = ?"
            args = (label,)
        rows = self._db.execute(query + " ORDER BY received_at DESC, rowid DESC", args)
        return [Summary(*row) for row in rows.fetchall()]

    def result(self, code: str) -> Stored | None:
        row = self._db.execute(
            "SELECT code, link_id, label, received_at, browser, status, recording, analysis "
            "FROM results WHERE code = ?", (normal_code(code),)).fetchone()
        if row is None:
            return None
        return Stored(Summary(*row[:6]), bytes(row[6]), row[7])


def _refusal(row: tuple[str, float, float | None] | None, link_id: str, now: float) -> None:
    if row is None or row[0] != link_id:
        raise UploadRefused("unknown upload_id: reload the test page")
    if row[2] is not None:
        raise UploadRefused("this upload_id was already used: reload the test page")
    if now - row[1] > UPLOAD_ID_LIFETIME:
        raise UploadRefused("this upload_id has expired: reload the test page")
