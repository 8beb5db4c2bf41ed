"""An active core that holds a lease (`[core] standby = true`, PostgreSQL journal only).

It starts as a standby (console.core.standby); once it takes the lease it catches up to
the journal's tail, writes under its term (every commit is fenced by it,
console.journal.lease), connects with the core's client id, so the broker's persistent
session hands it what the old active had not acknowledged, and publishes all state.

It renews the lease every third of its ttl. It publishes nothing while it cannot show
that the lease is still its own by its own monotonic clock (the last renewal request
sent less than a ttl ago): a core that wakes from a freeze never overwrites the new
active's retained state with its stale picture. When a renewal is refused, a commit is
fenced, or no renewal has succeeded for a whole ttl, it steps down: stops publishing,
disconnects, says so, and exits with STEPPED_DOWN for its supervisor to start it again
as a standby. Exiting, rather than going back to standby in place, is the simplest
state to reason about: a fresh standby rebuilds from the journal alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Final

import msgspec

from console.config import Config
from console.core.publisher import everything
from console.core.service import Core
from console.core.standby import Follower, wait_for_lease
from console.journal.lease import Fence, FencedError, Lease, new_holder_id
from console.journal.postgres import PostgresJournal
from console.journal.store import JournalError
from protocols.mqtt import ConnectionState
from protocols.schemas import Summary

log = logging.getLogger("ansim.core")

STEPPED_DOWN: Final = 3  # the exit code of an active that lost its lease
# After a failed renewal (the database restarting), try again this soon, not a third of
# the ttl later: an outage shorter than about two thirds of the ttl then costs no takeover.
RENEW_RETRY_S: Final = 0.25


class LeasedCore(Core):
    """The core, active only while it holds the lease; see the module's docstring."""

    def __init__(
        self,
        cfg: Config,
        journal: PostgresJournal,
        *,
        lease: Lease | None = None,
        clock: Callable[[], float] = time.time,
        client_id: str | None = None,
    ) -> None:
        # Read by summary(), which the base class calls while it is made.
        self.term = 0
        self.holder = new_holder_id(client_id or cfg.core.client_id)
        self.stepped_down = ""
        self._valid_until = 0.0  # monotonic: the lease is surely ours before this
        self._check_now = asyncio.Event()
        # The active may be writing while this rebuilds: rebuild up to a tail read first
        # (see PostgresJournal.read_upto), and let the follower take it from there.
        upto = journal.stored_seq()
        journal.read_upto = upto
        try:
            super().__init__(cfg, journal, clock=clock, client_id=client_id)
        finally:
            journal.read_upto = None
        self.last_seq = max(self.last_seq, upto)
        self.pg_journal = journal
        self.lease = lease or Lease(journal.dsn)

    # --- the lease --------------------------------------------------------------------

    def lease_taken(self, term: int, *, since: float) -> None:
        """The lease is ours under ``term``, from the monotonic time the request was sent."""
        self.term = term
        self._valid_until = since + self.cfg.core.lease_ttl_s
        self.pg_journal.fence = Fence(self.holder, term)

    def lease_valid(self) -> bool:
        return not self.stepped_down and time.monotonic() < self._valid_until

    def step_down(self, why: str) -> None:
        if self.stepped_down:
            return
        self.stepped_down = why
        self._valid_until = 0.0
        log.error("stepped down: %s", why)
        self.stop()

    def stop_requested(self) -> bool:
        return self._stopping.is_set()

    async def wait_stop(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout_s)

    async def _keep_lease(self) -> None:
        ttl = self.cfg.core.lease_ttl_s
        fence = Fence(self.holder, self.term)
        failing = False
        # Not "while True": before Python 3.12, wait_for can swallow a cancellation that
        # arrives as the event is set (a disconnection at stop sets it).
        while not self.stop_requested():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._check_now.wait(), min(ttl / 3, RENEW_RETRY_S) if failing else ttl / 3
                )
            self._check_now.clear()
            sent = time.monotonic()
            try:
                kept = await asyncio.to_thread(self.lease.renew, fence, ttl)
            except JournalError as exc:
                if time.monotonic() >= self._valid_until:
                    self.step_down(f"term {self.term}: no renewal for {ttl:g} s ({exc.reason})")
                    return
                if not failing:
                    log.warning("lease renewal failed, retrying: %s", exc)
                failing = True
                continue
            if kept:
                if failing:
                    log.info("lease renewed again: term %d", self.term)
                failing = False
                self._valid_until = sent + ttl
                continue
            try:
                state = await asyncio.to_thread(self.lease.state)
                self.step_down(f"term {state.term} taken by {state.holder or 'nobody'}")
            except JournalError:
                self.step_down(f"term {self.term} lost")
            return

    # --- the core, fenced -------------------------------------------------------------

    async def run(self) -> None:
        """Standby until the lease is ours, then the active until stopped or stepped down."""
        follower = Follower(self)
        log.info("standby %s: following the journal from seq %d", self.holder, follower.position)
        term = await wait_for_lease(self, follower)
        if term is None:
            self._close_standby()
            return
        started = time.monotonic()
        try:
            tail = await asyncio.to_thread(self.pg_journal.follow_tail)
            applied = await asyncio.to_thread(follower.catch_up, tail)
        except JournalError as exc:
            self.step_down(f"term {term}: cannot catch up with the journal ({exc.reason})")
            self._close_standby()
            return
        self.last_seq = max(self.last_seq, tail)
        self.dirty = everything(self.engine)
        log.info(
            "took the lease: term %d, journal at seq %d (%d records applied in %.0f ms while "
            "following, %d to catch up)",
            term, tail, follower.applied - applied, (time.monotonic() - started) * 1000, applied,
        )  # fmt: skip
        keeper = asyncio.create_task(self._keep_lease(), name="lease")
        keeper.add_done_callback(self._task_ended)
        try:
            await super().run()
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        if not self.stepped_down:
            # A clean stop hands over at once instead of after the ttl.
            with contextlib.suppress(JournalError):
                await asyncio.to_thread(self.lease.release, Fence(self.holder, term))
        self.lease.close()

    def _close_standby(self) -> None:
        self.lease.close()
        with contextlib.suppress(JournalError):
            self.journal.close()

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            error = task.exception()
            if isinstance(error, FencedError):
                self.step_down(f"term {error.current_term} taken by {error.current_holder}")
                return
        super()._task_ended(task)

    def _on_connection(self, state: ConnectionState, reason: str) -> None:
        if state is ConnectionState.DISCONNECTED:
            # Perhaps another core took the session: ask the lease now, not at the next renewal.
            self._check_now.set()
        super()._on_connection(state, reason)

    async def commit_and_release(self) -> None:
        # A fenced commit ends the loop at once; the base class would retry it forever.
        try:
            self.journal.commit()
        except FencedError:
            raise
        except JournalError:
            pass  # the base class holds the batch, raises the alarm and retries
        await super().commit_and_release()

    async def flush(self, now: float, *, everything_now: bool = False) -> None:
        if self.lease_valid():
            await super().flush(now, everything_now=everything_now)

    async def send_outbox(self) -> None:
        if self.lease_valid():
            await super().send_outbox()

    async def _publish_summary_quietly(self) -> None:
        if self.lease_valid():
            await super()._publish_summary_quietly()

    async def _flush_quietly(self) -> None:
        if self.lease_valid():
            await super()._flush_quietly()

    def summary(self, now: float) -> Summary:
        return msgspec.structs.replace(
            super().summary(now), term=self.term, lease_holder=self.holder
        )
