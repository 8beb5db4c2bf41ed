"""The widgets in Korean at 80 columns: Korean words, every line within the width, columns
that start at the same cell in the header and the rows, and cuts that never split a syllable.

Each widget is hosted alone in a tiny app driven by Textual's pilot; the language is the
process's, so every test sets Korean and puts English back.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from rich.cells import cell_len
from textual.app import App, ComposeResult
from textual.widget import Widget

from console.tui.state_store import StateStore
from protocols.schemas import IncidentStatus, Summary
from tests.tui.test_units_pane import INCIDENT, units
from tests.tui.ui_fixtures import NOW, incident, incidents, responders
from widgets import i18n
from widgets.alert_queue import AlertQueue
from widgets.alert_queue import _layout as queue_layout
from widgets.format import age, countdown, fit, kind_label, status_label
from widgets.incident_detail import IncidentDetail
from widgets.responder_board import ResponderBoard
from widgets.responder_board import _layout as board_layout
from widgets.status_bar import StatusBar

LONG_PLACE = "테헤란로 한국종합무역센터 지하 삼층 주차장 동쪽 비상계단 앞"


@pytest.fixture(autouse=True)
def korean() -> Iterator[None]:
    i18n.set_language("ko")
    yield
    i18n.set_language("en")


def cell_slice(line: str, start: int, end: int) -> str:
    """The characters of ``line`` in cells [start, end); a wide character across either
    edge means the columns are misaligned, which fails the test."""
    out, at = [], 0
    for char in line:
        width = cell_len(char)
        if at >= start and at + width <= end:
            out.append(char)
        else:
            assert not (at < start < at + width or at < end < at + width), (line, start, end)
        at += width
    return "".join(out)


class Host(App[None]):
    def __init__(self, widget: Widget) -> None:
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget


def test_ages_and_countdowns_in_korean() -> None:
    assert (age(30), age(73), age(2 * 3600 + 5 * 60), age(3 * 86400)) == (
        "30초", "1분13초", "2시간05분", "3일00시간"
    )  # fmt: skip
    assert age(400 * 86400) == "400일"
    assert age(23 * 3600 + 59 * 60, cells=9) == "23시간"  # too wide: the smaller unit goes
    assert countdown(NOW - 125, NOW) == "-2분05초"
    assert cell_len(countdown(NOW - 11 * 3600, NOW, 9)) <= 9
    i18n.set_language("en")
    assert (age(73), age(3 * 86400), countdown(NOW - 125, NOW)) == ("1m13s", "3d00h", "-2m05s")


async def test_status_bar_in_korean_fits_80_columns() -> None:
    bar = StatusBar("op1", "operator", id="status")
    app = Host(bar)
    async with app.run_test(size=(80, 24)) as pilot:
        summary = Summary(
            ts=NOW, open_by_priority=(3, 2, 1, 2), open_total=8, oldest_unacked=NOW - 73,
            events_per_s=2.5, rate_history=(1.0, 2.0, 3.0), alarms=("디스크 90%",),
        )  # fmt: skip
        bar.update_state(summary=summary, now=NOW, others=["op2", "op3"])
        await pilot.pause()
        lines = [bar.render_line(y).text for y in range(bar.size.height)]
        assert len(lines) == 2
        assert all(cell_len(line) <= 80 for line in lines), lines
        first = lines[0]
        for word in ("상황요원", "오프라인", "미결 8", "미확인 1분13초", "요원:"):
            assert word in first, first
        assert first.endswith("…") and cell_len(first) == 80  # cut at the width, in cells
        assert "경보: 디스크 90%" in lines[1]


def test_a_cut_at_the_end_never_splits_a_syllable() -> None:
    for budget in range(4, 30):
        cut = fit(LONG_PLACE, budget)
        assert cell_len(cut) == budget and cut.endswith("…")
        # Whole syllables up to the mark (the cut is the budget), or one cell short and
        # padded where the next syllable would not fit (the cut is budget - 1).
        shown = cut[:-1]
        if not LONG_PLACE.startswith(shown):
            shown = shown[:-1]
            assert cut[-2] == " " and LONG_PLACE.startswith(shown)
            assert cell_len(LONG_PLACE[len(shown)]) == 2
        assert cell_len(shown + "…") in (budget, budget - 1)


def queue_app(*extra: object) -> tuple[Host, AlertQueue]:
    store = StateStore()
    for item in [*incidents(), *extra]:
        store.apply(item)  # type: ignore[arg-type]  # the fixtures' incidents
    queue = AlertQueue(store.view)
    queue.now = NOW
    return Host(queue), queue


async def test_queue_in_korean_columns_align_at_80() -> None:
    long = incident(
        40, district="Gangnam-gu", place=LONG_PLACE, status=IncidentStatus.ACKNOWLEDGED,
        priority=1, created=NOW - 1, dispatch_deadline=NOW + 95,
    )  # fmt: skip
    app, queue = queue_app(long)
    async with app.run_test(size=(80, 24)) as pilot:
        queue.focus()
        await pilot.pause()
        width = queue.scrollable_content_region.width
        lines = [
            queue.render_line(y).text for y in range(min(queue.size.height, 1 + len(queue.rows)))
        ]
        assert all(cell_len(line) <= 80 for line in lines), lines
        lay = queue_layout(width)
        # Column starts, in cells: priority, kind, where, age, SLA, state, owner, responder.
        starts = [0, lay.pri + 1, lay.pri + 7]
        starts.append(starts[2] + lay.where + 1)
        starts.append(starts[3] + lay.age + 1)
        starts.append(starts[4] + lay.sla + 1)
        starts.append(starts[5] + 6)
        starts.append(starts[6] + lay.owner + 1)
        widths = [lay.pri, 5, lay.where, lay.age, lay.sla, 5, lay.owner, lay.responder]
        columns = [[cell_slice(line, s, s + w) for s, w in zip(starts, widths, strict=True)]
                   for line in lines]  # fmt: skip
        header = [c.strip() for c in columns[0]]
        assert header == ["우선", "종류", "구/장소", "경과", "기한", "상태", "담당", "출동대"]
        for row, cols in zip(queue.rows, columns[1:], strict=False):
            assert cols[1] == fit(kind_label(row.kind), 5)
            assert cols[5] == fit(status_label(row.status), 5)
        # The long Korean place: the district's Korean name, cut in whole syllables.
        index = queue.rows.index_of("I-000040")
        assert index is not None and 1 + index < len(columns)
        row = columns[1 + index]
        cut, full = row[2], f"강남 {LONG_PLACE}"
        # The queue keeps the head and the tail of a place (fit_middle): both whole syllables.
        assert cell_len(cut) == lay.where and cut.count("…") == 1
        head, tail = cut.split("…")
        assert full.startswith(head.rstrip()) and full.endswith(tail.strip())
        assert row[3].strip() == "1초" and row[4].strip() == "1분35초"


async def test_detail_in_korean() -> None:
    detail = IncidentDetail()
    app = Host(detail)
    async with app.run_test(size=(80, 24)) as pilot:
        chosen = msgspec.structs.replace(incidents()[0], district="Gangnam-gu")
        detail.show(chosen, NOW, {u.id: u for u in responders()})
        await pilot.pause()
        text = detail.render_text().plain
        for word in ("SOS", "신규 접수", "강남구", "출처", "접수", "담당", "출동대",
                     "추천 출동대 (도착 빠른 순)", "가까운 CCTV", "1분00초 전"):  # fmt: skip
            assert word in text, word
        for line in text.splitlines():
            for label in ("출처", "신고자", "접수", "담당", "출동대"):
                if line.startswith(label + " "):  # a field: its value starts at cell 9
                    assert cell_slice(line, 0, 9).strip() == label
                    assert cell_slice(line, 8, 9) == " " and cell_slice(line, 9, 10) != " "
        body = [strip.text for strip in detail.body.render_lines(detail.body.region.reset_offset)]
        assert all(cell_len(line) <= 80 for line in body)
        detail.show(None, NOW)
        assert detail.render_text().plain == "선택된 사건이 없습니다."


async def test_responder_board_in_korean_columns_align_at_80() -> None:
    board = ResponderBoard()
    app = Host(board)
    async with app.run_test(size=(80, 24)) as pilot:
        board.set_responders(units())
        board.tick(NOW)
        board.set_focus(*INCIDENT)
        await pilot.pause()
        width = board.scrollable_content_region.width
        lines = [board.render_line(y).text for y in range(1 + len(board.units))]
        assert all(cell_len(line) <= 80 for line in lines), lines
        lay = board_layout(width)
        assert lay.district and lay.fix and lay.in_status
        widths = [14, lay.kind, 10, 7, lay.district, 9, lay.in_status, lay.fix]
        starts = [0]
        for w in widths[:-1]:
            starts.append(starts[-1] + w + 1)
        columns = [[cell_slice(line, s, s + w) for s, w in zip(starts, widths, strict=True)]
                   for line in lines]  # fmt: skip
        assert [c.strip() for c in columns[0]] == [
            "출동대", "종류", "상태", "거리", "구", "사건", "지속", "수신"
        ]  # fmt: skip
        by_unit = {cols[0].strip(): cols for cols in columns[1:]}
        assert by_unit["unit-scout-02"][1].strip() == "스카우트"
        assert by_unit["unit-scout-02"][2].strip() == "대기"
        assert by_unit["unit-scout-02"][4].strip() == "중구"
        assert by_unit["unit-police-04"][2].strip() == "이동 중"
        assert by_unit["unit-police-04"][4].strip() == "영등포구"
        assert by_unit["unit-guard-03"][2].strip() == "현장 도착"
        assert by_unit["unit-scout-05"][6].strip() == "5분00초"
        assert board.describe() == "전체 출동대, 가까운 순"
        board.set_query("영등포")  # a search typed in Hangul finds the district
        assert [u.id for u in board.units] == ["unit-police-04"]
