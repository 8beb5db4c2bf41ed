"""Issue 13, measured: the first broker SIGKILLed for good; how soon every party is on the second.

The scenario of tests/core/test_faults_second_broker.py, a few times over: two
Mosquittos, `ansim core` (SQLite journal), a resending SOS source and a console's
transport, all given broker 1 then broker 2. The baseline is the single-broker world
with a supervisor: broker 1 SIGKILLed and started again at once on its port, the
parties (given only broker 1) reconnecting to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import tempfile
import threading
import time
from pathlib import Path

from bench import Row, Settings, median, register
from bench._cluster import (
    HOST,
    Core,
    Mosquitto,
    SosStorm,
    quiet_transports,
    retained_sos_total,
    sqlite_sos_keys,
    wait_until,
    write_config,
)
from bench.core_throughput import _watch_summary
from protocols import topics
from protocols.mqtt import ConnectionState, MqttSettings, Transport

SOURCE = "bench"
CLIENT_ID = "ansim-core"
# At tuning: smoke (one round each) 3.1-4.6, full 4.3-4.6 (0.1 s against 0.3-0.5 s, the
# latter set by reconnect backoffs); below 1 moving would be no faster than a restart.
REFERENCE = {"broker.second.all-moved.p50": 2.0}
RATE = 100.0  # SOS/s: this is about time to move and loss, not load
GOAL_MAX_S = 5.0

METHOD = """\
- Second broker (`bench/broker_failover.py`, issue 13): two Mosquittos (in memory),
  `ansim core` (SQLite journal) and a resending SOS source at 100 SOS/s in the bench
  process, both configured with broker 1 then broker 2 (`reconnect_max_s` 0.5), and a
  console's transport with the same list. Once the core answers, broker 1 gets SIGKILL
  and stays dead. A watcher connected to broker 2 beforehand notes the first live summary
  (the core) and the first SOS (the source) it carries after the kill; the console counts
  once its transport reports connected to broker 2. **Moved** is the time from the kill
  to the last of the three. Each round then stops raising, waits for every receipt, and
  fails the run unless every SOS is journaled once and counted once in the retained
  state read from broker 2 (which started empty: the core republishes everything).
  **Baseline**: the same parties given broker 1 only, broker 1 SIGKILLed and started
  again at once on its port (a supervisor), the watcher on broker 1; the same three
  arrivals. p50 and max over the rounds.
