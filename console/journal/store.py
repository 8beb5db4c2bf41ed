"""The journal: an append-only, hash-chained record of everything the core accepted or refused.

The core appends records as it goes (events, commands, replies, state changes,
dead letters), then calls :meth:`Journal.commit` once per batch and only then
acknowledges the batch to the broker. A record is therefore on disk before its
sender is told it was received; a failed commit keeps the batch, so a later
commit retries it without loss.

Every record's hash covers the hash of the one before it (``hash = sha256(previous
hash + canonical encoding)``), so :meth:`Journal.verify` finds an edited, deleted or
reordered record and names the first bad one.

Backends: :mod:`console.journal.sqlite` (embedded default, WAL) and
:mod:`console.journal.postgres` (PostgreSQL, shared). Both implement only the storage
primitives; the batch and the checks live here, the hash and the chain rules in
:mod:`console.journal.chain`, dead letters in :mod:`console.journal.dead`, the head
file in :mod:`console.journal.head`, so the two cannot disagree on what a record or
its hash is.
"""

from __future__ import annotations

import abc
import heapq
import logging
import math
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

from console.journal.chain import (
    GENESIS,
    HASH,
    INDEXED_KINDS,
    JournalError,
    Record,
    RecordKind,
    Row,
    VerifyResult,
    check_tail,
    record_hash,
    walk,
)
from console.journal.dead import (
    DEAD_HEADER_SIZE,
    DEAD_PREFIX,
    DEAD_REASON_MAX,
    DEAD_TOPIC_MAX,
    DeadBudget,
    DeadCount,
    clean_text,
    dead_source,
    encode_dead,
    storable_text,
)
from console.journal.head import HeadKeeper, Point
from console.journal.key_filter import StoredKeys

if TYPE_CHECKING:
    from console.config import JournalConfig

# The chain's pieces are part of this interface too (callers import them from here).
__all__ = [
    "GENESIS",
    "DeadBudget",
    "DeadCount",
    "Journal",
    "JournalError",
    "Record",
    "RecordKind",
    "Row",
    "VerifyResult",
    "check_tail",
    "open_journal",
    "record_hash",
]

log = logging.getLogger("ansim.journal")

FETCH_CHUNK: Final = 1000  # rows per query when streaming; bounds memory, not a limit


_KIND_VALUES: Final[dict[object, str]] = {
    **{k: k.value for k in RecordKind},
    **{k.value: k.value for k in RecordKind},
}


