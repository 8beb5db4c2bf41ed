"""A hand-made shift report for the supervisor pane's tests (numbers chosen to be seen)."""

from __future__ import annotations

from protocols.schemas import Note
from protocols.shift import (
    OperatorFigures,
    Overdue,
    PeriodFigures,
    PriorityFigures,
    ShiftReport,
    Spread,
)
from tests.tui.ui_fixtures import NOW

SHIFT_START = NOW - 5 * 3600


def report() -> ShiftReport:
    shift = PeriodFigures(
        since=SHIFT_START,
        until=NOW,
        alarms=42,
        to_ack=Spread(count=40, p50=4.0, p90=9.0, max=31.0, within_target=0.92),
        to_dispatch=Spread(count=30, p50=35.0, p90=75.0, max=190.0, within_target=0.8),
        by_priority=(
            PriorityFigures(
                priority=2,
                alarms=30,
                to_ack=Spread(count=29, p50=5.0, p90=8.0, max=17.0, within_target=0.93),
            ),
            PriorityFigures(
                priority=1,
                alarms=12,
                to_ack=Spread(count=11, p50=3.0, p90=14.0, max=31.0, within_target=0.83),
                to_dispatch=Spread(count=11, p50=41.0, p90=58.0, max=65.0, within_target=0.91),
            ),
        ),
        by_operator=(
            OperatorFigures(
                operator="op1",
                open=3,
                overdue=0,
                to_ack=Spread(count=20, p50=4.0, p90=7.0, max=12.0),
            ),
            OperatorFigures(
                operator="op2",
                open=5,
                overdue=2,
                to_ack=Spread(count=20, p50=6.0, p90=22.0, max=31.0),
            ),
        ),
    )
    hour = PeriodFigures(
        since=NOW - 3600,
        until=NOW,
        alarms=17,
        to_ack=Spread(count=16, p50=5.0, p90=12.0, max=27.0, within_target=0.87),
        per_minute=tuple((i * 7) % 5 for i in range(60)),
    )
    return ShiftReport(
        ts=NOW,
        partition="seoul",
        shift=shift,
        hour=hour,
        overdue=(
            Overdue(incident_id="I-000003", priority=1, what="dispatch", late_s=95.0, owner="op2"),
            Overdue(incident_id="I-000007", priority=2, what="acknowledge", late_s=14.0),
        ),
        handover=(
            Note(ts=NOW - 600, operator="sup1", text="Gangnam camera 4 is down until 09:00"),
        ),
    )
