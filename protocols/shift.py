"""The shift supervisor's figures on the wire: how fast alarms are answered and
dispatched, per priority and per operator, against the targets of the configuration.

The core publishes one ``ShiftReport`` per partition, retained, under
``topics.state_shift(partition)``; ``ansim report`` computes the same structs from the
journal for any period (console.engine.shift computes both).
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from protocols.schemas import Ident, Note, Priority, Seconds, ShortText, Timestamp, _Wire

Share = Annotated[float, Meta(ge=0.0, le=1.0)]


class Spread(_Wire, frozen=True):
    """Seconds from one moment to the next over a set of incidents (None: none measured)."""

    count: int = 0
    p50: Seconds | None = None
    p90: Seconds | None = None
    max: Seconds | None = None
    within_target: Share | None = None  # the share done within the target


class PriorityFigures(_Wire, frozen=True):
    priority: Priority
    alarms: int = 0  # incidents opened in the period
    to_ack: Spread = Spread()  # opened -> acknowledged
    to_dispatch: Spread = Spread()  # opened -> first unit dispatched


class OperatorFigures(_Wire, frozen=True):
    operator: Ident
    open: int = 0  # open incidents it owns now
    overdue: int = 0  # of those, past a target
    to_ack: Spread = Spread()
    to_dispatch: Spread = Spread()


class PeriodFigures(_Wire, frozen=True):
    since: Timestamp
    until: Timestamp
    alarms: int = 0
    to_ack: Spread = Spread()
    to_dispatch: Spread = Spread()
    by_priority: tuple[PriorityFigures, ...] = ()
    by_operator: tuple[OperatorFigures, ...] = ()
    # Alarms opened in each minute of the period's last hour, oldest first (a chart).
    per_minute: tuple[int, ...] = ()


class Overdue(_Wire, frozen=True):
    incident_id: Ident
    priority: Priority
    what: ShortText  # "acknowledge" or "dispatch"
    late_s: Seconds  # past its target by this much
    owner: ShortText | None = None


class ShiftReport(_Wire, frozen=True, tag="shift"):
    ts: Timestamp
    partition: ShortText = ""
    ack_target_s: Seconds = 10.0
    dispatch_target_s: Seconds = 60.0
    shift: PeriodFigures | None = None  # the current shift, from its start
    hour: PeriodFigures | None = None  # the last hour
    overdue: tuple[Overdue, ...] = ()
    handover: tuple[Note, ...] = ()  # notes for the next shift, newest last
