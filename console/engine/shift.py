"""The shift's figures: time from alarm to acknowledge and to dispatch, per priority and
per operator, against the targets (NFPA 1225 asks 90 % answered within 10 s and
processed within 60 s), the overdue incidents, and alarms per minute.

One pure computation for both readers: the live core (:meth:`Engine.shift_report`, from
the open incidents and those closed within ``keep_s``) and ``ansim report`` (the same
incidents rebuilt from the journal for any period), so the supervisor's pane and the
report show the same numbers for the same period.

Percentiles are nearest-rank (the p90 of ten values is the ninth smallest): a value
that really happened, never an interpolation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from console.engine.model import Incident
from protocols.schemas import Note
from protocols.shift import (
    OperatorFigures,
    Overdue,
    PeriodFigures,
    PriorityFigures,
    ShiftReport,
    Spread,
)

MINUTES_SHOWN = 60
# Closed incidents whose moments the engine keeps (State.finished), newest: two shifts of
# a busy room are far fewer; a storm of automatic closes must not grow it without end.
FINISHED_MAX = 50_000


@dataclass(frozen=True, slots=True)
class Times:
    """The moments of one incident that the figures are made of."""

    incident_id: str
    priority: int
    created: float
    acked: float | None
    dispatched: float | None  # its first unit
    owner: str | None
    closed: float | None

    def as_row(
        self,
    ) -> tuple[str, int, float, float | None, float | None, str | None, float | None]:
        return (self.incident_id, self.priority, self.created, self.acked, self.dispatched,
                self.owner, self.closed)  # fmt: skip


def times_of(inc: Incident) -> Times:
    dispatched = next((h.ts for h in inc.history if h.action == "dispatched"), None)
    return Times(inc.id, inc.priority, inc.created, inc.acknowledged_at, dispatched,
                 inc.owner, inc.closed_at)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Targets:
    ack_s: float = 10.0
    dispatch_s: float = 60.0


def nearest_rank(ordered: Sequence[float], q: float) -> float:
    """The q-quantile (0 < q <= 1) of ascending ``ordered`` by nearest rank."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def spread(durations: Iterable[float], target_s: float) -> Spread:
    ordered = sorted(max(0.0, d) for d in durations)
    if not ordered:
        return Spread()
    within = sum(1 for d in ordered if d <= target_s) / len(ordered)
    return Spread(count=len(ordered), p50=nearest_rank(ordered, 0.5),
                  p90=nearest_rank(ordered, 0.9), max=ordered[-1],
                  within_target=round(within, 4))  # fmt: skip


def _to_ack(times: Iterable[Times]) -> list[float]:
    return [t.acked - t.created for t in times if t.acked is not None]


def _to_dispatch(times: Iterable[Times]) -> list[float]:
    return [t.dispatched - t.created for t in times if t.dispatched is not None]


def period(
    times: Sequence[Times], since: float, until: float, now: float, targets: Targets
) -> PeriodFigures:
    """The incidents opened in [since, until): how fast they were answered and dispatched
    (a step done later than ``until`` counts, one not done yet does not), and the open
    and overdue ones each operator owns at ``now``."""
    opened = [t for t in times if since <= t.created < until]
    by_priority = tuple(
        PriorityFigures(
            priority=p,
            alarms=len(group),
            to_ack=spread(_to_ack(group), targets.ack_s),
            to_dispatch=spread(_to_dispatch(group), targets.dispatch_s),
        )
        for p in (1, 2, 3, 4)
        if (group := [t for t in opened if t.priority == p])
    )
    late = {o.incident_id for o in overdue(times, now, targets)}
    # One pass each (the core computes this every tick over up to FINISHED_MAX closed).
    open_: dict[str, int] = {}
    overdue_: dict[str, int] = {}
    for t in times:
        if t.owner and t.closed is None:
            open_[t.owner] = open_.get(t.owner, 0) + 1
            if t.incident_id in late:
                overdue_[t.owner] = overdue_.get(t.owner, 0) + 1
    owned: dict[str, list[Times]] = {}
    for t in opened:
        if t.owner:
            owned.setdefault(t.owner, []).append(t)
    by_operator = tuple(
        OperatorFigures(
            operator=op,
            open=open_.get(op, 0),
            overdue=overdue_.get(op, 0),
            to_ack=spread(_to_ack(owned.get(op, ())), targets.ack_s),
            to_dispatch=spread(_to_dispatch(owned.get(op, ())), targets.dispatch_s),
        )
        for op in sorted(open_.keys() | owned.keys())
    )
    start = until - MINUTES_SHOWN * 60.0
    per_minute = [0] * MINUTES_SHOWN
    for t in opened:
        if t.created >= start:
            per_minute[min(MINUTES_SHOWN - 1, int((t.created - start) // 60))] += 1
    return PeriodFigures(
        since=since,
        until=until,
        alarms=len(opened),
        to_ack=spread(_to_ack(opened), targets.ack_s),
        to_dispatch=spread(_to_dispatch(opened), targets.dispatch_s),
        by_priority=by_priority,
        by_operator=by_operator,
        per_minute=tuple(per_minute),
    )


def overdue(times: Iterable[Times], now: float, targets: Targets) -> list[Overdue]:
    """Open incidents past a target, the latest first: not acknowledged within
    ``ack_s`` of the alarm, or acknowledged and without a unit ``dispatch_s`` after it."""
    found: list[Overdue] = []
    for t in times:
        if t.closed is not None:
            continue
        age = now - t.created
        if t.acked is None and age > targets.ack_s:
            what, late = "acknowledge", age - targets.ack_s
        elif t.acked is not None and t.dispatched is None and age > targets.dispatch_s:
            what, late = "dispatch", age - targets.dispatch_s
        else:
            continue
        found.append(Overdue(incident_id=t.incident_id, priority=t.priority, what=what,
                             late_s=round(late, 1), owner=t.owner))  # fmt: skip
    found.sort(key=lambda o: (o.priority, -o.late_s, o.incident_id))
    return found


def shift_start(now: float, start_hours: Sequence[int], utc_offset_hours: float) -> float:
    """The start of the shift ``now`` is in: the latest of the local ``start_hours``."""
    local = now + utc_offset_hours * 3600.0
    day = math.floor(local / 86400.0) * 86400.0
    starts = sorted(day + h * 3600.0 for h in start_hours) or [day]
    candidates = [s for s in starts if s <= local] or [starts[-1] - 86400.0]
    return candidates[-1] - utc_offset_hours * 3600.0


def report(
    times: Sequence[Times],
    now: float,
    targets: Targets,
    since_shift: float,
    *,
    partition: str = "",
    handover: Sequence[Note] = (),
) -> ShiftReport:
    return ShiftReport(
        ts=now,
        partition=partition,
        ack_target_s=targets.ack_s,
        dispatch_target_s=targets.dispatch_s,
        shift=period(times, since_shift, now, now, targets),
        hour=period(times, now - 3600.0, now, now, targets),
        overdue=tuple(overdue(times, now, targets)[:50]),
        handover=tuple(handover),
    )
