"""The shared journal: PostgreSQL, the same append-only hash-chained table as SQLite.

Durability: each batch is one transaction with ``synchronous_commit = on`` (set for the
session, whatever the server default), so COMMIT returns after the WAL is flushed on
the server. Rows go in with COPY, one round trip per batch.

A lost connection is retryable: the next commit reconnects and, if the lost COMMIT
had in fact landed, recognises its own rows at the tail instead of writing them twice.
A key lookup (is this SOS a resend?) waits for a restarting server instead of failing.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg.conninfo import conninfo_to_dict

from console.journal.chain import (
    GENESIS,
    HASH,
    INDEXED_CONDITION,
    JournalError,
    Row,
    check_tail,
    kinds_where,
)
from console.journal.dead import DeadCount
from console.journal.key_filter import stream_keys
from console.journal.lease import Fence, check_fence, ensure_table
from console.journal.store import Journal

log = logging.getLogger("ansim.journal")

TABLE_COMMENT: Final = "ansim journal v2"  # marks the table as ours, and its format
# Format 1 also stored each record's previous hash (prev_hash) and indexed every record
# by kind; its hashes are the same, so it is read as it is and written as before.
TABLE_COMMENT_1: Final = "ansim journal v1"

_COLUMNS: Final = "seq, ts, kind, topic, payload, reason, key, hash"
_COLUMNS_1: Final = "seq, ts, kind, topic, payload, reason, key, prev_hash, hash"

_SCHEMA: Final = f"""
CREATE TABLE journal (
    seq       BIGINT           PRIMARY KEY,
    ts        DOUBLE PRECISION NOT NULL,
    kind      TEXT             NOT NULL,
    topic     TEXT             NOT NULL,
    payload   BYTEA            NOT NULL,
    reason    TEXT             NOT NULL,
    key       TEXT             NOT NULL,
    hash      BYTEA            NOT NULL
);
-- Partial, as in SQLite: keyed records only, and by kind only the kinds read by kind.
CREATE INDEX journal_key ON journal (key) WHERE key <> '';
CREATE INDEX journal_kind ON journal (kind, seq) WHERE {INDEXED_CONDITION};
-- Append-only, also against a slip at the psql prompt; the hash chain shows intent.
CREATE OR REPLACE FUNCTION journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the journal is append-only'; END $$;
CREATE TRIGGER journal_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON journal
    FOR EACH STATEMENT EXECUTE FUNCTION journal_append_only();
COMMENT ON TABLE journal IS '{TABLE_COMMENT}';
"""

# Dead letters counted instead of stored (console.journal.dead), one row per source,
# updated in the commit's transaction. IF NOT EXISTS: journals made before it get it
# when next opened.
_COUNTS_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS dead_counts (
    source     TEXT             PRIMARY KEY,
    suppressed BIGINT           NOT NULL,
    bytes      BIGINT           NOT NULL,
    first_ts   DOUBLE PRECISION NOT NULL,
    last_ts    DOUBLE PRECISION NOT NULL
);
"""

_ADD_COUNTS: Final = """
INSERT INTO dead_counts (source, suppressed, bytes, first_ts, last_ts)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (source) DO UPDATE SET
    suppressed = dead_counts.suppressed + excluded.suppressed,
    bytes = dead_counts.bytes + excluded.bytes,
    first_ts = LEAST(dead_counts.first_ts, excluded.first_ts),
    last_ts = GREATEST(dead_counts.last_ts, excluded.last_ts)
"""

# One writer at a time, across processes: held for the write transaction only.
_LOCK_ID: Final = 0x616E73696D6A6E6C  # "ansimjnl"

# The core looks keys up between commits, on its event loop, and a failed lookup would
# end it: it waits this long for a server that is restarting (a commit, by contrast,
# fails at once and the core holds the batch and retries it).
KEY_LOOKUP_WAIT_S: Final = 10.0
_KEY_LOOKUP_RETRY_S: Final = 0.2

# SQLSTATEs that a later retry may get past without anyone touching the journal.
_RETRYABLE: Final = {
    "53100": "the database server's disk is full",
    "53200": "the database server is out of memory",
    "53300": "the database server has too many connections",
    "25006": "the database is read-only",
    "57P01": "the database server is shutting down",
    "57P03": "the database server is not accepting connections yet",
    "40001": "a serialization conflict",
    "40P01": "a deadlock",
}


def _safe_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", re.sub(r"password=\S+", "password=***", dsn))


