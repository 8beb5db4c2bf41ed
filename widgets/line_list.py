"""A Line-API list with a pinned header line and a keyboard cursor.

Only visible lines are ever rendered (``render_line`` is called per screen
line), so the cost of a frame depends on the height of the widget, not on
how many rows there are. Subclasses say how many rows exist and how to draw
one; they cache the expensive part of a row themselves.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

_REVERSE = Style(reverse=True)


class LineList(ScrollView, can_focus=True, inherit_bindings=False):
    """Header on line 0, rows below; ``cursor`` is a row index.

    ``inherit_bindings=False``: the scroll keys of ScrollView would shadow the
    cursor keys and clutter the help with horizontal scrolling we never do."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "line-list--header",
        "line-list--cursor",
        "line-list--cursor-blurred",
    }

    DEFAULT_CSS = """
    LineList {
        overflow-x: hidden;
        scrollbar-size-vertical: 1;
    }
    LineList > .line-list--header { text-style: bold underline; }
    LineList > .line-list--cursor { background: $accent 45%; text-style: bold; }
    LineList > .line-list--cursor-blurred { background: $accent 20%; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "cursor_down", "Down", show=False, id="list.down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="list.up"),
        Binding("pagedown,ctrl+f", "page_down", "Page down", show=False, id="list.pagedown"),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False, id="list.pageup"),
        Binding("home,g", "first", "First", show=False, id="list.first"),
        Binding("end,G", "last", "Last", show=False, id="list.last"),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.cursor = 0

    # --- for subclasses -------------------------------------------------------

    def row_count(self) -> int:
        raise NotImplementedError

    def render_header(self, width: int) -> Strip:
        raise NotImplementedError

    def render_row(self, index: int, width: int) -> Strip:
        raise NotImplementedError

    def cursor_moved(self) -> None:
        """Called after the cursor moved by a key or click."""

    def render_empty(self, width: int) -> Strip | None:
        """What the first row says when there are none (None: a blank line)."""
        return None

    # --- geometry ----------------------------------------------------------------

    @property
    def page_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def rows_changed(self) -> None:
        """The number or order of rows changed: resize the virtual canvas and repaint."""
        count = self.row_count()
        self.cursor = min(self.cursor, max(0, count - 1))
        self.virtual_size = Size(self.scrollable_content_region.width, count + 1)
        self.scroll_to_cursor()
        self.refresh()

    def on_resize(self) -> None:
        self.rows_changed()

    def scroll_to_cursor(self) -> None:
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + self.page_rows:
            self.scroll_to(y=self.cursor - self.page_rows + 1, animate=False)

    def move_cursor(self, row: int) -> None:
        count = self.row_count()
        row = max(0, min(row, count - 1))
        if count == 0 or row == self.cursor:
            return
        old, self.cursor = self.cursor, row
        top = round(self.scroll_y)
        if top <= row < top + self.page_rows:
            # No scrolling: repaint the two rows the cursor left and entered, not the
            # page (a keypress is answered in the next frame, so its cost is latency).
            self.refresh_line(old + 1)  # virtual lines: the header is line 0
            self.refresh_line(row + 1)
        else:
            self.scroll_to_cursor()
            self.refresh()
        self.cursor_moved()

    # --- rendering -------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            header = self.get_component_rich_style("line-list--header")
            return self.render_header(width).apply_style(base + header)
        row = round(self.scroll_y) + y - 1
        if row >= self.row_count():
            empty = self.render_empty(width) if row == 0 else None
            if empty is not None:
                return empty.adjust_cell_length(width).apply_style(base)
            return Strip([Segment(" " * width, base)], width)
        if row == self.cursor:
            # The cursor's background goes underneath the row's own colours, so a
            # red P1 stays red under the cursor.
            name = "line-list--cursor" if self.has_focus else "line-list--cursor-blurred"
            base = base + self.get_component_rich_style(name)
            if self.app.no_color:  # a background colour is stripped: mark the cursor by reverse
                base = base + _REVERSE
        return self.render_row(row, width).adjust_cell_length(width).apply_style(base)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.move_cursor(round(self.scroll_y) + event.y - 1)

    # --- actions -------------------------------------------------------------------------

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + self.page_rows)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - self.page_rows)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(self.row_count() - 1)


def cells(*parts: tuple[str, Style | None]) -> Strip:
    """A strip from (text, style) pieces; texts are already cut to their cell widths."""
    return Strip([Segment(text, style) for text, style in parts if text])
