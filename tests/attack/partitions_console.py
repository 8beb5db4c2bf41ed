"""A fresh city-wide console on what an attack on two partitions left behind.

It connects through the deploy/ broker with an observer's own account, as a control
room's wall seat would, waits until both partitions' incidents are in its queue, and
walks every pane. The screens come back as SVG text: an escape that reached the
terminal would stand in them verbatim.
"""

from __future__ import annotations

import asyncio
import time

import msgspec

from console import config as config_module
from console.tui.app import AnsimApp
from tests.attack.partitions_city import PartitionedCity

OBSERVER = "op3"  # read-only and scoped to no district: the whole city
PANES = "23451"


def city_console_screens(city: PartitionedCity, incident_ids: list[str]) -> list[str]:
    """The screen of each pane, once ``incident_ids`` are all in the queue."""
    cfg = config_module.load(city.configs["north"], environ={})
    broker = msgspec.structs.replace(
        cfg.broker, username=OBSERVER, password=city.broker.passwords[OBSERVER]
    )
    cfg = msgspec.structs.replace(cfg, broker=broker)

    async def drive() -> list[str]:
        app = AnsimApp(cfg, operator=OBSERVER, role="observer", connect=True)
        async with app.run_test(size=(80, 24)) as pilot:
            deadline = time.monotonic() + 20
            while any(app.queue.rows.index_of(i) is None for i in incident_ids):
                assert time.monotonic() < deadline, f"the console never showed {incident_ids}"
                await pilot.pause(0.05)
            screens = [app.export_screenshot()]
            for pane in PANES:
                await pilot.press(pane)
                await pilot.pause(0.2)
                screens.append(app.export_screenshot())
            assert app.is_running
            return screens

    return asyncio.run(drive())
