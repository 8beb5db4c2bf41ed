"""The hash chain: what a record's hash is, and how a stored run of records is checked.

Kept apart from :mod:`console.journal.store` (the batch and the interface) so the rules
that decide whether a journal is intact read in one place, and so the head file
(:mod:`console.journal.head`) and the backends can use them without the interface.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final


class RecordKind(enum.StrEnum):
    EVENT = "event"  # an accepted raw event (SOS, CCTV, responder), payload as received
    COMMAND = "command"  # an operator command, payload as received
    REPLY = "reply"  # the core's reply to a command, encoded
    CHANGE = "change"  # a state change the engine made, encoded
    DEAD = "dead"  # a refused payload: digest, size and a bounded prefix (console.journal.dead)
    SNAPSHOT = "snapshot"  # the engine's whole state as of a seq (see Journal.write_snapshot)
    SYSTEM = "system"  # start, stop, alarms about the journal itself


GENESIS: Final = bytes(32)  # prev_hash of the first record
KINDS: Final = frozenset(kind.value for kind in RecordKind)

# Canonical encoding of a record for the hash: fixed-width big-endian header (seq, ts,
# then the byte length of each variable field) followed by the fields themselves.
# Length prefixes make the encoding unambiguous: no two different records encode alike.
_HEADER: Final = struct.Struct(">QdIIIII")
_KIND_BYTES: Final = {kind.value: kind.value.encode() for kind in RecordKind}

# Kinds read by kind alone, and rarely: the only ones the kind index holds (format 2).
# Everything else is read as a range of seq (a rebuild replays nearly every record after
# its snapshot anyway), so the common records (events, commands) cost no index entry.
INDEXED_KINDS: Final = ("dead", "snapshot")

Row = tuple[int, float, str, str, bytes, str, str, bytes]
"""A stored record: (seq, ts, kind, topic, payload, reason, key, hash).

