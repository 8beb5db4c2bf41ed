"""Responders: status, district, distance to the selected incident, assignment, fix age.

Without a focus the units are grouped by status (busy ones first: they are what an
operator follows). ``set_focus(lat, lon)`` (the selected incident's position) adds
each unit's great-circle distance and sorts by it, nearest first, off-duty units
last: they cannot be sent. ``set_query(text)`` filters the units on their own (id,
name, kind, status, district, incident), every word must match; the queue's filter
is not this one. The cursor stays on its unit through every re-sort and filter.

At 80 columns: unit, kind, status, distance, district, incident, time in status, fix
age; the position (latitude, longitude) and the name are added as the width allows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from rich.style import Style
from textual.strip import Strip

from protocols.geo import haversine_m
from protocols.schemas import ResponderState, ResponderStatus
from widgets.format import (
    PLACEHOLDER,
    RESPONDER_STYLE,
    coordinate,
    distance,
    district_name,
    fit,
    fit_right,
    matches,
    plain,
    plausible_time,
    search_query,
    search_text,
    since,
    unit_kind,
    unit_status,
)
from widgets.i18n import _, language
from widgets.line_list import LineList, cells

# Busy units first (they are what an operator follows), then who can be sent, then off duty.
_ORDER = {
    s: i
    for i, s in enumerate(
        (
            ResponderStatus.ON_SCENE,
            ResponderStatus.EN_ROUTE,
            ResponderStatus.DISPATCHED,
            ResponderStatus.AVAILABLE,
            ResponderStatus.OFF_DUTY,
        )
    )
}
_STALE_S = 120.0  # a position older than this is shown dim: the unit may be out of coverage
_DIM = Style(dim=True)
_MESSAGE = Style(italic=True)

UNIT_W, KIND_W, STATUS_W, DIST_W, INCIDENT_W = 14, 6, 10, 7, 9
DISTRICT_W, DISTRICT_MIN_W, DISTRICT_MAX_W = 12, 6, 15  # "Yeongdeungpo-gu" is 15
AGE_W, POSITION_W, NAME_MIN_W = 6, 18, 6
KIND_KO_W, AGE_KO_W, DISTRICT_KO_W = 8, 8, 8  # "스카우트", "12분05초", "영등포구"
_BASE_W = UNIT_W + KIND_W + STATUS_W + DIST_W + INCIDENT_W + 4  # four separators


@dataclass(frozen=True)
class _Layout:
    district: int
    in_status: int
    fix: int
    position: int
    name: int
    kind: int = KIND_W
    age: int = AGE_W


def _layout(width: int) -> _Layout:
    """Optional columns in the order they matter, each while the width allows it. In
    Korean the kind ("스카우트") is wider, the district narrower ("영등포구" is 8 cells),
    and an age takes 8 cells ("12분05초"; longer ones drop their smaller unit)."""
    korean = language() == "ko"
    kind, age_w = (KIND_KO_W, AGE_KO_W) if korean else (KIND_W, AGE_W)
    want_district, max_district = (DISTRICT_KO_W, DISTRICT_KO_W) if korean else (
        DISTRICT_W, DISTRICT_MAX_W)  # fmt: skip
    rest = width - _BASE_W - (kind - KIND_W)
    district = (
        want_district if rest > want_district
        else (rest - 1 if rest - 1 >= DISTRICT_MIN_W else 0)
    )  # fmt: skip
    rest -= district + 1 if district else 0
    widths = []
    for want in (age_w, age_w, POSITION_W):  # fix age, time in status, position
        take = want if rest > want else 0
        rest -= take + 1 if take else 0
        widths.append(take)
    name = rest - 1 if rest - 1 >= NAME_MIN_W else 0
    if district:  # long district names come before the cells left over and the name
        spare = rest if not name else name - NAME_MIN_W
        grow = max(0, min(spare, max_district - district))
        district += grow
        name = name - grow if name else 0
    return _Layout(
        district, in_status=widths[1], fix=widths[0], position=widths[2], name=name, kind=kind,
        age=age_w,
    )  # fmt: skip


def _focus_point(lat: object, lon: object) -> tuple[float, float] | None:
    """A position to measure from, or None: not numbers, out of range, or the unplaced (0, 0)."""
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    la, lo = float(lat), float(lon)
    if not (math.isfinite(la) and math.isfinite(lo)) or abs(la) > 90 or abs(lo) > 180:
        return None
    return None if la == 0.0 and lo == 0.0 else (la, lo)


def short_distance(metres: float | None) -> str:
    """A distance in at most ``DIST_W`` cells: 850 m, 12.3 km, 420 km; "-" without one."""
    if metres is None:
        return "-"
    if distance(metres) == PLACEHOLDER:  # not a distance on the ground (nan, negative, inf)
        return PLACEHOLDER
    if metres < 1000:
        return f"{metres:.0f} m"
    if metres < 99_950:
        return f"{metres / 1000:.1f} km"
    return f"{metres / 1000:.0f} km" if metres < 9_999_500 else ">9999km"


def _haystack(unit: ResponderState) -> str:
    # The words as shown too (a search typed in Hangul: "경찰", "강남구"); in English the same.
    return search_text(unit.id, unit.name, unit.kind, unit.status, unit.district,
                       unit.incident_id or "", unit_kind(unit.kind), unit_status(unit.status),
                       district_name(unit.district))  # fmt: skip


class ResponderBoard(LineList):
    DEFAULT_CSS = """
    ResponderBoard { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.now = 0.0
        self.units: list[ResponderState] = []  # shown: filtered and sorted
        self.total = 0  # every unit known, before the filter
        self.query_text = ""
        self.focus_point: tuple[float, float] | None = None
        self._all: dict[str, ResponderState] = {}
        self._distance: dict[str, float] = {}

    # --- data in -----------------------------------------------------------------

    def set_responders(self, responders: Mapping[str, ResponderState]) -> None:
        self._all = dict(responders)
        self._rebuild()

    def set_focus(self, lat: float | None, lon: float | None = None) -> None:
        """Measure from (lat, lon), the selected incident; ``None`` (or no real position)
        goes back to the grouping by status."""
        point = None if lat is None or lon is None else _focus_point(lat, lon)
        if point != self.focus_point:
            self.focus_point = point
            self._rebuild()

    def set_query(self, text: str) -> None:
        """Show only the units matching every word of ``text`` (case-insensitive)."""
        query = search_query(text)
        if query != self.query_text:
            self.query_text = query
            self._rebuild()

    def tick(self, now: float) -> None:
        self.now = now
        self.refresh()

    # --- reading ------------------------------------------------------------------

    def selected_unit(self) -> ResponderState | None:
        return self.units[self.cursor] if self.units else None

    def distance_to(self, unit_id: str) -> float | None:
        """Metres from the focus to the unit, or None without a focus."""
        return self._distance.get(unit_id)

    def describe(self) -> str:
        """What the pane shows, for a status line: the count, the filter and the focus."""
        if self.query_text:  # the query first: the status bar has room for ~24 cells
            return _('"{query}" {shown}/{total} units').format(
                query=self.query_text, shown=len(self.units), total=self.total
            )
        return _("all units nearest first") if self.focus_point is not None else _("all units")

    def _rebuild(self) -> None:
        selected = self.units[self.cursor].id if self.units else None
        everyone = list(self._all.values())
        self.total = len(everyone)
        query = self.query_text
        shown = [u for u in everyone if matches(_haystack(u), query)] if query else everyone
        self._distance = {}
        if self.focus_point is not None:
            lat, lon = self.focus_point
            self._distance = {u.id: _distance_m(lat, lon, u.lat, u.lon) for u in shown}
            shown.sort(
                key=lambda u: (u.status == ResponderStatus.OFF_DUTY, self._distance[u.id], u.id)
            )
        else:
            shown.sort(key=lambda u: (_ORDER.get(u.status, 9), u.id))
        self.units = shown
        if selected is not None:
            ids = [u.id for u in shown]
            self.cursor = ids.index(selected) if selected in ids else self.cursor
        self.rows_changed()

    # --- rendering ------------------------------------------------------------------

    def row_count(self) -> int:
        return len(self.units)

    def render_header(self, width: int) -> Strip:
        lay = _layout(width)
        text = " ".join((
            fit(_("Unit"), UNIT_W),
            fit(_("Kind"), lay.kind),
            fit(_("Status"), STATUS_W),
            fit_right(_("Dist"), DIST_W),
        ))  # fmt: skip
        if lay.district:
            text += " " + fit(_("District"), lay.district)
        text += " " + fit(_("Incident"), INCIDENT_W)
        for label, w in ((_("In st."), lay.in_status), (_("Fix"), lay.fix)):
            if w:
                text += " " + fit_right(label, w)
        if lay.position:
            text += " " + fit(_("Position"), lay.position)
        if lay.name:
            text += " " + fit(_("Name"), lay.name)
        return cells((text, None))

    def render_line(self, y: int) -> Strip:
        if y == 1 and not self.units:  # say why the pane is empty rather than show nothing
            width = self.scrollable_content_region.width
            if self.total:
                text = " " + _('No unit matches "{query}" ({total} in all).').format(
                    query=self.query_text, total=self.total
                )
            else:
                text = " " + _("No unit has reported yet.")
            return cells((fit(text, width), _MESSAGE)).apply_style(self.rich_style)
        return super().render_line(y)

    def render_row(self, index: int, width: int) -> Strip:
        u = self.units[index]
        lay = _layout(width)
        # A fix whose time is no real time is as doubtful as an old one: dim as well.
        fresh = plausible_time(u.last_seen) and self.now - u.last_seen <= _STALE_S
        metres = self._distance.get(u.id)
        parts: list[tuple[str, Style | None]] = [
            (fit(plain(u.id), UNIT_W) + " " + fit(unit_kind(u.kind), lay.kind) + " ", None),
            (fit(unit_status(u.status), STATUS_W), RESPONDER_STYLE.get(u.status)),
            (" " + fit_right(short_distance(metres), DIST_W), None),
        ]
        if lay.district:
            parts.append((" " + fit(district_name(u.district) or "-", lay.district), None))
        parts.append((" " + fit(plain(u.incident_id) or "-", INCIDENT_W), None))
        if lay.in_status:
            in_status = since(u.status_since, self.now, lay.in_status)
            parts.append((" " + fit_right(in_status, lay.in_status), None))
        if lay.fix:
            fix = since(u.last_seen, self.now, lay.fix)
            parts.append((" " + fit_right(fix, lay.fix), None if fresh else _DIM))
        if lay.position:
            where = f"{coordinate(u.lat, 90)},{coordinate(u.lon, 180)}"
            parts.append((" " + fit(where, lay.position), None if fresh else _DIM))
        if lay.name:
            parts.append((" " + fit(plain(u.name), lay.name), None))
        return cells(*parts)


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance for sorting and showing; a position no map has (inf, nan: the wire
    refuses them, the board must not depend on it) sorts last instead of raising."""
    if not all(math.isfinite(v) for v in (lat1, lon1, lat2, lon2)):
        return math.inf
    return haversine_m(lat1, lon1, lat2, lon2)
