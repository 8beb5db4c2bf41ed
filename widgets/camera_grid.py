"""Every camera of every district as a one-cell glyph coloured by status.

Line API: line 0 is pinned and describes the camera under the cursor; below it
each district is a header line with its counts and then rows of cells. Only
visible lines are built, from slices of the district's camera tuple, so
100,000 cameras cost a frame no more than 100.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from protocols.schemas import DistrictCameras
from widgets.format import (
    CAMERA_GLYPH,
    CAMERA_STYLE,
    ago,
    camera_status,
    count,
    district_name,
    fit,
    plain,
    since,
)
from widgets.i18n import _

_HEADER = Style(bold=True)
_CURSOR = Style(reverse=True, bold=True)


class CameraGrid(ScrollView, can_focus=True, inherit_bindings=False):
    DEFAULT_CSS = """
    CameraGrid { overflow-x: hidden; scrollbar-size-vertical: 1; height: 1fr; }
    CameraGrid > .camera-grid--district { background: $accent 30%; text-style: bold; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"camera-grid--district"}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l,right_square_bracket", "district(1)", "Next district", id="grid.next"),
        Binding("h,left_square_bracket", "district(-1)", "Prev district", id="grid.prev"),
        Binding("right", "camera(1)", "Next camera", show=False, id="grid.right"),
        Binding("left", "camera(-1)", "Prev camera", show=False, id="grid.left"),
        Binding("j,down", "camera_row(1)", "Down", show=False, id="grid.down"),
        Binding("k,up", "camera_row(-1)", "Up", show=False, id="grid.up"),
        Binding("enter", "choose", "Incidents here", id="grid.choose"),
    ]

    @dataclass
    class CameraChosen(Message):
        """Enter on a camera: show the incidents it is part of."""

        camera_id: str
        district: str

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.now = 0.0
        self.districts: list[DistrictCameras] = []
        self.district_index = 0
        self.camera_index = 0
        self._starts: list[int] = []  # first line (after the pinned one) of each district

    # --- data ----------------------------------------------------------------------

    def set_cameras(self, by_district: Mapping[str, DistrictCameras]) -> None:
        selected = self.districts[self.district_index].district if self.districts else None
        self.districts = [by_district[name] for name in sorted(by_district)]
        names = [d.district for d in self.districts]
        self.district_index = names.index(selected) if selected in names else 0
        self._relayout()

    def tick(self, now: float) -> None:
        self.now = now
        self.refresh_lines(round(self.scroll_y), 1)  # only the pinned line shows an age

    @property
    def _cols(self) -> int:
        return max(1, self.scrollable_content_region.width)

    def _relayout(self) -> None:
        cols, line, self._starts = self._cols, 0, []
        for d in self.districts:
            self._starts.append(line)
            line += 1 + max(1, -(-len(d.cameras) // cols))
        if self.districts:
            count = len(self.districts[self.district_index].cameras)
            self.camera_index = max(0, min(self.camera_index, count - 1))
        self.virtual_size = Size(cols, line + 1)
        self.refresh()

    def on_resize(self) -> None:
        self._relayout()

    # --- rendering -------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self._cols
        base = self.rich_style
        if y == 0:
            return Strip([Segment(fit(self._describe_cursor(), width), base + _HEADER)], width)
        line = round(self.scroll_y) + y - 1
        di = bisect.bisect_right(self._starts, line) - 1
        if di < 0 or di >= len(self.districts):
            return Strip.blank(width, base)
        d = self.districts[di]
        row = line - self._starts[di] - 1
        if row < 0:
            # Each count behind its glyph: the header is the legend, so no separate legend
            # line has to fit in 80 columns.
            text = (
                district_name(d.district)
                + "  "
                + _(
                    "{cams} cams  · {online} online  o {offline} offline  T {tampered} tampered"
                    "  ! {alarm} alarm"
                ).format(
                    cams=len(d.cameras),
                    online=count(d.online),
                    offline=count(d.offline),
                    tampered=count(d.tampered),
                    alarm=count(d.alarm),
                )
            )
            selected = di == self.district_index
            head = self.get_component_rich_style("camera-grid--district") if selected else _HEADER
            return Strip([Segment(fit(text, width), base + head)], width)
        start = row * width
        segments: list[Segment] = []
        for i, cam in enumerate(d.cameras[start : start + width], start):
            cell = CAMERA_STYLE.get(cam.status)
            if di == self.district_index and i == self.camera_index and self.has_focus:
                cell = _CURSOR if cell is None else cell + _CURSOR
            segments.append(Segment(CAMERA_GLYPH.get(cam.status, "?"), cell))
        return Strip(Segment.simplify(segments)).adjust_cell_length(width).apply_style(base)

    def _describe_cursor(self) -> str:
        if not self.districts:
            return _("No camera state yet")
        d = self.districts[self.district_index]
        if not d.cameras:
            return _("{district}: no cameras").format(district=district_name(d.district))
        cam = d.cameras[self.camera_index]
        seen = ", " + _("seen {ago}").format(ago=ago(since(cam.last_seen, self.now)))
        # A camera's id, name and status are the source's words: plain() keeps them text.
        status = camera_status(cam.status)
        return f"{plain(cam.id)} {plain(cam.name)} [{status}]{seen if cam.last_seen else ''}"

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # --- actions -----------------------------------------------------------------------

    def _show_cursor(self) -> None:
        line = self._starts[self.district_index] + 1 + self.camera_index // self._cols
        top, page = round(self.scroll_y), max(1, self.scrollable_content_region.height - 1)
        if line - 1 < top:  # keep the district header in view too
            self.scroll_to(y=max(0, line - 1), animate=False)
        elif line >= top + page:
            self.scroll_to(y=line - page + 1, animate=False)
        self.refresh()

    def action_district(self, step: int) -> None:
        if self.districts:
            self.district_index = (self.district_index + step) % len(self.districts)
            self.camera_index = 0
            self._show_cursor()

    def action_camera(self, step: int) -> None:
        if self.districts:
            count = len(self.districts[self.district_index].cameras)
            self.camera_index = max(0, min(count - 1, self.camera_index + step))
            self._show_cursor()

    def action_camera_row(self, step: int) -> None:
        self.action_camera(step * self._cols)

    def action_choose(self) -> None:
        if self.districts and self.districts[self.district_index].cameras:
            d = self.districts[self.district_index]
            # The app types the id into the filter box, which shows it: plain, like the grid.
            camera_id = plain(d.cameras[self.camera_index].id)
            self.post_message(self.CameraChosen(camera_id, plain(d.district)))
