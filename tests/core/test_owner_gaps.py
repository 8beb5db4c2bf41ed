"""`ansim core` says at start which kinds of id no source may report (first come off)."""

from __future__ import annotations

from console.core.main import owner_gaps
from console.engine.settings import OwnersConfig


def test_first_come_needs_no_table() -> None:
    assert owner_gaps(OwnersConfig()) == []


def test_each_kind_nobody_is_named_for_is_said() -> None:
    gaps = owner_gaps(OwnersConfig(first_come=False, responders={"tracker": ["police-*"]}))
    assert gaps == [
        "[owners] first_come is off and [owners.cameras] names no source: every one of the"
        " camera reports and CCTV events from a source will be refused",
        "[owners] first_come is off and [owners.senders] names no source: every one of the"
        " CAP alerts from a source will be refused",
    ]
