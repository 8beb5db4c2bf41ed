"""The journal: an append-only, hash-chained record of everything the core accepted or refused.

The core appends records as it goes (events, commands, replies, state changes,
dead letters), then calls :meth:`Journal.commit` once per batch and only then
acknowledges the batch to the broker. A record is therefore on disk before its
sender is told it was received; a failed commit keeps the batch, so a later
commit retries it without loss.

Every record carries the hash of the one before it (``hash = sha256(prev_hash +
canonical encoding)``), so :meth:`Journal.verify` finds an edited, deleted or
reordered record and names the first bad one.

Backends: :mod:`console.journal.sqlite` (embedded default, WAL) and
:mod:`console.journal.postgres` (PostgreSQL, shared). Both implement only the storage
primitives; the batch, the chain and the checks live here, so the two cannot
disagree on what a record or its hash is.
"""

from __future__ import annotations

import abc
import enum
import hashlib
import heapq
import math
import struct
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

if TYPE_CHECKING:
    from console.config import JournalConfig


class RecordKind(enum.StrEnum):
    EVENT = "event"  # an accepted raw event (SOS, CCTV, responder), payload as received
    COMMAND = "command"  # an operator command, payload as received
    REPLY = "reply"  # the core's reply to a command, encoded
    CHANGE = "change"  # a state change the engine made, encoded
    DEAD = "dead"  # a refused payload, as received, with the reason
    SNAPSHOT = "snapshot"  # the engine's whole state as of a seq (see Journal.write_snapshot)
    SYSTEM = "system"  # start, stop, alarms about the journal itself


GENESIS: Final = bytes(32)  # prev_hash of the first record
FETCH_CHUNK: Final = 1000  # rows per query when streaming; bounds memory, not a limit
RECENT_KEYS: Final = 50_000  # stored keys found by has_key, remembered to spare a query

# Canonical encoding of a record for the hash: fixed-width big-endian header (seq, ts,
# then the byte length of each variable field) followed by the fields themselves.
# Length prefixes make the encoding unambiguous: no two different records encode alike.
_HEADER: Final = struct.Struct(">QdIIIII")
_KIND_VALUES: Final[dict[object, str]] = {
    **{k: k.value for k in RecordKind},
    **{k.value: k.value for k in RecordKind},
}

Row = tuple[int, float, str, str, bytes, str, str, bytes, bytes]
"""A stored record: (seq, ts, kind, topic, payload, reason, key, prev_hash, hash)."""


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
    """sha256(prev_hash + canonical encoding of the other fields); 32 bytes."""
    k, t, r, y = kind.encode(), topic.encode(), reason.encode(), key.encode()
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
    prev_hash: bytes = GENESIS
    hash: bytes = b""

    @property
    def upto_seq(self) -> int:
        """For a snapshot: the last seq whose effect the snapshot includes."""
        if self.kind is not RecordKind.SNAPSHOT or not self.key.isdigit():
            raise ValueError(f"record {self.seq} is a {self.kind}, not a snapshot")
        return int(self.key)

    @classmethod
    def from_row(cls, row: Row) -> Record:
        seq, ts, kind, topic, payload, reason, key, prev_hash, hash_ = row
        return cls(seq, ts, RecordKind(kind), topic, payload, reason, key, prev_hash, hash_)


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


class JournalError(Exception):
    """The journal cannot do what was asked. ``reason`` is for people (and the alarm on screen).

    ``retryable`` is true when the same call may succeed later without anyone touching
    the journal (disk full, read-only, server away): the batch is kept for that retry.
    """

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


def _clean_text(text: str) -> str:
    """Text as both backends can store it: UTF-8 without NUL (PostgreSQL refuses both).

    Used for topic and reason, which describe rather than identify: a dead letter whose
    reason quotes a NUL must still be journaled, not poison the batch at commit.
    """
    if text.isascii() and "\x00" not in text:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


