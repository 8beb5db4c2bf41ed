"""The console against what one hostile source account could put in the retained state.

Times and numbers no clock or map could give (inf, nan, 1e17, -1e300, 1.7e308,
ints past a float) must format as a placeholder, never raise: the retained
state is loaded by every console that starts. Texts with terminal escapes, C1
controls or Rich/Textual markup must reach the screen as plain text. The
structs are built directly, without the codec's checks, because the console
must not depend on the core having refused them.
"""

from __future__ import annotations

import re
import unicodedata

import msgspec
import pytest
from rich.cells import cell_len
from textual.widgets import Label

from console.tui.app import AnsimApp
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.dispatch import DispatchScreen
from console.tui.screens.note import NoteScreen
from console.tui.screens.resolve import ResolveScreen
from console.tui.state_store import StateStore
from protocols import topics
from protocols.schemas import (
    CameraCell,
    CameraStatus,
    CorrelatedEvent,
    DistrictCameras,
    HistoryEntry,
    IncidentKind,
    NearbyCamera,
    NearbyShelter,
    Note,
    Presence,
    Recommendation,
    ResponderState,
    ResponderStatus,
    Summary,
    UnitKind,
)
from tests.tui.ui_fixtures import NOW, Recorder, clock, incident, make_store
from widgets.alert_queue import AlertQueue
from widgets.format import (
    MAX_TEXT,
    PLACEHOLDER,
    age,
    clock_time,
    coordinate,
    count,
    distance,
    fit,
    plain,
    priority,
    rate,
    since,
)
from widgets.incident_detail import IncidentDetail
from widgets.status_bar import sparkline

