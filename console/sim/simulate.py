"""`ansim simulate`: publish the simulated Seoul to the broker, in real time.

The events come from :mod:`console.sim.scenario` (pure); this module only paces
them, publishes them (MessagePack, QoS 1) and keeps the SOS promise of the wire:
an SOS is resent every ``[simulate] resend_s`` seconds until the core's receipt for
it arrives, across disconnects and broker restarts.

A camera's messages go into its district and a unit's into its home district
(``ansim/v1/raw/<source>/<kind>/<district>``), so each partition's core reads its
own; an SOS goes out without one and the cores place it by its position
(docs/partitions.md). So the same simulator drives one core or a city split across
partitions, with no option for it.

The city's people who react to the core (:mod:`console.sim.crew`: colleagues at the
desk, units on a job) read the core's published state here, every partition's, and
their steps are published from here: a colleague's command to the core of the
incident's partition.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import itertools
import logging
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import msgspec

from console.config import Config, mqtt_settings
from console.sim import crew_wire
from console.sim.city import build_city
from console.sim.crew import Crew
from console.sim.scenario import Emit, Scenario, registration
from protocols import codec, topics
from protocols.mqtt import NotConnected, Transport
from protocols.schemas import Receipt, ResponderStatus, SosAlarm

log = logging.getLogger("ansim.simulate")

STATS_INTERVAL_S = 5.0
IN_FLIGHT = 10  # publishes awaiting their PUBACK at once; aiomqtt warns above 10
CATCH_UP_LIMIT_S = 2.0  # further behind than this (a broker outage), skip ahead instead
# Before registering, the retained state the crew reads is let in: until none came for
# SETTLE_QUIET_S, at most SETTLE_MAX_S (a unit still on a job is not registered afresh).
SETTLE_QUIET_S = 0.3
SETTLE_MAX_S = 3.0


class PendingReceipts:
    """SOS alarms published but not yet receipted, and when each is due for a resend.

    Pure bookkeeping: time comes in as an argument.
    """

    def __init__(self, resend_s: float) -> None:
        self.resend_s = resend_s
        self._alarms: dict[str, SosAlarm] = {}
        self._due: list[tuple[float, int, str]] = []  # (due, tie, alarm_id); stale entries skipped
        self._next_due: dict[str, float] = {}
        self._tie = itertools.count()

    def __len__(self) -> int:
        return len(self._alarms)

    def __contains__(self, alarm_id: object) -> bool:
        return alarm_id in self._alarms

    def add(self, alarm: SosAlarm, now: float) -> None:
        """Track ``alarm`` (sent at ``now``); a resend of a tracked id keeps its schedule."""
        if alarm.alarm_id in self._alarms:
            return
        self._alarms[alarm.alarm_id] = alarm
        self._push(alarm.alarm_id, now + self.resend_s)

    def confirm(self, alarm_id: str) -> bool:
        """The receipt arrived: stop resending. False if it was not pending (a duplicate)."""
        self._next_due.pop(alarm_id, None)
        return self._alarms.pop(alarm_id, None) is not None

    def due(self, now: float) -> list[SosAlarm]:
        """Alarms to resend now, oldest first; each is rescheduled ``resend_s`` later."""
        out: list[SosAlarm] = []
        while self._due and self._due[0][0] <= now:
            when, _, alarm_id = heapq.heappop(self._due)
            if self._next_due.get(alarm_id) != when:
                continue  # confirmed, or superseded by a later schedule
            out.append(self._alarms[alarm_id])
            self._push(alarm_id, now + self.resend_s)
        return out

    def _push(self, alarm_id: str, when: float) -> None:
        self._next_due[alarm_id] = when
        heapq.heappush(self._due, (when, next(self._tie), alarm_id))


@dataclass
class Counters:
    sent: int = 0
    resent: int = 0
    receipts: int = 0
    commands: int = 0  # the desk's colleagues' commands
    unit_reports: int = 0  # reports of units on a job
    by_kind: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> None:
        self.sent += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1


@dataclass(frozen=True)
class Options:
    seed: int
    cameras: int
    responders: int
    shelters: int
    rate: float
    scenario: str
    duration: float | None  # None: until stopped
    source: str
    resend: bool
    resend_s: float
    quiet: bool
    record: str = ""  # a file to append the id of every SOS raised to ("" = none)


def options(args: argparse.Namespace, cfg: Config) -> Options:
    """Command line over configuration: an argument left out (None) takes the config's value."""
    s = cfg.simulate

    def given(name: str) -> bool:
        return getattr(args, name, None) is not None

    duration = float(args.duration) if given("duration") else float(s.duration_s)
    return Options(
        seed=int(args.seed) if given("seed") else s.seed,
        cameras=int(args.cameras) if given("cameras") else s.cameras,
        responders=int(args.responders) if given("responders") else s.responders,
        shelters=s.shelters,
        rate=float(args.rate) if given("rate") else float(s.rate),
        scenario=str(args.scenario) if given("scenario") else s.scenario,
        duration=duration if duration > 0 else None,
        source=str(args.source) if given("source") else s.source,
        resend=not getattr(args, "no_resend", False),
        resend_s=float(s.resend_s),
        quiet=bool(getattr(args, "quiet", False)),
        record=str(getattr(args, "record", None) or ""),
    )


