"""The journal's contract, run against SQLite and PostgreSQL, then SQLite's own cases.

PostgreSQL cases need a server (127.0.0.1:5432, trust auth, or ANSIM_TEST_PG_DSN); they
create a database with a random name and drop it at the end, and are skipped, saying
why, when no server answers.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import console.journal as journal_module
from console.config import JournalConfig
from console.journal import (
    GENESIS,
    Journal,
    JournalError,
    Record,
    RecordKind,
    check_tail,
    open_journal,
    record_hash,
)
from console.journal_sqlite import SqliteJournal

# --- PostgreSQL: a throwaway database for the session -------------------------------

PG_CANDIDATES = [
    os.environ.get("ANSIM_TEST_PG_DSN", ""),
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
    "postgresql://postgres@127.0.0.1:5432/postgres",
]


def _with_dbname(dsn: str, name: str) -> str:
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """DSN of a fresh database on the test server; dropped after the session."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'psycopg[binary]')")
    admin_dsn, errors = "", []
    for dsn in filter(None, PG_CANDIDATES):
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
            admin_dsn = dsn
            break
        except psycopg.Error as exc:
            errors.append(f"{dsn}: {str(exc).strip()}")
    if not admin_dsn:
        pytest.skip("no PostgreSQL server reachable: " + "; ".join(errors))
    name = f"ansim_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_dbname(admin_dsn, name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_dsn(pg_database: str) -> Iterator[str]:
    """The session database with no journal in it, before and after the test."""
    import psycopg

    def clear() -> None:
        with psycopg.connect(pg_database, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS journal")

    clear()
    yield pg_database
    clear()


# --- one contract, two backends -----------------------------------------------------


class Backend:
    """Opens journals on one store and breaks/heals its writes, per backend."""

    name = ""

    def __init__(self) -> None:
        self.opened: list[Journal] = []

    def open(self) -> Journal:
        journal = self._open()
        self.opened.append(journal)
        return journal

    def _open(self) -> Journal:
        raise NotImplementedError

    def break_writes(self, journal: Journal) -> None:
        raise NotImplementedError

    def heal(self, journal: Journal) -> None:
        raise NotImplementedError

    def close_all(self) -> None:
        for journal in self.opened:
            try:
                journal.close()
            except JournalError:
                pass  # a test left it broken on purpose


class SqliteBackend(Backend):
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def _open(self) -> Journal:
        return SqliteJournal(self.path)

    def break_writes(self, journal: Journal) -> None:
        # A full disk without filling one: no page beyond those in use (SQLITE_FULL).
        conn: sqlite3.Connection = journal._conn  # type: ignore[attr-defined]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")

    def heal(self, journal: Journal) -> None:
        journal._conn.execute("PRAGMA max_page_count = 1073741823")  # type: ignore[attr-defined]


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self.dsn = dsn

    def _open(self) -> Journal:
        from console.journal_pg import PostgresJournal

        return PostgresJournal(self.dsn)

    def break_writes(self, journal: Journal) -> None:
        journal._conn.execute("SET default_transaction_read_only = on")  # type: ignore[attr-defined]

    def heal(self, journal: Journal) -> None:
        journal._conn.execute("SET default_transaction_read_only = off")  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    store: Backend
    if request.param == "sqlite":
        store = SqliteBackend(tmp_path / "var" / "journal.db")
    else:
        store = PostgresBackend(request.getfixturevalue("pg_dsn"))
    yield store
    store.close_all()


def fill(
    journal: Journal, n: int, *, start_ts: float = 1000.0, kind: RecordKind = RecordKind.EVENT
) -> list[int]:
    return [
        journal.append(
            start_ts + i, kind, "ansim/v1/raw/sos/dev1", f"p{i}".encode(), key=f"sos:dev1:{i}"
        )
        for i in range(n)
    ]


def test_append_commit_and_read_back_exactly(backend: Backend) -> None:
    j = backend.open()
    payload = bytes(range(256))  # every byte value: raw payloads must come back untouched
    s1 = j.append(1.25, RecordKind.EVENT, "ansim/v1/raw/sos/a", payload, key="sos:a:1")
    s2 = j.append(
        2.5, RecordKind.DEAD, "ansim/v1/raw/x", b"\xc1junk", reason="malformed: tab\there"
    )
    s3 = j.append(3.0, "change", "", b"", reason="inc-1 acknowledged", key="inc-1")  # type: ignore[arg-type]
    assert (s1, s2, s3) == (1, 2, 3)
    assert j.pending() == 3 and j.count() == 0  # reads see committed records only
    j.commit()
    assert j.pending() == 0 and j.count() == 3 and j.committed_seq == 3
    records = list(j.records())
    assert [r.seq for r in records] == [1, 2, 3]
    first, second, third = records
    assert (first.ts, first.kind, first.topic, first.payload, first.key) == (
        1.25,
        RecordKind.EVENT,
        "ansim/v1/raw/sos/a",
        payload,
        "sos:a:1",
    )
    assert (second.kind, second.payload, second.reason) == (
        RecordKind.DEAD,
        b"\xc1junk",
        "malformed: tab\there",
    )
    assert third.kind is RecordKind.CHANGE and third.payload == b""
    # The chain: each record names the one before, and its own hash is recomputable.
    assert first.prev_hash == GENESIS
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert first.hash == record_hash(GENESIS, 1, 1.25, "event", first.topic, payload, "", "sos:a:1")


def test_commit_with_nothing_pending_is_a_no_op(backend: Backend) -> None:
    j = backend.open()
    j.commit()
    assert j.count() == 0 and j.verify().ok


def test_has_key_sees_pending_and_committed(backend: Backend) -> None:
    j = backend.open()
    assert not j.has_key("sos:a:1") and not j.has_key("")
    j.append(1.0, RecordKind.EVENT, "t", b"x", key="sos:a:1")
    assert j.has_key("sos:a:1")  # pending: a resend in the same batch folds too
    j.commit()
    assert j.has_key("sos:a:1") and not j.has_key("sos:a:2")
    j.append(2.0, RecordKind.EVENT, "t", b"x")  # no key: never matches ""
    j.commit()
    assert not j.has_key("")
    j.close()
    again = backend.open()
    assert again.has_key("sos:a:1") and not again.has_key("sos:a:2")


def test_reopen_continues_the_chain(backend: Backend) -> None:
    j = backend.open()
    fill(j, 5)
    j.commit()
    j.close()
    j = backend.open()
    assert j.last_seq == 5 and j.committed_seq == 5
    assert j.append(9.0, RecordKind.SYSTEM, "", b"started") == 6
    j.commit()
    result = j.verify()
    assert result.ok and result.count == 6 and result.head_seq == 6
    assert result.head_hash == next(iter(j.records(after_seq=5))).hash


def test_records_after_seq_and_by_kind_stream_in_order(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "FETCH_CHUNK", 4)  # cross chunk boundaries
    j = backend.open()
    kinds = [RecordKind.EVENT, RecordKind.CHANGE, RecordKind.COMMAND, RecordKind.REPLY] * 6
    for i, kind in enumerate(kinds):
        j.append(float(i), kind, "", str(i).encode())
    j.commit()
    assert [r.seq for r in j.records()] == list(range(1, 25))
    assert [r.seq for r in j.records(after_seq=17)] == list(range(18, 25))
    assert [r.seq for r in j.records(kinds=[RecordKind.CHANGE])] == list(range(2, 25, 4))
    merged = [r.seq for r in j.records(after_seq=5, kinds={RecordKind.COMMAND, RecordKind.EVENT})]
    assert merged == sorted(s for s in range(6, 25) if s % 4 in (1, 3))
    assert list(j.records(kinds=[])) == []
    assert j.count(RecordKind.REPLY) == 6 and j.count(RecordKind.DEAD) == 0 and j.count() == 24


def test_snapshots(backend: Backend) -> None:
    j = backend.open()
    assert j.latest_snapshot() is None
    fill(j, 3)
    j.write_snapshot(10.0, b"state-at-3", upto_seq=3)  # commits the batch with it
    assert j.pending() == 0 and j.count() == 4
    fill(j, 2)
    j.write_snapshot(11.0, b"state-at-6", upto_seq=6)
    snap = j.latest_snapshot()
    assert (
        snap is not None and snap.payload == b"state-at-6" and snap.upto_seq == 6 and snap.seq == 7
    )
    assert [r.seq for r in j.records(after_seq=snap.upto_seq)] == [7]
    with pytest.raises(ValueError, match="ends at 7"):
        j.write_snapshot(12.0, b"future", upto_seq=99)
    with pytest.raises(ValueError, match="not a snapshot"):
        _ = next(j.records()).upto_seq


def test_failed_commit_keeps_the_batch_and_a_later_commit_loses_nothing(backend: Backend) -> None:
    j = backend.open()
    fill(j, 10)
    j.commit()
    backend.break_writes(j)
    seqs = [
        j.append(2000.0 + i, RecordKind.EVENT, "t", os.urandom(400), key=f"k{i}")
        for i in range(300)
    ]
    with pytest.raises(JournalError) as failure:
        j.commit()
    assert failure.value.retryable
    assert any(word in failure.value.reason for word in ("full", "read-only"))
    assert j.pending() == 300 and j.count() == 10 and j.has_key("k7")
    with pytest.raises(JournalError):  # still failing: still kept
        j.commit()
    seqs.append(j.append(3000.0, RecordKind.SYSTEM, "", b"journal alarm raised"))
    assert j.pending() == 301
    backend.heal(j)
    j.commit()
    assert j.pending() == 0 and j.count() == 311
    assert [r.seq for r in j.records(after_seq=10)] == seqs == list(range(11, 312))
    assert j.verify().ok


def test_a_commit_whose_acknowledgement_was_lost_is_not_written_twice(backend: Backend) -> None:
    j = backend.open()
    fill(j, 3)
    # The rows reached the store but the caller never heard (e.g. the connection dropped
    # after COMMIT): the retry must recognise them at the tail.
    rows = list(j._pending)
    j._write(rows, 0, GENESIS)
    j.commit()
    assert j.count() == 3 and j.pending() == 0 and j.verify().ok


def test_a_second_writer_is_refused(backend: Backend) -> None:
    first, second = backend.open(), backend.open()
    fill(first, 2)
    first.commit()
    second.append(5.0, RecordKind.EVENT, "t", b"fork")
    with pytest.raises(JournalError, match="only one core") as refused:
        second.commit()
    assert not refused.value.retryable
    assert first.count() == 2 and first.verify().ok


def test_append_validates_what_no_backend_could_store(backend: Backend) -> None:
    j = backend.open()
    for ts in (math.nan, math.inf):
        with pytest.raises(ValueError, match="finite"):
            j.append(ts, RecordKind.EVENT, "t", b"x")
    with pytest.raises(ValueError, match="key"):
        j.append(1.0, RecordKind.EVENT, "t", b"x", key="a\x00b")
    with pytest.raises(ValueError):
        j.append(1.0, "bogus", "t", b"x")  # type: ignore[arg-type]
    assert j.pending() == 0  # nothing half-appended
    # Descriptive text is made storable rather than refused: a dead letter must be kept.
    j.append(
        1.0, RecordKind.DEAD, "top\x00ic", bytearray(b"\x00raw"), reason="bad \x00 \udcff byte"
    )
    j.append(2.0, RecordKind.EVENT, "t", memoryview(b"mv"), key="clé")
    j.commit()
    dead, event = j.records()
    assert dead.topic == "top\\x00ic" and dead.reason == "bad \\x00 \\udcff byte"
    assert dead.payload == b"\x00raw" and event.payload == b"mv" and j.has_key("clé")


def test_close_commits_what_is_pending_and_closed_means_closed(backend: Backend) -> None:
    j = backend.open()
    fill(j, 4)
    j.close()
    j.close()  # idempotent
    with pytest.raises(JournalError, match="closed"):
        j.append(1.0, RecordKind.EVENT, "t", b"x")
    with pytest.raises(JournalError, match="closed"):
        j.count()
    assert backend.open().count() == 4


def test_commit_in_a_worker_thread_while_appending(backend: Backend) -> None:
    j = backend.open()
    total = 0
    for _ in range(10):
        committer = threading.Thread(target=j.commit)
        committer.start()
        total += len(fill(j, 50, start_ts=float(total)))  # appends race the commit
        committer.join()
    j.commit()
    assert j.count() == total == 500 and j.pending() == 0
    assert j.verify().ok


def test_verify_on_an_empty_journal(backend: Backend) -> None:
    result = backend.open().verify()
    assert result.ok and result.count == 0 and result.head_seq == 0 and "ok" in str(result)


# --- the pieces on their own ----------------------------------------------------------


def test_hash_encoding_is_unambiguous() -> None:
    # Moving bytes from one field to the next must change the hash.
    a = record_hash(GENESIS, 1, 0.0, "event", "ab", b"c", "", "")
    b = record_hash(GENESIS, 1, 0.0, "event", "a", b"bc", "", "")
    assert a != b and len(a) == 32


def test_check_tail() -> None:
    row = (2, 0.0, "event", "", b"", "", "", b"p" * 32, b"h" * 32)
    assert check_tail((1, b"p" * 32), [row], 1, b"p" * 32) is False  # where we left it
    assert check_tail((2, b"h" * 32), [row], 1, b"p" * 32) is True  # already written
    with pytest.raises(JournalError, match="someone else"):
        check_tail((5, b"x" * 32), [row], 1, b"p" * 32)


# --- SQLite: files, tampering, faults --------------------------------------------------


def _raw(path: Path) -> sqlite3.Connection:
    """A plain connection to the file, as someone editing it by hand would have."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER journal_no_update")  # the accident guard, not the defence
    conn.execute("DROP TRIGGER journal_no_delete")
    return conn


@pytest.fixture
def sealed(tmp_path: Path) -> Path:
    """A closed journal of 10 records, seq 1..10."""
    path = tmp_path / "journal.db"
    with SqliteJournal(path) as j:
        fill(j, 10)
    return path


def test_sqlite_creates_parent_directories_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "journal.db"
    with SqliteJournal(path) as j:
        assert j._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert j._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert path.is_file()


def test_sqlite_triggers_refuse_updates_and_deletes(sealed: Path) -> None:
    conn = sqlite3.connect(sealed)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE journal SET payload = x'00' WHERE seq = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM journal WHERE seq = 1")
    conn.close()


def _verify(path: Path) -> Any:
    with SqliteJournal(path) as j:
        return j.verify()


def test_verify_finds_a_changed_payload(sealed: Path) -> None:
    _raw(sealed).execute("UPDATE journal SET payload = x'6576696c' WHERE seq = 4")
    result = _verify(sealed)
    assert not result.ok and result.first_bad_seq == 4 and "do not match its hash" in result.reason
    assert result.head_seq == 3 and "record 4" in str(result)


def test_verify_finds_a_changed_time_even_with_its_hash_recomputed(sealed: Path) -> None:
    conn = _raw(sealed)
    prev, ts, kind, topic, payload, reason, key = conn.execute(
        "SELECT prev_hash, ts, kind, topic, payload, reason, key FROM journal WHERE seq = 6"
    ).fetchone()
    forged = record_hash(prev, 6, ts - 60, kind, topic, payload, reason, key)
    conn.execute("UPDATE journal SET ts = ?, hash = ? WHERE seq = 6", (ts - 60, forged))
    result = _verify(sealed)  # the next record still names the old hash
    assert not result.ok and result.first_bad_seq == 7 and "prev_hash" in result.reason


def test_verify_finds_a_deleted_record(sealed: Path) -> None:
    _raw(sealed).execute("DELETE FROM journal WHERE seq IN (5, 6)")
    result = _verify(sealed)
    assert not result.ok and result.first_bad_seq == 7 and "5–6" in result.reason


def test_verify_finds_reordered_records(sealed: Path) -> None:
    conn = _raw(sealed)
    conn.execute("UPDATE journal SET seq = -3 WHERE seq = 3")
    conn.execute("UPDATE journal SET seq = 3 WHERE seq = 8")
    conn.execute("UPDATE journal SET seq = 8 WHERE seq = -3")
    result = _verify(sealed)
    assert not result.ok and result.first_bad_seq == 3


def test_sqlite_read_only_is_a_retryable_failure(tmp_path: Path) -> None:
    j = SqliteJournal(tmp_path / "journal.db")
    fill(j, 3)
    j._conn.execute("PRAGMA query_only = ON")  # root ignores file modes; SQLite does not
    with pytest.raises(JournalError, match="read-only") as failure:
        j.commit()
    assert failure.value.retryable and j.pending() == 3
    j._conn.execute("PRAGMA query_only = OFF")
    j.commit()
    assert j.count() == 3 and j.verify().ok
    j.close()


def test_sqlite_refuses_a_file_that_is_not_a_journal(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_bytes(b"these are not the records you are looking for\n" * 100)
    with pytest.raises(JournalError, match="not an Ansim journal"):
        SqliteJournal(text)
    assert text.read_bytes().startswith(b"these are not")  # untouched
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE journal (x)")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="not an Ansim journal"):
        SqliteJournal(other)
    with pytest.raises(JournalError):
        SqliteJournal(tmp_path)  # a directory


def test_sqlite_in_memory_for_tests_of_the_core() -> None:
    with SqliteJournal(":memory:") as j:
        fill(j, 3)
        j.commit()
        assert j.count() == 3 and j.verify().ok


def test_open_journal_from_config(tmp_path: Path) -> None:
    cfg = JournalConfig(path=str(tmp_path / "cfg" / "journal.db"))
    with open_journal(cfg) as j:
        assert isinstance(j, SqliteJournal) and j.path == tmp_path / "cfg" / "journal.db"
    with open_journal(cfg, path_override=str(tmp_path / "other.db")) as j:
        assert isinstance(j, SqliteJournal) and j.path == tmp_path / "other.db"


def test_records_are_immutable() -> None:
    record = Record(1, 0.0, RecordKind.EVENT, "", b"")
    with pytest.raises(AttributeError):
        record.seq = 2  # type: ignore[misc]


def test_sqlite_a_really_full_disk_then_space_again(tmp_path: Path) -> None:
    """The real thing, on a 1 MB tmpfs, where the machine lets us mount one (root, Linux)."""
    import subprocess

    mount = tmp_path / "tiny"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    try:
        j = SqliteJournal(mount / "journal.db")
        with pytest.raises(JournalError, match="disk is full") as failure:
            for _ in range(100):
                for i in range(200):
                    j.append(float(i), RecordKind.EVENT, "t", os.urandom(300), key=f"k{j.last_seq}")
                j.commit()
        assert failure.value.retryable and j.pending() == 200
        appended = j.last_seq
        subprocess.run(["mount", "-o", "remount,size=16m", str(mount)], check=True)
        j.commit()
        assert j.count() == appended and j.pending() == 0 and j.verify().ok
        j.close()
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
