"""The record's format: one hash a record, partial indexes, and journals of format 1.

Format 2 stores each record's hash only (the previous one is the row before) and
indexes by kind only the kinds read by kind. Format 1 (prev_hash stored, every record
indexed by kind) hashes alike, so its journals are read, verified and extended as they
are, in both backends.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from console.core.rebuild import REPLAYED
from console.journal.head import check_at_start
from console.journal.sqlite import SqliteJournal
from console.journal.store import GENESIS, JournalError, RecordKind, record_hash
from tests.journal import journal_helpers
from tests.journal.journal_helpers import fill

pg_database = journal_helpers.pg_database
pg_dsn = journal_helpers.pg_dsn

# Format 1 as Ansim wrote it until format 2 (console/journal/sqlite.py, user_version 1).
_SQLITE_V1 = """
CREATE TABLE journal (
    seq INTEGER PRIMARY KEY, ts REAL NOT NULL, kind TEXT NOT NULL, topic TEXT NOT NULL,
    payload BLOB NOT NULL, reason TEXT NOT NULL, key TEXT NOT NULL,
    prev_hash BLOB NOT NULL, hash BLOB NOT NULL
);
CREATE INDEX journal_key ON journal (key) WHERE key <> '';
CREATE INDEX journal_kind ON journal (kind, seq);
CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
PRAGMA application_id = 1097749297;
PRAGMA user_version = 1;
"""

_PG_V1 = """
CREATE TABLE journal (
    seq BIGINT PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL,
    topic TEXT NOT NULL, payload BYTEA NOT NULL, reason TEXT NOT NULL, key TEXT NOT NULL,
    prev_hash BYTEA NOT NULL, hash BYTEA NOT NULL
);
CREATE INDEX journal_key ON journal (key) WHERE key <> '';
CREATE INDEX journal_kind ON journal (kind, seq);
COMMENT ON TABLE journal IS 'ansim journal v1';
"""


def _v1_rows(n: int) -> list[tuple[Any, ...]]:
    """n format-1 rows: (seq, ts, kind, topic, payload, reason, key, prev_hash, hash)."""
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        fields = (float(seq), "event", "ansim/v1/raw/sos/old", b"old %d" % seq, "", f"old:{seq}")
        digest = record_hash(prev, seq, *fields)
        rows.append((seq, *fields, prev, digest))
        prev = digest
    return rows


def _check_extended(journal: Any, rows: list[tuple[Any, ...]]) -> None:
    """A format-1 journal of ``rows`` reads, verifies and takes new records like format 2."""
    n = len(rows)
    assert journal.format == 1
    assert journal.verify().ok and journal.verify().count == n
    assert journal.has_key(f"old:{n}") and not journal.has_key("never")
    assert [r.hash for r in journal.records()] == [row[8] for row in rows]
    fill(journal, 3)
    journal.write_snapshot(5000.0, b"state", upto_seq=n + 3)
    latest = journal.latest_snapshot()
    assert latest is not None and latest.upto_seq == n + 3
    assert journal.verify().ok and journal.count() == n + 4
    assert [r.seq for r in journal.records(after_seq=n, kinds=REPLAYED)] == [n + 1, n + 2, n + 3]


def _chain_of_prev_hashes(rows: list[tuple[Any, ...]]) -> bool:
    """Each stored prev_hash (format 1) is the stored hash of the row before."""
    prev = GENESIS
    for prev_hash, digest in rows:
        if bytes(prev_hash) != prev:
            return False
        prev = bytes(digest)
    return True


# --- SQLite -------------------------------------------------------------------------


def _columns(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[1] for row in conn.execute("PRAGMA table_info(journal)")]


def test_a_new_journal_stores_one_hash_a_record(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with SqliteJournal(path) as j:
        fill(j, 3)
    assert "prev_hash" not in _columns(path) and "hash" in _columns(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2


def test_the_indexes_hold_only_keyed_rows_and_the_kinds_read_by_kind(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with SqliteJournal(path) as j:
        for i in range(200):  # keyless records (positions) beside keyed ones
            j.append(float(i), RecordKind.EVENT, "t", b"p", key=f"k{i}" if i % 4 == 0 else "")
        j.dead_letter(300.0, "ansim/v1/raw/x/y", b"junk", "malformed")
        j.write_snapshot(301.0, b"state", upto_seq=200)
    with sqlite3.connect(path) as conn:

        def entries(index: str) -> int:
            # count(*) through the index alone: its number of entries.
            where = "key <> ''" if index == "journal_key" else "kind IN ('dead', 'snapshot')"
            sql = f"SELECT count(*) FROM journal INDEXED BY {index} WHERE {where}"
            return int(conn.execute(sql).fetchone()[0])

        def plan(sql: str, *params: object) -> str:
            rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
            return " ".join(str(row[-1]) for row in rows)

        # 50 keyed events and the snapshot (its key is its upto_seq); nothing keyless.
        assert entries("journal_key") == 51 and entries("journal_kind") == 2
        assert "journal_key" in plan("SELECT 1 FROM journal WHERE key = ? AND key <> ''", "k4")
    with SqliteJournal(path) as j:
        latest = j.latest_snapshot()
        assert latest is not None and latest.upto_seq == 200
        assert [r.kind for r in j.records(kinds={RecordKind.DEAD})] == [RecordKind.DEAD]
        assert j.count(RecordKind.DEAD) == 1 and j.count(RecordKind.EVENT) == 200
        assert len(list(j.records(kinds={RecordKind.DEAD, RecordKind.SNAPSHOT}))) == 2


def test_reads_by_kind_use_the_partial_index_or_a_range_of_seq(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    seen: list[str] = []
    with SqliteJournal(path) as j:
        fill(j, 5)
        j.write_snapshot(9.0, b"state", upto_seq=5)
        j._conn.set_trace_callback(seen.append)
        j.latest_snapshot()
        list(j.records(kinds={RecordKind.DEAD}))
        list(j.records(after_seq=2, kinds=REPLAYED))
        plans = [
            " ".join(str(r[-1]) for r in j._conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
            for sql in seen
            if sql.startswith("SELECT")
        ]
    snapshot, dead, replayed = plans
    assert "journal_kind" in snapshot and "journal_kind" in dead
    assert "INTEGER PRIMARY KEY" in replayed and "journal_kind" not in replayed


def test_a_format_1_journal_is_read_verified_and_extended(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    rows = _v1_rows(20)
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.executescript(_SQLITE_V1)
        conn.executemany("INSERT INTO journal VALUES (?,?,?,?,?,?,?,?,?)", rows)
    with SqliteJournal(path) as j:
        assert check_at_start(j).checked == 20
        _check_extended(j, rows)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1  # left in its format
        stored = conn.execute("SELECT prev_hash, hash FROM journal ORDER BY seq").fetchall()
    assert len(stored) == 24 and _chain_of_prev_hashes(stored)
    with SqliteJournal(path) as j:
        start = check_at_start(j)  # from the point verified at the last start
        assert (start.from_seq, start.checked, start.head_seq, start.warning) == (20, 4, 24, "")


def test_a_journal_of_an_unknown_format_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with SqliteJournal(path) as j:
        fill(j, 2)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 3")
    with pytest.raises(JournalError) as refused:
        SqliteJournal(path)
    assert str(path) in refused.value.reason and "format 3" in refused.value.reason
    assert "formats 1 and 2" in refused.value.reason


def test_format_1_tampering_is_still_found(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.executescript(_SQLITE_V1)
        conn.executemany("INSERT INTO journal VALUES (?,?,?,?,?,?,?,?,?)", _v1_rows(10))
        conn.execute("DROP TRIGGER journal_no_update")
        conn.execute("UPDATE journal SET payload = x'00' WHERE seq = 4")
    with SqliteJournal(path) as j:
        result = j.verify()
    assert not result.ok and result.first_bad_seq == 4


# --- PostgreSQL ---------------------------------------------------------------------


def test_a_format_1_postgres_journal_is_read_verified_and_extended(pg_dsn: str) -> None:
    import psycopg

    from console.journal.postgres import PostgresJournal

    rows = _v1_rows(20)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(_PG_V1)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO journal VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)", rows)
    journal = PostgresJournal(pg_dsn)
    try:
        _check_extended(journal, rows)
    finally:
        journal.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        stored = conn.execute("SELECT prev_hash, hash FROM journal ORDER BY seq").fetchall()
        comment = conn.execute("SELECT obj_description('journal'::regclass)").fetchone()
    assert len(stored) == 24 and _chain_of_prev_hashes(stored)
    assert comment == ("ansim journal v1",)


def test_a_new_postgres_journal_stores_one_hash_a_record(pg_dsn: str) -> None:
    import psycopg

    from console.journal.postgres import PostgresJournal

    journal = PostgresJournal(pg_dsn)
    try:
        fill(journal, 3)
        journal.commit()
        assert journal.format == 2 and journal.verify().ok
    finally:
        journal.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        columns = [
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'journal'"
            )
        ]
        indexes: dict[str, str] = dict(
            conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'journal'"
            ).fetchall()
        )
    assert "prev_hash" not in columns and "hash" in columns
    assert "WHERE (key <> ''::text)" in indexes["journal_key"]
    assert "WHERE (kind = ANY" in indexes["journal_kind"]
