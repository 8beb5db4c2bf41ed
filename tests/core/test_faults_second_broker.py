"""Issue 13: the first broker is killed (SIGKILL) mid-storm and never comes back.

Real processes: two Mosquittos, `ansim core` and `ansim simulate --scenario storm`
(resends on, ``--record`` listing every SOS it raised), both configured with
``host:port`` = broker 1 and ``fallbacks`` = [broker 2]; a console's transport with
the same list runs in the test. Broker 1 dies for good with messages in flight.

* Every party moves to broker 2; the time from the kill until the last of them is
  there is measured and printed (a party counts as there once broker 2 carries its
  traffic: the core's state, the simulator's events, the console's connection).
* Nothing is lost: every SOS the simulator raised is journaled exactly once and
  counted once in the retained state a fresh console reads from broker 2, which
  started empty (the core republishes everything on a new session).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocols import topics
from protocols.mqtt import MqttSettings, Transport
from protocols.schemas import IncidentState
from tests.brokers import MosquittoBroker, find_mosquitto
from tests.fault_helpers import exited, journal_keys, poll, recorded_ids
from tests.processes import AnsimProcess, core_ready, retained_state, write_config

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto"),
]

RATE = 30.0  # events/s of the storm (12 % SOS): this is about loss and time, not load
DURATION_S = 10.0


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[tuple[MosquittoBroker, MosquittoBroker]]:
    first, second = MosquittoBroker(tmp_path / "b1"), MosquittoBroker(tmp_path / "b2")
    first.start()
    second.start()
    try:
        yield first, second
    finally:
        first.kill()
        second.kill()


def sos_total(state: dict[str, object]) -> int:
    return sum(
        s.sos_count
        for t, s in state.items()
        if t.startswith(topics.STATE_INCIDENT_PREFIX) and isinstance(s, IncidentState)
    )


class Arrivals:
    """On broker 2: when the core's state and the simulator's events first arrive there."""

    def __init__(self, settings: MqttSettings) -> None:
        self.settings = settings
        self.core: float | None = None
        self.source: float | None = None

    async def run(self) -> None:
        subscriptions = [
            (topics.STATE_SUMMARY, 1),
            (topics.RAW_ALL, 1),
            (topics.RAW_ALL_DISTRICTS, 1),
        ]
        async with Transport(self.settings, "watch-b2", subscriptions=subscriptions) as t:
            async for message in t.messages():
                now = time.monotonic()
                if message.topic == topics.STATE_SUMMARY and self.core is None:
                    self.core = now
                elif message.topic.startswith(f"{topics.ROOT}/raw/") and self.source is None:
                    self.source = now


async def test_first_broker_killed_for_good_every_party_moves_and_no_sos_is_lost(
    tmp_path: Path, brokers: tuple[MosquittoBroker, MosquittoBroker]
) -> None:
    first, second = brokers
    record = tmp_path / "raised.txt"
    config = write_config(
        tmp_path,
        first.port,
        broker={"reconnect_max_s": 0.5, "fallbacks": [f"127.0.0.1:{second.port}"]},
    )
    both = MqttSettings(
        host=first.host, port=first.port, fallbacks=((second.host, second.port),),
        keepalive=5, reconnect_min_s=0.05, reconnect_max_s=0.5,
    )  # fmt: skip
    on_first = dataclasses.replace(both, fallbacks=())
    on_second = dataclasses.replace(both, port=second.port, fallbacks=())
    arrivals = Arrivals(on_second)
    watcher = asyncio.create_task(arrivals.run())
    core = AnsimProcess(config, "core").start()
    sim: AnsimProcess | None = None
    try:
        await core_ready(on_first)
        sim = AnsimProcess(
            config, "simulate", "--scenario", "storm", "--rate", str(RATE),
            "--duration", str(DURATION_S), "--seed", "13", "--record", str(record),
        ).start()  # fmt: skip
        async with Transport(both, "console-op1", subscriptions=[(topics.STATE_ALL, 1)]) as con:
            await con.wait_connected(10)
            await poll(lambda: len(recorded_ids(record)) >= 5, 20, "SOS before the kill")
            assert arrivals.core is None and arrivals.source is None, "broker 2 used too early"
            before = len(recorded_ids(record))
            first.kill()  # for good
            killed_at = time.monotonic()
            await poll(lambda: con.connected and con.settings.port == second.port, 10, "console")
            console_at = time.monotonic()
            await poll(lambda: arrivals.core is not None and arrivals.source is not None, 15,
                       "the core and the simulator on broker 2")  # fmt: skip
            assert arrivals.core is not None and arrivals.source is not None
        moved_s = max(console_at, arrivals.core, arrivals.source) - killed_at
        try:
            assert await exited(sim, DURATION_S + 30) == 0
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- simulator ---\n{sim.log()}") from None

        raised = recorded_ids(record)
        assert len(raised) == len(set(raised))
        wanted = {f"sos:sim:{alarm_id}" for alarm_id in raised}
        path = tmp_path / "journal.db"
        await poll(lambda: wanted <= journal_keys(path, "sos:sim:").keys(), 20, "every SOS")
        keys = journal_keys(path, "sos:sim:")
        assert keys.keys() == wanted, "an SOS in the journal that the simulator never raised"
        assert set(keys.values()) == {1}, "an SOS journaled twice"

        state: dict[str, object] = {}
        deadline = time.monotonic() + 15
        while sos_total(state) != len(raised) and time.monotonic() < deadline:
            state = await retained_state(on_second)
        assert sos_total(state) == len(raised)
        print(
            f"\nbroker 1 SIGKILL, no restart: every party on broker 2 {moved_s:.2f} s after "
            f"the kill (console {console_at - killed_at:.2f} s, core "
            f"{arrivals.core - killed_at:.2f} s, simulator {arrivals.source - killed_at:.2f} s); "
            f"SOS raised {len(raised)} ({before} before the kill), lost 0, duplicated 0"
        )
    finally:
        watcher.cancel()
        if sim is not None:
            sim.stop()
        assert core.stop() == 0, core.log()
