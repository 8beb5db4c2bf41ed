"""Whole-screen snapshots in both languages: the main screen, the detail, the dispatch
dialog and the help, at 80×24 and 160×48 (issue 16).

The Korean ones run with the language set as `ansim console` sets it at start
(console.tui.language.apply), and put back afterwards: the language is one per process.
The English 80×24 ones, and the English main screen at 160×48, are in
test_ui_snapshots.py; the English 160×48 detail, dialog and help are here.

Regenerate after an intended change with ``pytest tests/tui/test_snapshots_ko.py
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
from tests.tui.ui_fixtures import Recorder, clock, make_store
from widgets import i18n

# Wall-clock times in the detail are local time: the same on every machine.
os.environ["TZ"] = "UTC"
time.tzset()

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}
KEYS = {
    "main": [],
    "detail": ["j", "j", "enter"],
    "dispatch": ["j", "j", "d"],
    "help": ["question_mark"],
}


def app() -> AnsimApp:
    return AnsimApp(store=make_store(), operator="op1", send_command=Recorder(), clock=clock)


@pytest.fixture
def korean() -> Iterator[None]:
    before = i18n.language()
    language.apply("ko")
    try:
        yield
    finally:
        i18n.set_language(before)


@pytest.fixture
def english() -> Iterator[None]:
    before = i18n.language()
    language.apply("en")
    try:
        yield
    finally:
        i18n.set_language(before)


@pytest.mark.usefixtures("korean")
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("screen", KEYS.keys())
def test_korean(snap_compare: Any, screen: str, size: tuple[int, int]) -> None:
    assert snap_compare(app(), terminal_size=size, press=KEYS[screen])


@pytest.mark.usefixtures("english")
@pytest.mark.parametrize("screen", ["detail", "dispatch", "help"])
def test_english_160x48(snap_compare: Any, screen: str) -> None:
    assert snap_compare(app(), terminal_size=(160, 48), press=KEYS[screen])
