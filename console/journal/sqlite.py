"""The embedded journal: one SQLite file in WAL mode, one append-only table.

Durability: ``journal_mode=WAL`` with ``synchronous=FULL``, so every COMMIT fsyncs the
WAL before it returns. ``NORMAL`` would be faster but may lose the last transactions
on power loss, after the broker was told they were received; a commit's fsync costs
about half a millisecond here, once per batch, which batching already amortises.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from console.journal.chain import (
    GENESIS,
    HASH,
    INDEXED_CONDITION,
    JournalError,
    Row,
    check_tail,
    kinds_where,
)
from console.journal.dead import DeadCount
from console.journal.key_filter import stream_keys
from console.journal.store import Journal

APPLICATION_ID: Final = 0x416E5331  # "AnS1" in the SQLite header: this file is an Ansim journal
SCHEMA_VERSION: Final = 2  # PRAGMA user_version of the journals this Ansim creates
# Format 1 (before 2026-12) also stored each record's previous hash (prev_hash) and
# indexed every record by kind. Its hashes are the same, so it is read as it is and
# written as before: the column is filled, the index kept.
FORMAT_1: Final = 1

_COLUMNS: Final = "seq, ts, kind, topic, payload, reason, key, hash"
_INSERT: Final = f"INSERT INTO journal ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)"
_INSERT_1: Final = (
    "INSERT INTO journal (seq, ts, kind, topic, payload, reason, key, prev_hash, hash) "
    "VALUES (?,?,?,?,?,?,?,?,?)"
)

# Dead letters counted instead of stored (console.journal.dead), one row per source,
# updated in the commit's transaction. A counter, so not append-only; not deletable.
# In its own string: journals made before it get the table when next opened.
_COUNTS_SCHEMA: Final = """
CREATE TABLE dead_counts (
    source     TEXT    PRIMARY KEY,
    suppressed INTEGER NOT NULL,
    bytes      INTEGER NOT NULL,
    first_ts   REAL    NOT NULL,
    last_ts    REAL    NOT NULL
);
CREATE TRIGGER dead_counts_no_delete BEFORE DELETE ON dead_counts
    BEGIN SELECT RAISE(ABORT, 'the dead-letter counts are append-only'); END;
"""

_SCHEMA: Final = f"""
CREATE TABLE journal (
    seq       INTEGER PRIMARY KEY,  -- the rowid: appends go to the end of the b-tree
    ts        REAL    NOT NULL,
    kind      TEXT    NOT NULL,
    topic     TEXT    NOT NULL,
    payload   BLOB    NOT NULL,
    reason    TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    hash      BLOB    NOT NULL      -- sha256 of the previous record's hash and this record
);
-- Partial: only records with a key are looked up, and a random-order key costs a dirty
-- index page per insert, so records without one (positions, most changes) skip it.
CREATE INDEX journal_key ON journal (key) WHERE key <> '';
-- Partial too: only the kinds read by kind alone (snapshots, dead letters); the rest are
-- read as ranges of seq, and an index entry would cost every event and command.
CREATE INDEX journal_kind ON journal (kind, seq) WHERE {INDEXED_CONDITION};
-- Append-only, also against a slip at the sqlite3 prompt (not against intent: the hash
-- chain is what shows a deliberate edit).
CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
{_COUNTS_SCHEMA}
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""

_ADD_COUNTS: Final = """
INSERT INTO dead_counts (source, suppressed, bytes, first_ts, last_ts) VALUES (?,?,?,?,?)
ON CONFLICT (source) DO UPDATE SET
    suppressed = suppressed + excluded.suppressed,
    bytes = bytes + excluded.bytes,
    first_ts = min(first_ts, excluded.first_ts),
    last_ts = max(last_ts, excluded.last_ts)
"""

_RESTORE: Final = "restore it from a backup, or move it aside to start a new journal"

