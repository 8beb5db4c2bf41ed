"""Responders grouped by status: assignment, time in status, age of the last fix."""

from __future__ import annotations

from collections.abc import Mapping

from rich.style import Style
from textual.strip import Strip

from protocols.schemas import ResponderState, ResponderStatus
from widgets.format import RESPONDER_STYLE, fit, plain, plausible_time, since
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


class ResponderBoard(LineList):
    DEFAULT_CSS = """
    ResponderBoard { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.now = 0.0
        self.units: list[ResponderState] = []

    def set_responders(self, responders: Mapping[str, ResponderState]) -> None:
        selected = self.units[self.cursor].id if self.units else None
        self.units = sorted(responders.values(), key=lambda r: (_ORDER.get(r.status, 9), r.id))
        if selected is not None:
            ids = [u.id for u in self.units]
            self.cursor = ids.index(selected) if selected in ids else self.cursor
        self.rows_changed()

    def tick(self, now: float) -> None:
        self.now = now
        self.refresh()

    def row_count(self) -> int:
        return len(self.units)

    def render_header(self, width: int) -> Strip:
        name_w = max(0, width - 62)
        text = f"{'Unit':16} {'Kind':6} {'Status':10} {'In st.':>6} {'Incident':14} {'Fix':>6}" + (
            " " + fit("Name", name_w) if name_w else ""
        )
        return cells((text, None))

    def render_row(self, index: int, width: int) -> Strip:
        u = self.units[index]
        name_w = max(0, width - 62)
        # A fix whose time is no real time is as doubtful as an old one: dim as well.
        fresh = plausible_time(u.last_seen) and self.now - u.last_seen <= _STALE_S
        parts: list[tuple[str, Style | None]] = [
            (fit(plain(u.id), 16) + " " + fit(plain(u.kind), 6) + " ", None),
            (fit(plain(u.status), 10), RESPONDER_STYLE.get(u.status)),
            (
                " "
                + since(u.status_since, self.now).rjust(6)
                + " "
                + fit(plain(u.incident_id) or "-", 14)
                + " ",
                None,
            ),
            (since(u.last_seen, self.now).rjust(6), None if fresh else _DIM),
        ]
        if name_w:
            parts.append((" " + fit(plain(u.name), name_w), None))
        return cells(*parts)
