"""The head file: the journal's last (seq, hash), kept where the journal's own file cannot
rewrite it, and the check the core runs at start.

A chain proves that no record was changed *inside* it; cutting records off the end, or
recomputing every hash after an edit, leaves a valid chain. The head file catches
both: after each commit the journal writes its head (seq, hash) to a second file
(atomically: temp file, fsync, rename). At start :func:`check_at_start` refuses a
journal that ends before the head file's seq (a cut tail) or whose record at that seq
has another hash (a recomputed tail), then checks the chain from the last verified
point only, so a start costs the records written since the last start, not the
whole journal.

The file protects as far as it is out of reach of whoever can rewrite the journal:
next to an SQLite file it stops a slip or a tool working on the database (SQL, a
restored copy); against someone with the core's file permissions, put it on other
storage or copy it off the machine. For PostgreSQL it is a local file of the core's
host, out of reach of anyone who can only reach the database.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from console.journal.chain import GENESIS, JournalError

if TYPE_CHECKING:
    from console.journal.store import Journal

log = logging.getLogger("ansim.journal")

HEAD_FORMAT: Final = "ansim journal head 1"

Point = tuple[int, bytes]
"""(seq, hash) of one record; (0, GENESIS) before the first."""


@dataclass(frozen=True, slots=True)
class HeadState:
    head: Point  # the last record committed, as the writer saw it
    verified: Point  # the chain was checked from the start up to here


class HeadFile:
    """A few lines of text at ``path``: the format, the head and the verified point."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> HeadState | None:
        """What the file holds; None when there is none. JournalError when it is damaged."""
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise self._damaged(f"cannot read it ({exc})") from None
        lines = text.splitlines()
        if len(lines) != 3 or lines[0] != HEAD_FORMAT:
            raise self._damaged(f"it does not start with {HEAD_FORMAT!r} and two points")
        return HeadState(self._point(lines[1], "head"), self._point(lines[2], "verified"))

    def write(self, state: HeadState) -> None:
        """Replace the file atomically: a reader sees the old contents or the new, never half.

        The temp file is fsynced before the rename so a power cut cannot leave an empty
        head file; the directory is not: losing the rename leaves the previous head,
        which is behind the journal, and a head behind the journal is not an alarm.
        """
        text = "\n".join(
            (
                HEAD_FORMAT,
                f"head {state.head[0]} {state.head[1].hex()}",
                f"verified {state.verified[0]} {state.verified[1].hex()}",
            )
        )
        temp = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, (text + "\n").encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, self.path)
        except OSError:
            try:
                temp.unlink(missing_ok=True)
            except OSError:
                pass  # the write's own error is the one to report
            raise

    def _point(self, line: str, name: str) -> Point:
        words = line.split(" ")
        try:
            if len(words) != 3 or words[0] != name:
                raise ValueError(line)
            seq, digest = int(words[1]), bytes.fromhex(words[2])
            if seq < 0 or len(digest) != 32:
                raise ValueError(line)
        except ValueError:
            raise self._damaged(f"its {name} line is not '{name} <seq> <sha256 hex>'") from None
        return seq, digest

    def _damaged(self, why: str) -> JournalError:
        return JournalError(
            f"head file {self.path} is damaged: {why}; check the journal with `ansim journal "
            "verify` and restore the head file from a backup (or move it aside to start anew)"
        )


def compare(stored: HeadState, tail: Point, record_at: Point | None, where: str) -> str:
    """Why the journal (ending at ``tail``; ``record_at`` = its record at the head file's
    seq) disagrees with the head file; "" when it does not."""
    seq, digest = stored.head
    if tail[0] < seq:
        return (
            f"journal {where} ends at record {tail[0]} but its head file says record {seq} "
            f"was committed: records {tail[0] + 1}–{seq} were cut off; restore the journal "
            "from a backup"
        )
    if seq and (record_at is None or record_at != (seq, digest)):
        found = "missing" if record_at is None else f"hash {record_at[1].hex()[:16]}"
        return (
            f"journal {where}: record {seq} differs from its head file (head file hash "
            f"{digest.hex()[:16]}, journal {found}): the tail was rewritten; restore the "
            "journal from a backup"
        )
    return ""