INF, NAN = float("inf"), float("nan")
HOSTILE_NUMBERS = [INF, -INF, NAN, 1e17, -1e300, 1.7e308, 10**400, -(10**400), 10**5000]
TITLE_ESC = "\x1b]0;pwned\x07\x1b[2J"  # retitles a tmux pane, then wipes the screen
CLICK = "[@click=app.quit]q"
BOLD = "[bold]x[/bold]"
HANGUL = "강남구 테헤란로 5"
LONG = "A" * 100_000
# What must never reach the terminal: C0 (but none of it is printable), DEL and C1.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def repr_short(value: object) -> str:
    """A test id: pytest's own str() of a 5,000-digit int raises, like the console's did."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"int-{value.bit_length()}-bits"
    return repr(value)


# --- the formatters ------------------------------------------------------------------


@pytest.mark.parametrize("value", [*HOSTILE_NUMBERS, -5.0, 0.0], ids=repr_short)
def test_every_formatter_answers_and_stays_short(value: object) -> None:
    for formatter in (age, clock_time, distance, count, rate, priority):
        shown = formatter(value)
        assert isinstance(shown, str) and 0 < cell_len(shown) <= 10, (formatter, shown)
    for bound in (90, 180):
        assert cell_len(coordinate(value, bound)) <= 10
    assert cell_len(age(value)) <= 6  # the queue's age column


@pytest.mark.parametrize("ts", [*HOSTILE_NUMBERS, -1.0], ids=repr_short)
def test_a_time_no_clock_gives_is_a_placeholder(ts: object) -> None:
    assert clock_time(ts) == PLACEHOLDER
    assert since(ts, NOW) == PLACEHOLDER


def test_real_times_and_ages_still_read() -> None:
    assert re.fullmatch(r"\d\d:\d\d:\d\d", clock_time(NOW))
    assert since(NOW - 125, NOW) == "2m05s"
    assert age(45) == "45s" and age(3 * 3600 + 7 * 60) == "3h07m"
    assert age(2 * 86400 + 4 * 3600) == "2d04h" and age(150 * 86400) == "150d"


def test_ages_are_clamped() -> None:
    assert age(-30) == "0s"  # a clock a little ahead of ours
    assert age(-1e300) == "0s"
    assert age(1e17) == age(1.7e308) == ">9999d"
    assert age(INF) == age(NAN) == PLACEHOLDER


def test_numbers_out_of_range_are_placeholders() -> None:
    assert distance(250) == "250 m" and distance(4200) == "4.2 km"
    assert distance(-1) == distance(1.7e308) == distance(NAN) == PLACEHOLDER
    assert count(12) == "12" and count(-1) == count(10**400) == count(NAN) == PLACEHOLDER
    assert count(2.5) == PLACEHOLDER
    assert priority(1) == "P1" and priority(10**400) == priority(-1) == priority(True) == "P?"
    assert coordinate(37.4979, 90) == "37.49790" and coordinate(91, 90) == PLACEHOLDER
    assert rate(3.5) == "3.5" and rate(INF) == rate(-1) == PLACEHOLDER


def test_sparkline_survives_hostile_rates() -> None:
    line = sparkline([INF, NAN, -5.0, 1e308, 1.0, 2.0, 10**400, -1e300])
    assert len(line) == 8 and set(line) <= set("▁▂▃▄▅▆▇█")
    assert sparkline([NAN, NAN]) == "▁▁"


# --- plain() ---------------------------------------------------------------------------


def test_plain_removes_terminal_controls() -> None:
    hostile = f"cam {TITLE_ESC}\x9b31m red\x9d0;x\x9c\x07\x00\x7f\x08 end"
    shown = plain(hostile)
    assert not CONTROL.search(shown)
    assert shown.startswith("cam ") and shown.endswith(" end")


def test_plain_keeps_one_line_and_words_apart() -> None:
    assert plain("Kim\tJi-woo\nline two\r\n\u2028x\x85y") == "Kim Ji-woo line two   x y"


def test_plain_leaves_markup_as_text_and_hangul_as_is() -> None:
    assert plain(CLICK) == CLICK and plain(BOLD) == BOLD
    assert plain(HANGUL) == HANGUL


def test_plain_cuts_very_long_text_and_takes_anything() -> None:
    assert len(plain(LONG)) == MAX_TEXT + 1 and plain(LONG).endswith("…")
    assert plain(None) == "" and plain(10**5000) == PLACEHOLDER and plain(7) == "7"
    shown = plain("a\ud800b\u202eevil\u2066")  # a lone surrogate; bidi overrides
    assert shown == "a\ufffdbevil"
    shown.encode("utf-8")  # what the terminal driver does with it: must not raise


def test_fit_measures_terminal_cells() -> None:
    for width in range(1, 16):
        assert cell_len(fit(HANGUL, width)) == width
        assert cell_len(fit("Gangnam " + HANGUL, width)) == width
    assert fit(HANGUL, 8) == "강남구 …"  # three wide syllables, a space, the cut mark
    assert fit(HANGUL, 9) == "강남구  …"  # half a syllable will not print: a space instead
    assert fit("강남", 4) == "강남" and fit("강남", 5) == "강남 "
    assert cell_len(fit(plain(LONG), 40)) == 40


# --- the store ---------------------------------------------------------------------------


@pytest.mark.parametrize("created", [NAN, INF, -INF, 1e17, -1e300, 1.7e308])
def test_store_keeps_its_order_with_any_creation_time(created: float) -> None:
    store = make_store()
    bad = incident(99, created=created, priority=2)
    store.apply(bad)
    assert store.view.index_of(bad.id) is not None
    rows = [store.view[i].id for i in range(len(store.view))]
    assert len(rows) == len(set(rows)) == store.open_count
    store.remove_incident(bad.id)  # a nan key that bisect could not find would stay behind
    assert store.view.index_of(bad.id) is None
    assert all(store.view[i].id != bad.id for i in range(len(store.view)))


def test_store_refuses_a_camera_page_number_int_cannot_read() -> None:
    store = StateStore()
    for page in ("9" * 5000, "٣", "1000000"):  # past int()'s digit limit; an Arabic 3
        assert store.apply_payload(f"{topics.ROOT}/state/cameras/Gangnam/{page}", b"x")
    assert store.cameras == {} and store.rejected == 0


# --- the whole console on hostile retained state ------------------------------------------


def hostile_store() -> StateStore:
    store = make_store()
    lat, lon = 37.4979, 127.0276
    store.apply(
        incident(
            90,
            title=f"SOS {TITLE_ESC} {CLICK}",
            place=f"{CLICK} {HANGUL}",
            district=BOLD,
            source=f"dev\x9b2J{TITLE_ESC}",
            person=f"Kim\x1b[8m hidden\x07 {BOLD}",
            phone="010\x9b6n-1234",
            owner="op\x1b[31m",
            created=1e17,
            updated=INF,
            ack_deadline=INF,
            dispatch_deadline=1e17,
            sos_count=10**400,
            lat=NAN,
            lon=INF,
            events=(CorrelatedEvent(ts=NAN, kind="scream\x07", source=TITLE_ESC, detail=LONG),),
            notes=(Note(ts=-1e300, operator=f"op{TITLE_ESC}", text=LONG + TITLE_ESC),),
            history=(HistoryEntry(ts=1.7e308, actor=BOLD, action=CLICK, detail="\x9b2J"),),
            cameras=(
                NearbyCamera(
                    camera_id=f"cam{TITLE_ESC}",
                    distance_m=NAN,
                    status=CameraStatus.ALARM,
                    name=f"pole {TITLE_ESC} {BOLD}",
                    snapshot_url=f"http://x/{TITLE_ESC}",
                ),
            ),
            recommended=(
                Recommendation(
                    responder_id="police-07", kind=UnitKind.POLICE, distance_m=INF, eta_s=NAN
                ),
                Recommendation(
                    responder_id="police-07", kind=UnitKind.POLICE, distance_m=1e308, eta_s=1e17
                ),
            ),
            shelters=(
                NearbyShelter(
                    shelter_id="s",
                    name=f"GS25{TITLE_ESC}",
                    kind=CLICK,
                    distance_m=-1e300,
                    lat=INF,
                    lon=NAN,
                ),
            ),
        )
    )
    store.apply(incident(91, title=HANGUL, place=HANGUL, created=NAN, priority=2))
    store.apply(incident(92, title=LONG, place=LONG, person=LONG, created=-1e300, priority=2))
    store.apply(incident(93, kind=IncidentKind.CCTV, created=INF, priority=3, responders=(BOLD,)))
    store.apply(
        DistrictCameras(
            district=f"A{TITLE_ESC}{BOLD}",  # sorts first: the camera pane opens on it
            ts=INF,
            online=10**400,  # what the codec would refuse
            offline=-1,
            tampered=NAN,  # type: ignore[arg-type]
            alarm=1,
            cameras=(
                CameraCell(
                    id=f"cam{TITLE_ESC}",
                    status=CameraStatus.ALARM,
                    lat=NAN,
                    lon=INF,
                    name=f"{CLICK} \x9b2J {LONG}",
                    last_seen=INF,
                ),
                CameraCell(
                    id="cam-2",
                    status=CameraStatus.ONLINE,
                    lat=lat,
                    lon=lon,
                    name=HANGUL,
                    last_seen=1e17,
                ),
            ),
        )
    )
    store.apply(
        ResponderState(
            id=f"unit{TITLE_ESC}",
            kind=UnitKind.POLICE,
            status=ResponderStatus.ON_SCENE,
            lat=NAN,
            lon=lon,
            last_seen=NAN,
            status_since=1e17,
            name=f"{BOLD}\x9b2J",
            incident_id=CLICK,
        )
    )
    store.apply(
        Summary(
            ts=INF,
            open_by_priority=(10**400, -1, 0, 0),
            open_total=NAN,  # type: ignore[arg-type]
            oldest_unacked=1e17,
            events_per_s=NAN,
            rate_history=(INF, NAN, -5.0, 1e308),
            alarms=(f"journal {TITLE_ESC} {CLICK}",),
        )
    )
    store.apply(Presence(operator=f"op9{TITLE_ESC}{BOLD}", online=True, ts=NAN))
    return store


def make_app(store: StateStore) -> AnsimApp:
    return AnsimApp(store=store, operator="op1", role="operator", send_command=Recorder(),
                    clock=clock, connected=True)  # fmt: skip


def screen_lines(app: AnsimApp) -> list[str]:
    """What the terminal would be sent for the active screen, as text lines."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def assert_clean(lines: list[str]) -> str:
    for line in lines:
        found = CONTROL.search(line)
        assert found is None, f"{found.group()!r} on screen: {line[:120]!r}"
    return "\n".join(lines)


