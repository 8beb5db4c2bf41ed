"""SQLite's own journal cases: files, tampering found by verify, faults.

The contract shared with PostgreSQL is in test_journal.py.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from console.config import JournalConfig
from console.journal.sqlite import SqliteJournal
from console.journal.store import (
    JournalError,
    Record,
    RecordKind,
    open_journal,
    record_hash,
)
from tests.journal.journal_helpers import fill


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
    (prev,) = conn.execute("SELECT hash FROM journal WHERE seq = 5").fetchone()
    ts, kind, topic, payload, reason, key = conn.execute(
        "SELECT ts, kind, topic, payload, reason, key FROM journal WHERE seq = 6"
    ).fetchone()
    forged = record_hash(prev, 6, ts - 60, kind, topic, payload, reason, key)
    conn.execute("UPDATE journal SET ts = ?, hash = ? WHERE seq = 6", (ts - 60, forged))
    result = _verify(sealed)  # the next record's hash covers the old one
    assert not result.ok and result.first_bad_seq == 7
    assert "or the record before it was" in result.reason


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
