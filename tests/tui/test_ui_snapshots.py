"""Whole-screen snapshots on fixture data at a frozen instant.

Regenerate after an intended change with ``pytest tests/tui/test_ui_snapshots.py
--snapshot-update`` and read the SVGs' text before committing them.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from console.tui.app import AnsimApp
from tests.tui.ui_fixtures import Recorder, clock, make_store

# Wall-clock times in the detail are local time: pin the zone so the pictures
# are the same on every machine.
os.environ["TZ"] = "UTC"
time.tzset()


def app(role: str = "operator") -> AnsimApp:
    return AnsimApp(store=make_store(), operator="op1", role=role, send_command=Recorder(),
                    clock=clock)  # fmt: skip


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
