"""The core publishes the recently closed incidents as one retained list.

In process with a recording transport (a frozen, steppable clock): the list goes out
when an incident closes, coalesced to once a second under a storm of closes, again
when its oldest record leaves the 24-hour window, and the same after a restart
(rebuilt from the journal). Then through a real Mosquitto, as a console would see it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from console import config as config_module
from console.config import Config
from console.core.publisher import CLOSED_INTERVAL_S
from console.core.service import Core
from console.engine.closed import CLOSED_WINDOW_S
from console.journal.sqlite import SqliteJournal
from console.journal.store import open_journal
from protocols import codec, topics
from protocols.mqtt import Incoming, MqttSettings
from protocols.schemas import (
    Action,
    ClosedList,
    Command,
    IncidentStatus,
    SosAlarm,
    SosTrigger,
)
from tests.brokers import MosquittoBroker
from tests.fault_helpers import Source, poll
from tests.processes import core_ready, retained_state, write_config
from tests.state_lookup import find

SOURCE = "app"
CITY_HALL = (37.5663, 126.9779)
NAME, PHONE = "Kim Minji", "010-0000-0000"


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


class Recorder:
    """The core's transport: records every publish."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, payload: bytes, **_: Any) -> None:
        self.published.append((topic, payload))

    def closed_lists(self) -> list[ClosedList]:
        prefix = f"{topics.ROOT}/state/closed/"
        return [codec.decode(p, ClosedList) for t, p in self.published if t.startswith(prefix)]

    def payloads(self, topic: str) -> list[bytes]:
        return [p for t, p in self.published if t == topic]


def sos(n: int, ts: float) -> SosAlarm:
    return SosAlarm(
        alarm_id=f"a{n}",
        source=SOURCE,
        device_id=f"phone-{n}",
        name=NAME,
        phone=PHONE,
        lat=CITY_HALL[0] + n * 0.001,
        lon=CITY_HALL[1],
        accuracy_m=10,
        trigger=SosTrigger.BUTTON,
        ts=ts,
    )


def incoming(topic: str, message: object, mid: int) -> Incoming:
    return Incoming(topic, codec.encode(message), 1, False, mid, lambda _mid, _qos: None)


async def close_one(core: Core, n: int, disposition: str = "pocket dial") -> str:
    """SOS number ``n``, then op1 closes it as a false alarm; its incident id."""
    now = core.clock()
    core.handle(incoming(topics.raw(SOURCE, topics.RAW_SOS), sos(n, now), 2 * n))
    await core.commit_and_release()
    incident_id = f"I-{core.engine.st.seq:06d}"
    cmd = Command(cmd_id=f"c{n}", operator="op1", action=Action.FALSE_ALARM,
                  incident_id=incident_id, ts=now, disposition=disposition)  # fmt: skip
    core.handle(incoming(topics.cmd("op1"), cmd, 2 * n + 1))
    await core.commit_and_release()
    return incident_id


def make_core(path: Path, clock: Clock) -> tuple[Core, Recorder]:
    core = Core(Config(), SqliteJournal(path), clock=clock)
    out = Recorder()
    core.transport = out  # type: ignore[assignment]
    return core, out


async def test_closing_an_incident_publishes_it_in_the_closed_list(tmp_path: Path) -> None:
    clock = Clock()
    core, out = make_core(tmp_path / "journal.db", clock)
    await core.flush(clock.now, everything_now=True)
    assert out.closed_lists() == []  # nothing closed yet: no district has a list
    clock.now += CLOSED_INTERVAL_S
    incident_id = await close_one(core, 1)
    await core.flush(clock.now)  # the core's regular tick, with its budget
    home = core.engine.incident_home(incident_id) or ""
    assert out.payloads(topics.state_incident(home, incident_id))[-1] == b""  # gone from the queue
    listing = out.closed_lists()[-1]
    assert [r.id for r in listing.incidents] == [incident_id]
    record = listing.incidents[0]
    assert record.status is IncidentStatus.FALSE_ALARM and record.disposition == "pocket dial"
    assert record.closed_by == "op1" and record.closed_at == clock.now
    assert record.owner is None  # closed straight from new: nobody took it first
    payload = out.payloads(topics.state_closed(home))[-1]
    for personal in (NAME, PHONE, "phone-1"):
        assert personal.encode() not in payload


