"""The bell's policy: new P1s and escalations ring, within a budget; nothing else does."""

from __future__ import annotations

import msgspec

from console.config import ConsoleConfig
from console.tui.bell import WINDOW_S, BellPolicy
from protocols.schemas import IncidentStatus
from tests.tui.ui_fixtures import NOW, incident


def policy(**settings: object) -> BellPolicy:
    return BellPolicy(ConsoleConfig(**settings))  # type: ignore[arg-type]


def test_a_new_open_p1_rings_once_and_its_updates_do_not() -> None:
    bell = policy()
    p1 = incident(1)
    assert bell.ring_for(None, p1, NOW) == "p1"
    acked = msgspec.structs.replace(p1, status=IncidentStatus.ACKNOWLEDGED)
    assert bell.ring_for(p1, acked, NOW + 1) is None
    assert bell.ring_for(acked, acked, NOW + 2) is None
    assert bell.rings == 1


def test_lower_priorities_and_closed_incidents_do_not_ring() -> None:
    bell = policy()
    assert bell.ring_for(None, incident(2, priority=2), NOW) is None
    assert bell.ring_for(None, incident(3, status=IncidentStatus.RESOLVED), NOW) is None
    assert bell.rings == 0


def test_a_p2_raised_to_p1_rings_as_a_new_p1() -> None:
    bell = policy()
    p2 = incident(2, priority=2)
    assert bell.ring_for(p2, msgspec.structs.replace(p2, priority=1), NOW) == "p1"


def test_escalation_has_its_own_pattern_and_rings_when_it_turns_on() -> None:
    bell = policy()
    p2 = incident(2, priority=2)
    escalated = msgspec.structs.replace(p2, escalated=True)
    assert bell.ring_for(p2, escalated, NOW) == "escalation"
    assert bell.ring_for(escalated, escalated, NOW + 1) is None  # still escalated: no news
    assert bell.ring_for(None, incident(3, escalated=True), NOW + 2) == "escalation"
    assert bell.rings == 2


def test_escalation_bell_can_be_turned_off() -> None:
    bell = policy(bell_escalation=False)
    p1 = incident(1)
    assert bell.ring_for(p1, msgspec.structs.replace(p1, escalated=True), NOW) is None
    assert bell.ring_for(None, incident(3, escalated=True), NOW) == "p1"  # still a new P1


def test_the_budget_limits_rings_per_minute() -> None:
    bell = policy(bell_max_per_min=3)
    rung = [bell.ring_for(None, incident(n), NOW + n) for n in range(1, 7)]
    assert rung == ["p1", "p1", "p1", None, None, None]
    assert bell.rings == 3
    # The first ring leaves the window a minute after it: room for one more.
    assert bell.ring_for(None, incident(10), NOW + 1 + WINDOW_S) == "p1"
    assert bell.ring_for(None, incident(11), NOW + 1 + WINDOW_S) is None
    assert bell.rings == 4


def test_a_clock_stepping_back_does_not_silence_the_bell() -> None:
    bell = policy(bell_max_per_min=1)
    assert bell.ring_for(None, incident(1), NOW + 3600) == "p1"
    assert bell.ring_for(None, incident(2), NOW) == "p1"


def test_bell_off_or_zero_budget_never_rings() -> None:
    for bell in (policy(bell=False), policy(bell_max_per_min=0)):
        assert bell.ring_for(None, incident(1), NOW) is None
        assert bell.ring_for(None, incident(3, escalated=True), NOW) is None
        assert bell.rings == 0
