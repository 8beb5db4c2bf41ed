"""The report of a simulated two-hour shift, opened in headless Chromium: the headline
figures and the chart are on the page, nothing is fetched from anywhere, and a
screenshot is kept as an artifact ($ANSIM_ARTIFACTS, else var/test-artifacts/:
report.png).

Chromium is Debian's (/usr/bin/chromium), driven by the playwright package.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from console.bridges.report import Report, ShiftPeriod, build
from console.bridges.report_html import render, share
from console.config import Config
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
from tests.browser import CHROMIUM, CHROMIUM_ARGS

REPO = Path(__file__).resolve().parents[2]
LAT, LON = 37.50, 126.90
START = 1_704_078_000.0  # 2024-01-01T12:00 in Seoul
HOURS = 2
pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (.ci/run installs it)"),
]


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("ANSIM_ARTIFACTS") or REPO / "var" / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def simulate_shift(path: Path, seed: int = 7) -> None:
    """An SOS every 1-5 minutes for two hours, answered by op1 and op2 in turn within
    3-25 s; most get a unit within 20-120 s and are resolved ten minutes later."""
    rng = random.Random(seed)
    rows: list[tuple[float, RecordKind, str, bytes]] = []
    t, n = START, 0
    while t < START + HOURS * 3600 - 300:
        n += 1
        incident, op = f"I-{n:06d}", ("op1", "op2")[n % 2]
        lat = LAT + 0.004 * (n % 40)  # apart, so no two fold into one incident
        lon = LON + 0.004 * (n // 40)
        unit = ResponderReport(responder_id=f"P-{n}", kind=UnitKind.POLICE,
                               status=ResponderStatus.AVAILABLE, lat=lat + 0.001, lon=lon,
                               ts=t - 1)  # fmt: skip
        sos = SosAlarm(alarm_id=f"a{n}", source="app", device_id=f"d{n}", name="caller",
                       lat=lat, lon=lon, accuracy_m=10.0, trigger=SosTrigger.BUTTON,
                       ts=t)  # fmt: skip
        rows += [(t - 1, RecordKind.EVENT, topics.raw("fleet", "responder"), codec.encode(unit)),
                 (t, RecordKind.EVENT, topics.raw("app", "sos"), codec.encode(sos))]  # fmt: skip
        acked = t + rng.uniform(3, 25)
        rows.append(_command(acked, op, Action.ACK, incident))
        if rng.random() < 0.8:
            sent = t + rng.uniform(20, 120)
            rows.append(_command(sent, op, Action.DISPATCH, incident, responder_id=f"P-{n}"))
            rows.append(_command(sent + 600, op, Action.RESOLVE, incident, disposition="ok"))
        t += rng.uniform(60, 300)
    rows.append(_command(t, "sup1", Action.HANDOVER, None, text="Quiet evening; P-3 refuels."))
    rows.sort(key=lambda row: row[0])
    with open_journal(Config().journal, str(path)) as journal:
        for ts, kind, topic, payload in rows:
            journal.append(ts, kind, topic, payload)
        journal.commit()


def _command(
    ts: float, op: str, action: Action, incident: str | None, **kw: str
) -> tuple[float, RecordKind, str, bytes]:
    cmd = Command(cmd_id=f"{op}-{ts:.3f}", operator=op, action=action, ts=ts,
                  incident_id=incident, **kw)  # fmt: skip
    return ts, RecordKind.COMMAND, topics.cmd(op), codec.encode(cmd)


def shift_report(tmp_path: Path) -> Report:
    journal_path = tmp_path / "journal.db"
    simulate_shift(journal_path)
    cfg = Config(roles={"op1": Role.OPERATOR, "op2": Role.OPERATOR, "sup1": Role.SUPERVISOR})
    with open_journal(cfg.journal, str(journal_path)) as journal:
        return build(cfg, journal, ShiftPeriod(START, START + HOURS * 3600))


def test_report_of_a_simulated_shift_renders_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    report = shift_report(tmp_path)
    assert report.figures.alarms > 20
    assert {o.operator for o in report.figures.by_operator} == {"op1", "op2"}
    page_file = tmp_path / "report.html"
    page_file.write_text(render(report), encoding="utf-8")
    fetched: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("request", lambda request: fetched.append(request.url))
            page.goto(page_file.as_uri())
            text = page.inner_text("body")
            shot = artifacts_dir() / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            bars = page.locator("svg rect").count()
            svg_box = page.locator("svg").first.bounding_box()
        finally:
            browser.close()
    assert fetched == [page_file.as_uri()]  # self-contained: nothing else requested
    assert "Alarms" in text and str(report.figures.alarms) in text
    assert f"Acknowledged within target\n{share(report.figures.to_ack)}" in text
    assert f"Dispatched within target\n{share(report.figures.to_dispatch)}" in text
    assert "op1" in text and "op2" in text and "Quiet evening; P-3 refuels." in text
    assert bars == HOURS * 60  # a two-hour period is drawn per minute
    assert svg_box is not None and svg_box["width"] > 600 and svg_box["height"] > 100
    assert shot.stat().st_size > 10_000