# SQLite primary result codes worth a sentence of their own: what is wrong, whether a
# retry may get past it, and what a person should do.
_REASONS: Final = {
    sqlite3.SQLITE_FULL: ("the disk is full", True, "free space on its disk"),
    sqlite3.SQLITE_READONLY: (
        "the journal is read-only",
        True,
        "make the file and its directory writable",
    ),
    sqlite3.SQLITE_IOERR: ("disk I/O error", True, "check the disk"),
    sqlite3.SQLITE_BUSY: (
        "the journal is locked by another process",
        True,
        "stop the other process",
    ),
    sqlite3.SQLITE_CANTOPEN: (
        "cannot open the journal file",
        True,
        "check the path and its permissions",
    ),
    sqlite3.SQLITE_CORRUPT: ("the journal file is damaged", False, _RESTORE),
    sqlite3.SQLITE_NOTADB: (
        "it is not an Ansim journal, nor any SQLite database (damaged, or another file)",
        False,
        "check [journal] path; " + _RESTORE,
    ),
}


def _explain(path: Path | str, action: str, exc: sqlite3.Error) -> JournalError:
    code = getattr(exc, "sqlite_errorcode", None)
    reason, retryable, todo = _REASONS.get((code or 0) & 0xFF, ("", False, ""))
    detail = f"{reason} ({exc}); {todo}" if reason else str(exc)
    return JournalError(f"journal {path}: cannot {action}: {detail}", retryable=retryable)