"""


@dataclasses.dataclass
class Arrivals:
    """After ``kill_at``: when the console, the core and the source were seen on ``target``."""

    console: MqttSettings
    target: MqttSettings
    kill_at: float = math.inf
    console_at: float | None = None
    core_at: float | None = None
    source_at: float | None = None
    stopped: bool = False
    ready: threading.Event = dataclasses.field(default_factory=threading.Event)

    def moved(self) -> float | None:
        times = (self.console_at, self.core_at, self.source_at)
        if any(t is None for t in times):
            return None
        return max(t for t in times if t is not None) - self.kill_at

    def run(self) -> None:
        asyncio.run(self._main())

    def _on_console_state(self, state: ConnectionState, detail: str) -> None:
        now = time.monotonic()
        on_target = detail.startswith(self.target.address)
        if state is ConnectionState.CONNECTED and on_target and now > self.kill_at:
            self.console_at = self.console_at or now

    async def _main(self) -> None:
        watched = [(topics.STATE_SUMMARY, 1), (topics.RAW_ALL, 1), (topics.RAW_ALL_DISTRICTS, 1)]
        console = Transport(
            self.console,
            f"bench-console-{time.monotonic_ns()}",
            subscriptions=[(topics.STATE_ALL, 1)],
            on_state=self._on_console_state,
        )
        watcher = Transport(
            self.target, f"bench-watch-{time.monotonic_ns()}", subscriptions=watched
        )
        async with console, watcher:
            await console.wait_connected(10)
            await watcher.wait_connected(10)
            drain = asyncio.create_task(self._drain(console))
            self.ready.set()
            messages = watcher.messages()
            try:
                while not self.stopped:
                    with contextlib.suppress(TimeoutError):
                        msg = await asyncio.wait_for(anext(messages), 0.1)
                        self._seen(msg.topic, msg.retain)
            finally:
                drain.cancel()
                await asyncio.gather(drain, return_exceptions=True)

    def _seen(self, topic: str, retained: bool) -> None:
        now = time.monotonic()
        if now < self.kill_at or retained:
            return
        if topic == topics.STATE_SUMMARY:
            self.core_at = self.core_at or now
        elif topic.startswith(f"{topics.ROOT}/raw/"):
            self.source_at = self.source_at or now

    @staticmethod
    async def _drain(console: Transport) -> None:
        async for _ in console.messages():
            pass


def _round(workdir: Path, *, restart: bool) -> float:
    """One kill of broker 1; seconds until every party is on its next broker. Checks loss."""
    workdir.mkdir(parents=True)
    first, second = Mosquitto(workdir / "b1"), Mosquitto(workdir / "b2")
    fallbacks = [] if restart else [f"{HOST}:{second.port}"]
    journal = workdir / "journal.db"
    config = write_config(
        workdir / "ansim.toml",
        {
            "broker": {"mode": "external", "host": HOST, "port": first.port, "protocol": 5,
                       "reconnect_max_s": 0.5, "fallbacks": fallbacks},
            "journal": {"path": str(journal)},
            "core": {"client_id": CLIENT_ID, "publish_interval_s": 0.1, "log_interval_s": 3600},
        },
    )  # fmt: skip
    listed = MqttSettings(
        host=HOST, port=first.port, reconnect_min_s=0.05, reconnect_max_s=0.5,
        fallbacks=() if restart else ((HOST, second.port),),
    )  # fmt: skip
    target = dataclasses.replace(listed, port=first.port if restart else second.port, fallbacks=())
    arrivals = Arrivals(listed, target)
    storm = SosStorm(listed, SOURCE, RATE)
    threads = [threading.Thread(target=x.run, daemon=True) for x in (arrivals, storm)]
    core: Core | None = None
    try:
        ready = threading.Thread(target=_watch_summary, args=(first.port, 0, 30, [CLIENT_ID]))
        ready.start()
        core = Core(config, workdir / "core.log")
        ready.join(35)
        for thread in threads:
            thread.start()
        arrivals.ready.wait(15)
        wait_until(lambda: len(storm.receipted) >= 20, 30, "the core answering")
        arrivals.kill_at = time.monotonic()
        first.kill()
        if restart:
            first.restart()
        wait_until(lambda: arrivals.moved() is not None, 30, "every party on the next broker")
        moved = arrivals.moved()
        assert moved is not None
        storm.stop_raising()
        wait_until(storm.all_receipted, 60, "a receipt for every SOS", step_s=0.1)
        wanted = {f"sos:{SOURCE}:{alarm_id}" for alarm_id in storm.raised}
        keys = sqlite_sos_keys(journal, SOURCE)
        lost = len(wanted - keys.keys())
        duplicated = sum(n - 1 for n in keys.values()) + len(keys.keys() - wanted)
        counted = retained_sos_total(target, len(wanted))
        if lost or duplicated or counted != len(wanted):
            raise RuntimeError(
                f"SOS raised {len(wanted)}: lost {lost}, duplicated {duplicated} in the "
                f"journal, {counted} counted in the retained state"
            )
        return moved
    finally:
        arrivals.stopped = True
        storm.stop()
        for thread in threads:
            thread.join(15)
        if core is not None:
            core.kill()
        first.kill()
        second.kill()


@register("broker_failover")
def bench_broker_failover(settings: Settings) -> list[Row]:
    rounds = 1 if settings.smoke else int(os.environ.get("ANSIM_BENCH_BROKER_ROUNDS", "5"))
    baseline_rounds = 1 if settings.smoke else 3
    with quiet_transports(), tempfile.TemporaryDirectory(prefix="ansim-brokers-") as tmp:
        moved = [_round(Path(tmp) / f"second-{n}", restart=False) for n in range(rounds)]
        again = [_round(Path(tmp) / f"restart-{n}", restart=True) for n in range(baseline_rounds)]
    base = "broker 1 restarted at once, parties given only it"
    note = (
        f"{rounds} rounds at {RATE:.0f} SOS/s, SOS lost 0 and duplicated 0 in each: "
        + ", ".join(f"{x:.2f}" for x in moved)
        + " s; baseline "
        + ", ".join(f"{x:.2f}" for x in again)
        + " s"
    )
    return [
        Row.of("broker.second.all-moved.p50", median(moved), "s", median(again), base,
               lower_is_better=True, reference=REFERENCE["broker.second.all-moved.p50"],
               note=note),
        Row.of("broker.second.all-moved.max", max(moved), "s", max(again), base,
               lower_is_better=True, goal=f"≤ {GOAL_MAX_S:.0f} s", met=max(moved) <= GOAL_MAX_S),
    ]  # fmt: skip