class HeadKeeper:
    """A journal's side of its head file: read at open, compared, rewritten per commit.

    Once the file disagrees with the journal (or is damaged) it is never rewritten, so
    the evidence stays for :func:`check_at_start` and for people.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.state: HeadState | None = None
        self.problem = ""  # why the journal disagrees with the file; "" when it agrees
        self._file = None if path is None else HeadFile(path)
        self._failing = ""  # the last error writing the file, logged once

    def load(self) -> None:
        """Read the file; do it before reading the journal's tail, which is written first."""
        if self._file is not None:
            try:
                self.state = self._file.read()
            except JournalError as exc:
                self.problem = exc.reason

    def compare(self, tail: Point, point_at: Callable[[int], Point | None], where: str) -> None:
        if self.state is not None:
            self.problem = compare(self.state, tail, point_at(self.state.head[0]), where)

    def write(self, head: Point, verified: Point | None = None, where: str = "") -> None:
        """Record ``head`` (and a new verified point). A failure is logged, not raised: the
        records are committed already, and a head file behind the journal makes the check
        weaker, never a false alarm."""
        if self._file is None or self.problem:
            return
        if verified is None:
            verified = self.state.verified if self.state is not None else (0, GENESIS)
        self.state = state = HeadState(head, verified)
        try:
            self._file.write(state)
        except OSError as exc:
            if not self._failing:
                log.warning("journal %s: cannot write its head file: %s", where, exc)
            self._failing = str(exc)
        else:
            self._failing = ""


@dataclass(frozen=True, slots=True)
class StartCheck:
    """What the start check found: the chain is whole from ``from_seq`` to ``head_seq``."""

    checked: int  # records walked: those after the last verified point
    from_seq: int  # the verified point the walk started from (0: the whole journal)
    head_seq: int
    head_hash: bytes
    warning: str = ""  # for the log: e.g. no head file kept, so a cut tail goes unseen

    def __str__(self) -> str:
        text = (
            f"journal checked: records {self.from_seq + 1}–{self.head_seq} "
            f"({self.checked} new), head {self.head_hash.hex()[:16]}"
        )
        return f"{text}; {self.warning}" if self.warning else text


def check_at_start(journal: Journal) -> StartCheck:
    """Refuse a journal whose tail was cut or rewritten, or whose chain is broken since
    the last verified point; raise JournalError with one line naming the record.

    The core calls this once, after opening the journal and before rebuilding from it.
    On success the verified point moves to the current head, so the next start walks
    only what is written from now on.
    """
    problem = journal.head.problem
    if problem:
        raise JournalError(problem)
    head = journal.head.state
    warning = ""
    start: Point = (0, GENESIS)
    if head is None:
        if journal.head.path is None:
            warning = "no head file is kept for this journal: a cut tail would go unseen"
        elif journal.committed_seq:
            warning = (
                f"no head file at {journal.head.path} (first start with one, or it was "
                "removed): checked the whole journal and started one"
            )
    elif head.verified[0] <= journal.committed_seq:
        start = head.verified
        if start[0] and journal.record_point(start[0]) != start:
            raise JournalError(
                f"journal {journal.where}: record {start[0]} differs from the one verified "
                "at the last start (its hash changed): check it with `ansim journal verify`"
            )
    result = journal.verify(after_seq=start[0], after_hash=start[1])
    if not result.ok:
        raise JournalError(f"journal {journal.where}: {result}; refusing to start on it")
    journal.mark_verified((result.head_seq, result.head_hash))
    return StartCheck(result.count, start[0], result.head_seq, result.head_hash, warning)