class SqliteJournal(Journal):
    """``head_path``: the head file (console.journal.head); ``<path>.head`` by default."""

    def __init__(self, path: Path | str, *, head_path: Path | None = None) -> None:
        memory = str(path) == ":memory:"  # for tests of the core: no file, same behaviour
        if not memory and head_path is None:
            head_path = Path(f"{path}.head")
        super().__init__(head_path)
        self.path = Path(path)
        self.where = str(path)
        self.format = SCHEMA_VERSION  # what the file holds: read at open (_setup)
        try:
            if not memory:
                self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(f"journal {path}: cannot create its directory: {exc}") from None
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread off:
            # the core may commit from a worker thread; the base class serialises use.
            self._conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=5.0
            )
        except sqlite3.Error as exc:
            raise _explain(path, "open", exc) from None
        try:
            self._setup(memory)
            self._start_chain()
        except sqlite3.Error as exc:
            self._conn.close()
            raise _explain(path, "open", exc) from None
        except BaseException:
            self._conn.close()
            raise

    def _setup(self, memory: bool) -> None:
        conn, path = self._conn, self.path
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise _explain(path, "open", exc) from None
        if app_id == 0 and tables == 0:
            try:
                conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
            except sqlite3.Error as exc:
                raise _explain(path, "create the journal", exc) from None
        elif app_id != APPLICATION_ID:
            raise JournalError(
                f"journal {path}: cannot open: it is an SQLite database but not an Ansim "
                f"journal (application_id {app_id:#x}); refusing to write to it: check "
                "[journal] path"
            )
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (FORMAT_1, SCHEMA_VERSION):
            raise JournalError(
                f"journal {path}: cannot open: it is an Ansim journal of format {version}; "
                f"this Ansim reads formats {FORMAT_1} and {SCHEMA_VERSION}: run the Ansim "
                "that wrote it"
            )
        self.format = int(version)
        self._counts = self._has_counts()
        if not self._counts and not memory:
            try:
                conn.executescript(f"BEGIN IMMEDIATE;{_COUNTS_SCHEMA}COMMIT;")
                self._counts = True
            except sqlite3.Error:
                # A read-only copy can still be verified; it just has no counts to show.
                self._rollback()
        if not memory:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalError(f"journal {path}: cannot switch to WAL mode (got {mode})")
        # FULL: fsync the WAL at every commit (see the module docstring for why not NORMAL).
        conn.execute("PRAGMA synchronous = FULL")
        # Checkpoint every 32 MB of WAL rather than 4 MB: random key-index pages dirtied by
        # many commits are then copied into the database once, not once per few commits.
        conn.execute("PRAGMA wal_autocheckpoint = 8192")
        # ...and cut the WAL back after a checkpoint, so it does not stay at its peak size.
        conn.execute("PRAGMA journal_size_limit = 67108864")
        # 32 MB of page cache keeps the hot part of the key index out of the read path.
        conn.execute("PRAGMA cache_size = -32768")

    # --- storage primitives -----------------------------------------------------------

    def _has_counts(self) -> bool:
        sql = "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'dead_counts'"
        return bool(self._conn.execute(sql).fetchall())

    def _write(
        self,
        rows: Sequence[Row],
        after_seq: int,
        after_hash: bytes,
        counts: Mapping[str, DeadCount] | None = None,
    ) -> None:
        conn = self._conn
        try:
            # IMMEDIATE: take the write lock now, so the tail we check is the tail we extend.
            conn.execute("BEGIN IMMEDIATE")
            if not check_tail(self._tail(), rows, after_seq, after_hash):
                if self.format == FORMAT_1:
                    conn.executemany(_INSERT_1, _with_prev_hash(rows, after_hash))
                else:
                    conn.executemany(_INSERT, rows)
                if counts:
                    if not self._counts:
                        conn.executescript(_COUNTS_SCHEMA)  # ":memory:" journals, made lazily
                        self._counts = True
                    conn.executemany(_ADD_COUNTS, _count_rows(counts))
            conn.execute("COMMIT")
        except BaseException as exc:
            self._rollback()
            if isinstance(exc, sqlite3.Error):
                raise _explain(self.path, f"commit {len(rows)} records", exc) from None
            raise

    def _rollback(self) -> None:
        # SQLite may already have rolled back (SQLITE_FULL can end the transaction).
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # nothing more to undo; the original error is the one to report

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _explain(self.path, "read", exc) from None

    def _fetch(self, after_seq: int, kinds: tuple[str, ...] | None, limit: int) -> list[Row]:
        if kinds is None:
            sql = f"SELECT {_COLUMNS} FROM journal WHERE seq > ? ORDER BY seq LIMIT ?"
            return self._query(sql, (after_seq, limit))
        where = kinds_where(kinds, "?")
        sql = f"SELECT {_COLUMNS} FROM journal WHERE {where} AND seq > ? ORDER BY seq LIMIT ?"
        return self._query(sql, (*kinds, after_seq, limit))

    def _stored_key(self, key: str) -> bool:
        # "key <> ''" repeated so SQLite may use the partial index.
        sql = "SELECT 1 FROM journal WHERE key = ? AND key <> '' LIMIT 1"
        return bool(self._query(sql, (key,)))

    def _stored_keys(self, after_seq: int = 0, upto: int | None = None) -> Iterator[str]:
        return stream_keys(self._query, "?", after_seq, upto)

    def _count(self, kind: str | None) -> int:
        if kind is None:
            # max(seq) would do for an intact journal; count(*) tells the truth for any.
            return int(self._query("SELECT count(*) FROM journal")[0][0])
        sql = f"SELECT count(*) FROM journal WHERE {kinds_where((kind,), '?')}"
        return int(self._query(sql, (kind,))[0][0])

    def _latest(self, kind: str) -> Row | None:
        where = kinds_where((kind,), "?")
        sql = f"SELECT {_COLUMNS} FROM journal WHERE {where} ORDER BY seq DESC LIMIT 1"
        rows = self._query(sql, (kind,))
        return rows[0] if rows else None

    def _dead_counts(self) -> list[tuple[str, int, int, float, float]]:
        if not self._counts:
            return []
        sql = "SELECT source, suppressed, bytes, first_ts, last_ts FROM dead_counts"
        return self._query(sql + " ORDER BY source")

    def _tail(self) -> tuple[int, bytes]:
        rows = self._query("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1")
        if not rows:
            return 0, GENESIS
        seq, digest = rows[0]
        if not isinstance(seq, int) or not isinstance(digest, bytes):
            raise JournalError(
                f"journal {self.path}: its last record ({seq!r}) has a damaged seq or hash "
                "(edited by hand?): check it with `ansim journal verify`"
            )
        return seq, digest

    def _close(self) -> None:
        self._conn.close()


def _with_prev_hash(rows: Sequence[Row], after_hash: bytes) -> Iterator[tuple[object, ...]]:
    """Rows as format 1 stores them: each with its previous record's hash before its own."""
    prev = after_hash
    for row in rows:
        yield (*row[:HASH], prev, row[HASH])
        prev = row[HASH]


def _count_rows(counts: Mapping[str, DeadCount]) -> list[tuple[str, int, int, float, float]]:
    return [(s, c.suppressed, c.bytes, c.first_ts, c.last_ts) for s, c in counts.items()]
