"""The head file and the start check: a cut or recomputed tail is refused at start.

Run on SQLite (head file beside the database) and PostgreSQL (head file given).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from console.journal.chain import GENESIS
from console.journal.head import HEAD_FORMAT, HeadFile, HeadState, check_at_start
from console.journal.store import JournalError, RecordKind
from tests.journal import journal_helpers
from tests.journal.journal_helpers import Backend, fill

pg_database = journal_helpers.pg_database
pg_dsn = journal_helpers.pg_dsn
backend = journal_helpers.backend


def _sealed(backend: Backend, n: int = 10) -> None:
    """A journal of ``n`` records, committed, checked once (as a core's start does), closed."""
    j = backend.open()
    check_at_start(j)
    fill(j, n)
    j.commit()
    j.close()


def _head(backend: Backend) -> HeadState:
    assert backend.head_path is not None
    state = HeadFile(backend.head_path).read()
    assert state is not None
    return state


def test_each_commit_writes_the_head_and_a_start_checks_only_what_is_new(backend: Backend) -> None:
    j = backend.open()
    first = check_at_start(j)  # an empty journal
    assert (first.checked, first.head_seq, first.warning) == (0, 0, "")
    fill(j, 5)
    j.commit()
    assert _head(backend).head == j.record_point(5)
    fill(j, 3)
    j.commit()
    assert _head(backend).head == j.record_point(8)
    assert _head(backend).verified == (0, GENESIS)
    j.close()
    again = backend.open()
    check = check_at_start(again)
    assert (check.from_seq, check.checked, check.head_seq) == (0, 8, 8)
    assert _head(backend).verified == again.record_point(8)
    fill(again, 4)
    again.commit()
    again.close()
    third = backend.open()
    check = check_at_start(third)  # O(new records): only the 4 since the last start
    assert (check.from_seq, check.checked, check.head_seq) == (8, 4, 12)
    assert "records 9–12 (4 new)" in str(check)


def test_a_cut_tail_is_refused_naming_the_records(backend: Backend) -> None:
    _sealed(backend)
    backend.cut_after(6)
    j = backend.open()
    assert j.verify().ok  # the chain alone cannot see it
    with pytest.raises(JournalError) as refused:
        check_at_start(j)
    line = refused.value.reason
    assert "ends at record 6" in line and "record 10" in line and "7–10" in line
    assert "\n" not in line
    fill(j, 2)  # a journal that disagrees with its head file never overwrites it
    j.commit()
    assert _head(backend).head[0] == 10


def test_a_recomputed_tail_is_refused(backend: Backend) -> None:
    _sealed(backend)
    backend.rewrite_from(8, b"forged")
    j = backend.open()
    assert j.verify().ok  # every hash recomputed: a valid chain
    with pytest.raises(JournalError, match="record 10 differs from its head file"):
        check_at_start(j)


def test_a_broken_chain_since_the_last_start_is_refused(backend: Backend) -> None:
    _sealed(backend)
    j = backend.open()
    check_at_start(j)  # verified up to 10
    fill(j, 5, start_ts=5000.0)
    j.commit()
    j.close()
    backend.tamper(backend.placeholders("UPDATE journal SET payload = ? WHERE seq = 13"), (b"x",))
    with pytest.raises(JournalError, match="BAD at record 13: its contents do not match"):
        check_at_start(backend.open())


def test_a_changed_checkpoint_record_is_refused(backend: Backend) -> None:
    _sealed(backend)
    j = backend.open()
    check_at_start(j)  # verified up to 10
    fill(j, 2)
    j.commit()
    j.close()
    backend.tamper(backend.placeholders("UPDATE journal SET hash = ? WHERE seq = 10"), (b"h" * 32,))
    with pytest.raises(JournalError, match="record 10 differs from the one verified"):
        check_at_start(backend.open())


def test_a_damaged_head_file_is_refused_and_kept(backend: Backend) -> None:
    _sealed(backend)
    assert backend.head_path is not None
    backend.head_path.write_text("garbage\n")
    j = backend.open()
    with pytest.raises(JournalError, match=r"head file .* is damaged"):
        check_at_start(j)
    fill(j, 1)
    j.commit()
    assert backend.head_path.read_text() == "garbage\n"


def test_no_head_file_checks_everything_and_starts_one(backend: Backend) -> None:
    _sealed(backend)
    assert backend.head_path is not None
    backend.head_path.unlink()
    check = check_at_start(backend.open())
    assert check.checked == 10 and "no head file" in check.warning
    assert _head(backend).verified[0] == 10


def test_a_head_file_behind_the_journal_is_fine(backend: Backend) -> None:
    _sealed(backend)
    assert backend.head_path is not None
    behind = _head(backend)
    j = backend.open()
    fill(j, 3)
    j.commit()
    j.close()
    HeadFile(backend.head_path).write(HeadState(behind.head, behind.verified))
    check = check_at_start(backend.open())  # e.g. a crash between the commit and the head
    assert check.head_seq == 13


def test_a_head_file_that_cannot_be_written_does_not_fail_the_commit(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    j = backend.open()

    def full(self: HeadFile, state: HeadState) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(HeadFile, "write", full)
    with caplog.at_level(logging.WARNING, logger="ansim.journal"):
        fill(j, 2)
        j.commit()
        fill(j, 2)
        j.commit()
    assert j.count() == 4
    assert sum("cannot write its head file" in r.message for r in caplog.records) == 1


# --- the head file on its own ---------------------------------------------------------


def test_head_file_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    path = tmp_path / "j.head"
    head = HeadFile(path)
    assert head.read() is None
    state = HeadState((7, b"a" * 32), (3, b"b" * 32))
    head.write(state)
    assert head.read() == state
    assert path.read_text().splitlines()[0] == HEAD_FORMAT
    assert not (tmp_path / "j.head.tmp").exists()
    for bad in ("", HEAD_FORMAT + "\nhead 1 zz\nverified 0 00\n", "x\ny\nz\n"):
        path.write_text(bad)
        with pytest.raises(JournalError, match="damaged"):
            head.read()


def test_in_memory_journal_has_no_head_file() -> None:
    from console.journal.sqlite import SqliteJournal

    with SqliteJournal(":memory:") as j:
        j.append(1.0, RecordKind.EVENT, "t", b"x")
        j.commit()
        check = check_at_start(j)
        assert check.head_seq == 1 and "no head file is kept" in check.warning
