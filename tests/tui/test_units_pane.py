"""The units pane (``widgets.responder_board``): district, distance, its own filter, 80x24.

A tiny app hosts the widget alone, driven by Textual's pilot; no broker, no console.
"""

from __future__ import annotations

import msgspec
from rich.cells import cell_len
from textual.app import App, ComposeResult

from protocols.geo import haversine_m
from protocols.schemas import ResponderState, ResponderStatus, UnitKind
from widgets.responder_board import ResponderBoard, short_distance

NOW = 1_750_000_000.0
INCIDENT = (37.5663, 126.9779)  # City Hall, in Jung-gu
SPEC = [  # id, kind, status, (dlat, dlon) from the incident, district, incident id
    ("unit-police-01", UnitKind.POLICE, ResponderStatus.AVAILABLE, (0.030, 0.0), "Jongno-gu", None),
    ("unit-scout-02", UnitKind.SCOUT, ResponderStatus.AVAILABLE, (0.002, 0.0), "Jung-gu", None),
    ("unit-guard-03", UnitKind.GUARD, ResponderStatus.ON_SCENE, (0.010, 0.0), "Jung-gu", "I-000004"),
    ("unit-police-04", UnitKind.POLICE, ResponderStatus.EN_ROUTE, (-0.040, -0.06),
     "Yeongdeungpo-gu", "I-000123"),
    ("unit-scout-05", UnitKind.SCOUT, ResponderStatus.OFF_DUTY, (0.001, 0.0), "Jung-gu", None),
]  # fmt: skip


NAMES = ("Alpha", "Bravo", "Charlie", "Delta", "Echo")


def units(**over: object) -> dict[str, ResponderState]:
    out = {}
    for i, (rid, kind, status, (dlat, dlon), district, inc) in enumerate(SPEC):
        fields: dict[str, object] = {
            "id": rid,
            "kind": kind,
            "status": status,
            "lat": INCIDENT[0] + dlat,
            "lon": INCIDENT[1] + dlon,
            "last_seen": NOW - 10 * i,
            "status_since": NOW - 60 * (i + 1),
            "name": f"Team {NAMES[i]}",
            "incident_id": inc,
            "district": district,
        }
        out[rid] = ResponderState(**{**fields, **over})  # type: ignore[arg-type]
    return out


class BoardApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.board = ResponderBoard()

    def compose(self) -> ComposeResult:
        yield self.board

    def on_mount(self) -> None:
        self.board.set_responders(units())
        self.board.tick(NOW)
        self.board.focus()


def lines(board: ResponderBoard) -> list[str]:
    """Every line the board draws (header first), as text."""
    return [board.render_line(y).text for y in range(board.scrollable_content_region.height)]


def shown(board: ResponderBoard) -> list[str]:
    return [u.id for u in board.units]


async def test_at_80x24_every_line_fits_and_shows_district_and_distance() -> None:
    app = BoardApp()
    async with app.run_test(size=(80, 24)) as pilot:
        board = app.board
        board.set_focus(*INCIDENT)
        await pilot.pause()
        drawn = lines(board)
        width = board.scrollable_content_region.width
        assert 78 <= width <= 80
        assert all(cell_len(line) <= width for line in drawn)
        header = drawn[0]
        for label in ("Unit", "Kind", "Status", "Dist", "District", "Incident", "Fix"):
            assert label in header, header
        rows = drawn[1 : 1 + len(SPEC)]
        scout = next(line for line in rows if line.startswith("unit-scout-02"))
        assert "Jung-gu" in scout and "222 m" in scout and "available" in scout
        far = next(line for line in rows if line.startswith("unit-police-04"))
        assert "I-000123" in far
        # A long district takes the cells left over, and is cut (marked) only if need be.
        assert ("Yeongdeungpo-gu" if width == 80 else "Yeongdeungpo-…") in far


async def test_with_a_focus_the_nearest_come_first_and_off_duty_last() -> None:
    app = BoardApp()
    async with app.run_test(size=(80, 24)) as pilot:
        board = app.board
        # No focus: busy units first, then who can be sent, then off duty; no distance.
        assert shown(board) == ["unit-guard-03", "unit-police-04", "unit-police-01",
                                "unit-scout-02", "unit-scout-05"]  # fmt: skip
        assert board.distance_to("unit-scout-02") is None
        board.set_focus(*INCIDENT)
        await pilot.pause()
        assert shown(board) == ["unit-scout-02", "unit-guard-03", "unit-police-01",
                                "unit-police-04", "unit-scout-05"]  # fmt: skip
        metres = board.distance_to("unit-guard-03")
        assert metres is not None
        expected = haversine_m(*INCIDENT, INCIDENT[0] + 0.010, INCIDENT[1])
        assert abs(metres - expected) < 0.01
        assert "1.1 km" in lines(board)[2]
        assert board.describe() == "all units nearest first"
        board.set_focus(None)
        await pilot.pause()
        assert shown(board)[0] == "unit-guard-03" and board.focus_point is None


