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
from protocols.schemas import ClosedIncident, ClosedList, IncidentKind, IncidentStatus
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


def closed_app() -> AnsimApp:
    """The fixture city with three incidents closed in the last hour."""
    store = make_store()
    records = tuple(
        ClosedIncident(
            id=f"I-00009{n}",
            kind=kind,
            priority=pri,
            status=status,
            district=district,
            place=place,
            title=title,
            created=NOW - 3600 + n * 60,
            closed_at=NOW - 600 * n,
            disposition=disposition,
            owner="op2",
            responders=units,
            closed_by="office-mapo" if n == 2 else "op2",
        )
        for n, kind, pri, status, district, place, title, disposition, units in (
            (
                1,
                IncidentKind.SOS,
                1,
                IncidentStatus.RESOLVED,
                "Mapo-gu",
                "Sejong-daero 1",
                "SOS: panic button",
                "escorted home",
                ("police-02",),
            ),
            (
                2,
                IncidentKind.CCTV,
                2,
                IncidentStatus.FALSE_ALARM,
                "Jongno-gu",
                "Jongno pole 7",
                "Fight at Jongno pole 7",
                "two friends play-fighting",
                (),
            ),
            (
                3,
                IncidentKind.CAMERA_FAULT,
                4,
                IncidentStatus.RESOLVED,
                "Gangnam-gu",
                "Gangnam pole 3",
                "Camera Gangnam pole 3 offline",
                "back online",
                (),
            ),
        )
    )
    store.apply(ClosedList(ts=NOW, incidents=records, total=3, window_s=86400.0))
    return AnsimApp(store=store, operator="op1", send_command=Recorder(), clock=clock)


def test_units_pane_nearest_first_with_its_own_filter_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(app(), terminal_size=(80, 24), press=["3", "slash", *"police", "enter"])


def test_closed_pane_searched_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(closed_app(), terminal_size=(80, 24), press=["4", "slash", *"op2"])
