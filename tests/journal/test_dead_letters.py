"""Dead letters: bounded records (digest, size, prefix) and a per-source budget.

The contract cases run on SQLite and PostgreSQL; the pieces on their own after them.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from console.journal.dead import (
    DEAD_BUDGET_RECORDS,
    DEAD_PREFIX,
    DEAD_REASON_MAX,
    DEAD_TOPIC_MAX,
    DEAD_WINDOW_S,
    DeadBudget,
    DeadCount,
    DeadLetter,
    clean_text,
    dead_source,
)
from console.journal.store import JournalError, Record, RecordKind
from tests.journal import journal_helpers
from tests.journal.journal_helpers import Backend

pg_database = journal_helpers.pg_database
pg_dsn = journal_helpers.pg_dsn
backend = journal_helpers.backend

RAW = "ansim/v1/raw/mallory/sos"
MB = 1024 * 1024


def test_a_dead_letter_keeps_digest_size_and_a_bounded_prefix(backend: Backend) -> None:
    j = backend.open()
    big = os.urandom(3 * MB)  # the broker's limit, give or take: what the attacker sent
    seq = j.dead_letter(1000.0, RAW, big, "too large: 3145728 bytes\n\x1b[31mred\x1b[0m")
    j.commit()
    assert seq == 1
    (record,) = j.records(kinds=[RecordKind.DEAD])
    assert len(record.payload) <= DEAD_PREFIX + 64
    letter = DeadLetter.from_record(record)
    assert letter.digest == hashlib.sha256(big).digest() and letter.size == len(big)
    assert letter.prefix == big[:DEAD_PREFIX]
    assert letter.topic == RAW and letter.source == "raw:mallory"
    assert letter.reason == "too large: 3145728 bytes [31mred [0m"  # no control characters
    assert j.verify().ok


def test_reason_and_topic_are_bounded_and_small_payloads_kept_whole(backend: Backend) -> None:
    j = backend.open()
    j.dead_letter(1.0, "x/" + "t" * 70_000, b"\xc1", "r\x00" * 10_000)
    j.commit()
    letter = DeadLetter.from_record(next(j.records()))
    assert len(letter.topic) == DEAD_TOPIC_MAX and letter.topic.endswith("…")
    assert len(letter.reason) == DEAD_REASON_MAX and "\x00" not in letter.reason
    assert letter.prefix == b"\xc1" and letter.size == 1


def test_three_huge_refusals_grow_the_journal_by_kilobytes_not_megabytes(backend: Backend) -> None:
    j = backend.open()
    for i in range(3):
        j.dead_letter(1000.0 + i, RAW, os.urandom(4 * MB), "too large")
    j.commit()
    stored = sum(len(r.payload) + len(r.reason) + len(r.topic) for r in j.records())
    assert j.count(RecordKind.DEAD) == 3 and stored < 3 * 1024


def test_past_the_budget_refusals_are_counted_not_stored(backend: Backend) -> None:
    j = backend.open()
    kept = [j.dead_letter(100.0 + i * 0.01, RAW, b"junk %d" % i, "malformed") for i in range(500)]
    other = j.dead_letter(101.0, "ansim/v1/cmd/op7", b"bad", "malformed")  # its own budget
    assert sum(seq is not None for seq in kept) == DEAD_BUDGET_RECORDS and other is not None
    assert j.suppressed() == 500 - DEAD_BUDGET_RECORDS
    assert j.dead_counts() == {}  # reads see committed counts only
    j.commit()
    assert j.suppressed() == 0
    assert j.count(RecordKind.DEAD) == DEAD_BUDGET_RECORDS + 1
    counts = j.dead_counts()
    assert set(counts) == {"raw:mallory"}
    c = counts["raw:mallory"]
    assert c.suppressed == 500 - DEAD_BUDGET_RECORDS
    assert c.bytes == sum(len(b"junk %d" % i) for i in range(DEAD_BUDGET_RECORDS, 500))
    assert c.first_ts == pytest.approx(100.0 + DEAD_BUDGET_RECORDS * 0.01)
    assert c.last_ts == pytest.approx(100.0 + 499 * 0.01)
    # The next window: its first refusal is kept again, and the counts add up per batch.
    assert j.dead_letter(100.0 + DEAD_WINDOW_S, RAW, b"later", "malformed") is not None
    for _ in range(DEAD_BUDGET_RECORDS + 5):
        j.dead_letter(100.0 + DEAD_WINDOW_S, RAW, b"later", "malformed")
    j.commit()  # a batch that holds only counts is committed too
    assert j.dead_counts()["raw:mallory"].suppressed == 500 - DEAD_BUDGET_RECORDS + 6
    j.dead_letter(100.0 + DEAD_WINDOW_S, RAW, b"last", "malformed")
    j.close()  # commits counts as it commits records
    again = backend.open()  # the counts are in the store, not only in memory
    assert again.dead_counts()["raw:mallory"].suppressed == 500 - DEAD_BUDGET_RECORDS + 7
    assert again.verify().ok


def test_a_failed_commit_keeps_the_counts_for_the_retry(backend: Backend) -> None:
    j = backend.open()
    j.dead_budget = DeadBudget(max_records=1)
    j.dead_letter(5.0, RAW, b"a", "bad")
    j.commit()
    backend.break_writes(j)
    for _ in range(40):
        j.dead_letter(5.0, RAW, os.urandom(2000), "bad")  # counted: over the budget
    j.append(5.0, RecordKind.EVENT, "t", os.urandom(4000) * 40)
    with pytest.raises(JournalError):  # full (SQLite) or read-only (PostgreSQL)
        j.commit()
    j.dead_letter(6.0, RAW, b"b", "bad")
    assert j.suppressed() == 41
    backend.heal(j)
    j.commit()
    assert j.dead_counts()["raw:mallory"].suppressed == 41 and j.suppressed() == 0


def test_an_old_dead_letter_with_its_whole_payload_still_reads(backend: Backend) -> None:
    j = backend.open()
    j.append(1.0, RecordKind.DEAD, RAW, b"\xc1 whole payload", reason="malformed")
    j.commit()
    letter = DeadLetter.from_record(next(j.records()))
    assert letter.size == 15 and letter.digest == hashlib.sha256(b"\xc1 whole payload").digest()


# --- the pieces on their own ----------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "source"),
    [
        ("ansim/v1/raw/src-1/sos", "raw:src-1"),
        ("ansim/v1/raw/src-1/sos/extra/levels", "raw:src-1"),
        ("ansim/v1/cmd/op7", "cmd:op7"),
        ("frigate/events", "frigate/events"),
        ("owntracks/alice/phone", "owntracks/alice"),
        ("", ""),
        ("ansim/v1/raw/a\x00b/sos", "raw:a b"),
    ],
)
def test_dead_source(topic: str, source: str) -> None:
    assert dead_source(topic) == source


def test_budget_windows_records_and_bytes() -> None:
    budget = DeadBudget(window_s=10.0, max_records=3, max_bytes=100)
    assert [budget.admit("a", 1.0, 10) for _ in range(4)] == [True, True, True, False]
    assert budget.admit("b", 1.0, 10)  # another source, another budget
    assert budget.admit("a", 10.0, 500)  # a new window: its first is kept whatever it costs
    assert not budget.admit("a", 11.0, 10)  # ... and it spent the bytes
    assert not budget.admit("a", 5.0, 1)  # time going back does not open a new window
    with pytest.raises(ValueError):
        DeadBudget(window_s=0)


def test_dead_count_merge() -> None:
    a, b = DeadCount(), DeadCount()
    a.add(10, 5.0)
    b.add(3, 2.0)
    b.add(4, 9.0)
    a.merge(b)
    assert (a.suppressed, a.bytes, a.first_ts, a.last_ts) == (3, 17, 2.0, 9.0)


def test_clean_text() -> None:
    assert clean_text("a\tb\r\nc\x7fd\x9be", 100) == "a b c d e"
    assert clean_text("x" * 10, 5) == "xxxx…"


def test_from_record_refuses_other_kinds() -> None:
    with pytest.raises(ValueError, match="not a dead letter"):
        DeadLetter.from_record(Record(1, 0.0, RecordKind.EVENT, "", b""))
