"""A character mini-map around the selected incident: cameras, responders, shelters.

Equirectangular projection around the incident, scaled so the farthest point
fits; a terminal cell is about twice as tall as wide, so x gets twice the
cells per metre. One glyph per kind, so it also reads without colour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from widgets.format import distance
from widgets.i18n import _

GLYPHS: dict[str, tuple[str, Style]] = {
    "incident": ("X", Style(color="red", bold=True)),
    "camera": ("c", Style(color="magenta")),
    "responder": ("R", Style(color="green", bold=True)),
    "busy": ("r", Style(color="yellow")),
    "shelter": ("s", Style(color="cyan")),
}
_EARTH_M_PER_DEG = 111_320.0
_MIN_RADIUS_M = 200.0


@dataclass(frozen=True)
class MapPoint:
    kind: str  # a key of GLYPHS
    lat: float
    lon: float


class MiniMap(Widget):
    DEFAULT_CSS = """
    MiniMap { height: 9; border: round $primary 50%; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.center: tuple[float, float] | None = None
        self.points: Sequence[MapPoint] = ()

    def show(self, center: tuple[float, float] | None, points: Sequence[MapPoint]) -> None:
        self.center, self.points = center, points
        self.refresh()

    def render(self) -> Text:
        width, height = self.content_size.width, self.content_size.height
        if self.center is None or width < 3 or height < 3:
            return Text(_("no incident selected"), style="dim")
        lat0, lon0 = self.center
        if not _on_earth(lat0, lon0):  # a position no formula can place: say so, do not raise
            return Text(_("position unknown"), style="dim")
        coslat = math.cos(math.radians(lat0))
        offsets = [
            (p, (p.lon - lon0) * _EARTH_M_PER_DEG * coslat, (p.lat - lat0) * _EARTH_M_PER_DEG)
            for p in self.points
            if _on_earth(p.lat, p.lon)
        ]
        radius = max([_MIN_RADIUS_M] + [max(abs(dx) / 2, abs(dy)) for _, dx, dy in offsets])
        # metres per row so that `radius` fits in half the height; columns are half that
        per_row = radius / max(1, (height - 1) / 2)
        grid: list[list[tuple[str, Style | None]]] = [[(" ", None)] * width for _ in range(height)]
        cx, cy = width // 2, height // 2
        for y in range(height):
            grid[y][cx] = ("·", Style(dim=True))
        for x in range(width):
            grid[cy][x] = ("·", Style(dim=True))
        # incident last so nothing hides it
        for point, dx, dy in sorted(offsets, key=lambda o: o[0].kind == "incident"):
            col = cx + round(dx / (per_row / 2))
            row = cy - round(dy / per_row)
            if 0 <= col < width and 0 <= row < height:
                grid[row][col] = GLYPHS.get(point.kind, ("?", Style()))
        grid[cy][cx] = GLYPHS["incident"]
        text = Text()
        for y, line in enumerate(grid):
            for char, style in line:
                text.append(char, style or "")
            if y < height - 1:
                text.append("\n")
        scale = f" ±{distance(radius)} "
        if width > cell_len(scale):
            return _with_scale(text, scale, width)
        return text


def _on_earth(lat: object, lon: object) -> bool:
    """Real latitude and longitude: nan or inf would reach ``round`` and raise."""
    return (
        isinstance(lat, int | float)
        and isinstance(lon, int | float)
        and -90.0 <= lat <= 90.0
        and -180.0 <= lon <= 180.0
    )


def _with_scale(text: Text, scale: str, width: int) -> Text:
    """Write the scale over the top-left corner of the map."""
    first_newline = text.plain.find("\n")
    end = first_newline if first_newline >= 0 else len(text.plain)
    out = Text(scale, style="dim")
    out.append_text(text[len(scale) : end])
    out.append_text(text[end:])
    return out