class Journal(abc.ABC):
    """Append-only, hash-chained journal; one writer (one core) per journal.

    Reads (:meth:`records`, :meth:`count`, :meth:`latest_snapshot`, :meth:`verify`) see
    committed records only; :meth:`has_key` and :meth:`pending` also see the batch.

    Thread use: all methods may be called from any thread. :meth:`commit` may run in a
    worker thread while the event loop keeps appending; it commits what was appended
    before it was called, and later appends wait for the next commit. Reads that need
    the database wait while a commit is writing (one connection, one statement at a time).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the in-memory state below
        self._db_lock = threading.Lock()  # the connection: one commit or read at a time
        self._pending: list[Row] = []  # appended, not yet handed to a commit
        self._inflight: list[Row] = []  # handed to the commit now running
        self._pending_keys: set[str] = set()  # keys in _pending and _inflight
        self._recent_keys: OrderedDict[str, None] = OrderedDict()  # found stored by has_key
        self._closed = False
        self._committed_seq = 0
        self._committed_hash = GENESIS
        self._last_seq = 0
        self._last_hash = GENESIS

    def _start_chain(self) -> None:
        """Continue the chain after the stored tail (called by backends once open)."""
        self._committed_seq, self._committed_hash = self._tail()
        self._last_seq, self._last_hash = self._committed_seq, self._committed_hash

    # --- storage primitives (the backends) ------------------------------------------

    @abc.abstractmethod
    def _write(self, rows: Sequence[Row], after_seq: int, after_hash: bytes) -> None:
        """Insert ``rows`` in one durable transaction.

        Refuse (JournalError, not retryable) if the stored tail is not (after_seq,
        after_hash): someone else wrote to this journal. Raise JournalError (retryable
        when it is) and leave nothing written on any failure.
        """

    @abc.abstractmethod
    def _fetch(self, after_seq: int, kind: str | None, limit: int) -> list[Row]:
        """Up to ``limit`` committed rows with seq > after_seq (of ``kind``), by seq."""

    @abc.abstractmethod
    def _stored_key(self, key: str) -> bool: ...

    @abc.abstractmethod
    def _count(self, kind: str | None) -> int: ...

    @abc.abstractmethod
    def _latest(self, kind: str) -> Row | None: ...

    @abc.abstractmethod
    def _tail(self) -> tuple[int, bytes]:
        """(seq, hash) of the last committed record, (0, GENESIS) when empty."""

    @abc.abstractmethod
    def _close(self) -> None: ...

    # --- the interface ----------------------------------------------------------------

    def append(
        self,
        ts: float,
        kind: RecordKind,
        topic: str,
        payload: bytes | bytearray | memoryview,
        *,
        reason: str = "",
        key: str = "",
    ) -> int:
        """Add a record to the current batch and return its seq; durable after :meth:`commit`.

        Raises ValueError for what no backend could store (a non-finite time, a key with
        NUL or invalid UTF-8), so a bad record never blocks the batch at commit.
        """
        # The checks keep to fast paths: append runs once per message on the core's hot path.
        kind_value = _KIND_VALUES.get(kind) or RecordKind(kind).value
        ts = float(ts)
        if not math.isfinite(ts):
            raise ValueError(f"journal time must be finite, not {ts!r}")
        if type(payload) is not bytes:
            payload = bytes(payload)
        if not (topic.isascii() and "\x00" not in topic):
            topic = _clean_text(topic)
        if reason and not (reason.isascii() and "\x00" not in reason):
            reason = _clean_text(reason)
        if not (key.isascii() and "\x00" not in key) and _clean_text(key) != key:
            raise ValueError(f"journal key must be UTF-8 text without NUL: {key!r}")
        with self._lock:
            if self._closed:
                raise JournalError("the journal is closed")
            seq = self._last_seq + 1
            prev = self._last_hash
            digest = record_hash(prev, seq, ts, kind_value, topic, payload, reason, key)
            self._pending.append((seq, ts, kind_value, topic, payload, reason, key, prev, digest))
            if key:
                self._pending_keys.add(key)
            self._last_seq, self._last_hash = seq, digest
        return seq

    def commit(self) -> None:
        """Write the batch in one transaction; durable when this returns.

        On failure raises JournalError with a human reason and keeps the batch (in
        order, ahead of anything appended since), so a later commit retries it.
        """
        with self._db_lock:
            with self._lock:
                self._check_open()
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
                self._inflight = batch
            try:
                self._write(batch, self._committed_seq, self._committed_hash)
            except BaseException:
                with self._lock:
                    self._pending = batch + self._pending
                    self._inflight = []
                raise
            with self._lock:
                self._inflight = []
                self._committed_seq, self._committed_hash = batch[-1][0], batch[-1][8]
                self._pending_keys = {row[6] for row in self._pending if row[6]}

    def pending(self) -> int:
        """Records appended but not yet committed."""
        with self._lock:
            return len(self._pending) + len(self._inflight)

    def has_key(self, key: str) -> bool:
        """Whether a committed or pending record has ``key`` (indexed; "" is never a key)."""
        if not key:
            return False
        with self._lock:
            self._check_open()
            if key in self._pending_keys or key in self._recent_keys:
                return True
        with self._db_lock:
            self._check_open()
            found = self._stored_key(key)
        if found:
            # Append-only: a key once stored stays stored, so remembering it is always right.
            with self._lock:
                self._remember(key)
        return found

    def records(
        self, after_seq: int = 0, kinds: Collection[RecordKind] | None = None
    ) -> Iterator[Record]:
        """Committed records with seq > ``after_seq`` (optionally of ``kinds``), in seq order.

        Streams in chunks, each its own short query, so neither memory nor an open
        statement grows with the journal, and commits may go on while a caller iterates.
        """
        if kinds is None:
            yield from self._stream(after_seq, None)
            return
        wanted = sorted({RecordKind(k).value for k in kinds})
        if len(wanted) == 1:
            yield from self._stream(after_seq, wanted[0])
            return
        # One indexed stream per kind, merged by seq: each stays a range scan of the
        # (kind, seq) index, where "kind IN (...) ORDER BY seq" would sort every chunk.
        streams = [self._stream(after_seq, kind) for kind in wanted]
        yield from heapq.merge(*streams, key=lambda record: record.seq)

    def _stream(self, after_seq: int, kind: str | None) -> Iterator[Record]:
        while True:
            with self._db_lock:
                self._check_open()
                rows = self._fetch(after_seq, kind, FETCH_CHUNK)
            for row in rows:
                yield Record.from_row(row)
            if len(rows) < FETCH_CHUNK:
                return
            after_seq = rows[-1][0]

    def latest_snapshot(self) -> Record | None:
        """The most recent committed snapshot, or None."""
        with self._db_lock:
            self._check_open()
            row = self._latest(RecordKind.SNAPSHOT.value)
        return None if row is None else Record.from_row(row)

    def write_snapshot(self, ts: float, payload: bytes, upto_seq: int) -> None:
        """Journal the engine's state as of ``upto_seq`` and commit (with anything pending).

        Recovery loads the latest snapshot, then replays ``records(after_seq=upto_seq)``.
        """
        with self._lock:
            last = self._last_seq
        if not 0 <= upto_seq <= last:
            raise ValueError(f"snapshot up to {upto_seq}, but the journal ends at {last}")
        # The key is the bare decimal upto_seq (console.core.rebuild reads it so).
        self.append(ts, RecordKind.SNAPSHOT, "", payload, key=str(upto_seq))
        self.commit()

    def count(self, kind: RecordKind | None = None) -> int:
        """Committed records (of ``kind``)."""
        wanted = None if kind is None else RecordKind(kind).value
        with self._db_lock:
            self._check_open()
            return self._count(wanted)

    @property
    def last_seq(self) -> int:
        """Seq of the last appended record, committed or not (0 when empty)."""
        with self._lock:
            return self._last_seq

    @property
    def committed_seq(self) -> int:
        """Seq of the last committed record (0 when empty)."""
        with self._lock:
            return self._committed_seq

    def verify(self) -> VerifyResult:
        """Walk the whole committed chain; name the first bad record, or say ok with the count.

        Finds a changed field (the record's hash no longer matches), a deleted or
        reordered record (a gap in seq, or a prev_hash that is not the previous hash).
        Cutting off the tail leaves a valid shorter chain: compare ``head_seq`` and
        ``head_hash`` with a copy kept elsewhere to detect that.
        """
        prev_seq, prev_hash, count = 0, GENESIS, 0
        after = 0
        while True:
            with self._db_lock:
                self._check_open()
                rows = self._fetch(after, None, FETCH_CHUNK)
            for row in rows:
                count += 1
                why = _check_link(row, prev_seq, prev_hash)
                if why:
                    return VerifyResult(False, count, row[0], why, prev_seq, prev_hash)
                prev_seq, prev_hash = row[0], bytes(row[8])
            if len(rows) < FETCH_CHUNK:
                return VerifyResult(True, count, None, "", prev_seq, prev_hash)
            after = rows[-1][0]

    def close(self) -> None:
        """Commit anything pending, then close. Raises JournalError if that commit fails
        (the journal is closed all the same, and the pending records are lost)."""
        if self._closed:
            return
        try:
            if self.pending():
                self.commit()
        finally:
            with self._db_lock, self._lock:
                self._closed = True
                self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- helpers ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise JournalError("the journal is closed")

    def _remember(self, key: str) -> None:
        recent = self._recent_keys
        recent[key] = None
        recent.move_to_end(key)
        if len(recent) > RECENT_KEYS:
            recent.popitem(last=False)


def _check_link(row: Row, prev_seq: int, prev_hash: bytes) -> str:
    """Why ``row`` does not follow (prev_seq, prev_hash) in the chain; "" if it does."""
    seq, ts, kind, topic, payload, reason, key, stored_prev, stored_hash = row
    if seq > prev_seq + 1:
        gap = f"{prev_seq + 1}" if seq == prev_seq + 2 else f"{prev_seq + 1}–{seq - 1}"
        return f"record(s) {gap} before it are missing (deleted?)"
    if seq <= prev_seq:
        return f"out of order: it follows record {prev_seq}"
    if bytes(stored_prev) != prev_hash:
        return "its prev_hash is not the hash of the record before it (reordered or replaced?)"
    if kind not in RecordKind._value2member_map_:
        return f"unknown kind {kind!r}"
    if record_hash(prev_hash, seq, ts, kind, topic, bytes(payload), reason, key) != bytes(
        stored_hash
    ):
        return "its contents do not match its hash (changed after it was written)"
    return ""


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
    if (seq, digest) == (rows[-1][0], rows[-1][8]):
        return True
    raise JournalError(
        f"the journal was written by someone else: it ends at record {seq}, this core "
        f"expected {after_seq}; only one core may write a journal (restart to continue)"
    )


def open_journal(cfg: JournalConfig, path_override: str | None = None) -> Journal:
    """Open (creating if needed) the configured journal.

    ``path_override`` replaces ``cfg.path`` for SQLite, or ``cfg.dsn`` for PostgreSQL.
    """
    if cfg.backend == "postgres":
        try:
            from console.journal.postgres import PostgresJournal
        except ImportError as exc:
            raise JournalError(
                f"the postgres journal needs psycopg 3 ({exc}): pip install 'ansim[postgres]'"
            ) from None
        return PostgresJournal(path_override or cfg.dsn)
    from console.journal.sqlite import SqliteJournal

    return SqliteJournal(Path(path_override or cfg.path))
