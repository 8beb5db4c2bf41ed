"""`ansim core`: the one authority.

Receive (manual acknowledgement) → journal → engine → commit → acknowledge →
replies and receipts → coalesced retained state. No acknowledgement, reply, receipt or
state leaves before the batch that holds its input is committed, so the
broker redelivers anything the core had not made durable, and no console
sees what a failed commit may yet lose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from functools import partial

import msgspec

from console.config import Config, mqtt_settings
from console.core import shelters as shelter_source
from console.core.broker_watch import DropWatch, parse_counter
from console.core.foreign import IGNORED_REASONS, OTHER, pack_snapshot
from console.core.ingest import Accepted, Adapted, Elsewhere, Reader
from console.core.journal_checks import close_at_stop
from console.core.log_line import rates_line
from console.core.partition_wiring import PartitionWiring
from console.core.publisher import (
    Dirty,
    Outbox,
    everything,
    publish_outbox,
    publish_shift,
    publish_state,
    publish_summary,
    scope_publication,
    sort_effects,
)
from console.core.rebuild import TICK_KEY, guarded, rebuild
from console.engine.effects import Effect
from console.journal.store import Journal, JournalError, RecordKind
from protocols import codec, topics
from protocols.mqtt import ConnectionState, Incoming, NotConnected, Transport
from protocols.schemas import Command, Presence, Summary
from protocols.text import printable_struct

log = logging.getLogger("ansim.core")

RATE_HISTORY = 60  # samples of events/s kept for the consoles' sparkline
SNAPSHOT_EVERY = 50_000  # journal records between engine snapshots
OUTBOX_MAX = 100_000  # replies and receipts held while the link is down (resends ask again)
# Share of each publish interval spent computing incident states (recommendations,
# nearby cameras and shelters); a storm's excess waits in the backlog for the next tick.
PUBLISH_BUDGET = 0.25


class Core:
    """The service around the engine. ``clock`` is injectable for tests."""

    def __init__(
        self,
        cfg: Config,
        journal: Journal,
        *,
        clock: Callable[[], float] = time.time,
        client_id: str | None = None,
    ) -> None:
        self.cfg = cfg
        self.journal = journal
        self.clock = clock
        self.client_id = client_id or cfg.core.client_id
        # The foreign adapters (Frigate, OwnTracks) and their memory, rebuilt with the engine.
        self.reader = Reader(cfg)
        self.engine, self.last_seq = rebuild(
            cfg, journal, shelter_source.load(cfg), reader=self.reader
        )
        self.wiring = PartitionWiring(cfg, self.client_id, self.engine.ctx.district_map)
        # Only the home partition's core publishes the district "unknown"'s lists and pages.
        scope_publication(self.engine, home=self.wiring.home)
        # Ownership and plausibility refusals are known before journaling: dead letters.
        # In a partitioned city, what comes without a district is placed first.
        placer = self.wiring.placed_elsewhere if self.wiring.partitions.configured else None
        self.reader.bind(self.engine, placer)
        self.elsewhere_total = 0  # published without a district, another partition's
        self.dirty = everything(self.engine)
        self.backlog: OrderedDict[str, None] = OrderedDict()  # incidents waiting to be published
        self.outbox = Outbox()  # owed by the batch being built: not committed yet
        self.owed = Outbox()  # owed by committed batches, not sent yet
        self._owed_signal = asyncio.Event()
        self._sender_running = False
        self.unacked: list[Incoming] = []
        self.alarms: dict[str, str] = {}
        self.drop_watch = DropWatch()  # $SYS/broker/publish/messages/dropped
        self.operators: dict[str, Presence] = {}
        self.events_total = 0
        self.rejected_total = 0
        self.duplicates_total = 0
        self.ignored_total = 0  # foreign payloads read but of no use (an OwnTracks waypoint)
        self.ignored_by_reason: dict[str, int] = {}  # keys from IGNORED_REASONS only
        self.rates: deque[float] = deque(maxlen=RATE_HISTORY)
        self._since_snapshot = 0
        self._stopping = asyncio.Event()
        self.failed = ""  # the name of a loop that died, if one did
        self.transport: Transport | None = None
        # A commit failed and its batch is held: the engine shows records not yet durable,
        # so no state goes out, only the last committed summary with the alarms.
        self.held = False
        self.committed_summary = self.summary(clock())
        # When the shift figures go out next: once a tick (they are not per event), and at
        # once after a (re)connect.
        self.shift_due_at = -math.inf

    # --- wiring ---------------------------------------------------------------------

    def subscriptions(self) -> list[tuple[str, int]]:
        """What this core reads (console.core.partition_wiring)."""
        return self.wiring.subscriptions(self.reader.subscriptions())

    def make_transport(self) -> Transport:
        return Transport(
            mqtt_settings(self.cfg),
            self.client_id,
            subscriptions=self.subscriptions(),
            persistent=True,
            session_expiry_s=self.cfg.core.session_expiry_s,
            manual_ack=True,
            on_state=self._on_connection,
        )

    def _on_connection(self, state: ConnectionState, reason: str) -> None:
        if state is ConnectionState.CONNECTED:
            # Retained state may have been lost with a broker crash: publish all of it again.
            self.dirty = everything(self.engine)
            self.shift_due_at = -math.inf

    async def run(self) -> None:
        async with self.make_transport() as transport:
            self.transport = transport
            tasks = [
                asyncio.create_task(self._process(transport), name="process"),
                asyncio.create_task(self._send_loop(), name="send"),
                asyncio.create_task(self._publish_loop(), name="publish"),
                asyncio.create_task(self._tick_loop(), name="tick"),
                asyncio.create_task(self._log_loop(), name="log"),
            ]
            for task in tasks:
                task.add_done_callback(self._task_ended)
            try:
                await self._stopping.wait()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await self._flush_quietly()
        if close_at_stop(self.journal):
            self.failed = self.failed or "journal"

    def stop(self) -> None:
        self._stopping.set()

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """A loop that dies must take the core down loudly, never leave a silent zombie.

        Nothing unacknowledged is lost: the broker redelivers it to the restarted core,
        and a supervisor (systemd, the all-in-one launcher) shows the exit.
        """
        if task.cancelled() or self._stopping.is_set():
            return
        error = task.exception()
        log.critical("the core's %s loop stopped: %r; shutting down", task.get_name(), error,
                     exc_info=error)  # fmt: skip
        self.failed = task.get_name()
        self._stopping.set()

    # --- the pipeline ----------------------------------------------------------------

    async def _process(self, transport: Transport) -> None:
        """Take what has arrived (up to a batch), journal and apply it, commit, acknowledge.

        One await per batch, not per message: the transport's reader hands over every
        packet of a socket read at once, and this takes them all before committing.
        """
        batch_max = self.cfg.journal.batch_max
        stream = transport.messages()
        async for first in stream:
            self._take(first)
            while len(self.unacked) < batch_max:
                ready = stream.take_ready(batch_max - len(self.unacked))
                if not ready:
                    break
                for message in ready:
                    self._take(message)
            if self.unacked:
                await self.commit_and_release()

    def _take(self, message: Incoming) -> None:
        if message.topic == topics.SYS_DROPPED:
            self._broker_dropped(message.payload)
        else:
            self.handle(message)

    def _broker_dropped(self, payload: bytes) -> None:
        """The broker's dropped-messages counter: a rise is a console alarm (broker_watch)."""
        value = parse_counter(payload)
        if value is None:
            return
        now = self.clock()
        baseline = self.drop_watch.last is None
        added = self.drop_watch.observe(value, now)
        if baseline and value:
            log.warning("the broker has dropped %d messages since it started", value)
        if added:
            log.error("the broker dropped %d more messages (total %d)", added, value)
        self._broker_alarm(now)

    def _broker_alarm(self, now: float) -> None:
        text = self.drop_watch.alarm(now)
        if text:
            self.alarms["broker"] = text
        else:
            self.alarms.pop("broker", None)

    def handle(self, message: Incoming) -> None:
        """Journal and apply one message (not yet committed, not yet acknowledged)."""
        self.unacked.append(message)
        if message.topic.startswith(f"{topics.ROOT}/presence/"):
            self._presence(message)
            return
        now = self.clock()
        result = self.reader.read(message.topic, message.payload, now)
        if isinstance(result, Elsewhere):
            self.elsewhere_total += 1  # acknowledged with the batch, journaled by its owner
            return
        if isinstance(result, Adapted):
            self._adapted(message, result, now)
            return
        if not isinstance(result, Accepted):
            self.rejected_total += 1
            seq = self.journal.dead_letter(now, message.topic, message.payload, result.reason)
            if seq is not None:  # past a source's budget refusals are only counted: no log flood
                log.warning("rejected a payload on %s: %s", message.topic, result.reason)
            return
        duplicate = bool(result.key) and self.journal.has_key(result.key)
        if duplicate:
            self.duplicates_total += 1
        else:
            self.last_seq = self.journal.append(
                now, result.kind, message.topic, message.payload, key=result.key
            )
            self._since_snapshot += 1
            self.events_total += 1
        effects = guarded(lambda: self._apply(result, now, duplicate), message.topic)
        sort_effects(effects, self.dirty, self.outbox)

    def _adapted(self, message: Incoming, result: Adapted, now: float) -> None:
        """A foreign payload: journaled as received, so replay runs the adapter again."""
        self.last_seq = self.journal.append(now, RecordKind.EVENT, message.topic, message.payload)
        self._since_snapshot += 1
        self.events_total += 1
        if result.ignored is not None:
            self.ignored_total += 1
            # Only codes of the fixed vocabulary: a source cannot grow the summary.
            reason = result.reason if result.reason in IGNORED_REASONS else OTHER
            self.ignored_by_reason[reason] = self.ignored_by_reason.get(reason, 0) + 1
            log.debug("ignored a payload on %s: %s", message.topic, result.ignored)
        for event in result.messages:
            apply = partial(self.engine.handle_event, event, now, vetted=result.vetted)
            effects = guarded(apply, message.topic)
            sort_effects(effects, self.dirty, self.outbox)

    def _apply(self, result: Accepted, now: float, duplicate: bool) -> list[Effect]:
        message = result.message
        if isinstance(message, Command):
            if duplicate:  # the journal holds it: answered again, never done again
                return self.engine.resend_command(message, now)
            return self.engine.handle_command(message, now, self.cfg.role_of(message.operator))
        if duplicate:
            return self.engine.receipt_for(message, now)
        return self.engine.handle_event(
            message, now, source=result.source or None, vetted=result.vetted
        )

    def _presence(self, message: Incoming) -> None:
        operator = topics.last_level(message.topic)
        if not message.payload:
            self.operators.pop(operator, None)
            return
        try:
            presence: Presence = printable_struct(codec.decode(message.payload, Presence))
        except codec.WireError as exc:  # a dead letter like any other refusal
            if not self.wiring.home:
                return  # every partition's core reads presence: the home one records it
            self.rejected_total += 1
            now = self.clock()
            if self.journal.dead_letter(now, message.topic, message.payload, exc.reason):
                log.warning("bad presence from %s: %s", operator, exc.reason)
            return
        if presence.online:
            self.operators[operator] = presence
        else:
            self.operators.pop(operator, None)

    async def commit_and_release(self) -> None:
        """Commit the batch, then acknowledge it, then send what it owes. Retries until durable."""
        while True:
            try:
                self.journal.commit()
                break
            except JournalError as exc:
                self.held = True
                if "journal" not in self.alarms:
                    log.error("journal commit failed, holding acknowledgements: %s", exc)
                self.alarms["journal"] = f"JOURNAL FAILING: {exc}; nothing is acknowledged"
                await self._publish_summary_quietly()
                await asyncio.sleep(1.0)
        self.held = False
        if self.alarms.pop("journal", None):
            log.info("journal commits again; acknowledging the held batch")
        self._release()
        if self._sender_running:
            # The sender task publishes them; the next batch need not wait for the PUBACKs
            # of this one's receipts (that wait was ~95 ms per 500-event batch).
            self._owed_signal.set()
        else:
            await self.send_outbox()
        if self._since_snapshot >= SNAPSHOT_EVERY:
            self.write_snapshot()

    def _release(self) -> None:
        """The batch is committed: acknowledge it, and what it owes may now go out."""
        for message in self.unacked:
            message.ack()
        self.unacked.clear()
        owed, done = self.owed, self.outbox
        owed.replies += done.replies
        owed.receipts += done.receipts
        owed.commands += [self.wiring.addressed(ask) for ask in done.asks]
        self.outbox = Outbox()

    async def _send_loop(self) -> None:
        self._sender_running = True
        try:
            while True:
                await self._owed_signal.wait()
                self._owed_signal.clear()
                await self.send_outbox()
        finally:
            self._sender_running = False

    async def send_outbox(self) -> None:
        """Replies and receipts of committed batches; kept for the next try if the link is down.

        A resumed session delivers its backlog before the transport reports itself
        connected, so a batch can be committed while publishing is not yet possible.
        """
        outbox, self.owed = self.owed, Outbox()
        if not (outbox.replies or outbox.receipts or outbox.commands):
            return
        try:
            await publish_outbox(self._transport(), outbox)
        except (NotConnected, TimeoutError):
            # Down, or a broker too busy to acknowledge in time (a backlog being drained):
            # keep them for the next try. A receipt sent twice is harmless; sources fold.
            kept = Outbox(
                replies=(outbox.replies + self.owed.replies)[-OUTBOX_MAX:],
                receipts=(outbox.receipts + self.owed.receipts)[-OUTBOX_MAX:],
                commands=outbox.commands + self.owed.commands,  # few, and each one matters
            )
            self.owed = kept
            log.debug(
                "link down: %d replies, %d receipts held", len(kept.replies), len(kept.receipts)
            )

    def write_snapshot(self) -> None:
        """Bound the replay on the next start. A failed write is retried with the next batch."""
        self._since_snapshot = 0
        try:
            snapshot = pack_snapshot(self.engine.snapshot(), self.reader.memory())
            self.journal.write_snapshot(self.clock(), snapshot, self.last_seq)
        except JournalError as exc:
            log.warning("snapshot not committed yet (it goes with the next batch): %s", exc)

    # --- time-driven -----------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.core.tick_s)
            await self.tick(self.clock())

    async def tick(self, now: float) -> None:
        effects = self.engine.tick(now)
        if effects:
            # Ticks that changed something are inputs too: replay must see them.
            self.last_seq = self.journal.append(now, RecordKind.SYSTEM, "", b"", key=TICK_KEY)
            sort_effects(effects, self.dirty, self.outbox)
            await self.commit_and_release()

    async def _publish_loop(self) -> None:
        last_count, last_time = self.events_total, self.clock()
        next_rate = last_time + 1.0
        while True:
            await asyncio.sleep(self.cfg.core.publish_interval_s)
            now = self.clock()
            if now >= next_rate:
                elapsed = max(now - last_time, 1e-6)
                self.rates.append((self.events_total - last_count) / elapsed)
                last_count, last_time, next_rate = self.events_total, now, now + 1.0
            await self.flush(now)

    async def flush(self, now: float, *, everything_now: bool = False) -> None:
        """Publish what changed: at most a budget's worth of incident states per tick."""
        self._broker_alarm(now)  # the drop alarm expires HOLD_S after the counter last moved
        await self.send_outbox()  # only committed batches' (self.owed); retries a failed send
        if self.held:
            await self._publish_summary_quietly()
            return
        dirty, self.dirty = self.dirty, Dirty()
        budget = None if everything_now else PUBLISH_BUDGET * self.cfg.core.publish_interval_s
        summary = self.committed_summary = self.summary(now)  # before any await: committed
        try:
            await publish_state(
                self._transport(), self.engine, dirty, now, backlog=self.backlog, budget_s=budget
            )
            await publish_summary(self._transport(), summary)
        except (NotConnected, TimeoutError):
            dirty.incidents.clear()  # already in the backlog
            self._merge_dirty(dirty)
            return
        await self._publish_shift(now, everything_now)

    async def _publish_shift(self, now: float, everything_now: bool) -> None:
        """The supervisor's figures (``Engine.shift_report``), once a tick; only called
        when no batch is held, so they are committed figures. A failed send is retried
        at the next flush."""
        if not everything_now and now < self.shift_due_at:
            return
        report = self.engine.shift_report(now)
        try:
            await publish_shift(self._transport(), report)
        except (NotConnected, TimeoutError):
            return
        self.shift_due_at = now + self.cfg.core.tick_s

    def _merge_dirty(self, dirty: Dirty) -> None:
        self.dirty.incidents |= dirty.incidents - self.dirty.closed
        self.dirty.closed |= dirty.closed - self.dirty.incidents
        self.dirty.districts |= dirty.districts
        self.dirty.responders |= dirty.responders

    def summary(self, now: float) -> Summary:
        base = self.engine.summary(now)
        return msgspec.structs.replace(
            base,
            events_total=self.events_total,
            events_per_s=self.rates[-1] if self.rates else 0.0,
            rate_history=tuple(round(r, 1) for r in self.rates),
            rejected_total=self.rejected_total,
            ignored_total=self.ignored_total,
            ignored_by_reason=self.ignored_ranked(),
            # Presence not renewed for PRESENCE_TTL_S is a seat gone without its last will.
            operators=tuple(sorted(op for op, p in self.operators.items() if p.is_current(now))),
            alarms=tuple(self.alarms.values()),
            core_id=self.client_id,
        )

    def ignored_ranked(self) -> tuple[tuple[str, int], ...]:
        """Ignored payloads per reason, most frequent first (ties by name)."""
        return tuple(sorted(self.ignored_by_reason.items(), key=lambda kv: (-kv[1], kv[0])))

    async def _log_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.core.log_interval_s)
            summary = self.summary(self.clock())
            log.info("%s", rates_line(summary, self.ignored_total, self.duplicates_total))

    def _transport(self) -> Transport:
        if self.transport is None:
            raise NotConnected("the core is not running")
        return self.transport

    async def _publish_summary_quietly(self) -> None:
        """While a batch is held: the last committed figures, with the alarms of now."""
        alarms = tuple(self.alarms.values())
        summary = msgspec.structs.replace(self.committed_summary, ts=self.clock(), alarms=alarms)
        with contextlib.suppress(NotConnected, TimeoutError):
            await publish_summary(self._transport(), summary)

    async def _flush_quietly(self) -> None:
        with contextlib.suppress(NotConnected, TimeoutError, JournalError):
            if self.unacked or self.held:
                self.journal.commit()
                self.held = False
                self._release()
            await self.flush(self.clock(), everything_now=True)
