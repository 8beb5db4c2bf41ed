"""The alert queue: every open incident, most urgent first, one line each.

A Line-API list (see ``line_list``): a frame renders only the visible lines.
Each row is cached as two strips either side of the age column, keyed by the
incident object itself (the store replaces the object on every change), so a
row is re-laid out only when its incident changed; the age ticks every second
by re-rendering just the few visible age and SLA cells.

The selection is an incident, not a row: it follows its incident through every
re-sort, and only the operator moves it (the one exception, ``pinned_to_top``,
lasts while the start-up picture arrives and is ended by the app). When the
selected incident leaves the queue (closed, filtered out) its neighbour in queue
order is selected and ``Selected.lost`` names the one that left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rich.style import Style
from textual.message import Message
from textual.strip import Strip

from protocols.schemas import IncidentState, IncidentStatus
from widgets.format import (
    PRIORITY_STYLE,
    STATUS_STYLE,
    age_width,
    countdown,
    countdown_width,
    fit,
    fit_middle,
    fit_right,
    kind_label,
    place_label,
    plain,
    plausible_time,
    priority,
    since,
    status_label,
)
from widgets.i18n import _, language
from widgets.line_list import LineList, cells


class IncidentRows(Protocol):
    """The queue's data: a live, ordered sequence with a fast reverse lookup."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> IncidentState: ...
    def index_of(self, incident_id: str) -> int | None: ...
    def index_after(self, incident: IncidentState) -> int: ...


class _NoRows:
    def __len__(self) -> int:
        return 0

    def __getitem__(self, index: int) -> IncidentState:
        raise IndexError(index)

    def index_of(self, incident_id: str) -> int | None:
        return None

    def index_after(self, incident: IncidentState) -> int:
        return 0


@dataclass(frozen=True)
class _Layout:
    where: int
    sla: int
    owner: int
    responder: int
    title: int
    pri: int = 3
    age: int = 6


AGE_W = 6  # in English; in Korean ages are wider (widgets.format.age_width)
SLA_W = 7  # "-12m05s": overdue carries a minus, so it reads without colour too
_NEW_P1 = Style(color="red", bold=True)
_ESCALATED = Style(color="red", bold=True, reverse=True)
_DIM = Style(dim=True)
_OVERDUE = Style(color="red", bold=True)
_DUE_SOON = Style(color="yellow", bold=True)
_SOON_S = 60.0


def _layout(width: int) -> _Layout:
    """Column widths for a width: the place column takes what is left.

    At 80 columns (79 inside the scrollbar) every column fits with 23 cells of place;
    narrower, the responder goes first, then the owner, then the SLA countdown. In Korean
    the priority ("우선"), age and SLA columns are wider: 17 cells of place at 80."""
    pri, age_w = (4, age_width()) if language() == "ko" else (3, AGE_W)
    sla = (countdown_width() if language() == "ko" else SLA_W) if width >= 56 else 0
    owner = (11 if width >= 76 else 8) if width >= 66 else 0  # "off…-jongno": see fit_middle
    responder = (14 if width >= 96 else 12) if width >= 78 else 0  # unit ids are ~13 wide
    title = 28 if width >= 120 else 0
    fixed = pri + 1 + 5 + 1 + 1 + age_w + 1 + 5
    fixed += sum(w + 1 for w in (sla, owner, responder, title) if w)
    return _Layout(max(8, width - fixed), sla, owner, responder, title, pri, age_w)


def sla_deadline(incident: IncidentState) -> float | None:
    """The SLA deadline that is running: acknowledge a new incident, dispatch an
    acknowledged one; none once a unit is on its way."""
    if incident.status == IncidentStatus.NEW:
        return incident.ack_deadline
    if incident.status == IncidentStatus.ACKNOWLEDGED:
        return incident.dispatch_deadline
    return None


