"""The core publishes the supervisor's figures (``Engine.shift_report``), retained, on
``topics.state_shift(partition)``: once a tick, not per event; again at once after a
(re)connect; never while a batch is held (they would show what may yet be lost)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import cast

import pytest

from console.config import Config
from console.core.service import Core
from protocols import codec, topics
from protocols.mqtt import ConnectionState
from protocols.shift import ShiftReport
from tests.core.test_publish_after_commit import FlakyJournal, Recorder, message
from tests.fault_helpers import poll

SHIFT = topics.state_shift("city")


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def core(tmp_path: Path, clock: Clock) -> Core:
    made = Core(Config(), FlakyJournal(tmp_path / "journal.db"), clock=clock)
    made.transport = Recorder()  # type: ignore[assignment]
    return made


def reports(core: Core) -> list[ShiftReport]:
    out = cast(Recorder, core.transport)
    return [codec.decode(p, ShiftReport) for t, p in out.published if t == SHIFT]


async def test_the_shift_report_goes_out_once_a_tick(core: Core, clock: Clock) -> None:
    acked: list[int] = []
    core.handle(message(1, acked))
    await core.commit_and_release()
    clock.now += 0.5  # the figures count the alarms opened before ``now``
    await core.tick(clock.now)
    await core.flush(clock.now)
    [report] = reports(core)
    assert (report.ts, report.partition) == (clock.now, "city")
    assert report.shift is not None and report.shift.alarms == 1
    assert report.hour is not None and report.hour.alarms == 1
    assert report == core.engine.shift_report(clock.now)
    # More events and publish intervals within the tick: no new report (not per event).
    core.handle(message(2, acked))
    await core.commit_and_release()
    clock.now += core.cfg.core.tick_s / 2
    await core.flush(clock.now)
    assert len(reports(core)) == 1
    clock.now += core.cfg.core.tick_s / 2
    await core.flush(clock.now)
    last = reports(core)[-1]
    assert len(reports(core)) == 2 and last.shift is not None and last.shift.alarms == 2
    # A reconnect publishes everything, the figures too, without waiting for the tick.
    core._on_connection(ConnectionState.CONNECTED, "reconnected")
    await core.flush(clock.now + 0.1)
    assert len(reports(core)) == 3


async def test_no_shift_report_while_a_batch_is_held(core: Core, clock: Clock) -> None:
    journal = cast(FlakyJournal, core.journal)
    core.handle(message(1, []))
    await core.commit_and_release()
    journal.failing = True
    core.handle(message(2, []))
    committing = asyncio.create_task(core.commit_and_release())
    await poll(lambda: core.held, 5, "the held batch")
    clock.now += 10 * core.cfg.core.tick_s
    core._on_connection(ConnectionState.CONNECTED, "reconnected")
    await core.flush(clock.now)
    assert reports(core) == []
    journal.failing = False
    await asyncio.wait_for(committing, 5)
    await core.flush(clock.now)
    [report] = reports(core)
    assert report.shift is not None and report.shift.alarms == 2
