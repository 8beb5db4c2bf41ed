"""Whole-screen snapshots on fixture data at a frozen instant.

Regenerate after an intended change with ``pytest tests/tui/test_ui_snapshots.py
--snapshot-update`` and read the SVGs' text before committing them.
"""

from __future__ import annotations

import os
import time
from typing import Any

import msgspec
import pytest
from textual.pilot import Pilot

from console.tui.app import AnsimApp
from protocols.schemas import IncidentStatus
from tests.tui.ui_fixtures import NOW, Recorder, clock, make_store

# Wall-clock times in the detail are local time: pin the zone so the pictures
# are the same on every machine.
os.environ["TZ"] = "UTC"
time.tzset()


def app(role: str = "operator") -> AnsimApp:
    return AnsimApp(store=make_store(), operator="op1", role=role, send_command=Recorder(),
                    clock=clock)  # fmt: skip


def offices_app() -> AnsimApp:
    """The fixture city with two field-office owners whose ids differ only at their end,
    and an SLA running on each of the P2s (one overdue)."""
    store = make_store()
    for incident_id, owner, deadline in (
        ("I-000002", "office-jongno", NOW + 95),
        ("I-000005", "office-mapo", NOW - 125),
    ):
        inc = store.incidents[incident_id]
        store.apply(msgspec.structs.replace(inc, owner=owner, status=IncidentStatus.ACKNOWLEDGED,
                                            responders=(), dispatch_deadline=deadline))  # fmt: skip
    return AnsimApp(store=store, operator="op1", send_command=Recorder(), clock=clock)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_main_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app(), terminal_size=size)


def test_detail(snap_compare: Any) -> None:
    assert snap_compare(app(), terminal_size=(80, 24), press=["j", "j", "enter"])


def test_dispatch_dialog(snap_compare: Any) -> None:
    assert snap_compare(app(), terminal_size=(80, 24), press=["j", "j", "d"])


def test_camera_grid(snap_compare: Any) -> None:
    assert snap_compare(app(), terminal_size=(80, 24), press=["2", "l", "right"])


def test_help(snap_compare: Any) -> None:
    assert snap_compare(app(), terminal_size=(80, 24), press=["question_mark"])


def test_observer_main_screen(snap_compare: Any) -> None:
    assert snap_compare(app("observer"), terminal_size=(80, 24))


def test_filter_indicator_and_distinct_owners_at_80x24(snap_compare: Any) -> None:
    """The filter shows in the status bar, office-mapo and office-jongno stay apart when
    cut, the SLA countdown (overdue with a minus, in red) fits at 80 columns."""
    assert snap_compare(offices_app(), terminal_size=(80, 24), press=["slash", *"p2", "enter"])


def test_empty_filtered_queue_says_why_at_80x24(snap_compare: Any) -> None:
    async def filtered(pilot: Pilot[Any]) -> None:
        assert isinstance(pilot.app, AnsimApp)
        pilot.app.apply_filter("p1 mapo")
        await pilot.pause()

    assert snap_compare(app(), terminal_size=(80, 24), run_before=filtered)
