"""The closed-incidents view (``widgets.closed_list``): newest first, searchable, 80x24.

A tiny app hosts the widget alone, driven by Textual's pilot; the list is the one the
engine builds, through the wire codec, as a console receives it.
"""

from __future__ import annotations

import msgspec
from rich.cells import cell_len
from textual.app import App, ComposeResult

from console.engine.closed import closed_list
from console.engine.model import Incident
from protocols import codec
from protocols.schemas import ClosedIncident, ClosedList, IncidentKind, IncidentStatus
from widgets.closed_list import ClosedIncidentList, closed_time
from widgets.format import clock_time

NOW = 1_750_000_000.0


def record(n: int, **over: object) -> ClosedIncident:
    fields: dict[str, object] = {
        "id": f"I-{n:06d}",
        "kind": IncidentKind.SOS if n % 2 else IncidentKind.CCTV,
        "priority": 1 + n % 4,
        "status": IncidentStatus.RESOLVED if n % 3 else IncidentStatus.FALSE_ALARM,
        "district": ("Jung-gu", "Mapo-gu", "Yeongdeungpo-gu")[n % 3],
        "place": f"Sejong-daero {n}",
        "title": "SOS: panic button" if n % 2 else "CCTV: scream",
        "created": NOW - 600 * n - 300,
        "closed_at": NOW - 600 * n,
        "disposition": "pocket dial"
        if n % 3 == 0
        else ("escorted home", "police took over")[n % 2 == 0],
        "owner": f"op{n % 2 + 1}",
        "closed_by": f"op{n % 2 + 1}",
        "responders": ("unit-police-01", "unit-scout-02") if n % 2 else (),
    }
    return ClosedIncident(**{**fields, **over})  # type: ignore[arg-type]


def listing(*records: ClosedIncident, total: int | None = None) -> ClosedList:
    return ClosedList(ts=NOW, incidents=records, total=total or len(records))


class ClosedApp(App[None]):
    def __init__(self, closed: ClosedList | None) -> None:
        super().__init__()
        self.view = ClosedIncidentList()
        self.closed = closed

    def compose(self) -> ComposeResult:
        yield self.view

    def on_mount(self) -> None:
        self.view.set_closed(self.closed)
        self.view.focus()


def lines(view: ClosedIncidentList) -> list[str]:
    return [view.render_line(y).text for y in range(view.scrollable_content_region.height)]


def ids(view: ClosedIncidentList) -> list[str]:
    return [r.id for r in view.records]


async def test_at_80x24_newest_first_and_every_line_fits() -> None:
    # Sent oldest first on purpose: the view orders by closing time itself.
    app = ClosedApp(listing(*(record(n) for n in range(30, 0, -1)), total=340))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        view = app.view
        assert ids(view)[:3] == ["I-000001", "I-000002", "I-000003"]
        drawn = lines(view)
        width = view.scrollable_content_region.width
        assert 78 <= width <= 80 and len(drawn) >= 20
        assert all(cell_len(line) <= width for line in drawn)
        for label in ("Closed", "Incident", "Kind", "End", "District / place", "Disposition"):
            assert label in drawn[0], drawn[0]
        assert drawn[0].rstrip().endswith("By")
        first = drawn[1]
        assert first.startswith(" " + closed_time(NOW - 600)) and "I-000001" in first
        assert "SOS" in first and "DONE" in first and "Mapo Sejong" in first
        assert "escorted home" in first and first.rstrip().endswith("op2")
        assert "FALSE" in drawn[3] and "pocket dial" in drawn[3]
        assert view.describe() == "latest 30 of 340 closed in 24 h"


async def test_search_matches_id_district_place_title_disposition_and_owner() -> None:
    app = ClosedApp(listing(*(record(n) for n in range(1, 13))))
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.view
        cases = {
            "i-000007": ["I-000007"],
            "MAPO-GU": ["I-000001", "I-000004", "I-000007", "I-000010"],
            "sejong-daero 12": ["I-000012"],
            "scream": ["I-000002", "I-000004", "I-000006", "I-000008", "I-000010", "I-000012"],
            "pocket": ["I-000003", "I-000006", "I-000009", "I-000012"],
            "op1 scream pocket": ["I-000006", "I-000012"],  # every word must match
            "unit-scout-02 mapo": ["I-000001", "I-000007"],
            "false": ["I-000003", "I-000006", "I-000009", "I-000012"],
        }
        for query, expected in cases.items():
            view.set_query(query)
            assert ids(view) == expected, query
        view.set_query("pocket")
        assert view.describe() == '"pocket" 4/12 closed'
        view.set_query("gangnam")
        await pilot.pause()
        assert ids(view) == [] and view.selected_record() is None
        assert 'Nothing closed matches "gangnam" (12 listed)' in lines(view)[1]
        view.set_query("  ")
        assert len(ids(view)) == 12


