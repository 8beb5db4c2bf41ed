"""The key filter: has_key answers "never stored" without a query, and never misses a key.

The filter alone (no false negatives, its false-positive rate, growth), then the journal
on both backends: an unseen key costs no ``_stored_key`` query; a stored key is found
after a commit, after reopening, after a retried commit whose rows had landed, and on a
PostgreSQL standby that follows another journal object's writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from console.journal.key_filter import MIN_CAPACITY, KeyFilter, StoredKeys
from console.journal.sqlite import SqliteJournal
from console.journal.store import GENESIS, Journal, RecordKind
from tests.journal import journal_helpers
from tests.journal.journal_helpers import Backend, fill

pg_database = journal_helpers.pg_database
pg_dsn = journal_helpers.pg_dsn
backend = journal_helpers.backend


def count_queries(monkeypatch: pytest.MonkeyPatch, journal: Journal) -> list[str]:
    """The keys ``journal`` asks its database about from now on."""
    asked: list[str] = []
    real = journal._stored_key

    def counted(key: str) -> bool:
        asked.append(key)
        return real(key)

    monkeypatch.setattr(journal, "_stored_key", counted)
    return asked


# --- the filter alone ---------------------------------------------------------------


def test_no_false_negatives_over_many_keys() -> None:
    keys = [f"sos:dev{i % 97}:{i}" for i in range(120_000)]
    kf = KeyFilter(1000)
    kf.add_many(keys[:60_000])  # the bulk path (numpy) ...
    for key in keys[60_000:]:
        kf.add(key)  # ... and one at a time must set the same bits
    assert all(key in kf for key in keys)


def test_false_positive_rate_near_the_target() -> None:
    kf = KeyFilter(50_000, rate=0.01)
    kf.add_many(f"cctv:cam{i}:{i}" for i in range(50_000))
    unseen = 100_000
    false = sum(f"sos:other:{i}" in kf for i in range(unseen))
    assert false / unseen < 0.02  # the target is 1 %; its first layer is built for 0.5 %


def test_grows_past_its_capacity_and_keeps_its_rate() -> None:
    kf = KeyFilter(1000, rate=0.01)
    kf.add_many(f"k{i}" for i in range(40_000))
    assert kf.layers > 1 and kf.capacity >= 40_000 and kf.count == 40_000
    assert all(f"k{i}" in kf for i in range(40_000))
    false = sum(f"u{i}" in kf for i in range(50_000))
    assert false / 50_000 < 0.02


def test_refuses_a_nonsense_size() -> None:
    with pytest.raises(ValueError):
        KeyFilter(0)
    with pytest.raises(ValueError):
        KeyFilter(100, rate=1.5)
    assert 42 not in KeyFilter()  # not a key at all


def test_stored_keys_is_sized_for_the_journal() -> None:
    known = StoredKeys()
    known.rebuild(iter(["a", "b"]), upto=100_000)
    assert known.filter.capacity >= 200_000 and known.upto == 100_000
    assert known.known("a") is None  # a hit: only a query can tell
    assert known.known("zzz-never") in (False, None)
    known.remember("zzz")
    assert known.known("zzz") is True
    assert StoredKeys().filter.capacity == MIN_CAPACITY


# --- the journal, both backends -----------------------------------------------------


def test_an_unseen_key_costs_no_query(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = backend.open()
    fill(journal, 200)
    journal.commit()
    asked = count_queries(monkeypatch, journal)
    unseen = [f"sos:dev9:{i}" for i in range(2000)]
    assert not any(journal.has_key(key) for key in unseen)
    assert len(asked) < 0.05 * len(unseen)  # only the filter's false positives
    assert journal.has_key("sos:dev1:7")  # committed: the filter hits, the query confirms
    assert journal.has_key("sos:dev1:7")  # then remembered: no second query
    assert asked.count("sos:dev1:7") == 1


def test_found_after_commit_and_pending(backend: Backend) -> None:
    journal = backend.open()
    journal.append(1.0, RecordKind.EVENT, "t", b"x", key="sos:a:1")
    assert journal.has_key("sos:a:1")  # pending
    journal.commit()
    assert journal.has_key("sos:a:1")  # committed, in the filter now
    assert not journal.has_key("sos:a:2")


def test_found_after_reopen(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = backend.open()
    fill(journal, 300)
    journal.write_snapshot(2000.0, b"state", upto_seq=300)
    journal.close()
    again = backend.open()
    asked = count_queries(monkeypatch, again)
    assert all(again.has_key(f"sos:dev1:{i}") for i in range(300))
    assert again.has_key("300")  # the snapshot's key counts like any other
    assert not again.has_key("sos:dev1:300")
    assert len(asked) >= 301  # every stored key was confirmed by its query


def test_retried_commit_whose_rows_landed_adds_its_keys(backend: Backend) -> None:
    journal = backend.open()
    fill(journal, 5)
    batch = list(journal._pending)
    journal._write(batch, 0, GENESIS, {})  # the "lost" COMMIT that landed
    journal.commit()  # the retry finds its rows at the tail and writes nothing
    assert journal.count() == 5
    assert all(journal.has_key(f"sos:dev1:{i}") for i in range(5))


def test_sqlite_file_reopened_streams_every_key(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with SqliteJournal(path) as journal:
        # More than one chunk of the key pass, some keys twice (a tick key, a resend).
        for i in range(25_000):
            journal.append(float(i), RecordKind.EVENT, "t", b"", key=f"k{i % 24_000}")
            if i % 5000 == 0:
                journal.append(float(i), RecordKind.SYSTEM, "", b"")  # no key
        journal.commit()
    with SqliteJournal(path) as journal:
        known = journal._stored_keys_known
        assert known.upto == journal.committed_seq
        assert all(f"k{i}" in known.filter for i in range(24_000))


# --- PostgreSQL: a standby following another core's writes ----------------------------


@pytest.fixture
def two_pg(pg_dsn: str) -> Iterator[tuple[Journal, Journal]]:
    pytest.importorskip("psycopg")
    from console.journal.postgres import PostgresJournal

    follower = PostgresJournal(pg_dsn)  # opened first: its pass at open sees nothing
    writer = PostgresJournal(pg_dsn)
    yield writer, follower
    writer.close()
    follower.close()


def test_standby_following_the_tail_finds_the_written_keys(
    two_pg: tuple[Journal, Journal], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, follower = two_pg
    fill(writer, 50)
    writer.commit()
    assert follower.stored_seq() == 50  # the standby's poll: its filter keeps up
    fill(writer, 30, start_ts=5000.0)  # keys sos:dev1:0..29 again, and new seqs
    writer.append(6000.0, RecordKind.EVENT, "t", b"", key="sos:late:1")
    writer.commit()
    assert follower.follow_tail() == 81  # the takeover
    asked = count_queries(monkeypatch, follower)
    assert all(follower.has_key(f"sos:dev1:{i}") for i in range(50))
    assert follower.has_key("sos:late:1")
    assert not follower.has_key("sos:never:1")
    assert "sos:late:1" in asked  # found by its query, after the filter's hit


def test_standby_takeover_without_polling(two_pg: tuple[Journal, Journal]) -> None:
    writer, follower = two_pg
    writer.append(1.0, RecordKind.COMMAND, "t", b"", key="cmd:op1:1")
    writer.commit()
    follower.follow_tail()
    assert follower.has_key("cmd:op1:1")
    follower.append(2.0, RecordKind.EVENT, "t", b"", key="sos:b:1")
    follower.commit()  # it writes the chain the writer left
    assert follower.has_key("sos:b:1")
