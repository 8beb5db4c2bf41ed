"""When the console rings the terminal bell: alarm fatigue is a safety problem too.

The demo city once rang ~95 times in ten minutes, once per new P1: a bell that rings
all the time is a bell nobody hears. So the bell rings for a new P1 (once) and for an
incident turning escalated (a distinct pattern, two bells), and never more than
``[console] bell_max_per_min`` times in any minute. The status bar still names every
new P1, so a ring withheld by the budget hides nothing.

Pure: time comes in as an argument (the app passes its clock, a headless shift its
simulated one), so the budget is tested without waiting for a clock.
"""

from __future__ import annotations

from collections import deque
from typing import Final, Literal

from console.config import ConsoleConfig
from protocols.schemas import IncidentState

Ring = Literal["p1", "escalation"]

WINDOW_S: Final = 60.0  # the budget's window: bell_max_per_min rings in any 60 s


class BellPolicy:
    """Decides, one incident change at a time, whether the bell rings and how."""

    def __init__(self, settings: ConsoleConfig) -> None:
        self.enabled = settings.bell
        self.max_per_window = settings.bell_max_per_min
        self.escalation = settings.bell_escalation
        self.rings = 0  # rings returned so far (an escalation's two bells count as one)
        self._recent: deque[float] = deque()  # when the rings of the last window were

    def ring_for(
        self, before: IncidentState | None, after: IncidentState, now: float
    ) -> str | None:
        """``"p1"`` for a new open P1, ``"escalation"`` when escalated turns on; None
        otherwise, or when the budget says no (it counts what it returned).

        ``before`` is the incident as last seen (None: never seen). A P2 raised to P1 is
        a new P1 for the operator; an incident both new and escalated rings as an
        escalation, the more urgent pattern."""
        kind = self._kind(before, after)
        if kind is None or not self._within_budget(now):
            return None
        self._recent.append(now)
        self.rings += 1
        return kind

    def _kind(self, before: IncidentState | None, after: IncidentState) -> Ring | None:
        if not self.enabled:
            return None
        if self.escalation and escalation_began(before, after):
            return "escalation"
        return "p1" if new_p1(before, after) else None

    def _within_budget(self, now: float) -> bool:
        recent = self._recent
        while recent and recent[0] <= now - WINDOW_S:
            recent.popleft()
        if recent and recent[-1] > now:
            # The clock stepped back: a ring "in the future" would hold the bell silent
            # until the clock caught up with it.
            self._recent = recent = deque(t for t in recent if t <= now)
        return len(recent) < self.max_per_window


def _open(incident: IncidentState | None) -> IncidentState | None:
    return incident if incident is not None and not incident.status.is_closed else None


def new_p1(before: IncidentState | None, after: IncidentState) -> bool:
    """``after`` is an open P1 that was not one before (new, or raised to P1)."""
    was = _open(before)
    return (
        after.priority == 1
        and not after.status.is_closed
        and not (was is not None and was.priority == 1)
    )


def escalation_began(before: IncidentState | None, after: IncidentState) -> bool:
    """``after`` is open and escalated, and was not escalated before."""
    was = _open(before)
    return (
        after.escalated and not after.status.is_closed and not (was is not None and was.escalated)
    )