def label_texts(app: AnsimApp) -> str:
    return "\n".join(str(label.render()) for label in app.screen.query(Label))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
async def test_console_shows_hostile_state_as_plain_text(size: tuple[int, int]) -> None:
    app = make_app(hostile_store())
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        queue = app.query_one(AlertQueue)
        assert queue.row_count() == 12
        text = assert_clean(screen_lines(app))
        assert "journal" in text and "?" in text  # the alarm line; a placeholder somewhere
        # Every row is exactly as wide as the queue: Hangul and long texts do not shift it.
        width = queue.scrollable_content_region.width
        for row in range(queue.row_count()):
            assert queue.render_line(row + 1).cell_length == width

        assert queue.select("I-000090")
        await pilot.press("enter")
        await pilot.pause()
        text = assert_clean(screen_lines(app))
        detail = app.query_one(IncidentDetail).render_text().plain
        assert not CONTROL.search(detail.replace("\n", ""))
        for literal in (CLICK, BOLD, HANGUL):
            assert literal in detail
        assert CLICK in text  # on screen as typed, not turned into a link
        assert "Ack by   ?" in detail and "Opened   ? (? ago)" in detail

        await pilot.press("escape", "2")
        await pilot.pause()
        text = assert_clean(screen_lines(app))
        assert "? online" in text and f"{CLICK} 2J AAAA" in text  # counts; the camera's name
        await pilot.press("l", "h", "right", "left", "enter")  # its incidents: the id is typed
        await pilot.pause()  # into the filter box, which is on screen
        assert_clean(screen_lines(app))
        await pilot.press("escape", "3")
        await pilot.pause()
        text = assert_clean(screen_lines(app))
        assert BOLD in text or size[0] < 120  # the name column is there on wide screens
        await pilot.press("1")
        await pilot.pause()
        assert app.is_running