class Journal(abc.ABC):
    """Append-only, hash-chained journal; one writer (one core) per journal.

    Reads (:meth:`records`, :meth:`count`, :meth:`latest_snapshot`, :meth:`verify`) see
    committed records only; :meth:`has_key` and :meth:`pending` also see the batch.

    Thread use: all methods may be called from any thread. :meth:`commit` may run in a
    worker thread while the event loop keeps appending; it commits what was appended
    before it was called, and later appends wait for the next commit. Reads that need
    the database wait while a commit is writing (one connection, one statement at a time).
    """

    def __init__(self, head_path: Path | None = None) -> None:
        self.where = ""  # the file or database, for messages (set by the backend)
        self.dead_budget = DeadBudget()  # per-source dead-letter budget; replace to configure
        self._lock = threading.Lock()  # guards the in-memory state below
        self._db_lock = threading.Lock()  # the connection: one commit or read at a time
        self._pending: list[Row] = []  # appended, not yet handed to a commit
        self._inflight: list[Row] = []  # handed to the commit now running
        self._pending_keys: set[str] = set()  # keys in _pending and _inflight
        self._stored_keys_known = StoredKeys()  # a filter of stored keys: spares most queries
        self._closed = False
        self._committed_seq = 0
        self._committed_hash = GENESIS
        self._last_seq = 0
        self._last_hash = GENESIS
        self._suppressed: dict[str, DeadCount] = {}  # over-budget refusals, not yet committed
        self._counting: dict[str, DeadCount] = {}  # handed to the commit now running
        self.head = HeadKeeper(head_path)  # the head file (console.journal.head)

    def _start_chain(self) -> None:
        """Continue the chain after the stored tail (called by backends once open).

        Also compares the tail with the head file (two reads): a disagreement is kept in
        ``head.problem`` for :func:`console.journal.head.check_at_start` to refuse.
        """
        # The head file first: it is written after each commit, so a tail read after it
        # is never behind it unless records were taken away.
        self.head.load()
        self._committed_seq, self._committed_hash = self._tail()
        self._last_seq, self._last_hash = self._committed_seq, self._committed_hash
        self.head.compare((self._committed_seq, self._committed_hash), self._point_at, self.where)
        # Every key stored so far, in one streaming pass; commits add theirs from here on.
        self._stored_keys_known.rebuild(self._stored_keys(), self._committed_seq)

    # --- storage primitives (the backends) ------------------------------------------

    @abc.abstractmethod
    def _write(
        self,
        rows: Sequence[Row],
        after_seq: int,
        after_hash: bytes,
        counts: Mapping[str, DeadCount] | None = None,
    ) -> None:
        """Insert ``rows`` and add ``counts`` to the per-source suppressed dead letters, in
        one durable transaction.

        Refuse (JournalError, not retryable) if the stored tail is not (after_seq,
        after_hash): someone else wrote to this journal. Raise JournalError (retryable
        when it is) and leave nothing written on any failure.
        """

    @abc.abstractmethod
    def _fetch(self, after_seq: int, kinds: tuple[str, ...] | None, limit: int) -> list[Row]:
        """Up to ``limit`` committed rows with seq > after_seq (of ``kinds``), by seq.

        Build the kind condition with :func:`kinds_where`: it uses the kind index where
        there is one.
        """

    @abc.abstractmethod
    def _stored_key(self, key: str) -> bool: ...

    @abc.abstractmethod
    def _stored_keys(self, after_seq: int = 0, upto: int | None = None) -> Iterator[str]:
        """The non-empty keys of committed rows with after_seq < seq (≤ upto), streamed."""

    @abc.abstractmethod
    def _count(self, kind: str | None) -> int: ...

    @abc.abstractmethod
    def _latest(self, kind: str) -> Row | None: ...

    @abc.abstractmethod
    def _dead_counts(self) -> list[tuple[str, int, int, float, float]]:
        """Committed suppressed dead letters: (source, count, bytes, first_ts, last_ts)."""

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
            topic = storable_text(topic)
        if reason and not (reason.isascii() and "\x00" not in reason):
            reason = storable_text(reason)
        if not (key.isascii() and "\x00" not in key) and storable_text(key) != key:
            raise ValueError(f"journal key must be UTF-8 text without NUL: {key!r}")
        with self._lock:
            if self._closed:
                raise JournalError("the journal is closed")
            seq = self._last_seq + 1
            digest = record_hash(self._last_hash, seq, ts, kind_value, topic, payload, reason, key)
            self._pending.append((seq, ts, kind_value, topic, payload, reason, key, digest))
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
                if not self._pending and not self._suppressed:
                    return
                batch, self._pending = self._pending, []
                counts, self._suppressed = self._suppressed, {}
                self._inflight, self._counting = batch, counts
            try:
                self._write(batch, self._committed_seq, self._committed_hash, counts)
            except BaseException:
                with self._lock:
                    self._pending = batch + self._pending
                    for source, count in counts.items():
                        count.merge(self._suppressed.get(source, DeadCount()))
                        self._suppressed[source] = count
                    self._inflight, self._counting = [], {}
                raise
            with self._lock:
                self._inflight, self._counting = [], {}
                if batch:
                    self._committed_seq, self._committed_hash = batch[-1][0], batch[-1][HASH]
                    # Also rows found already stored (a retried lost COMMIT); and before the
                    # pending keys go, so has_key never finds a committed key in neither.
                    self._stored_keys_known.add_rows(batch, self._committed_seq)
                self._pending_keys = {row[6] for row in self._pending if row[6]}
            if batch:
                self.head.write((self._committed_seq, self._committed_hash), where=self.where)

    def dead_letter(
        self,
        ts: float,
        topic: str,
        payload: bytes | bytearray | memoryview,
        reason: str,
        *,
        source: str | None = None,
    ) -> int | None:
        """Journal a refused payload as a bounded dead letter; its seq, or None if counted.

        Stored: the payload's SHA-256, size and first DEAD_PREFIX bytes, the reason and
        the topic (control characters removed, both bounded). ``source`` (default: from
        the topic, see :func:`console.journal.dead.dead_source`) is charged against
        :attr:`dead_budget`; past it the refusal is only counted, per source, and the
        count is committed with the batch (:meth:`dead_counts`).
        """
        size = len(payload)
        topic = clean_text(topic, DEAD_TOPIC_MAX)
        reason = clean_text(reason, DEAD_REASON_MAX) or "refused"
        who = storable_text(clean_text(source, DEAD_TOPIC_MAX) if source else dead_source(topic))
        cost = DEAD_HEADER_SIZE + min(size, DEAD_PREFIX) + len(topic) + len(reason)
        with self._lock:
            admitted = self.dead_budget.admit(who, ts, cost)
            if not admitted:
                # Counted before any hashing: a flood past the budget costs no SHA-256 of
                # payloads up to the broker's limit.
                self._check_open()
                self._suppressed.setdefault(who, DeadCount()).add(size, float(ts))
                return None
        stored = encode_dead(bytes(payload))
        return self.append(ts, RecordKind.DEAD, topic, stored, reason=reason)

    def dead_counts(self) -> dict[str, DeadCount]:
        """Committed dead letters counted instead of stored, per source."""
        with self._db_lock:
            self._check_open()
            rows = self._dead_counts()
        return {source: DeadCount(n, size, first, last) for source, n, size, first, last in rows}

    def suppressed(self) -> int:
        """Dead letters counted instead of stored and not yet committed."""
        with self._lock:
            counts = (*self._suppressed.values(), *self._counting.values())
            return sum(count.suppressed for count in counts)

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
            if key in self._pending_keys:
                return True
            # Most keys were never stored: the filter says so without a query.
            known = self._stored_keys_known.known(key)
            if known is not None:
                return known
        with self._db_lock:
            self._check_open()
            found = self._stored_key(key)
        if found:
            # Append-only: a key once stored stays stored, so remembering it is always right.
            with self._lock:
                self._stored_keys_known.remember(key)
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
        wanted = tuple(sorted({RecordKind(k).value for k in kinds}))
        if len(wanted) == 1 or not set(wanted) <= set(INDEXED_KINDS):
            # Common kinds have no index of their own: one range of seq, filtered.
            yield from self._stream(after_seq, wanted)
            return
        # Indexed kinds only: one index range scan per kind, merged by seq, where
        # "kind IN (...) ORDER BY seq" would sort every chunk.
        streams = [self._stream(after_seq, (kind,)) for kind in wanted]
        yield from heapq.merge(*streams, key=lambda record: record.seq)

    def _stream(self, after_seq: int, kinds: tuple[str, ...] | None) -> Iterator[Record]:
        while True:
            with self._db_lock:
                self._check_open()
                rows = self._fetch(after_seq, kinds, FETCH_CHUNK)
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

    def verify(self, after_seq: int = 0, after_hash: bytes = GENESIS) -> VerifyResult:
        """Walk the committed chain after (after_seq, after_hash), by default all of it;
        name the first bad record, or say ok with the count walked.

        Finds a changed field (the record's hash no longer matches), a deleted or
        reordered record (a gap in seq, or a hash that does not follow from the previous one).
        Cutting off the tail leaves a valid shorter chain: ``head.problem`` (found at
        open) compares the tail with the head file for that.
        """

        def fetch(after: int, limit: int) -> list[Row]:
            with self._db_lock:
                self._check_open()
                return self._fetch(after, None, limit)

        return walk(fetch, FETCH_CHUNK, after_seq, after_hash)

    # --- the head file (console.journal.head) -----------------------------------------

    def record_point(self, seq: int) -> Point | None:
        """(seq, hash) of committed record ``seq``, None when there is no such record."""
        with self._db_lock:
            self._check_open()
            return self._point_at(seq)

    def mark_verified(self, point: Point) -> None:
        """The chain is whole up to ``point``: the next start walks only what follows."""
        with self._db_lock:
            head = (self._committed_seq, self._committed_hash)
            self.head.write(head, point, self.where)

    def _point_at(self, seq: int) -> Point | None:
        rows = self._fetch(seq - 1, None, 1) if seq > 0 else []
        if not rows or rows[0][0] != seq or not isinstance(rows[0][HASH], bytes):
            return None  # a hash of the wrong type differs from any the head file holds
        return rows[0][0], rows[0][HASH]

    def close(self) -> None:
        """Commit anything pending, then close. Raises JournalError if that commit fails
        (the journal is closed all the same, and the pending records are lost)."""
        if self._closed:
            return
        try:
            if self.pending() or self.suppressed():
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


def open_journal(
    cfg: JournalConfig, path_override: str | None = None, head_path: str | None = None
) -> Journal:
    """Open (creating if needed) the configured journal.

    ``path_override`` replaces ``cfg.path`` for SQLite, or ``cfg.dsn`` for PostgreSQL.
    ``head_path`` is where the head file goes (console.journal.head): by default
    ``<journal file>.head`` for SQLite, and for PostgreSQL a file named after the
    server and database in the directory of ``cfg.path``.
    """
    if cfg.backend == "postgres":
        try:
            from console.journal.postgres import PostgresJournal, default_head_path
        except ImportError as exc:
            raise JournalError(
                f"the postgres journal needs psycopg 3 ({exc}): pip install 'ansim[postgres]'"
            ) from None
        dsn = path_override or cfg.dsn
        beside = Path(head_path) if head_path else default_head_path(dsn, Path(cfg.path).parent)
        return PostgresJournal(dsn, head_path=beside)
    from console.journal.sqlite import SqliteJournal

    head = Path(head_path) if head_path else None
    return SqliteJournal(Path(path_override or cfg.path), head_path=head)