async def test_a_storm_of_closes_publishes_the_list_at_most_once_a_second(tmp_path: Path) -> None:
    clock = Clock()
    core, out = make_core(tmp_path / "journal.db", clock)
    await core.flush(clock.now, everything_now=True)
    out.published.clear()
    clock.now += 5.0
    start = clock.now
    closed = []
    for n in range(1, 21):  # twenty closes in a second, a flush every 50 ms
        closed.append(await close_one(core, n))
        await core.flush(clock.now)
        clock.now += 0.05
    # One list per home district, all built at one time: once within the interval.
    assert [c.ts for c in out.closed_lists()] == [start], "more than once within the interval"
    clock.now = start + CLOSED_INTERVAL_S
    await core.flush(clock.now)
    times = sorted({c.ts for c in out.closed_lists()})
    assert times == [start, clock.now]
    latest = [c for c in out.closed_lists() if c.ts == clock.now]
    listed = sorted((r for c in latest for r in c.incidents), key=lambda r: -r.closed_at)
    assert sorted(r.id for r in listed) == sorted(closed)
    sent = len(out.closed_lists())
    await core.flush(clock.now + 5)  # nothing more closed: nothing more sent
    assert len(out.closed_lists()) == sent


async def test_the_list_is_republished_when_its_oldest_record_leaves_the_window(
    tmp_path: Path,
) -> None:
    clock = Clock()
    core, out = make_core(tmp_path / "journal.db", clock)
    first = await close_one(core, 1)
    clock.now += 3600
    second = await close_one(core, 2)
    await core.flush(clock.now, everything_now=True)
    assert [r.id for r in out.closed_lists()[-1].incidents] == [second, first]
    clock.now += CLOSED_WINDOW_S - 3600 + 1  # the first closed a day and a second ago
    await core.flush(clock.now)
    assert [r.id for r in out.closed_lists()[-1].incidents] == [second]
    sent = len(out.closed_lists())
    await core.flush(clock.now + 10)
    assert len(out.closed_lists()) == sent  # not again until the next one leaves


async def test_a_restarted_core_publishes_the_same_list_rebuilt_from_the_journal(
    tmp_path: Path,
) -> None:
    clock = Clock()
    core, out = make_core(tmp_path / "journal.db", clock)
    ids = []
    for n in range(1, 6):
        ids.append(await close_one(core, n, disposition=f"case {n}"))
        clock.now += 60
    await core.flush(clock.now, everything_now=True)
    before = out.closed_lists()  # one list per home district
    listed = sorted((r for c in before for r in c.incidents), key=lambda r: -r.closed_at)
    assert [r.id for r in listed] == ids[::-1]
    core.journal.close()

    again, out_again = make_core(tmp_path / "journal.db", clock)
    try:
        await again.flush(clock.now, everything_now=True)
        assert out_again.closed_lists() == before
    finally:
        again.journal.close()


@pytest.fixture
def core_config(tmp_path: Path, mosquitto: MosquittoBroker) -> Path:
    return write_config(tmp_path, mosquitto.port, roles={"op1": "operator"})


async def test_a_console_sees_a_closed_incident_in_the_retained_list(
    core_config: Path, mqtt_settings: MqttSettings
) -> None:
    cfg = config_module.load(core_config, environ={})
    core = Core(cfg, open_journal(cfg.journal))
    running = asyncio.create_task(core.run())
    try:
        await core_ready(mqtt_settings)
        async with Source(mqtt_settings, "tst", operators=("op1",)) as source:
            alarm = SosAlarm(alarm_id="a1", source="tst", device_id="phone-1", name=NAME,
                             phone=PHONE, lat=CITY_HALL[0], lon=CITY_HALL[1], accuracy_m=10,
                             trigger=SosTrigger.BUTTON, ts=time.time())  # fmt: skip
            await source.raise_sos(alarm)
            await poll(lambda: "a1" in source.receipts, 15, "the receipt")
            incident_id = source.receipts["a1"].incident_id
            ack = await source.command("op1", "k1", action=Action.ACK, incident_id=incident_id)
            assert ack.ok, ack.reason
            reply = await source.command(
                "op1", "r1", action=Action.RESOLVE, incident_id=incident_id,
                disposition="escorted home",
            )  # fmt: skip
            assert reply.ok, reply.reason

        def listed(state: dict[str, Any]) -> bool:
            closed = _closed(state)
            return isinstance(closed, ClosedList) and any(
                r.id == incident_id for r in closed.incidents
            )

        state: dict[str, Any] = {}
        deadline = time.monotonic() + 15
        while not listed(state):
            assert time.monotonic() < deadline, f"not in the closed list: {state.keys()}"
            state = await retained_state(mqtt_settings)
        assert find(state, "incident", incident_id) is None  # cleared from the queue
        closed = _closed(state)
        assert closed is not None
        record = next(r for r in closed.incidents if r.id == incident_id)
        assert record.status is IncidentStatus.RESOLVED
        assert record.disposition == "escorted home"
        assert record.owner == "op1" and record.closed_by == "op1"
        assert NAME not in repr(closed) and PHONE not in repr(closed)
    finally:
        core.stop()
        await asyncio.wait_for(running, 20)


def _closed(state: dict[str, Any]) -> ClosedList | None:
    """The one district's closed list in a retained picture (these tests close in one)."""
    lists = [v for t, v in state.items() if t.startswith(f"{topics.ROOT}/state/closed/")]
    return lists[0] if lists else None
