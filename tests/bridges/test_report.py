"""`ansim report`: a known journal gives hand-computed figures, the same as the live
engine's ``shift_report`` (the supervisor's pane) for the same period."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from console.bridges.report import Report, ReportError, ShiftPeriod, build, choose_period, to_csv
from console.bridges.report_html import bins, render
from console.config import Config
from console.core.rebuild import rebuild
from console.engine.shift import shift_start
from console.journal.store import RecordKind, open_journal
from protocols import codec, topics
from protocols.schemas import (
    Action,
    Command,
    ResponderReport,
    ResponderStatus,
    Role,
    SosAlarm,
    SosTrigger,
    UnitKind,
)

ROOT = Path(__file__).resolve().parents[2]
LAT, LON = 37.5665, 126.9780  # Seoul City Hall
T0 = 1_704_078_000.0  # 2024-01-01T03:00:00Z, 12:00 in Seoul: the day shift began at 07:00
UNTIL = T0 + 1800.0
ROLES = {"op1": Role.OPERATOR, "op2": Role.OPERATOR, "sup1": Role.SUPERVISOR}
I1, I2, I3, I4, I5 = (f"I-00000{n}" for n in range(1, 6))


def config() -> Config:
    return Config(roles=dict(ROLES))


def _sos(n: int, ts: float) -> SosAlarm:
    return SosAlarm(alarm_id=f"a{n}", source="app", device_id=f"d{n}", name="Kim <b>Minji</b>",
                    lat=LAT + 0.05 * n, lon=LON, accuracy_m=8.0, trigger=SosTrigger.BUTTON,
                    ts=ts)  # fmt: skip


def _unit(name: str, n: int, ts: float) -> ResponderReport:
    return ResponderReport(responder_id=name, kind=UnitKind.POLICE,
                           status=ResponderStatus.AVAILABLE, lat=LAT + 0.05 * n + 0.001,
                           lon=LON, ts=ts)  # fmt: skip


def _cmd(ts: float, op: str, action: Action, incident: str | None = None, **kw: str) -> Command:
    return Command(cmd_id=f"c{ts}", operator=op, action=action, ts=ts, incident_id=incident, **kw)


# (seconds after T0, the input). Acks: 5, 20, 8, 12 s; dispatches: 40, 90 s.
INPUTS: list[tuple[float, SosAlarm | ResponderReport | Command]] = [
    (-60, _unit("P-1", 1, T0 - 60)),
    (-60, _unit("P-2", 2, T0 - 60)),
    (0, _sos(1, T0)),
    (5, _cmd(T0 + 5, "op1", Action.ACK, I1)),
    (40, _cmd(T0 + 40, "op1", Action.DISPATCH, I1, responder_id="P-1")),
    (60, _sos(2, T0 + 60)),
    (80, _cmd(T0 + 80, "op2", Action.ACK, I2)),
    (120, _sos(3, T0 + 120)),
    (128, _cmd(T0 + 128, "op1", Action.ACK, I3)),
    (150, _cmd(T0 + 150, "op2", Action.DISPATCH, I2, responder_id="P-2")),
    (180, _sos(4, T0 + 180)),  # never acknowledged
    (240, _sos(5, T0 + 240)),
    (252, _cmd(T0 + 252, "op2", Action.ACK, I5)),
    (300, _cmd(T0 + 300, "op2", Action.FALSE_ALARM, I5, text="pocket dial")),
    (600, _cmd(T0 + 600, "op1", Action.RESOLVE, I1, disposition="escorted home")),
    (900, _cmd(T0 + 900, "sup1", Action.HANDOVER, text="watch <script>alert(1)</script> I-4")),
    # After the period: must not count.
    (UNTIL - T0 + 60, _sos(6, UNTIL + 60)),
]


def build_journal(path: Path) -> None:
    with open_journal(Config().journal, str(path)) as journal:
        for offset, message in INPUTS:
            if isinstance(message, Command):
                topic, kind = topics.cmd(message.operator), RecordKind.COMMAND
            elif isinstance(message, SosAlarm):
                topic, kind = topics.raw("app", "sos"), RecordKind.EVENT
            else:
                topic, kind = topics.raw("fleet", "responder"), RecordKind.EVENT
            journal.append(T0 + offset, kind, topic, codec.encode(message))
        journal.commit()


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    path = tmp_path / "journal.db"
    build_journal(path)
    return path


def _report(path: Path, since: float, until: float = UNTIL) -> Report:
    with open_journal(Config().journal, str(path)) as journal:
        return build(config(), journal, ShiftPeriod(since=since, until=until))


def test_figures_match_hand_computed_values(journal_path: Path) -> None:
    report = _report(journal_path, T0 - 3600)
    f = report.figures
    assert f.alarms == 5  # the sixth came after the period
    # Acks 5, 8, 12, 20 s: nearest rank p50 = 2nd, p90 = 4th; 2 of 4 within 10 s.
    assert (f.to_ack.count, f.to_ack.p50, f.to_ack.p90, f.to_ack.max) == (4, 8.0, 20.0, 20.0)
    assert f.to_ack.within_target == 0.5
    # Dispatches 40, 90 s: 1 of 2 within 60 s.
    assert (f.to_dispatch.count, f.to_dispatch.p50, f.to_dispatch.p90) == (2, 40.0, 90.0)
    assert f.to_dispatch.within_target == 0.5
    (p1,) = f.by_priority
    assert (p1.priority, p1.alarms) == (1, 5)
    ops = {o.operator: o for o in f.by_operator}
    assert set(ops) == {"op1", "op2"}
    assert (ops["op1"].open, ops["op1"].overdue, ops["op1"].to_ack.max) == (1, 1, 8.0)
    assert (ops["op2"].open, ops["op2"].overdue, ops["op2"].to_ack.p50) == (1, 0, 12.0)
    # At UNTIL: I3 acknowledged but no unit (1680 s old, 60 s target), I4 never answered.
    assert [(o.incident_id, o.what, o.late_s) for o in report.overdue] == [
        (I3, "dispatch", 1620.0),
        (I4, "acknowledge", 1610.0),
    ]
    assert [n.operator for n in report.handover] == ["sup1"]


def test_the_same_numbers_as_the_live_engine(journal_path: Path) -> None:
    cfg = config()
    with open_journal(cfg.journal, str(journal_path)) as journal:
        engine, _ = rebuild(cfg, journal)
    start = shift_start(UNTIL, cfg.supervisor.shift_start_hours, cfg.priority.utc_offset_hours)
    assert start == T0 - 5 * 3600  # 07:00 in Seoul
    # The engine saw the record after UNTIL too: compare at a moment after it.
    later = UNTIL + 120
    live = engine.shift_report(later)
    assert _report(journal_path, start, later).figures == live.shift
    assert _report(journal_path, later - 3600, later).figures == live.hour
    assert _report(journal_path, start, later).overdue[:50] == live.overdue


def test_csv_rows_behind_the_figures(journal_path: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(_report(journal_path, T0).rows))))
    assert [r["id"] for r in rows] == [I1, I2, I3, I4, I5]
    first = rows[0]
    assert first["created"] == "2024-01-01T03:00:00Z"
    assert first["dispatched"] == "2024-01-01T03:00:40Z"
    assert (first["owner"], first["closed"]) == ("op1", "2024-01-01T03:10:00Z")
    assert [r["seconds_to_ack"] for r in rows] == ["5.0", "20.0", "8.0", "", "12.0"]
    assert [r["seconds_to_dispatch"] for r in rows] == ["40.0", "90.0", "", "", ""]
    assert rows[3]["owner"] == rows[3]["closed"] == ""


def test_html_shows_the_figures_and_escapes_wire_text(journal_path: Path) -> None:
    page = render(_report(journal_path, T0 - 3600))
    assert "Shift report 2024-01-01 11:00 – 2024-01-01 12:30 (UTC+09:00)" in page
    assert "50.0 %" in page  # both shares
    assert "p50 8 s" in page and "p90 20 s" in page
    assert "27 min" in page  # I3 late to dispatch by 1620 s
    assert "p90 1 min 30 s" in page  # dispatches: 40 and 90 s
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page
    assert "<svg" in page and page.count("<rect") == 90  # 90 minutes, one bar each
    assert not re.search(r"(src|href)=|@import|url\(", page)  # nothing fetched


def test_chart_bins_widen_with_the_period() -> None:
    assert bins([], 0, 7200)[0] == 60
    assert bins([], 0, 12 * 3600)[0] == 900
    assert bins([], 0, 86400) == (900, [0] * 96)
    assert bins([], 0, 30 * 86400)[0] == 86400


def test_period_choices() -> None:
    cfg = config()
    assert choose_period(cfg, UNTIL) == ShiftPeriod(UNTIL - 86400, UNTIL)
    shift = choose_period(cfg, UNTIL, shift=True)
    assert shift == ShiftPeriod(T0 - 5 * 3600, UNTIL)
    # At 19:00 exactly, the day shift that just ended.
    ended = choose_period(cfg, 0, until="2024-01-01T19:00:00+09:00", shift=True)
    assert ended == ShiftPeriod(T0 - 5 * 3600, T0 + 7 * 3600)
    with pytest.raises(ReportError, match="no timezone"):
        choose_period(cfg, UNTIL, since="2024-01-01T00:00:00")
    with pytest.raises(ReportError, match="empty"):
        choose_period(cfg, UNTIL, since="2024-01-02", until="2024-01-01T00:00:00Z")


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'[journal]\npath = "{tmp_path / "journal.db"}"\n'
        '[roles]\nop1 = "operator"\nop2 = "operator"\nsup1 = "supervisor"\n',
        encoding="utf-8",
    )
    return subprocess.run(
        [sys.executable, "-m", "console.cli", "--config", str(config_file), "report", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_writes_the_page_and_the_csv(journal_path: Path, tmp_path: Path) -> None:
    page, rows = tmp_path / "shift.html", tmp_path / "shift.csv"
    done = _cli(tmp_path, "--until", "2024-01-01T12:30:00+09:00", "--shift",
                "--output", str(page), "--csv", str(rows))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "5 alarm(s), 2 overdue at the end" in done.stderr
    assert "Shift report 2024-01-01 07:00 – 2024-01-01 12:30" in page.read_text(encoding="utf-8")
    assert len(rows.read_text(encoding="utf-8").splitlines()) == 6


def test_cli_refuses_bad_requests(tmp_path: Path) -> None:
    done = _cli(tmp_path, "--journal", str(tmp_path / "missing.db"))
    assert done.returncode == 2 and "no journal at" in done.stderr
    build_journal(tmp_path / "journal.db")
    done = _cli(tmp_path, "--shift", "--since", "2024-01-01")
    assert done.returncode == 2 and "--shift picks its own start" in done.stderr
