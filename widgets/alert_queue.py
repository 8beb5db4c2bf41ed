"""The alert queue: every open incident, most urgent first, one line each.

A Line-API list (see ``line_list``): a frame renders only the visible lines.
Each row is cached as two strips either side of the age column, keyed by the
incident object itself (the store replaces the object on every change), so a
row is re-laid out only when its incident changed; the age ticks every second
by re-rendering just the few visible age cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rich.style import Style
from textual.message import Message
from textual.strip import Strip

from protocols.schemas import IncidentState, IncidentStatus
from widgets.format import (
    KIND_LABEL,
    PRIORITY_STYLE,
    STATUS_LABEL,
    STATUS_STYLE,
    fit,
    plain,
    priority,
    since,
)
from widgets.line_list import LineList, cells


class IncidentRows(Protocol):
    """The queue's data: a live, ordered sequence with a fast reverse lookup."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> IncidentState: ...
    def index_of(self, incident_id: str) -> int | None: ...


class _NoRows:
    def __len__(self) -> int:
        return 0

    def __getitem__(self, index: int) -> IncidentState:
        raise IndexError(index)

    def index_of(self, incident_id: str) -> int | None:
        return None


@dataclass(frozen=True)
class _Layout:
    where: int
    owner: int
    responder: int
    title: int


AGE_W = 6
_NEW_P1 = Style(color="red", bold=True)
_ESCALATED = Style(color="red", bold=True, reverse=True)
_DIM = Style(dim=True)


def _layout(width: int) -> _Layout:
    """Column widths for a width: the place column takes what is left."""
    owner = 8 if width >= 64 else 0
    responder = (14 if width >= 90 else 12) if width >= 74 else 0  # unit ids are ~13 wide
    title = 28 if width >= 120 else 0
    fixed = 3 + 1 + 5 + 1 + 1 + AGE_W + 1 + 5 + sum(w + 1 for w in (owner, responder, title) if w)
    return _Layout(max(8, width - fixed), owner, responder, title)