async def test_an_incident_without_a_position_gives_no_focus() -> None:
    app = BoardApp()
    async with app.run_test(size=(80, 24)):
        board = app.board
        for lat, lon in ((0.0, 0.0), (float("nan"), 127.0), (95.0, 127.0), (37.5, None)):
            board.set_focus(lat, lon)
            assert board.focus_point is None, (lat, lon)
            assert shown(board)[0] == "unit-guard-03"


async def test_the_units_have_their_own_filter() -> None:
    app = BoardApp()
    async with app.run_test(size=(80, 24)) as pilot:
        board = app.board
        board.set_query("JUNG-GU")
        await pilot.pause()
        assert set(shown(board)) == {"unit-scout-02", "unit-guard-03", "unit-scout-05"}
        board.set_query("scout available")  # every word must match
        assert shown(board) == ["unit-scout-02"]
        board.set_query("delta")  # the name
        assert shown(board) == ["unit-police-04"]
        board.set_query("I-000004")  # the incident a unit is on
        assert shown(board) == ["unit-guard-03"]
        board.set_query("police en-route")
        assert shown(board) == ["unit-police-04"]
        assert board.describe() == '"police en-route" 1/5 units'
        board.set_query("nowhere")
        await pilot.pause()
        assert shown(board) == [] and board.selected_unit() is None
        assert 'No unit matches "nowhere" (5 in all)' in lines(board)[1]
        board.set_query("")
        assert len(shown(board)) == len(SPEC)


async def test_the_cursor_stays_on_its_unit_through_sorts_and_filters() -> None:
    app = BoardApp()
    async with app.run_test(size=(80, 24)) as pilot:
        board = app.board
        await pilot.press("j", "j", "j")
        unit = board.selected_unit()
        assert unit is not None and unit.id == "unit-scout-02"
        board.set_focus(*INCIDENT)  # it moves to the top: the cursor goes with it
        selected = board.selected_unit()
        assert selected is not None and selected.id == "unit-scout-02" and board.cursor == 0
        board.set_query("scout")
        selected = board.selected_unit()
        assert selected is not None and selected.id == "unit-scout-02"
        moved = units()
        moved["unit-scout-02"] = msgspec.structs.replace(
            moved["unit-scout-02"], lat=INCIDENT[0] + 0.05
        )
        board.set_responders(moved)  # now the farthest scout
        selected = board.selected_unit()
        assert selected is not None and selected.id == "unit-scout-02"
        assert shown(board) == ["unit-scout-02", "unit-scout-05"]  # off duty still last


async def test_wide_terminals_add_the_position_and_the_name() -> None:
    app = BoardApp()
    async with app.run_test(size=(160, 48)) as pilot:
        board = app.board
        await pilot.pause()
        drawn = lines(board)
        assert "Position" in drawn[0] and "Name" in drawn[0]
        scout = next(line for line in drawn if line.startswith("unit-scout-02"))
        assert "37.56830,126.97790" in scout and "Team Bravo" in scout


async def test_wire_text_is_drawn_plain_and_a_district_may_be_missing() -> None:
    app = BoardApp()
    async with app.run_test(size=(80, 24)) as pilot:
        board = app.board
        hostile = units(name="\x1b[31mred\x07")
        hostile["unit-scout-02"] = ResponderState(
            id="unit-scout-02", kind=UnitKind.SCOUT, status=ResponderStatus.AVAILABLE,
            lat=INCIDENT[0], lon=INCIDENT[1], last_seen=NOW, status_since=NOW,
            name="x", district="Jung\x1b[2J-gu\n",
        )  # fmt: skip
        old_core = ResponderState(
            id="unit-guard-09", kind=UnitKind.GUARD, status=ResponderStatus.AVAILABLE,
            lat=INCIDENT[0], lon=INCIDENT[1], last_seen=NOW, status_since=NOW,
        )  # fmt: skip
        hostile[old_core.id] = old_core
        board.set_responders(hostile)
        await pilot.pause()
        drawn = "\n".join(lines(board))
        assert "\x1b" not in drawn and "\x07" not in drawn
        old = next(line for line in lines(board) if line.startswith("unit-guard-09"))
        assert " - " in old  # no district from an older core: a dash, not a blank
        board.set_query("red")  # the search reads the same plain text that is shown
        assert "unit-police-01" in shown(board)


def test_distances_fit_their_column() -> None:
    cases = {None: "-", 0.4: "0 m", 999.4: "999 m", 1234.0: "1.2 km", 99_940.0: "99.9 km",
             123_456.0: "123 km", 9_999_000.0: "9999 km", 20_000_000.0: ">9999km",
             float("nan"): "?", -5.0: "?", float("inf"): "?"}  # fmt: skip
    for metres, text in cases.items():
        assert short_distance(metres) == text, metres
        assert len(text) <= 7
