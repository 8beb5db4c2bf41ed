"""Snapshots of the supervisor pane (`5`) at 80×24 and 160×48, in English and Korean
(issue 17), on the hand-made report of shift_fixtures.py.

Regenerate after an intended change with ``pytest tests/tui/test_snapshots_shift.py
--snapshot-update`` and read the SVGs' text (Hangul is two cells wide: check the columns
still line up) before committing them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from console.tui import language
from console.tui.app import AnsimApp
from protocols import codec, topics
from tests.tui.shift_fixtures import report
from tests.tui.ui_fixtures import Recorder, clock, make_store
from widgets import i18n

# The report's times (since, the handover note's) are local time: the same on every machine.
os.environ["TZ"] = "UTC"
time.tzset()

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}


def app() -> AnsimApp:
    store = make_store()
    store.apply_payload(topics.state_shift("seoul"), codec.encode(report()))
    return AnsimApp(store=store, operator="sup1", role="supervisor", send_command=Recorder(),
                    clock=clock)  # fmt: skip


@pytest.fixture(params=i18n.LANGUAGES)
def seat_language(request: pytest.FixtureRequest) -> Iterator[str]:
    before = i18n.language()
    language.apply(request.param)
    try:
        yield request.param
    finally:
        i18n.set_language(before)


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_supervisor_pane(snap_compare: Any, seat_language: str, size: tuple[int, int]) -> None:
    assert snap_compare(app(), terminal_size=size, press=["5"])
