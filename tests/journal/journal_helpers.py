"""Shared pieces of the journal tests: a throwaway PostgreSQL database, the backends.

The contract tests (``test_journal.py``) run on every :class:`Backend`; the PostgreSQL
cases (``test_journal_pg.py``) and SQLite's own (``test_journal_sqlite.py``) use the
fixtures and :func:`fill` from here. Fixtures are pulled into a test module by
assigning them to a module-level name of the same name.

PostgreSQL cases need a server (127.0.0.1:5432, trust auth, or ANSIM_TEST_PG_DSN); they
create a database with a random name and drop it at the end, and are skipped, saying
why, when no server answers.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.journal.sqlite import SqliteJournal
from console.journal.store import (
    GENESIS,
    Journal,
    JournalError,
    RecordKind,
    record_hash,
)

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
            conn.execute("DROP TABLE IF EXISTS dead_counts")

    clear()
    yield pg_database
    clear()


# --- one contract, two backends -----------------------------------------------------


class Backend:
    """Opens journals on one store and breaks/heals its writes, per backend."""

    name = ""
    head_path: Path | None = None

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

    def tamper(self, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
        """Run ``sql`` on the store with the append-only guard off, as an intruder would."""
        raise NotImplementedError

    def cut_after(self, seq: int) -> None:
        """Delete every record after ``seq``: a cut tail, a valid shorter chain."""
        self.tamper(f"DELETE FROM journal WHERE seq > {int(seq)}")

    def rewrite_from(self, seq: int, payload: bytes) -> None:
        """Replace record ``seq``'s payload and recompute every hash from there on."""
        before = self.tamper(f"SELECT hash FROM journal WHERE seq = {int(seq) - 1}")
        prev = bytes(before[0][0]) if before else GENESIS
        rows = self.tamper(
            "SELECT seq, ts, kind, topic, payload, reason, key FROM journal "
            f"WHERE seq >= {int(seq)} ORDER BY seq"
        )
        for n, ts, kind, topic, old, reason, key in rows:
            body = payload if n == seq else bytes(old)
            digest = record_hash(prev, n, ts, kind, topic, body, reason, key)
            self.tamper(
                self.placeholders("UPDATE journal SET payload = ?, hash = ? WHERE seq = ?"),
                (body, digest, n),
            )
            prev = digest

    def placeholders(self, sql: str) -> str:
        return sql

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
        self.head_path = Path(f"{path}.head")

    def _open(self) -> Journal:
        return SqliteJournal(self.path)  # its head file: <path>.head, self.head_path

    def break_writes(self, journal: Journal) -> None:
        # A full disk without filling one: no page beyond those in use (SQLITE_FULL).
        conn: sqlite3.Connection = journal._conn  # type: ignore[attr-defined]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")

    def heal(self, journal: Journal) -> None:
        journal._conn.execute("PRAGMA max_page_count = 1073741823")  # type: ignore[attr-defined]

    def tamper(self, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("DROP TRIGGER IF EXISTS journal_no_update")
            conn.execute("DROP TRIGGER IF EXISTS journal_no_delete")
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self, dsn: str, head_path: Path | None = None) -> None:
        super().__init__()
        self.dsn = dsn
        self.head_path = head_path

    def _open(self) -> Journal:
        from console.journal.postgres import PostgresJournal

        return PostgresJournal(self.dsn, head_path=self.head_path)

    def tamper(self, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("ALTER TABLE journal DISABLE TRIGGER journal_no_change")
            try:
                cur = conn.execute(sql.encode(), params)
                return cur.fetchall() if cur.description else []
            finally:
                conn.execute("ALTER TABLE journal ENABLE TRIGGER journal_no_change")

    def placeholders(self, sql: str) -> str:
        return sql.replace("?", "%s")

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
        store = PostgresBackend(request.getfixturevalue("pg_dsn"), tmp_path / "pg.head")
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
