"""The four panes and their filters (a mixin of the app).

`1` queue, `2` cameras, `3` units, `4` recently closed, `5` the shift supervisor's
figures (for every role: the figures are the room's, like a wall board; only the
supervisor's commands are kept to the supervisor). A hidden pane is drawn when
it is shown, not at every frame of a storm. `/` filters the pane on screen: the
queue keeps its structured filter (``state_store.Filter``); the units and the
closed list each keep their own search, so looking up a unit never hides an
incident and the queue's filter survives a look at the units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from widgets.alert_queue import AlertQueue
from widgets.camera_grid import CameraGrid
from widgets.closed_list import ClosedIncidentList
from widgets.responder_board import ResponderBoard
from widgets.shift_board import ShiftBoard

if TYPE_CHECKING:
    from textual.app import App
    from textual.widget import Widget
    from textual.widgets import ContentSwitcher, Input

    from console.tui.state_store import StateStore
    from widgets.status_bar import StatusBar

    _Base = App[int]
else:
    _Base = object

PANES: dict[str, str] = {
    "queue": "pane-queue",
    "cameras": "pane-cameras",
    "responders": "pane-responders",
    "closed": "pane-closed",
    "supervisor": "pane-supervisor",
}


class Searchable(Protocol):
    """A pane with its own text search (the units, the closed list)."""

    query_text: str

    def set_query(self, text: str) -> None: ...
    def describe(self) -> str: ...


class PaneSwitch(_Base):
    """Pane switching and per-pane filters; the app provides the attributes annotated here."""

    store: StateStore
    queue: AlertQueue
    grid: CameraGrid
    board: ResponderBoard
    closed_view: ClosedIncidentList
    shift_board: ShiftBoard
    panes: ContentSwitcher
    filter_box: Input
    status_bar: StatusBar
    _pane: str
    _dirty: set[str]
    _queue_query: str  # the queue filter as typed

    if TYPE_CHECKING:  # from the selection part of the app (a stub here would shadow it)

        def _set_filter(self, text: str) -> None: ...

    def _searched(self) -> Searchable | None:
        """The pane on screen when it has its own search (None: the queue's filter)."""
        if self._pane == "responders":
            return self.board
        if self._pane == "closed":
            return self.closed_view
        return None

    def pane_widget(self) -> Widget:
        """The widget that has the keys on the pane on screen."""
        widgets: dict[str, Widget] = {"queue": self.queue, "cameras": self.grid,
                                      "responders": self.board, "closed": self.closed_view,
                                      "supervisor": self.shift_board}  # fmt: skip
        return widgets[self._pane]

    def action_pane(self, pane: str) -> None:
        self._pane = pane
        self.panes.current = PANES[pane]
        self._draw_pane()
        self.pane_widget().focus()
        self.filter_box.display = False
        self._show_filter()
        self.refresh_bindings()

    def _draw_pane(self) -> None:
        """Hidden panes are redrawn when shown, not at every frame of a storm."""
        if self._pane == "cameras" and "cameras" in self._dirty:
            self.grid.set_cameras(self.store.cameras)
        elif self._pane == "responders" and "responders" in self._dirty:
            self.board.set_responders(self.store.responders)
        elif self._pane == "closed" and "closed" in self._dirty:
            self.closed_view.set_closed(self.store.closed)
        elif self._pane == "supervisor" and "supervisor" in self._dirty:
            self.shift_board.set_reports(self.store.shift_reports)
        else:
            return
        self._dirty.discard(self._pane)

    def _show_filter(self) -> None:
        """The status bar names the filter of the pane on screen."""
        searched = self._searched()
        if searched is not None:
            text = searched.describe() if searched.query_text else ""
        else:
            text = self.store.filter.describe()
        self.status_bar.update_state(filter_text=text)

    def filter_text(self) -> str:
        """What the filter box should hold when opened on this pane."""
        searched = self._searched()
        return searched.query_text if searched is not None else self._queue_query

    def filter_typed(self, text: str) -> None:
        """The operator typed in the filter box: filter the pane on screen."""
        searched = self._searched()
        if searched is None:
            self._set_filter(text)
            return
        searched.set_query(text)
        self._show_filter()

    def pane_filter_active(self) -> bool:
        searched = self._searched()
        return searched is not None and bool(searched.query_text)