async def test_dialogs_open_on_a_hostile_incident() -> None:
    app = make_app(hostile_store())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.query_one(AlertQueue).select("I-000090")
        await pilot.pause()
        for key, screen in (("d", DispatchScreen), ("r", ResolveScreen), ("n", NoteScreen),
                            ("f", ConfirmScreen)):  # fmt: skip
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, screen), key
            assert_clean(screen_lines(app))
            labels = label_texts(app)
            assert not CONTROL.search(labels.replace("\n", ""))
            if key in "df":  # the dialogs that quote the incident's own words
                assert CLICK in labels
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, screen)
        assert app.is_running


async def test_console_starts_on_a_store_holding_every_bad_time() -> None:
    store = make_store()
    for n, ts in enumerate([INF, -INF, NAN, 1e17, -1e300, 1.7e308], start=200):
        store.apply(incident(n, created=ts, updated=ts, ack_deadline=ts, acknowledged_at=None,
                             dispatch_deadline=ts, closed_at=None))  # fmt: skip
    app = make_app(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        queue = app.query_one(AlertQueue)
        for n in range(200, 206):
            assert queue.select(f"I-{n:06d}")
            await pilot.pause()
            assert_clean(screen_lines(app))
        app.tick()  # the once-a-second redraw, on the same frozen clock
        await pilot.pause()
        assert app.is_running


def test_hostile_texts_hold_what_they_claim() -> None:
    """The fixtures themselves: the escapes are really there, so the tests above test."""
    assert "\x1b" in TITLE_ESC and "\x07" in TITLE_ESC
    assert unicodedata.east_asian_width(HANGUL[0]) == "W"
    hostile = hostile_store().incidents["I-000090"]
    assert "\x1b" in hostile.title and "\x9b" in (hostile.phone or "")
    assert msgspec.structs.replace(hostile).created == 1e17