def default_head_path(dsn: str, directory: Path) -> Path:
    """The head file for the database of ``dsn``: named after its server and database, in
    ``directory`` (the core's own disk, out of reach of whoever can only reach the database)."""
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.Error:
        info = {}
    name = "-".join(
        str(info.get(k) or d) for k, d in (("host", "local"), ("port", 5432), ("dbname", "db"))
    )
    return directory / ("journal-pg-" + re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".head")


class PostgresJournal(Journal):
    """``head_path``: the head file (console.journal.head); none unless given, since the
    database has no file beside which to put it (open_journal gives a default)."""

    def __init__(
        self, dsn: str, *, connect_timeout: float = 5.0, head_path: Path | None = None
    ) -> None:
        super().__init__(head_path)
        self.dsn = dsn
        self._where = self.where = _safe_dsn(dsn)
        self.format = 2  # the table's format: read at open (_setup)
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None
        # Set by a core that holds the lease (console.journal.lease): every commit checks it.
        self.fence: Fence | None = None
        # Reads stop at this seq while set: a standby rebuilding while the active writes.
        # Inputs of several kinds are read by one query per kind; a commit landing between
        # them would leave a gap, but nothing up to a tail read before them can be missing.
        self.read_upto: int | None = None
        try:
            conn = self._connection()
            self._setup(conn)
            self._start_chain()
        except BaseException:
            self._drop_connection()
            raise

    # --- connection -------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self._drop_connection()
        try:
            conn = psycopg.connect(
                self.dsn, autocommit=True, connect_timeout=max(1, round(self._connect_timeout))
            )
        except psycopg.Error as exc:
            raise JournalError(
                f"journal {self._where}: cannot connect: {exc}".strip(), retryable=True
            ) from None
        # Durable at COMMIT even if the server default was relaxed for other databases.
        conn.execute("SET synchronous_commit = on")
        self._conn = conn
        return conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass  # it is already unusable; the caller reports the original error
            self._conn = None

    def _setup(self, conn: psycopg.Connection[Any]) -> None:
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
                row = conn.execute(
                    "SELECT obj_description(to_regclass('journal'), 'pg_class'), "
                    "to_regclass('journal') IS NOT NULL"
                ).fetchone()
                comment, exists = (row[0], row[1]) if row else (None, False)
                if not exists:
                    conn.execute(_SCHEMA)
                elif comment == TABLE_COMMENT_1:
                    self.format = 1
                elif comment != TABLE_COMMENT:
                    raise JournalError(
                        f"{self._where}: table 'journal' exists but is not an Ansim journal "
                        f"(comment {comment!r}, expected {TABLE_COMMENT!r} or "
                        f"{TABLE_COMMENT_1!r}); refusing to use it"
                    )
                conn.execute(_COUNTS_SCHEMA)
                ensure_table(conn)
        except psycopg.Error as exc:
            raise self._explain("open the journal", exc) from None

    def _explain(self, action: str, exc: psycopg.Error) -> JournalError:
        state = exc.sqlstate or ""
        broken = isinstance(exc, psycopg.OperationalError) and (
            self._conn is None or self._conn.closed or self._conn.broken
        )
        if broken:
            self._drop_connection()
            return JournalError(
                f"journal {self._where}: cannot {action}: lost the connection ({exc})",
                retryable=True,
            )
        if state in _RETRYABLE:
            return JournalError(
                f"journal {self._where}: cannot {action}: {_RETRYABLE[state]} ({exc})",
                retryable=True,
            )
        return JournalError(f"journal {self._where}: cannot {action}: {exc}")

    # --- storage primitives -----------------------------------------------------------

    def _write(
        self,
        rows: Sequence[Row],
        after_seq: int,
        after_hash: bytes,
        counts: Mapping[str, DeadCount] | None = None,
    ) -> None:
        conn = self._connection()
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
                if self.fence is not None:
                    check_fence(conn, self.fence)  # FencedError rolls the transaction back
                if check_tail(self._tail_on(conn), rows, after_seq, after_hash):
                    return
                columns = _COLUMNS_1 if self.format == 1 else _COLUMNS
                with (
                    conn.cursor() as cur,
                    cur.copy(f"COPY journal ({columns}) FROM STDIN") as copy,
                ):
                    if self.format == 1:
                        prev = after_hash
                        for row in rows:
                            copy.write_row((*row[:HASH], prev, row[HASH]))
                            prev = row[HASH]
                    else:
                        for row in rows:
                            copy.write_row(row)
                if counts:
                    with conn.cursor() as cur:
                        cur.executemany(
                            _ADD_COUNTS,
                            [
                                (s, c.suppressed, c.bytes, c.first_ts, c.last_ts)
                                for s, c in counts.items()
                            ],
                        )
        except psycopg.Error as exc:
            raise self._explain(f"commit {len(rows)} records", exc) from None

    def _query(self, query: str, params: Sequence[object] = ()) -> list[Any]:
        try:
            return self._connection().execute(query, params).fetchall()
        except psycopg.Error as exc:
            raise self._explain("read", exc) from None

    def _fetch(self, after_seq: int, kinds: tuple[str, ...] | None, limit: int) -> list[Row]:
        upto = (1 << 62) if self.read_upto is None else self.read_upto
        if kinds is None:
            q = f"SELECT {_COLUMNS} FROM journal WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s"
            return self._query(q, (after_seq, upto, limit))
        q = (
            f"SELECT {_COLUMNS} FROM journal WHERE {kinds_where(kinds, '%s')} "
            "AND seq > %s AND seq <= %s ORDER BY seq LIMIT %s"
        )
        return self._query(q, (*kinds, after_seq, upto, limit))

    def _stored_key(self, key: str) -> bool:
        q = "SELECT 1 FROM journal WHERE key = %s AND key <> '' LIMIT 1"
        deadline = time.monotonic() + KEY_LOOKUP_WAIT_S
        waiting = False
        while True:
            try:
                found = bool(self._query(q, (key,)))
            except JournalError as exc:
                if not exc.retryable or time.monotonic() >= deadline:
                    raise
                if not waiting:
                    log.warning("key lookup failed, waiting for the database: %s", exc.reason)
                    waiting = True
                time.sleep(_KEY_LOOKUP_RETRY_S)
                continue
            if waiting:
                log.info("key lookup: the database answers again")
            return found

    def _stored_keys(self, after_seq: int = 0, upto: int | None = None) -> Iterator[str]:
        return stream_keys(self._query, "%s", after_seq, upto)

    def _follow_keys(self, tail: int) -> None:
        """Add the keys another core stored up to ``tail`` to the key filter (the caller
        holds the connection): after a takeover, has_key must know every key the old
        active stored, or it would answer "never stored" without asking."""
        known = self._stored_keys_known
        if tail <= known.upto:
            return
        keys = list(self._stored_keys(known.upto, tail))
        with self._lock:
            known.filter.add_many(keys)
            known.upto = max(known.upto, tail)

    def _count(self, kind: str | None) -> int:
        if kind is None:
            return int(self._query("SELECT count(*) FROM journal")[0][0])
        q = f"SELECT count(*) FROM journal WHERE {kinds_where((kind,), '%s')}"
        return int(self._query(q, (kind,))[0][0])

    def _latest(self, kind: str) -> Row | None:
        where = kinds_where((kind,), "%s")
        q = f"SELECT {_COLUMNS} FROM journal WHERE {where} ORDER BY seq DESC LIMIT 1"
        rows = self._query(q, (kind,))
        return rows[0] if rows else None

    def _dead_counts(self) -> list[tuple[str, int, int, float, float]]:
        q = "SELECT source, suppressed, bytes, first_ts, last_ts FROM dead_counts ORDER BY source"
        return self._query(q)

    def _tail(self) -> tuple[int, bytes]:
        rows = self._query("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1")
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else (0, GENESIS)

    def _tail_on(self, conn: psycopg.Connection[Any]) -> tuple[int, bytes]:
        row = conn.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), bytes(row[1])) if row else (0, GENESIS)

    def stored_seq(self) -> int:
        """Seq of the last record stored, by whichever core wrote it (a standby follows it)."""
        with self._db_lock:
            self._check_open()
            tail = self._tail()[0]
            self._follow_keys(tail)  # a standby polls this: its key filter keeps up
            return tail

    def follow_tail(self) -> int:
        """Continue the chain after the stored tail, written by another core; its seq.

        For a standby taking over: it appended nothing, and the chain it would extend
        is the one the old active left. Refused (JournalError) with records pending.
        """
        with self._db_lock:
            self._check_open()
            tail = self._tail()
            # Before the chain moves on: every key up to the tail is then in the filter.
            self._follow_keys(tail[0])
            with self._lock:
                if self._pending or self._inflight:
                    raise JournalError("cannot follow the tail with records pending")
                self._committed_seq, self._committed_hash = tail
                self._last_seq, self._last_hash = tail
        return tail[0]

    def _close(self) -> None:
        self._drop_connection()