class AlertQueue(LineList):
    """Open incidents; the cursor follows the selected incident across re-sorts."""

    DEFAULT_CSS = """
    AlertQueue { height: 1fr; }
    """

    @dataclass
    class Selected(Message):
        """The selection changed (None: the queue is empty). ``lost``: the incident
        that was selected and left the queue, when that is why."""

        incident_id: str | None
        lost: str | None = None

    def __init__(
        self, rows: IncidentRows | None = None, *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.rows: IncidentRows = rows if rows is not None else _NoRows()
        self.now = 0.0
        self.selected_id: str | None = None
        self._selected: IncidentState | None = None  # as last seen: where its neighbour is
        # While the start-up picture arrives the top row is selected, so the first
        # incident does not carry the cursor down the queue as others sort above it.
        # The app ends it (unpin) once the picture is in, the operator moves or acts.
        self.pinned_to_top = True
        self.empty_text: str | None = None  # None: "No open incident.", in the seat's language
        # Keyed by the width and the language too: both change how a row is laid out.
        self._cache: dict[str, tuple[IncidentState, tuple[int, str], Strip, Strip]] = {}

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

    def unpin(self) -> None:
        """From now on the selection follows its incident, whatever sorts above it."""
        self.pinned_to_top = False

    def set_empty_text(self, text: str | None) -> None:
        """What the queue says when it has no row (why, under a filter), in the seat's
        language already; None: the default, "No open incident."."""
        if text != self.empty_text:
            self.empty_text = text
            if not len(self.rows):
                self.refresh()

    def _follow_selection(self) -> None:
        rows = self.rows
        count = len(rows)
        if not count:
            if self.selected_id is not None:
                lost, self.selected_id = self.selected_id, None
                self.post_message(self.Selected(None, lost))
            return
        if self.pinned_to_top:
            self._choose(0)
            return
        index = rows.index_of(self.selected_id) if self.selected_id else None
        if index is not None:
            self.cursor = index
            self._selected = rows[index]
            return
        if self.selected_id is None:
            # Nothing was selected (the queue was empty): the first row there is.
            self._choose(min(self.cursor, count - 1))
            return
        # The selected incident closed or was filtered away: its neighbour in queue
        # order (the one that followed it) takes the cursor, and the app says so.
        lost = self.selected_id
        near = rows.index_after(self._selected) if self._selected is not None else self.cursor
        self._choose(min(near, count - 1), lost)

    def _choose(self, index: int, lost: str | None = None) -> None:
        self.cursor = index
        incident = self.rows[index]
        self._selected = incident
        if incident.id != self.selected_id:
            self.selected_id = incident.id
            self.post_message(self.Selected(incident.id, lost))

    def cursor_moved(self) -> None:
        self.pinned_to_top = False  # the operator chose: from now on it follows the choice
        if len(self.rows):
            self._selected = self.rows[self.cursor]
            self.selected_id = self._selected.id
        else:
            self._selected = self.selected_id = None
        self.post_message(self.Selected(self.selected_id))

    def select(self, incident_id: str) -> bool:
        index = self.rows.index_of(incident_id)
        if index is None:
            return False
        self.pinned_to_top = False
        self.selected_id = incident_id
        self._selected = self.rows[index]
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
        # Each label cut or padded in cells (Korean ones are two cells a syllable).
        text = " ".join((
            fit(_("Pri"), lay.pri),
            fit(_("Kind"), 5),
            fit(_("District / place"), lay.where),
            fit_right(_("Age"), lay.age),
        ))  # fmt: skip
        if lay.sla:
            text += " " + fit_right(_("SLA"), lay.sla)
        text += " " + fit(_("State"), 5)
        for label, w in (
            (_("Title"), lay.title),
            (_("Owner"), lay.owner),
            (_("Responder"), lay.responder),
        ):
            if w:
                text += " " + fit(label, w)
        return cells((text, None))

    def render_empty(self, width: int) -> Strip:
        text = _("No open incident.") if self.empty_text is None else self.empty_text
        return cells((fit(" " + plain(text), width), _DIM))

    def render_row(self, index: int, width: int) -> Strip:
        incident = self.rows[index]
        cached = self._cache.get(incident.id)
        key = (width, language())
        if cached is None or cached[0] is not incident or cached[1] != key:
            if len(self._cache) > 4096:  # rows scrolled past long ago; keep memory flat
                self._cache.clear()
            left, right = self._row_parts(incident, width)
            cached = (incident, key, left, right)
            self._cache[incident.id] = cached
        _, _, left, right = cached
        return Strip.join([left, self._clock_cells(incident, width), right])

    def _clock_cells(self, incident: IncidentState, width: int) -> Strip:
        """The cells that change with the clock: the age and the SLA countdown."""
        age_style = (
            _NEW_P1 if incident.status == IncidentStatus.NEW and incident.priority == 1 else None
        )
        lay = _layout(width)
        parts: list[tuple[str, Style | None]] = [
            (" " + fit_right(since(incident.created, self.now, lay.age), lay.age) + " ", age_style)
        ]
        sla_w = lay.sla
        if sla_w:
            deadline = sla_deadline(incident)
            left = countdown(deadline, self.now, sla_w)
            style = None
            if deadline is not None and plausible_time(deadline):
                remaining = deadline - self.now
                style = _OVERDUE if remaining < 0 else (_DUE_SOON if remaining < _SOON_S else None)
            parts += [(fit_right(left, sla_w), style), (" ", None)]
        return cells(*parts)

    def _row_parts(self, incident: IncidentState, width: int) -> tuple[Strip, Strip]:
        lay = _layout(width)
        new_p1 = incident.status == IncidentStatus.NEW and incident.priority == 1
        row_style = _NEW_P1 if new_p1 else None
        pri_style = _ESCALATED if incident.escalated else PRIORITY_STYLE.get(incident.priority)
        pri = priority(incident.priority) + ("!" if incident.escalated else " ")
        # Every text of the row comes from the wire: plain() before it reaches a segment.
        where = place_label(incident.district, incident.place)
        left = cells(
            (pri, pri_style),
            (" " * (lay.pri - 2), None),  # Korean: a column wider than "P1!", for its header
            (fit(kind_label(incident.kind), 5), row_style),
            (" ", None),
            (fit_middle(where, lay.where), _ESCALATED if incident.escalated else row_style),
        )
        parts: list[tuple[str, Style | None]] = [
            (fit(status_label(incident.status), 5), STATUS_STYLE.get(incident.status)),
        ]
        if lay.title:
            parts += [(" ", None), (fit(plain(incident.title), lay.title), row_style)]
        if lay.owner:
            owner = plain(incident.owner) or "-"
            parts += [(" ", None), (fit_middle(owner, lay.owner), None if incident.owner else _DIM)]
        if lay.responder:
            responders = incident.responders
            label = (
                (plain(responders[0]) + (f"+{len(responders) - 1}" if len(responders) > 1 else ""))
                if responders
                else "-"
            )
            parts += [(" ", None), (fit_middle(label, lay.responder), None if responders else _DIM)]
        return left, cells(*parts)
