"""PostgreSQL's own journal cases (the shared contract is in test_journal.py).

Needs a server on 127.0.0.1:5432 with trust auth (or ANSIM_TEST_PG_DSN); skipped,
saying why, when none answers. The database has a random name and is dropped after.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from console.config import JournalConfig
from console.journal.store import JournalError, RecordKind, open_journal
from tests.journal import journal_helpers

psycopg = pytest.importorskip(
    "psycopg", reason="psycopg is not installed (pip install 'psycopg[binary]')"
)

from console.journal.postgres import PostgresJournal, _safe_dsn  # noqa: E402  (needs psycopg)

# The same throwaway-database fixtures as the contract tests.
pg_database = journal_helpers.pg_database
pg_dsn = journal_helpers.pg_dsn


@pytest.fixture
def pgj(pg_dsn: str) -> Iterator[PostgresJournal]:
    journal = PostgresJournal(pg_dsn)
    yield journal
    try:
        journal.close()
    except JournalError:
        pass  # a test left it broken on purpose


def _admin(dsn: str) -> Any:
    return psycopg.connect(dsn, autocommit=True)


def test_verify_finds_tampering_in_postgres(pgj: PostgresJournal, pg_dsn: str) -> None:
    journal_helpers.fill(pgj, 8)
    pgj.commit()
    with _admin(pg_dsn) as conn:
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute("UPDATE journal SET payload = '\\x00' WHERE seq = 2")
        conn.execute("ALTER TABLE journal DISABLE TRIGGER journal_no_change")
        conn.execute("UPDATE journal SET payload = '\\x6576696c' WHERE seq = 5")
    result = pgj.verify()
    assert not result.ok and result.first_bad_seq == 5 and "hash" in result.reason
    with _admin(pg_dsn) as conn:
        conn.execute("DELETE FROM journal WHERE seq >= 3")
        conn.execute("ALTER TABLE journal ENABLE TRIGGER journal_no_change")
    assert pgj.verify().ok  # a cut tail is a valid shorter chain: keep head_hash elsewhere
    assert pgj.verify().head_seq == 2


def test_a_lost_connection_is_retryable_and_the_next_commit_reconnects(
    pgj: PostgresJournal, pg_dsn: str
) -> None:
    journal_helpers.fill(pgj, 3)
    pgj.commit()
    assert pgj._conn is not None
    pid = pgj._conn.info.backend_pid
    with _admin(pg_dsn) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    pgj.append(9.0, RecordKind.EVENT, "t", b"after the drop", key="late")
    with pytest.raises(JournalError, match="connection") as failure:
        pgj.commit()
    assert failure.value.retryable and pgj.pending() == 1
    pgj.commit()
    assert pgj.count() == 4 and pgj.has_key("late") and pgj.verify().ok


def test_refuses_a_journal_table_that_is_not_ours(pg_dsn: str) -> None:
    with _admin(pg_dsn) as conn:
        conn.execute("CREATE TABLE journal (id int)")
    with pytest.raises(JournalError, match="not an Ansim journal"):
        PostgresJournal(pg_dsn)


def test_unreachable_server_is_a_clear_retryable_error() -> None:
    with pytest.raises(JournalError, match="cannot connect") as failure:
        PostgresJournal("postgresql://nobody:secret@127.0.0.1:1/none", connect_timeout=1)
    assert failure.value.retryable and "secret" not in failure.value.reason


def test_open_journal_postgres_backend(pg_dsn: str) -> None:
    cfg = JournalConfig(backend="postgres", dsn="postgresql://127.0.0.1:1/not-this")
    with open_journal(cfg, path_override=pg_dsn) as journal:
        assert isinstance(journal, PostgresJournal)
        journal.append(1.0, RecordKind.SYSTEM, "", b"hello")
    with open_journal(cfg, path_override=pg_dsn) as journal:
        assert journal.count(RecordKind.SYSTEM) == 1


def test_safe_dsn_hides_passwords() -> None:
    assert _safe_dsn("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert _safe_dsn("host=h password=pw dbname=x") == "host=h password=*** dbname=x"
