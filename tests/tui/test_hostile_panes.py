"""The panes added after the first hostile-state tests, on hostile retained state.

The shift report (pane 5), the closed list (pane 4), the units pane's home districts,
an incident's partition, home and alert, a partition's summary and two partitions'
merged figures: all of it reaches every console that starts, so none of it may raise
or put a control character on the screen, in English or Korean, at 80×24 or 160×48.
The structs are built directly, without the codec's checks, as in test_hostile_data.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from console.tui.app import AnsimApp
from console.tui.screens.reassign import ReassignScreen
from console.tui.state_store import StateStore
from protocols.schemas import (
    ClosedIncident,
    ClosedList,
    IncidentKind,
    IncidentStatus,
    Note,
    ResponderState,
    ResponderStatus,
    Summary,
    UnitKind,
)
from protocols.shift import (
    OperatorFigures,
    Overdue,
    PeriodFigures,
    PriorityFigures,
    ShiftReport,
    Spread,
)
from tests.tui.test_hostile_data import (
    BOLD,
    CLICK,
    CONTROL,
    HANGUL,
    INF,
    LONG,
    NAN,
    TITLE_ESC,
    assert_clean,
    screen_lines,
)
from tests.tui.ui_fixtures import NOW, Recorder, clock, incident, make_store
from widgets import i18n
from widgets.incident_detail import IncidentDetail
from widgets.shift_board import board_text

HUGE = 10**400  # what the codec refuses, and a str() of it raises past 4,300 digits
BAD_SPREAD = Spread(count=HUGE, p50=NAN, p90=INF, max=1e308, within_target=NAN)


def hostile_period(since: float) -> PeriodFigures:
    return PeriodFigures(
        since=since,
        until=INF,
        alarms=-HUGE,
        to_ack=BAD_SPREAD,
        to_dispatch=Spread(count=-1, p50=-1e300, within_target=INF),
        by_priority=(
            PriorityFigures(priority=1, alarms=HUGE, to_ack=BAD_SPREAD, to_dispatch=BAD_SPREAD),
            PriorityFigures(priority=99, alarms=-1),
        ),
        by_operator=tuple(
            OperatorFigures(
                operator=f"op{n}{TITLE_ESC}{BOLD}", open=HUGE, overdue=-HUGE, to_ack=BAD_SPREAD
            )
            for n in range(40)
        ),
        per_minute=(HUGE, -5, 0, 2**63, *range(200)),
    )


def hostile_report() -> ShiftReport:
    return ShiftReport(
        ts=NAN,
        partition=f"north{TITLE_ESC}",
        ack_target_s=INF,
        dispatch_target_s=-1.0,
        shift=hostile_period(1e17),
        hour=hostile_period(-1e300),
        overdue=tuple(
            Overdue(
                incident_id=f"I-{n:06d}{TITLE_ESC}",
                priority=n % 7,
                what=CLICK,
                late_s=NAN if n % 2 else 1e308,
                owner=f"op\x9b2J{BOLD}",
            )
            for n in range(60)
        ),
        handover=(
            Note(ts=INF, operator=f"sup{TITLE_ESC}", text=f"{LONG}{TITLE_ESC}"),
            Note(ts=NAN, operator=BOLD, text=f"{CLICK} \x1b[8m{HANGUL}\x07"),
        ),
    )


def hostile_closed() -> ClosedList:
    return ClosedList(
        ts=NAN,
        incidents=tuple(
            ClosedIncident(
                id=f"I-{n:06d}",
                kind=IncidentKind.SOS,
                priority=1 + n % 4,
                status=IncidentStatus.RESOLVED,
                district=f"{BOLD}{TITLE_ESC}",
                place=f"{CLICK} {HANGUL}",
                title=f"{LONG}\x9b2J",
                created=[INF, NAN, 1e17, -1e300][n % 4],
                closed_at=[NAN, 1.7e308, -INF, NOW][n % 4],
            )
            for n in range(8)
        ),
        total=HUGE,
        window_s=NAN,
    )


def hostile_store() -> StateStore:
    store = make_store()
    store.apply(hostile_report(), district="north")
    store.apply(ShiftReport(ts=NOW, partition="south"), district="south")  # an empty one
    store.apply(hostile_closed(), district="Gangnam")
    store.apply(
        incident(
            300,
            home=f"Mapo{TITLE_ESC}",
            partition=f"{BOLD}\x9b2J",
            alert=f"unit left {TITLE_ESC}{CLICK}",
            alert_ts=INF,
        )
    )
    store.apply(
        ResponderState(
            id="police-x",
            kind=UnitKind.POLICE,
            status=ResponderStatus.AVAILABLE,
            lat=NAN,
            lon=INF,
            last_seen=1e17,
            status_since=-INF,
            name=f"{CLICK}\x1b[2J",
            home=f"Jung{TITLE_ESC}{BOLD}",
        )
    )
    for partition in (f"north{TITLE_ESC}", "south"):
        store.apply(
            Summary(
                ts=NAN,
                open_by_priority=(HUGE, -1, 0, 0),
                open_total=HUGE,
                events_per_s=INF,
                partition=partition,
                operators=(f"op{TITLE_ESC}", BOLD),
                ignored_by_reason=((f"why{TITLE_ESC}", HUGE),),
            )
        )
    return store


@pytest.fixture(params=["en", "ko"])
def language(request: pytest.FixtureRequest) -> Iterator[str]:
    before = i18n.language()
    i18n.set_language(request.param)
    yield request.param
    i18n.set_language(before)


def test_the_board_answers_on_a_hostile_report(language: str) -> None:
    for width in (40, 80, 160):
        assert_clean(board_text([hostile_report(), ShiftReport(ts=NOW)], width))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
async def test_every_pane_renders_hostile_state_as_plain_text(
    size: tuple[int, int], language: str
) -> None:
    app = AnsimApp(store=hostile_store(), operator="sup1", role="supervisor",
                   send_command=Recorder(), clock=clock, connected=True)  # fmt: skip
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        text = assert_clean(screen_lines(app))
        for pane in ("5", "4", "3", "2", "1"):
            await pilot.press(pane)
            await pilot.pause()
            text = assert_clean(screen_lines(app))
            for key in ("down", "pagedown", "end", "home"):
                await pilot.press(key)
                await pilot.pause()
                assert_clean(screen_lines(app))
        await pilot.press("5")
        await pilot.pause()
        text = assert_clean(screen_lines(app))
        assert "north]0;pwned[2J" in text  # the wire's words, their controls removed
        app.tick()  # the once-a-second redraw on the same clock
        await pilot.pause()
        assert_clean(screen_lines(app))
        assert app.is_running


async def test_the_detail_and_reassign_dialog_of_a_hostile_incident(language: str) -> None:
    app = AnsimApp(store=hostile_store(), operator="sup1", role="supervisor",
                   send_command=Recorder(), clock=clock, connected=True)  # fmt: skip
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.queue.select("I-000300")
        await pilot.press("enter")
        await pilot.pause()
        detail = app.query_one(IncidentDetail).render_text().plain
        assert not CONTROL.search(detail.replace("\n", ""))
        assert "unit left ]0;pwned" in detail  # the alert, plain
        await pilot.press("escape")
        await pilot.pause()
        app.action_reassign()
        await pilot.pause()
        assert isinstance(app.screen, ReassignScreen)
        assert_clean(screen_lines(app))
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running
