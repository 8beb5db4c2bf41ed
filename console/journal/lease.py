"""The active core's lease and its fencing term, kept in the PostgreSQL journal's database.

One row: who holds the lease, its term, when it expires. Every time comes from the
database server's clock (``now()``), never from a core's: two hosts whose clocks
disagree still agree on who is active. Taking a free or expired lease increments the
term; every journal commit checks, inside its own transaction, that the lease still
carries its holder and term (:func:`check_fence`), so a core that lost the lease (it
froze, its network went away) writes nothing when it comes back, whatever it believes.

The commit reads the lease row ``FOR SHARE``: a standby taking the lease waits for a
commit in flight to end, and so sees its rows when it catches up to the tail.
"""

from __future__ import annotations

import math
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any, Final

import psycopg

from console.journal.chain import JournalError

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS core_lease (
    id          INTEGER     PRIMARY KEY CHECK (id = 1),
    holder      TEXT        NOT NULL,
    term        BIGINT      NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    renewed_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
INSERT INTO core_lease VALUES (1, '', 0, '-infinity', '-infinity', '-infinity')
    ON CONFLICT (id) DO NOTHING;
"""

_ACQUIRE: Final = """
UPDATE core_lease SET holder = %(holder)s, term = term + 1, acquired_at = now(),
    renewed_at = now(), expires_at = now() + make_interval(secs => %(ttl)s)
WHERE id = 1 AND (expires_at <= now() OR holder = '')
RETURNING term
"""

# Only ours and only this term: a lease taken since (a higher term) is never renewed.
_RENEW: Final = """
UPDATE core_lease SET renewed_at = now(), expires_at = now() + make_interval(secs => %(ttl)s)
WHERE id = 1 AND holder = %(holder)s AND term = %(term)s
RETURNING term
"""

_RELEASE: Final = """
UPDATE core_lease SET expires_at = now() WHERE id = 1 AND holder = %s AND term = %s
RETURNING term
"""

_STATUS: Final = """
SELECT holder, term, EXTRACT(EPOCH FROM now()), EXTRACT(EPOCH FROM acquired_at),
    EXTRACT(EPOCH FROM renewed_at), EXTRACT(EPOCH FROM expires_at)
FROM core_lease WHERE id = 1
"""


class FencedError(JournalError):
    """A commit refused because another core holds the lease now: nothing was written.

    Never retryable: no later attempt by this core can succeed under its old term.
    """

    def __init__(self, holder: str, term: int, current_holder: str, current_term: int) -> None:
        super().__init__(
            f"fenced: this core ({holder}) held term {term}, but term {current_term} is "
            f"held by {current_holder or 'nobody'}; nothing was written"
        )
        self.current_holder = current_holder
        self.current_term = current_term


@dataclass(frozen=True)
class Fence:
    """The holder and term a core writes under."""

    holder: str
    term: int


@dataclass(frozen=True)
class LeaseState:
    """The lease as the database sees it now (ages and time left by its clock)."""

    holder: str
    term: int
    held_for_s: float  # since it was taken
    renewed_ago_s: float
    left_s: float  # until it expires; <= 0 when expired

    @property
    def live(self) -> bool:
        return bool(self.holder) and self.left_s > 0


def new_holder_id(client_id: str) -> str:
    """A holder id unique to this process: a restarted core is a new holder.

    At most 150 characters, within the summary's short-text bound (it is published there).
    """
    host = socket.gethostname()[:64] or "host"
    return f"{client_id[:64]}@{host}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def ensure_table(conn: psycopg.Connection[Any]) -> None:
    """Create the lease table (with its one, free, row) if it is missing."""
    conn.execute(_SCHEMA)


def check_fence(conn: psycopg.Connection[Any], fence: Fence) -> None:
    """Inside a commit's transaction: raise FencedError unless ``fence`` still holds."""
    row = conn.execute("SELECT holder, term FROM core_lease WHERE id = 1 FOR SHARE").fetchone()
    holder, term = (str(row[0]), int(row[1])) if row else ("", 0)
    if holder != fence.holder or term != fence.term:
        raise FencedError(fence.holder, fence.term, holder, term)


class Lease:
    """The lease, over its own connection (never the journal's: a renewal must not wait
    for a commit in flight). Not thread-safe: one caller at a time."""

    def __init__(self, dsn: str, *, connect_timeout: float = 3.0) -> None:
        self.dsn = dsn
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self.close()
        try:
            conn = psycopg.connect(
                self.dsn,
                autocommit=True,
                connect_timeout=max(1, round(self._connect_timeout)),
                # A lease call that hangs is worse than one that fails: bound it.
                options="-c statement_timeout=3000",
            )
            ensure_table(conn)
        except psycopg.Error as exc:
            self.close()
            raise JournalError(f"lease: cannot reach the database: {exc}", retryable=True) from None
        self._conn = conn
        return conn

    def _run(self, query: str, params: Any) -> list[Any]:
        try:
            return self._connection().execute(query, params).fetchall()
        except psycopg.Error as exc:
            if self._conn is not None and (self._conn.closed or self._conn.broken):
                self.close()
            raise JournalError(f"lease: {exc}".strip(), retryable=True) from None

    def acquire(self, holder: str, ttl_s: float) -> int | None:
        """Take the lease if it is free or expired: the new term, else None."""
        rows = self._run(_ACQUIRE, {"holder": holder, "ttl": float(ttl_s)})
        return int(rows[0][0]) if rows else None

    def renew(self, fence: Fence, ttl_s: float) -> bool:
        """Extend the lease for ``ttl_s`` if ``fence`` still holds it; False when it is lost."""
        params = {"holder": fence.holder, "term": fence.term, "ttl": float(ttl_s)}
        return bool(self._run(_RENEW, params))

    def release(self, fence: Fence) -> None:
        """Let the lease expire now, if still ours: a clean stop hands over at once."""
        self._run(_RELEASE, (fence.holder, fence.term))

    def state(self) -> LeaseState:
        rows = self._run(_STATUS, ())
        if not rows:
            return LeaseState("", 0, 0.0, 0.0, 0.0)
        holder, term, now, acquired, renewed, expires = (
            rows[0][0],
            rows[0][1],
            *map(float, rows[0][2:]),
        )
        if not math.isfinite(acquired):  # never held: the row as created
            return LeaseState(str(holder), int(term), 0.0, 0.0, 0.0)
        return LeaseState(str(holder), int(term), now - acquired, now - renewed, expires - now)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass  # already unusable
            self._conn = None
