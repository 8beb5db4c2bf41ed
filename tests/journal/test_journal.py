"""The journal's contract, run against SQLite and PostgreSQL.

PostgreSQL cases need a server (127.0.0.1:5432, trust auth, or ANSIM_TEST_PG_DSN); they
create a database with a random name and drop it at the end, and are skipped, saying
why, when no server answers. SQLite's own cases are in test_journal_sqlite.py,
PostgreSQL's in test_journal_pg.py; the fixtures are in journal_helpers.py.
"""

from __future__ import annotations

import math
import os
import threading

import pytest

import console.journal.store as journal_module
from console.journal.store import (
    GENESIS,
    JournalError,
    RecordKind,
    check_tail,
    record_hash,
)
from tests.journal import journal_helpers
from tests.journal.journal_helpers import Backend, fill

# The fixtures the contract runs on (``backend`` needs ``pg_dsn`` for PostgreSQL).
pg_database = journal_helpers.pg_database
pg_dsn = journal_helpers.pg_dsn
backend = journal_helpers.backend


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
    # The chain: each record's hash covers the one before, and is recomputable from it.
    assert first.hash == record_hash(GENESIS, 1, 1.25, "event", first.topic, payload, "", "sos:a:1")
    assert second.hash == record_hash(
        first.hash, 2, second.ts, "dead", second.topic, b"\xc1junk", second.reason, ""
    )
    assert third.hash == record_hash(
        second.hash, 3, 3.0, "change", "", b"", "inc-1 acknowledged", "inc-1"
    )


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
    row = (2, 0.0, "event", "", b"", "", "", b"h" * 32)
    assert check_tail((1, b"p" * 32), [row], 1, b"p" * 32) is False  # where we left it
    assert check_tail((2, b"h" * 32), [row], 1, b"p" * 32) is True  # already written
    with pytest.raises(JournalError, match="someone else"):
        check_tail((5, b"x" * 32), [row], 1, b"p" * 32)
