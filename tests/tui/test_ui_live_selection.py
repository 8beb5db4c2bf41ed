"""Against a real broker and a real `ansim core`: the selection follows its incident.

Three SOS; the operator selects the middle one; another operator escalates the last,
which the core publishes and the queue sorts above everything. The cursor stays on
the operator's incident, and `a` acknowledges that one, not the row it was on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from console.config import Config
from console.tui.app import AnsimApp
from console.tui.link import Link
from console.tui.state_store import StateStore
from protocols import topics
from protocols.mqtt import MqttSettings
from protocols.schemas import Action, Command, IncidentStatus, Role
from tests.tui.test_ui_live import (  # the live fixtures: broker config, core, source
    CITY_HALL,
    SIZE,
    cfg,
    publish,
    running_core,
    sos,
    source,
    wait_for,
)

__all__ = ["cfg"]  # a fixture, used by name
pytestmark = pytest.mark.timeout(60)


async def test_a_reorder_by_the_core_leaves_the_selection_on_its_incident(
    cfg: Config, mqtt_settings: MqttSettings, tmp_path: Path
) -> None:
    async with running_core(cfg, mqtt_settings, tmp_path), source(mqtt_settings) as src:
        for n in (1, 2, 3):
            await publish(src, sos(n, lat=CITY_HALL[0] + 0.003 * n), topics.RAW_SOS)
        other = StateStore()
        link2 = Link(cfg, "op2", Role.OPERATOR, other, lambda message: None)
        second = asyncio.create_task(link2.run())
        app = AnsimApp(cfg, operator="op1", connect=True)
        try:
            async with app.run_test(size=SIZE) as pilot:
                queue = app.queue
                await wait_for(pilot, lambda: len(queue.rows) == 3, "the three SOS", 15)
                await wait_for(pilot, lambda: not queue.pinned_to_top, "the picture to be in")
                middle, last = queue.rows[1].id, queue.rows[2].id
                await pilot.press("j")
                assert queue.selected_id == middle and queue.cursor == 1

                await wait_for(pilot, lambda: link2.connected, "the second seat")
                escalate = Command(cmd_id="op2-esc-1", operator="op2", action=Action.ESCALATE,
                                   ts=time.time(), incident_id=last)  # fmt: skip
                await link2.send(escalate)
                # The store sorts as messages arrive; the queue follows at the next frame.
                await wait_for(
                    pilot,
                    lambda: queue.rows[0].id == last and queue.cursor == 2,
                    "the escalation drawn on top",
                )
                assert queue.selected_id == middle

                await pilot.press("a")
                await wait_for(
                    pilot,
                    lambda: app.store.incidents[middle].status == IncidentStatus.ACKNOWLEDGED,
                    "the acknowledgement of the selected incident",
                )
                assert app.store.incidents[last].status == IncidentStatus.NEW
                await pilot.press("q", "y")
        finally:
            second.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await second