class AlertQueue(LineList):
    """Open incidents; the cursor follows the selected incident across re-sorts."""

    DEFAULT_CSS = """
    AlertQueue { height: 1fr; }
    """

    @dataclass
    class Selected(Message):
        """The operator moved to another incident (None: the queue is empty)."""

        incident_id: str | None

    def __init__(
        self, rows: IncidentRows | None = None, *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.rows: IncidentRows = rows if rows is not None else _NoRows()
        self.now = 0.0
        self.selected_id: str | None = None
        # Until the operator first moves the cursor it stays on the top row: the picture
        # arriving at start-up must not carry it down the queue with the first incident.
        self.pinned_to_top = True
        self._cache: dict[str, tuple[IncidentState, int, Strip, Strip]] = {}

    # --- data in -----------------------------------------------------------------

    def set_rows(self, rows: IncidentRows) -> None:
        self.rows = rows
        self.update_rows(order=True)

    def update_rows(
        self, changed: set[str] | frozenset[str] = frozenset(), order: bool = True
    ) -> None:
        """Repaint after a drain. Changed rows re-render lazily: their cached strips
        no longer match the incident object. With ``order``, re-find the cursor."""
        for incident_id in changed:
            self._cache.pop(incident_id, None)
        if order:
            self._follow_selection()
            self.rows_changed()
        elif changed:
            self._refresh_visible(changed)

    def _refresh_visible(self, changed: set[str] | frozenset[str]) -> None:
        """Repaint only the changed rows that are on screen: in a storm most are not,
        and a line not repainted is a line not sent over a slow SSH link."""
        top = round(self.scroll_y)
        rows = self.rows
        bottom = min(len(rows), top + self.page_rows)
        # One pass over the ~20 visible rows and a set intersection: no per-change lookups.
        on_screen = {rows[row].id: row for row in range(top, bottom)}
        for incident_id in on_screen.keys() & changed:
            self.refresh_line(on_screen[incident_id] + 1)  # virtual line: the header is line 0

    def tick(self, now: float) -> None:
        """Advance the clock: only the visible lines are redrawn (cached row parts)."""
        self.now = now
        self.refresh()

    def _follow_selection(self) -> None:
        if self.pinned_to_top and len(self.rows):
            self.cursor = 0
            top = self.rows[0].id
            if top != self.selected_id:
                self.selected_id = top
                self.post_message(self.Selected(top))
            return
        index = self.rows.index_of(self.selected_id) if self.selected_id else None
        if index is not None:
            self.cursor = index
            return
        # The selected incident closed or was filtered away: stay on the same line.
        count = len(self.rows)
        self.cursor = min(self.cursor, max(0, count - 1))
        new_id = self.rows[self.cursor].id if count else None
        if new_id != self.selected_id:
            self.selected_id = new_id
            self.post_message(self.Selected(new_id))

    def cursor_moved(self) -> None:
        self.pinned_to_top = False  # from now on the cursor follows what the operator chose
        self.selected_id = self.rows[self.cursor].id if len(self.rows) else None
        self.post_message(self.Selected(self.selected_id))

    def select(self, incident_id: str) -> bool:
        index = self.rows.index_of(incident_id)
        if index is None:
            return False
        self.pinned_to_top = False
        self.selected_id = incident_id
        self.cursor = index
        self.scroll_to_cursor()
        self.refresh()
        self.post_message(self.Selected(incident_id))
        return True

    # --- rendering -----------------------------------------------------------------

    def row_count(self) -> int:
        return len(self.rows)

    def render_header(self, width: int) -> Strip:
        lay = _layout(width)
        text = f"{'Pri':3} {'Kind':5} {fit('District / place', lay.where)} {'Age':>{AGE_W}} {'State':5}"
        for label, w in (("Title", lay.title), ("Owner", lay.owner), ("Responder", lay.responder)):
            if w:
                text += " " + fit(label, w)
        return cells((text, None))

    def render_row(self, index: int, width: int) -> Strip:
        incident = self.rows[index]
        cached = self._cache.get(incident.id)
        if cached is None or cached[0] is not incident or cached[1] != width:
            if len(self._cache) > 4096:  # rows scrolled past long ago; keep memory flat
                self._cache.clear()
            left, right = self._row_parts(incident, width)
            cached = (incident, width, left, right)
            self._cache[incident.id] = cached
        _, _, left, right = cached
        age_style = (
            _NEW_P1 if incident.status == IncidentStatus.NEW and incident.priority == 1 else None
        )
        age_cell = cells((" " + since(incident.created, self.now).rjust(AGE_W) + " ", age_style))
        return Strip.join([left, age_cell, right])

    def _row_parts(self, incident: IncidentState, width: int) -> tuple[Strip, Strip]:
        lay = _layout(width)
        new_p1 = incident.status == IncidentStatus.NEW and incident.priority == 1
        row_style = _NEW_P1 if new_p1 else None
        pri_style = _ESCALATED if incident.escalated else PRIORITY_STYLE.get(incident.priority)
        pri = priority(incident.priority) + ("!" if incident.escalated else " ")
        # Every text of the row comes from the wire: plain() before it reaches a segment.
        where = f"{plain(incident.district)} {plain(incident.place)}"
        left = cells(
            (pri, pri_style),
            (" ", None),
            (fit(KIND_LABEL.get(incident.kind) or plain(incident.kind), 5), row_style),
            (" ", None),
            (fit(where, lay.where), _ESCALATED if incident.escalated else row_style),
        )
        parts: list[tuple[str, Style | None]] = [
            (fit(STATUS_LABEL.get(incident.status, "?"), 5), STATUS_STYLE.get(incident.status)),
        ]
        if lay.title:
            parts += [(" ", None), (fit(plain(incident.title), lay.title), row_style)]
        if lay.owner:
            parts += [
                (" ", None),
                (fit(plain(incident.owner) or "-", lay.owner), None if incident.owner else _DIM),
            ]
        if lay.responder:
            responders = incident.responders
            label = (
                (plain(responders[0]) + (f"+{len(responders) - 1}" if len(responders) > 1 else ""))
                if responders
                else "-"
            )
            parts += [(" ", None), (fit(label, lay.responder), None if responders else _DIM)]
        return left, cells(*parts)