class Simulator:
    def __init__(self, transport: Transport, opts: Options, crew: Crew | None = None) -> None:
        self.t = transport
        self.opts = opts
        self.pending = PendingReceipts(opts.resend_s)
        self.counters = Counters()
        self.crew = crew
        self.crew_inbox = crew_wire.CrewInbox(crew) if crew is not None else None
        self._window = asyncio.Semaphore(IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._sos_topic = topics.raw(opts.source, topics.RAW_SOS)
        self._receipt_prefix = topics.receipts_for(opts.source).removesuffix("+")
        self._last_retained = 0.0  # loop time of the last retained message of the crew's

    # --- publishing ----------------------------------------------------------------------

    async def submit(self, kind: str, payload: bytes, district: str | None = None) -> None:
        """Publish in the background, at most IN_FLIGHT at once, retrying until it is acked;
        into ``district`` when the message has one (only that district's core reads it)."""
        await self.submit_to(topics.raw(self.opts.source, kind, district), payload)

    async def submit_to(self, topic: str, payload: bytes) -> None:
        await self._window.acquire()
        task = asyncio.create_task(self._publish(topic, payload))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._window.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("publish failed: %s", task.exception())

    async def _publish(self, topic: str, payload: bytes) -> None:
        while True:
            try:
                await self.t.publish(topic, payload, qos=1)
                return
            except (NotConnected, TimeoutError):
                # Broker gone or restarting: wait for the transport to reconnect and retry.
                # The receiver folds duplicates (alarm ids, event ids), so a retry is safe.
                await self.t.wait_connected()

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def send(self, emit: Emit, restamp: float | None = None) -> None:
        message = emit.message
        if restamp is not None:
            # Behind schedule after an outage: the event happens now, not back then.
            message = msgspec.structs.replace(message, ts=restamp)
        if isinstance(message, SosAlarm) and self.opts.record:
            # One line per SOS raised (not per resend), written before it is published.
            _record(self.opts.record, message.alarm_id)
        if isinstance(message, SosAlarm) and self.opts.resend:
            self.pending.add(message, time.monotonic())
        await self.submit(emit.kind, codec.encode(message), emit.district)
        self.counters.count(emit.kind)

    # --- the tasks -------------------------------------------------------------------------

    async def feed(self, events: Iterator[Emit], start: float) -> None:
        """Publish ``events`` at the pace their timestamps say (relative to ``start``)."""
        loop = asyncio.get_running_loop()
        origin = loop.time()
        for emit in events:
            delay = origin + (emit.ts - start) - loop.time()
            restamp = None
            if delay > 0.002:
                await asyncio.sleep(delay)
            elif delay < -CATCH_UP_LIMIT_S:
                origin -= delay  # resume at the normal pace rather than in one burst
                restamp = time.time()
            await self.send(emit, restamp)

    async def inbox(self) -> None:
        """Receipts for the resends; the core's state and replies for the crew."""
        loop = asyncio.get_running_loop()
        async for msg in self.t.messages():
            if self.crew_inbox is not None and self.crew_inbox.handle(
                msg.topic, msg.payload, time.time()
            ):
                if msg.retain:
                    self._last_retained = loop.time()
                continue
            if not msg.topic.startswith(self._receipt_prefix):
                continue  # a broker that delivers more than was asked (amqtt's wildcards)
            try:
                receipt: Receipt = codec.decode(msg.payload, Receipt)
                alarm_id = receipt.alarm_id
            except codec.WireError:
                alarm_id = topics.last_level(msg.topic)
            if self.pending.confirm(alarm_id):
                self.counters.receipts += 1

    async def settle(self) -> None:
        """Let the retained state the crew reads come in (bounded), before registering."""
        if self.crew is None or not self.crew.active:
            return
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(SETTLE_QUIET_S)
        while loop.time() - self._last_retained < SETTLE_QUIET_S:
            if loop.time() - start > SETTLE_MAX_S:
                return
            await asyncio.sleep(0.05)

    async def react(self) -> None:
        """The crew's steps: colleagues' commands and units' reports, as they come due."""
        crew = self.crew
        if crew is None or not crew.active:
            return
        s = crew.settings
        tick = max(0.05, min(1.0, s.units_report_s / 2, s.desk_think_s / 2))
        failures = 0
        while True:
            await asyncio.sleep(tick)
            if not self.t.connected:
                continue  # due steps stay due; unanswered commands are resent later
            try:
                step = crew.step(time.time())
            except Exception:  # a bug in the crew must not stop the city's feed
                failures += 1
                if failures == 1:
                    log.exception("the crew's step failed (logged once); the scenario goes on")
                continue
            self.counters.commands += len(step.commands)
            self.counters.unit_reports += len(step.reports)
            for topic, payload in crew_wire.outgoing(step, self.opts.source, crew.picture):
                await self.submit_to(topic, payload)

    async def resend(self) -> None:
        tick = min(1.0, self.opts.resend_s / 2)
        while True:
            await asyncio.sleep(tick)
            if not self.t.connected:
                continue  # the alarms stay due and go out once reconnected
            for alarm in self.pending.due(time.monotonic()):
                await self.submit(topics.RAW_SOS, codec.encode(alarm))
                self.counters.resent += 1

    async def report(self) -> None:
        last_sent, last_time = 0, time.monotonic()
        while True:
            await asyncio.sleep(STATS_INTERVAL_S)
            now, c = time.monotonic(), self.counters
            rate = (c.sent - last_sent) / (now - last_time)
            last_sent, last_time = c.sent, now
            state = "connected" if self.t.connected else "DISCONNECTED"
            print(
                f"ansim simulate: {c.sent} events sent ({rate:.1f}/s), "
                f"{len(self.pending)} SOS awaiting receipt, {c.resent} resent, {state}",
                file=sys.stderr,
                flush=True,
            )


def _record(path: str, alarm_id: str) -> None:
    """``--record``: one line per SOS raised, for tests that account for every alarm."""
    with open(path, "a", encoding="utf-8") as record:
        record.write(alarm_id + "\n")


async def simulate(cfg: Config, opts: Options) -> Counters:
    """Run the simulation until its duration ends (or forever); return what was sent."""
    t0 = time.perf_counter()
    city = build_city(opts.seed, opts.cameras, opts.responders, opts.shelters)
    log.info(
        "city of seed %d: %d cameras, %d responders, %d shelters (%.2f s); scenario %s at %.1f/s",
        opts.seed,
        city.camera_count,
        len(city.responders),
        len(city.shelters),
        time.perf_counter() - t0,
        opts.scenario,
        opts.rate,
    )
    settings = mqtt_settings(cfg)
    crew = Crew(
        city,
        cfg.simulate,
        cfg.dispatch,
        session=f"{time.time_ns() // 1_000_000:x}",  # no cmd_id of an earlier run again
        seed=opts.seed,
    )
    subscriptions = [(topics.receipts_for(opts.source), 1)] if opts.resend else []
    subscriptions += crew_wire.subscriptions(crew)
    client_id = f"ansim-sim-{opts.source}"
    async with Transport(settings, client_id, subscriptions=subscriptions) as transport:
        sim = Simulator(transport, opts, crew)
        helpers = [asyncio.create_task(sim.inbox()), asyncio.create_task(sim.resend())]
        if not opts.quiet:
            helpers.append(asyncio.create_task(sim.report()))
        try:
            while not transport.connected:
                try:
                    await transport.wait_connected(10.0)
                except TimeoutError:
                    log.warning("still waiting for the broker at %s", settings.address)
            await sim.settle()
            # A unit the core still has on a job (an earlier run's) is not registered
            # "available" again: that would release it from its incident.
            on_job = {
                r.id
                for r in crew.picture.responders.values()
                if r.incident_id is not None and r.status is not ResponderStatus.AVAILABLE
            }
            start = time.time()
            await sim.feed(registration(city, start, skip=on_job), start)
            log.info(
                "registered %d cameras and %d responders", city.camera_count, len(city.responders)
            )
            start = time.time()  # the registration of a large city takes a while
            scenario = Scenario(
                city,
                seed=opts.seed,
                scenario=opts.scenario,
                rate=opts.rate,
                start=start,
                source=opts.source,
            )
            crew.attach(scenario)  # the units on a job are the crew's, not the scenario's
            helpers.append(asyncio.create_task(sim.react()))
            await sim.feed(scenario.events(opts.duration), start)
            if opts.duration is None:
                await asyncio.Event().wait()  # rate 0: stay up for resends until stopped
            await sim.drain()
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
    c = sim.counters
    log.info(
        "done: %d events sent (%s), %d SOS resent, %d receipts, %d SOS without receipt; "
        "%d commands of the desk, %d reports of units on a job",
        c.sent,
        ", ".join(f"{k} {v}" for k, v in sorted(c.by_kind.items())),
        c.resent,
        c.receipts,
        len(sim.pending),
        c.commands,
        c.unit_reports,
    )
    return c


async def _main(cfg: Config, opts: Options) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await simulate(cfg, opts)


def run(args: argparse.Namespace, cfg: Config) -> int:
    opts = options(args, cfg)
    if opts.scenario not in ("quiet", "evening", "storm"):
        print(f"ansim simulate: unknown scenario {opts.scenario!r}", file=sys.stderr)
        return 2
    if not 0 <= opts.cameras <= 200_000 or opts.responders < 0 or opts.rate < 0:
        print("ansim simulate: cameras 0..200000, responders and rate >= 0", file=sys.stderr)
        return 2
    asyncio.run(_main(cfg, opts))
    return 0
