"""Damaged files and full disks: one clear line (file, what is wrong, what to do), never a
raw sqlite3 traceback; the core's start and stop helpers (console.core.journal_checks).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from console.config import Config, JournalConfig
from console.core.journal_checks import close_at_stop, open_checked
from console.journal.head import HeadFile, check_at_start
from console.journal.sqlite import SqliteJournal
from console.journal.store import JournalError, RecordKind
from tests.journal.journal_helpers import fill

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal of a few thousand records, so damage can land inside it."""
    path = tmp_path_factory.mktemp("good") / "journal.db"
    with SqliteJournal(path) as j:
        for i in range(4000):
            j.append(float(i), RecordKind.EVENT, "t", os.urandom(200), key=f"k{i}")
        j.dead_letter(5000.0, "ansim/v1/raw/x/sos", b"\xc1", "malformed")
    return path


def _header(f: BinaryIO) -> None:
    f.seek(0)
    f.write(b"\x13" * 100)


def _truncated(f: BinaryIO) -> None:
    f.truncate(os.fstat(f.fileno()).st_size // 2)


def _first_page(f: BinaryIO) -> None:
    f.seek(100)
    f.write(b"\xff" * 3000)


def _middle(f: BinaryIO) -> None:
    f.seek(os.fstat(f.fileno()).st_size // 2)
    f.write(b"\xff" * 8192)


DAMAGE: dict[str, Callable[[BinaryIO], None]] = {
    "header": _header,
    "truncated": _truncated,
    "first page": _first_page,
    "middle": _middle,
}


@pytest.fixture(params=sorted(DAMAGE))
def damaged(request: pytest.FixtureRequest, good: Path, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "journal.db"
    shutil.copy(good, path)
    with open(path, "r+b") as f:
        DAMAGE[request.param](f)
    yield path


def _one_line(error: JournalError, path: Path) -> None:
    assert "\n" not in error.reason and str(path) in error.reason
    assert any(word in error.reason for word in ("damaged", "not an Ansim journal"))
    assert "restore" in error.reason  # what to do


def test_a_damaged_file_is_one_journal_error(damaged: Path) -> None:
    try:
        with SqliteJournal(damaged) as j:
            j.verify()
            list(j.records(kinds=[RecordKind.DEAD]))
    except JournalError as exc:
        _one_line(exc, damaged)
    else:
        pytest.fail("a damaged journal read as whole")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", "--config", str(ROOT / "config.toml"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("action", ["verify", "stats"])
def test_the_cli_says_one_line_and_exits_non_zero_on_a_damaged_file(
    damaged: Path, action: str, request: pytest.FixtureRequest
) -> None:
    done = _cli("journal", action, "--journal", str(damaged))
    inside = request.node.callspec.params["damaged"] == "middle"
    if action == "stats" and inside and not done.returncode:
        # stats reads the indexes and the dead letters, not every page: damage inside the
        # records' pages is for verify to find (it reads them all).
        return
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ansim journal: journal ")
    assert str(damaged) in lines[0]


def test_the_cli_reports_a_cut_tail_and_counts_suppressed_dead_letters(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with SqliteJournal(path) as j:
        fill(j, 5)
        for i in range(100):
            j.dead_letter(100.0, "ansim/v1/raw/mallory/sos", b"junk %d" % i, "malformed")
    stats = _cli("journal", "stats", "--journal", str(path))
    assert stats.returncode == 0, stats.stderr
    assert "dead letters counted, not stored (over budget): 68, by source:" in stats.stdout
    assert "       68  raw:mallory (" in stats.stdout
    assert "dead letters by source (1 sources):" in stats.stdout
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER journal_no_delete")
    conn.execute("DELETE FROM journal WHERE seq > 20")
    conn.commit()
    conn.close()
    verify = _cli("journal", "verify", "--journal", str(path))
    assert verify.returncode == 1
    assert (
        verify.stdout.startswith("journal BAD: journal ") and "ends at record 20" in verify.stdout
    )


def test_a_full_disk_commit_is_one_retryable_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    j = SqliteJournal(path)
    fill(j, 3)
    j.commit()
    pages = j._conn.execute("PRAGMA page_count").fetchone()[0]
    j._conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL without a full disk
    for i in range(300):
        j.append(float(i), RecordKind.EVENT, "t", os.urandom(400), key=f"x{i}")
    with pytest.raises(JournalError) as failure:
        j.commit()
    reason = failure.value.reason
    assert failure.value.retryable and "\n" not in reason
    assert reason.startswith(f"journal {path}: cannot commit 300 records: the disk is full")
    assert "free space" in reason
    # The core's stop on a full disk (SIGTERM): one line, no exception, nothing acknowledged.
    line = close_at_stop(j)
    assert line.startswith("journal: 300 records not committed at stop (journal ")
    assert "broker delivers them again" in line and "\n" not in line
    assert close_at_stop(j) == ""  # closed already
    with SqliteJournal(path) as again:
        assert again.count() == 3 and check_at_start(again).head_seq == 3


def test_open_checked_starts_on_a_good_journal_and_refuses_a_cut_one(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    cfg = Config(journal=JournalConfig(path=str(path)))
    journal, check = open_checked(cfg)
    fill(journal, 10)
    journal.commit()
    assert check.head_seq == 0 and close_at_stop(journal) == ""
    journal, check = open_checked(cfg)
    assert check.checked == 10
    journal.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER journal_no_delete")
    conn.execute("DELETE FROM journal WHERE seq > 7")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match=r"ends at record 7 .* records 8–10 were cut off"):
        open_checked(cfg)
    with pytest.raises(JournalError, match="not an Ansim journal"):
        open_checked(cfg, str(ROOT / "README.md"))


def test_a_really_full_disk_keeps_a_readable_head_file(tmp_path: Path) -> None:
    """On a 1 MB tmpfs (root, Linux): the head file is never left half-written."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    try:
        path = mount / "journal.db"
        j = SqliteJournal(path)
        with pytest.raises(JournalError, match="disk is full") as failure:
            for _ in range(100):
                fill(j, 200, start_ts=float(j.last_seq))
                j.commit()
        assert "\n" not in failure.value.reason and str(path) in failure.value.reason
        head = HeadFile(Path(f"{path}.head")).read()
        assert head is not None and head.head[0] == j.committed_seq
        line = close_at_stop(j)
        assert "not committed at stop" in line and "disk is full" in line
        subprocess.run(["mount", "-o", "remount,size=16m", str(mount)], check=True)
        with SqliteJournal(path) as again:
            assert check_at_start(again).head_seq == head.head[0]
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