The previous record's hash is not stored with a record (format 1 did, as ``prev_hash``):
it is the hash of the row before, which every reader of the chain has at hand.
"""

HASH: Final = 7  # index of the hash in a Row


class JournalError(Exception):
    """The journal cannot do what was asked. ``reason`` is for people (and the alarm on screen).

    ``retryable`` is true when the same call may succeed later without anyone touching
    the journal (disk full, read-only, server away): the batch is kept for that retry.
    """

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


def record_hash(
    prev_hash: bytes,
    seq: int,
    ts: float,
    kind: str,
    topic: str,
    payload: bytes,
    reason: str,
    key: str,
) -> bytes:
    """sha256(prev_hash + canonical encoding of the other fields); 32 bytes.

    One SHA-256 a record, and the only one: it runs once per message on the core's hot path.
    """
    k = _KIND_BYTES.get(kind) or kind.encode()
    t = topic.encode()
    # Compared with "" rather than tested for truth: a hand-edited 0 must not hash as "".
    r = b"" if reason == "" else reason.encode()
    y = b"" if key == "" else key.encode()
    header = _HEADER.pack(seq, ts, len(k), len(t), len(payload), len(r), len(y))
    return hashlib.sha256(b"".join((prev_hash, header, k, t, payload, r, y))).digest()


@dataclass(frozen=True, slots=True)
class Record:
    seq: int  # assigned by the journal, strictly increasing (1, 2, 3, ...)
    ts: float  # the engine's time, given by the caller
    kind: RecordKind
    topic: str  # MQTT topic it came from or relates to ("" if none)
    payload: bytes  # raw bytes as received, or encoded by the core
    reason: str = ""  # dead letters: why refused; changes: a short description
    key: str = ""  # dedupe/lookup key ("sos:<source>:<alarm_id>", "cmd:<op>:<id>", ...)
    hash: bytes = b""  # sha256 of the previous record's hash and this record (record_hash)

    @property
    def upto_seq(self) -> int:
        """For a snapshot: the last seq whose effect the snapshot includes."""
        if self.kind is not RecordKind.SNAPSHOT or not self.key.isdigit():
            raise ValueError(f"record {self.seq} is a {self.kind}, not a snapshot")
        return int(self.key)

    @classmethod
    def from_row(cls, row: Row) -> Record:
        seq, ts, kind, topic, payload, reason, key, hash_ = row
        return cls(seq, ts, RecordKind(kind), topic, payload, reason, key, bytes(hash_))


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    count: int  # records checked (up to and including the first bad one)
    first_bad_seq: int | None = None
    reason: str = ""  # why the first bad record is bad; "" when ok
    head_seq: int = 0  # last good record; keep (head_seq, head_hash) elsewhere to detect truncation
    head_hash: bytes = GENESIS

    def __str__(self) -> str:
        if self.ok:
            return f"journal ok: {self.count} records, head {self.head_seq} {self.head_hash.hex()}"
        return f"journal BAD at record {self.first_bad_seq}: {self.reason}"


def check_link(row: Row, prev_seq: int, prev_hash: bytes) -> str:
    """Why ``row`` does not follow (prev_seq, prev_hash) in the chain; "" if it does.

    The hash covers the previous hash and the seq, so a record moved, replaced or changed
    in place no longer matches it; a gap or a step back in seq is named as such first.
    """
    seq, ts, kind, topic, payload, reason, key, stored_hash = row
    if seq > prev_seq + 1:
        gap = f"{prev_seq + 1}" if seq == prev_seq + 2 else f"{prev_seq + 1}–{seq - 1}"
        return f"record(s) {gap} before it are missing (deleted?)"
    if seq <= prev_seq:
        return f"out of order: it follows record {prev_seq}"
    if kind not in KINDS:
        return f"unknown kind {kind!r}"
    try:
        digest = record_hash(prev_hash, seq, ts, kind, topic, bytes(payload), reason, key)
    except (TypeError, ValueError, AttributeError, struct.error):
        # A hand edit can store a column of the wrong type (SQLite does not refuse it):
        # that is a changed record to report, not a traceback.
        return "a field has the wrong type (edited by hand?)"
    if digest != bytes(stored_hash):
        return (
            "its contents do not match its hash "
            "(changed after it was written, or the record before it was)"
        )
    return ""


def walk(
    fetch: Callable[[int, int], Sequence[Row]],
    chunk: int,
    after_seq: int = 0,
    after_hash: bytes = GENESIS,
) -> VerifyResult:
    """Check every record after (after_seq, after_hash), in chunks from ``fetch(after, limit)``.

    ``count`` is the number of records walked, so a walk from a checkpoint costs and
    reports only the records since it.
    """
    prev_seq, prev_hash, count = after_seq, after_hash, 0
    after = after_seq
    while True:
        rows = fetch(after, chunk)
        for row in rows:
            count += 1
            why = check_link(row, prev_seq, prev_hash)
            if why:
                return VerifyResult(False, count, row[0], why, prev_seq, prev_hash)
            prev_seq, prev_hash = row[0], bytes(row[HASH])
        if len(rows) < chunk:
            return VerifyResult(True, count, None, "", prev_seq, prev_hash)
        after = rows[-1][0]


def check_tail(
    tail: tuple[int, bytes], rows: Sequence[Row], after_seq: int, after_hash: bytes
) -> bool:
    """Backends call this inside the write transaction, before inserting ``rows``.

    True: ``rows`` are already stored (a commit whose acknowledgement was lost, e.g. a
    dropped connection, then retried): nothing to do. False: the tail is where we left
    it, insert. Otherwise another writer has appended to this journal: refuse.
    """
    seq, digest = tail[0], bytes(tail[1])
    if (seq, digest) == (after_seq, after_hash):
        return False
    if rows and (seq, digest) == (rows[-1][0], rows[-1][HASH]):
        return True
    raise JournalError(
        f"the journal was written by someone else: it ends at record {seq}, this core "
        f"expected {after_seq}; only one core may write a journal (restart to continue)"
    )


# The kind index's condition (format 2), in both backends' schemas and in kinds_where.
INDEXED_CONDITION: Final = "kind IN (" + ", ".join(f"'{k}'" for k in INDEXED_KINDS) + ")"


def kinds_where(kinds: tuple[str, ...], mark: str) -> str:
    """The SQL condition for rows of ``kinds``, with one parameter ``mark`` ("?", "%s") each.

    A kind the partial kind index holds is asked for with the index's own condition
    repeated word for word, so both SQLite and PostgreSQL see that the index applies.
    """
    if len(kinds) == 1 and kinds[0] in INDEXED_KINDS:
        return f"kind = {mark} AND {INDEXED_CONDITION}"
    return f"kind IN ({', '.join([mark] * len(kinds))})"
