"""The hot standby: follow the journal the active writes, and take the lease when it is free.

A standby never connects to the broker with the core's client id (that would take the
active's session). It applies each committed engine input as the rebuild does
(:func:`console.core.rebuild.apply_record`), so its engine is the active's as of the
journal's tail, and taking over costs one short catch-up instead of a full replay.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Final

from console.core.rebuild import REPLAYED, apply_record
from console.journal.store import JournalError

if TYPE_CHECKING:
    from console.core.lease_keeper import LeasedCore

log = logging.getLogger("ansim.core")

FOLLOW_POLL_S: Final = 0.2  # how often a standby reads the journal's tail
LEASE_MARGIN_S: Final = 0.05  # after the lease's expiry (by the database's clock)


class Follower:
    """Applies the journal's committed engine inputs past ``position`` to the core's engine."""

    def __init__(self, core: LeasedCore) -> None:
        self.core = core
        self.position = core.last_seq
        self.applied = 0

    def catch_up(self, upto: int | None = None) -> int:
        """Apply what was committed since the last call (up to ``upto``); how many records.

        Bounded by a tail read made first: the inputs of several kinds come from one query
        per kind, and a commit landing between those queries must not leave a gap behind
        the position (each record up to the tail read was committed before any query).
        """
        journal = self.core.pg_journal
        tail = journal.stored_seq() if upto is None else upto
        if tail <= self.position:
            return 0
        done = 0
        for record in journal.records(after_seq=self.position, kinds=REPLAYED):
            if record.seq > tail:
                break
            apply_record(self.core.engine, self.core.cfg, record)
            done += 1
        self.position = tail
        self.core.last_seq = max(self.core.last_seq, tail)
        self.applied += done
        return done


def _try_lease(core: LeasedCore, ttl: float) -> tuple[int | None, float]:
    """The new term if the lease was taken, else None and the seconds it has left."""
    term = core.lease.acquire(core.holder, ttl)
    return (term, 0.0) if term is not None else (None, core.lease.state().left_s)


async def wait_for_lease(core: LeasedCore, follower: Follower) -> int | None:
    """Follow the journal and try for the lease (every third of its ttl, or just after the
    active's would expire if sooner); the term once taken, None if stopped first."""
    ttl = core.cfg.core.lease_ttl_s
    next_try = 0.0
    complained = False
    while not core.stop_requested():
        try:
            await asyncio.to_thread(follower.catch_up)
            now = time.monotonic()
            if now >= next_try:
                term, left = await asyncio.to_thread(_try_lease, core, ttl)
                if term is not None:
                    core.lease_taken(term, since=now)
                    return term
                # Try again just after the active's lease would expire, if it is not renewed.
                next_try = now + min(ttl / 3, max(left, 0.0) + LEASE_MARGIN_S)
            if complained:
                log.info("standby: the journal answers again")
                complained = False
        except JournalError as exc:
            if not complained:
                log.error("standby: cannot follow the journal or try the lease: %s", exc)
                complained = True
        await core.wait_stop(FOLLOW_POLL_S)
    return None
