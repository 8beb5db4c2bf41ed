"""`ansim journal verify|stats` on a real SQLite journal, before and after tampering."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from console.config import Config
from console.journal.cli import reason_class
from console.journal.store import RecordKind, open_journal

ROOT = Path(__file__).resolve().parents[2]


def _journal(path: Path, n: int = 20) -> None:
    with open_journal(Config().journal, str(path)) as journal:
        for i in range(n):
            journal.append(1000.0 + i, RecordKind.EVENT, f"t/{i}", b"payload %d" % i)
        journal.append(2000.0, RecordKind.DEAD, "t/x", b"\xc1", reason="malformed: at byte 3")
        journal.append(2001.0, RecordKind.DEAD, "t/y", b"\xc1", reason="malformed: at byte 17")
        journal.commit()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", "--config", str(ROOT / "config.toml"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_verify_ok(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    _journal(path)
    done = _cli("journal", "verify", "--journal", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("journal OK: 22 records, head ")
    assert "(record 22)" in done.stdout


def test_verify_names_the_edited_record(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    _journal(path)
    with sqlite3.connect(path) as conn:  # the triggers guard against slips, not intent
        conn.execute("DROP TRIGGER journal_no_update")
        conn.execute("UPDATE journal SET payload = ? WHERE seq = 7", (b"payload 666",))
    done = _cli("journal", "verify", "--journal", str(path))
    assert done.returncode == 1
    assert done.stdout.strip() == (
        "journal BAD at record 7: its contents do not match its hash (changed after it was "
        "written, or the record before it was)"
    )


def test_stats_counts_kinds_and_dead_letter_reasons(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    _journal(path)
    done = _cli("journal", "stats", "--journal", str(path))
    assert done.returncode == 0, done.stderr
    assert "22 records" in done.stdout
    assert "event     20" in done.stdout
    assert "      2  malformed: at byte N" in done.stdout


def test_missing_journal_is_not_created(tmp_path: Path) -> None:
    done = _cli("journal", "verify", "--journal", str(tmp_path / "none.db"))
    assert done.returncode == 2
    assert "no journal at" in done.stderr
    assert not (tmp_path / "none.db").exists()


def test_reason_class_blunts_particulars() -> None:
    assert reason_class("invalid: Expected `float` <= 90.0 - at `$.lat`") == (
        "invalid: Expected `float` <= N"
    )
