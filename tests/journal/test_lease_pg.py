"""The active core's lease and fencing (console.journal.lease) against a real PostgreSQL.

Skipped, saying why, when no server answers on 127.0.0.1:5432 (tests/journal/journal_helpers).
A lease of ttl 0 is expired from the next statement on (the server's now() moves on), so
expiry needs no sleep.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from console.journal.store import JournalError, RecordKind
from tests.journal import journal_helpers

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")

from console.journal.lease import Fence, FencedError, Lease  # noqa: E402  (needs psycopg)
from console.journal.postgres import PostgresJournal  # noqa: E402

pg_database = journal_helpers.pg_database


@pytest.fixture
def dsn(pg_database: str) -> Iterator[str]:
    """The session database with no journal and no lease, before and after."""

    def clear() -> None:
        with psycopg.connect(pg_database, autocommit=True) as conn:
            for table in ("journal", "dead_counts", "core_lease"):
                conn.execute(f"DROP TABLE IF EXISTS {table}")

    clear()
    yield pg_database
    clear()


@pytest.fixture
def leases(dsn: str) -> Iterator[tuple[Lease, Lease]]:
    a, b = Lease(dsn), Lease(dsn)
    yield a, b
    a.close()
    b.close()


def _journal(dsn: str) -> PostgresJournal:
    return PostgresJournal(dsn)


def test_one_holder_at_a_time(leases: tuple[Lease, Lease]) -> None:
    a, b = leases
    assert a.acquire("core-a", 30) == 1
    assert b.acquire("core-b", 30) is None  # live and not ours: refused
    state = b.state()
    assert state.holder == "core-a" and state.term == 1 and state.live
    assert 0 < state.left_s <= 30 and state.held_for_s >= 0
    assert a.renew(Fence("core-a", 1), 30)
    assert not b.renew(Fence("core-b", 1), 30)  # the right term, the wrong holder


def test_an_expired_lease_goes_to_the_next_holder_with_a_higher_term(
    leases: tuple[Lease, Lease],
) -> None:
    a, b = leases
    assert not a.state().live and a.state().term == 0  # created free
    assert a.acquire("core-a", 0) == 1  # expires at once
    assert not a.state().live
    assert b.acquire("core-b", 30) == 2
    assert not a.renew(Fence("core-a", 1), 30)  # taken: never renewed again
    assert b.renew(Fence("core-b", 2), 30)
    b.release(Fence("core-b", 2))
    assert not a.state().live
    assert a.acquire("core-a", 30) == 3


def test_a_fenced_commit_writes_nothing(dsn: str, leases: tuple[Lease, Lease]) -> None:
    a, b = leases
    old, new = _journal(dsn), _journal(dsn)
    try:
        old.fence = Fence("core-a", a.acquire("core-a", 0) or 0)
        journal_helpers.fill(old, 3)
        old.commit()  # expired but not taken: the term is still the current one
        assert b.acquire("core-b", 30) == 2
        new.fence = Fence("core-b", 2)
        assert new.follow_tail() == 3

        old.append(99.0, RecordKind.EVENT, "t", b"from the frozen core", key="stale")
        with pytest.raises(FencedError, match="term 2 is held by core-b") as fenced:
            old.commit()
        assert not fenced.value.retryable and fenced.value.current_term == 2
        assert old.pending() == 1  # kept in memory, never written

        new.append(100.0, RecordKind.EVENT, "t", b"from the new active", key="fresh")
        new.commit()
        assert new.count() == 4 and not new.has_key("stale") and new.verify().ok
        with pytest.raises(FencedError):
            old.commit()  # every later try too
        assert new.count() == 4
    finally:
        new.close()
        with pytest.raises(JournalError):
            old.close()  # its pending record cannot be committed: said, not written


def test_follow_tail_refuses_with_records_pending(dsn: str) -> None:
    journal = _journal(dsn)
    try:
        journal.append(1.0, RecordKind.EVENT, "t", b"x")
        with pytest.raises(JournalError, match="pending"):
            journal.follow_tail()
    finally:
        journal.close()


def test_a_commit_in_flight_holds_off_the_takeover(dsn: str, leases: tuple[Lease, Lease]) -> None:
    """The commit reads the lease FOR SHARE: a takeover waits for it, then sees its rows."""
    a, _ = leases
    assert a.acquire("core-a", 0) == 1
    journal = _journal(dsn)
    journal.close()
    with psycopg.connect(dsn, autocommit=True) as committing, psycopg.connect(dsn) as taking:
        with committing.transaction():
            committing.execute("SELECT holder, term FROM core_lease WHERE id = 1 FOR SHARE")
            taking.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                taking.execute("UPDATE core_lease SET term = term + 1 WHERE id = 1")
            taking.rollback()