async def test_an_empty_list_says_so() -> None:
    app = ClosedApp(None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "No incident closed in the last 24 h." in lines(app.view)[1]
        assert app.view.describe() == "0 closed in 24 h"


async def test_the_cursor_stays_on_its_incident_when_the_list_is_republished() -> None:
    app = ClosedApp(listing(*(record(n) for n in range(1, 6))))
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.view
        await pilot.press("j", "j")
        selected = view.selected_record()
        assert selected is not None and selected.id == "I-000003"
        newer = record(0, closed_at=NOW, created=NOW - 60)  # a new close on top
        view.set_closed(listing(newer, *(record(n) for n in range(1, 6))))
        selected = view.selected_record()
        assert selected is not None and selected.id == "I-000003" and view.cursor == 3
        view.set_query("op2")
        selected = view.selected_record()
        assert selected is not None and selected.id == "I-000003"
        await pilot.press("G")
        last = view.selected_record()
        assert last is not None and last.id == "I-000005"


async def test_wide_terminals_add_how_long_it_took_the_units_and_the_title() -> None:
    app = ClosedApp(listing(record(1), record(2)))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        drawn = lines(app.view)
        for label in ("Took", "Units", "Title"):
            assert label in drawn[0]
        assert "5m00s" in drawn[1] and "unit-police-01+1" in drawn[1]
        assert "SOS: panic button" in drawn[1]


async def test_wire_text_is_drawn_plain() -> None:
    hostile = record(
        1,
        district="Jung\x1b[2J-gu",
        place="gate\n3\x07",
        disposition="\x1b]0;pwned\x07done",
        closed_by="op\x1b[31m1",
    )
    bad_time = record(2, closed_at=float("nan"), created=float("inf"))
    app = ClosedApp(listing(hostile, bad_time))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        drawn = "\n".join(lines(app.view))
        assert "\x1b" not in drawn and "\x07" not in drawn and "\n3" not in drawn
        assert ids(app.view) == ["I-000001", "I-000002"]  # a broken time sorts last
        assert lines(app.view)[2].startswith("     ?")
        app.view.set_query("pwned")  # the search reads the plain text that is shown
        assert ids(app.view) == ["I-000001"]


async def test_the_engines_list_through_the_wire_shows_as_built() -> None:
    """The console decodes the retained payload; the view shows it newest first."""
    closed = {}
    for n in range(1, 4):
        inc = Incident(id=f"I-{n:06d}", kind=IncidentKind.SOS, priority=2,
                       status=IncidentStatus.RESOLVED, lat=37.56, lon=126.97,
                       district="Jung-gu", place=f"Gate {n}", source=f"phone-{n}",
                       title="SOS: panic button", created=NOW - 900 + n, updated=NOW,
                       person="Kim Minji", phone="010-0000-0000",
                       closed_at=NOW - 300 + n, disposition=f"case {n}")  # fmt: skip
        closed[inc.id] = inc
    payload = codec.encode(closed_list(closed, NOW))
    received = codec.decode(payload, ClosedList, max_bytes=codec.MAX_STATE_PAYLOAD)
    assert b"Kim Minji" not in payload and b"phone-1" not in payload
    app = ClosedApp(received)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert ids(app.view) == ["I-000003", "I-000002", "I-000001"]
        assert "case 3" in lines(app.view)[1]
        assert msgspec.structs.asdict(app.view.records[0])["place"] == "Gate 3"


def test_closed_time_is_the_local_clock_in_five_cells() -> None:
    assert closed_time(NOW) == clock_time(NOW)[:5]
    for broken in (float("nan"), -1.0, 5e12, "x"):
        assert closed_time(broken) == "?"
