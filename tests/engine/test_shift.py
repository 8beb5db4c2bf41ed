"""The shift supervisor's figures (console.engine.shift, ``Engine.shift_report``).

One known sequence of alarms, acknowledgements, dispatches and closes; every figure
below is worked out by hand from the times in ``SEQUENCE`` (nearest-rank percentiles:
the p of n values is the ceil(p * n)-th smallest). Then: the same sequence journaled
and rebuilt gives the same report, and a closed incident is forgotten after keep_s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from console.config import Config
from console.core.rebuild import rebuild
from console.engine.engine import Engine
from console.engine.shift import Targets, nearest_rank, shift_start, spread
from console.journal.sqlite import SqliteJournal
from console.journal.store import RecordKind
from protocols import codec, topics
from protocols.schemas import (
    Action,
    CameraHealth,
    CctvEvent,
    CctvKind,
    Command,
    ResponderReport,
    SosAlarm,
)
from protocols.shift import OperatorFigures, Overdue, Spread
from tests.engine.test_engine_support import (
    DAY,
    LAT,
    LON,
    camera,
    cctv,
    engine,
    reply_of,
    responder,
    sos,
)

NOW = DAY + 400.0  # 12:06:40 in Seoul; the day shift began at 07:00 (DAY - 5 h)
SHIFT_START = DAY - 5 * 3600.0
HOUR = 3600.0
TARGETS = Targets(ack_s=10.0, dispatch_s=60.0)


def command(operator: str, n: int, action: Action, incident: str, ts: float, **kw: str) -> Command:
    return Command(cmd_id=f"c{n}", operator=operator, action=action, ts=ts,
                   incident_id=incident, **kw)  # fmt: skip


# (time, message). Incidents, in the order they open:
#   I-000001 SOS at DAY-2h: op2 acks +30 s, dispatches +40 s, resolved +600 s
#   I-000002 SOS at DAY:    op1 acks +4 s, dispatches +20 s
#   I-000003 SOS at DAY+60: op2 acks +15 s, dispatches +90 s
#   I-000004 CCTV scream (P2) at DAY+120: never acknowledged
#   I-000005 SOS at DAY+200: op1 acks +6 s, no unit yet
#   I-000006 SOS at DAY+300: op1 acks +2 s, resolved +10 s
SEQUENCE: list[tuple[float, object]] = [
    (DAY - 8000, responder("P-1", ts=DAY - 8000)),
    (DAY - 8000, responder("P-2", lat=LAT + 0.011, ts=DAY - 8000)),
    (DAY - 8000, responder("P-3", lat=LAT + 0.002, ts=DAY - 8000)),
    (DAY - 8000, camera("cam9", lat=LAT - 0.01, ts=DAY - 8000)),
    (DAY - 7200, sos("a0", "dev0", ts=DAY - 7200)),
    (DAY - 7170, command("op2", 1, Action.ACK, "I-000001", DAY - 7170)),
    (DAY - 7160, command("op2", 2, Action.DISPATCH, "I-000001", DAY - 7160, responder_id="P-3")),
    (DAY - 6600, command("op2", 3, Action.RESOLVE, "I-000001", DAY - 6600, disposition="ok")),
    (DAY, sos("a1", "dev1", ts=DAY)),
    (DAY + 4, command("op1", 4, Action.ACK, "I-000002", DAY + 4)),
    (DAY + 20, command("op1", 5, Action.DISPATCH, "I-000002", DAY + 20, responder_id="P-1")),
    (DAY + 60, sos("a2", "dev2", lat=LAT + 0.01, ts=DAY + 60)),
    (DAY + 75, command("op2", 6, Action.ACK, "I-000003", DAY + 75)),
    (DAY + 150, command("op2", 7, Action.DISPATCH, "I-000003", DAY + 150, responder_id="P-2")),
    (DAY + 120, cctv("e1", "cam9", CctvKind.SCREAM, ts=DAY + 120)),
    (DAY + 200, sos("a3", "dev3", lon=LON + 0.01, ts=DAY + 200)),
    (DAY + 206, command("op1", 8, Action.ACK, "I-000005", DAY + 206)),
    (DAY + 300, sos("a4", "dev4", lat=LAT + 0.03, ts=DAY + 300)),
    (DAY + 302, command("op1", 9, Action.ACK, "I-000006", DAY + 302)),
    (DAY + 310, command("op1", 10, Action.RESOLVE, "I-000006", DAY + 310, disposition="ok")),
]


def feed(eng: Engine, cfg: Config, at: float, message: object) -> None:
    if isinstance(message, Command):
        assert reply_of(eng.handle_command(message, at, cfg.role_of(message.operator))).ok
    else:
        eng.handle_event(message, at)  # type: ignore[arg-type]


def in_order() -> list[tuple[float, object]]:
    return sorted(SEQUENCE, key=lambda pair: pair[0])


@pytest.fixture
def shift() -> Engine:
    cfg = Config()
    eng = engine(cfg)
    for at, message in in_order():
        feed(eng, cfg, at, message)
    assert sorted(eng.open_incident_ids()) == [f"I-00000{n}" for n in (2, 3, 4, 5)]
    return eng


def test_the_current_shift(shift: Engine) -> None:
    report = shift.shift_report(NOW)
    assert (report.ts, report.partition) == (NOW, "city")
    assert (report.ack_target_s, report.dispatch_target_s) == (10.0, 60.0)
    period = report.shift
    assert period is not None
    assert (period.since, period.until, period.alarms) == (SHIFT_START, NOW, 6)
    # to acknowledge: 30, 4, 15, 6, 2 (I-000004 never) -> 2 4 6 15 30
    assert period.to_ack == Spread(count=5, p50=6.0, p90=30.0, max=30.0, within_target=0.6)
    # to dispatch: 40, 20, 90 -> 20 40 90; two of three within 60 s
    assert period.to_dispatch == Spread(count=3, p50=40.0, p90=90.0, max=90.0, within_target=0.6667)
    p1, p2 = period.by_priority
    assert (p1.priority, p1.alarms, p1.to_ack, p1.to_dispatch) == (
        1, 5, period.to_ack, period.to_dispatch
    )  # fmt: skip
    assert (p2.priority, p2.alarms, p2.to_ack, p2.to_dispatch) == (2, 1, Spread(), Spread())
    op1, op2 = period.by_operator
    # op1 owns I-000002 (dispatched) and I-000005 (no unit, 200 s old): one overdue
    assert op1 == OperatorFigures(
        operator="op1",
        open=2,
        overdue=1,
        to_ack=Spread(count=3, p50=4.0, p90=6.0, max=6.0, within_target=1.0),
        to_dispatch=Spread(count=1, p50=20.0, p90=20.0, max=20.0, within_target=1.0),
    )
    assert op2 == OperatorFigures(
        operator="op2",
        open=1,
        overdue=0,
        to_ack=Spread(count=2, p50=15.0, p90=30.0, max=30.0, within_target=0.0),
        to_dispatch=Spread(count=2, p50=40.0, p90=90.0, max=90.0, within_target=0.5),
    )
    # the chart's last hour starts at NOW-3600 = DAY-3200: DAY is in minute 3200//60 = 53
    expected = [0] * 60
    for minute in (53, 54, 55, 56, 58):  # DAY, +60, +120, +200, +300
        expected[minute] = 1
    assert list(period.per_minute) == expected


def test_the_last_hour(shift: Engine) -> None:
    hour = shift.shift_report(NOW).hour
    assert hour is not None
    assert (hour.since, hour.until, hour.alarms) == (NOW - HOUR, NOW, 5)  # not I-000001
    assert hour.to_ack == Spread(count=4, p50=4.0, p90=15.0, max=15.0, within_target=0.75)
    assert hour.to_dispatch == Spread(count=2, p50=20.0, p90=90.0, max=90.0, within_target=0.5)
    assert [(o.operator, o.open, o.overdue, o.to_ack.count) for o in hour.by_operator] == [
        ("op1", 2, 1, 3),
        ("op2", 1, 0, 1),
    ]
    assert sum(hour.per_minute) == 5


def test_the_overdue_list(shift: Engine) -> None:
    # I-000005: acknowledged, no unit 200 s after the alarm (60 s target): 140 s late.
    # I-000004: not acknowledged 280 s after the alarm (10 s target): 270 s late.
    assert shift.shift_report(NOW).overdue == (
        Overdue(incident_id="I-000005", priority=1, what="dispatch", late_s=140.0, owner="op1"),
        Overdue(incident_id="I-000004", priority=2, what="acknowledge", late_s=270.0),
    )


def test_a_closed_incident_is_forgotten_after_keep_s(shift: Engine) -> None:
    ids = {t.incident_id for t in shift.shift_times()}
    assert {"I-000001", "I-000006"} <= ids
    keep_s = Config().supervisor.keep_s
    later = DAY - 6600 + keep_s + 1  # I-000001 closed at DAY-6600; I-000006 at DAY+310
    shift.handle_event(responder("P-9", ts=later), later)  # any journaled input prunes
    ids = {t.incident_id for t in shift.shift_times()}
    assert "I-000001" not in ids and "I-000006" in ids


def test_the_rebuilt_journal_gives_the_same_report(shift: Engine, tmp_path: Path) -> None:
    cfg = Config()
    journal = SqliteJournal(tmp_path / "journal.db")
    for at, message in in_order():
        if isinstance(message, Command):
            topic, kind = topics.cmd(message.operator), RecordKind.COMMAND
        else:
            topic, kind = _raw_topic(message), RecordKind.EVENT
        journal.append(at, kind, topic, codec.encode(message))
    journal.commit()
    rebuilt, _ = rebuild(cfg, journal)
    journal.close()
    assert sorted(rebuilt.open_incident_ids()) == sorted(shift.open_incident_ids())
    assert rebuilt.shift_report(NOW) == shift.shift_report(NOW)


def _raw_topic(message: object) -> str:
    if isinstance(message, SosAlarm):
        return topics.raw(message.source, topics.RAW_SOS)
    if isinstance(message, CctvEvent):
        return topics.raw(message.camera_id, topics.RAW_CCTV)
    if isinstance(message, CameraHealth):
        return topics.raw(message.camera_id, topics.RAW_CAMERA)
    assert isinstance(message, ResponderReport)
    return topics.raw(message.responder_id, topics.RAW_RESPONDER)


# --- the pure functions -----------------------------------------------------------------


def test_nearest_rank_is_a_value_that_happened() -> None:
    ten = [float(n) for n in range(1, 11)]
    assert (nearest_rank(ten, 0.5), nearest_rank(ten, 0.9), nearest_rank(ten, 1.0)) == (
        5.0, 9.0, 10.0
    )  # fmt: skip
    assert nearest_rank([7.0], 0.9) == 7.0
    assert spread([], 10.0) == Spread()
    # negative durations (a clock step back) count as 0; 10 s is within a 10 s target
    assert spread([12.0, -1.0, 10.0], 10.0) == Spread(
        count=3, p50=10.0, p90=12.0, max=12.0, within_target=0.6667
    )


SEOUL = 9.0


def test_the_shift_starts_at_the_local_hours() -> None:
    day_start = DAY - 12 * HOUR  # 2024-01-01 00:00 in Seoul
    seven, nineteen = day_start + 7 * HOUR, day_start + 19 * HOUR
    assert shift_start(seven - 60, [7, 19], SEOUL) == day_start - 5 * HOUR  # 06:59: 19:00 before
    assert shift_start(seven, [7, 19], SEOUL) == seven
    assert shift_start(nineteen - 1, [7, 19], SEOUL) == seven
    assert shift_start(nineteen, [7, 19], SEOUL) == nineteen
    assert shift_start(day_start + 24 * HOUR - 1, [19, 7], SEOUL) == nineteen
    assert shift_start(DAY, [7], 0.0) == DAY - 20 * HOUR  # 03:00 UTC: yesterday's 07:00


def test_the_closed_incidents_kept_for_the_figures_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import console.engine.incidents as incidents_module
    from tests.engine.test_engine_support import engine as make_engine
    from tests.engine.test_engine_support import sos

    monkeypatch.setattr(incidents_module, "FINISHED_MAX", 2)
    eng = make_engine()
    for n in range(3):
        eng.handle_event(sos(f"a{n}", f"dev{n}", ts=DAY + n), DAY + n)
    for n, incident_id in enumerate(sorted(eng.open_incident_ids())):
        close = Command(cmd_id=f"c{n}", operator="op1", action=Action.FALSE_ALARM,
                        ts=DAY + 10 + n, incident_id=incident_id)  # fmt: skip
        assert eng.handle_command(close, DAY + 10 + n)
    assert list(eng.st.finished) == ["I-000002", "I-000003"]  # the oldest close went
