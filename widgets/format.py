"""Shared text and style helpers for the widgets: ages, distances, labels, colours.

Styles use the 16 ANSI colours by name so they survive a 16-colour terminal and
an SSH link; NO_COLOR is handled by Textual itself.
"""

from __future__ import annotations

import time

from rich.cells import cell_len, set_cell_size
from rich.style import Style

from protocols.schemas import CameraStatus, IncidentKind, IncidentStatus, ResponderStatus


def age(seconds: float) -> str:
    """Compact age: 45s, 12m05s, 3h07m, 2d04h (at most 6 cells)."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def distance(metres: float) -> str:
    return f"{metres:.0f} m" if metres < 1000 else f"{metres / 1000:.1f} km"


def clock_time(ts: float) -> str:
    """HH:MM:SS in the machine's local time (what the wall clock in the room shows)."""
    return time.strftime("%H:%M:%S", time.localtime(ts))


KIND_LABEL: dict[str, str] = {
    IncidentKind.SOS: "SOS",
    IncidentKind.CCTV: "CCTV",
    IncidentKind.CAMERA_FAULT: "CAM",
    IncidentKind.PUBLIC_ALERT: "ALERT",
}

STATUS_LABEL: dict[str, str] = {
    IncidentStatus.NEW: "NEW",
    IncidentStatus.ACKNOWLEDGED: "ACK",
    IncidentStatus.DISPATCHED: "DISP",
    IncidentStatus.ON_SCENE: "SCENE",
    IncidentStatus.RESOLVED: "DONE",
    IncidentStatus.FALSE_ALARM: "FALSE",
}

PRIORITY_STYLE: dict[int, Style] = {
    1: Style(color="red", bold=True),
    2: Style(color="yellow", bold=True),
    3: Style(color="cyan"),
    4: Style(color="bright_black"),
}

STATUS_STYLE: dict[str, Style] = {
    IncidentStatus.NEW: Style(color="red", bold=True),
    IncidentStatus.ACKNOWLEDGED: Style(color="yellow"),
    IncidentStatus.DISPATCHED: Style(color="blue"),
    IncidentStatus.ON_SCENE: Style(color="green"),
    IncidentStatus.RESOLVED: Style(color="bright_black"),
    IncidentStatus.FALSE_ALARM: Style(color="bright_black"),
}

CAMERA_STYLE: dict[str, Style] = {
    CameraStatus.ONLINE: Style(color="green"),
    CameraStatus.OFFLINE: Style(color="bright_black"),
    CameraStatus.TAMPERED: Style(color="magenta", bold=True),
    CameraStatus.VIDEO_LOSS: Style(color="magenta"),
    CameraStatus.ALARM: Style(color="red", bold=True),
}

# One glyph per status as well as a colour, so the grid reads without colour too.
CAMERA_GLYPH: dict[str, str] = {
    CameraStatus.ONLINE: "·",
    CameraStatus.OFFLINE: "o",
    CameraStatus.TAMPERED: "T",
    CameraStatus.VIDEO_LOSS: "V",
    CameraStatus.ALARM: "!",
}

RESPONDER_STYLE: dict[str, Style] = {
    ResponderStatus.AVAILABLE: Style(color="green"),
    ResponderStatus.DISPATCHED: Style(color="yellow"),
    ResponderStatus.EN_ROUTE: Style(color="blue"),
    ResponderStatus.ON_SCENE: Style(color="cyan"),
    ResponderStatus.OFF_DUTY: Style(color="bright_black"),
}


def fit(text: str, width: int) -> str:
    """Pad or cut ``text`` to exactly ``width`` cells, marking a cut.

    Counted in cells, not characters: place names may be Hangul (two cells each)."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…"
