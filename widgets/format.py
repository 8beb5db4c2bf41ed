"""Shared text and style helpers for the widgets: ages, distances, labels, colours.

Styles use the 16 ANSI colours by name so they survive a 16-colour terminal and
an SSH link; NO_COLOR is handled by Textual itself.

Everything here takes what came over the wire and must not trust it: any text
goes through :func:`plain` before a widget shows it, and every number or time
formatter answers ``PLACEHOLDER`` for a value it cannot show honestly (inf,
nan, out of range) instead of raising. A source that could make a formatter
raise could stop every console that loads the retained state.
"""

from __future__ import annotations

import math
import time
from typing import Final

from rich.cells import cell_len, set_cell_size
from rich.style import Style

from protocols.schemas import (
    MAX_TIMESTAMP,
    CameraStatus,
    IncidentKind,
    IncidentStatus,
    ResponderStatus,
)
from protocols.text import printable

# The wire's own bound on a time (2100-01-01): later is a broken clock or an attack,
# checked here again because the console must hold even if the core let one through.
LATEST_TIME: Final = MAX_TIMESTAMP

# What a widget shows for a value it cannot show: one cell, the same everywhere.
PLACEHOLDER: Final = "?"

# The wire's longest text field (LongText) is 4,000 characters: anything longer
# did not come from an honest core, and laying out 100,000 characters per frame
# would stall the console.
MAX_TEXT: Final = 4000


def plain(text: object, limit: int = MAX_TEXT) -> str:
    """Wire text made safe to show on one line: control characters removed
    (tabs and line breaks become spaces), cut to ``limit`` characters.

    The result is still to be shown without markup (a Rich ``Text``, a strip's
    segment, a ``Label`` with ``markup=False``): ``[b]`` in a name stays ``[b]``."""
    if text is None:
        return ""
    if not isinstance(text, str):
        try:
            text = str(text)
        except ValueError:  # an int too long to convert (sys.set_int_max_str_digits)
            return PLACEHOLDER
    if len(text) > limit:
        text = text[:limit] + "…"
    # The same rule the core applies at intake: the console must hold even if it did not.
    return printable(text)


def _finite(value: object) -> float | None:
    """``value`` as a finite float, or None (inf, nan, an int beyond a float, not a number)."""
    try:
        number = float(value)  # type: ignore[arg-type]  # anything may arrive here
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def plausible_time(ts: object) -> bool:
    """A UNIX time the wire allows (1970 to 2100): anything else is a broken clock or an attack."""
    value = _finite(ts)
    return value is not None and 0.0 <= value <= LATEST_TIME


_MAX_DAYS = 9999  # 27 years: older than anything a control room holds


def age(seconds: object) -> str:
    """Compact age: 45s, 12m05s, 3h07m, 2d04h (at most 6 cells).

    Negative (a clock a little ahead) shows as 0s; beyond 9999 days as >9999d."""
    value = _finite(seconds)
    if value is None:
        return PLACEHOLDER
    if value >= (_MAX_DAYS + 1) * 86400:
        return f">{_MAX_DAYS}d"
    s = max(0, int(value))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    days = s // 86400
    return f"{days}d{s % 86400 // 3600:02d}h" if days < 100 else f"{days}d"


def since(ts: object, now: float) -> str:
    """Age of what happened at ``ts``; a time no clock could give shows ``PLACEHOLDER``."""
    if not plausible_time(ts):
        return PLACEHOLDER
    return age(now - ts)  # type: ignore[operator]  # plausible_time: a real number


# Farther than once around the Earth: not a distance on the ground.
_MAX_METRES = 40_100_000.0


def distance(metres: object) -> str:
    value = _finite(metres)
    if value is None or not 0.0 <= value <= _MAX_METRES:
        return PLACEHOLDER
    return f"{value:.0f} m" if value < 1000 else f"{value / 1000:.1f} km"


def clock_time(ts: object) -> str:
    """HH:MM:SS in the machine's local time (what the wall clock in the room shows)."""
    if not plausible_time(ts):
        return PLACEHOLDER
    try:
        return time.strftime("%H:%M:%S", time.localtime(ts))  # type: ignore[arg-type]
    except (OverflowError, OSError, ValueError):  # a platform's own narrower range
        return PLACEHOLDER


def count(n: object) -> str:
    """A count (cameras, incidents, SOS): a whole number from 0 to a trillion."""
    value = _finite(n)
    if value is None or not 0 <= value < 1e12 or value != int(value):
        return PLACEHOLDER
    return str(int(value))


def priority(p: object) -> str:
    """``P1``..``P9``; anything else is ``P?`` (the column is three cells)."""
    ok = isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= 9
    return f"P{p}" if ok else f"P{PLACEHOLDER}"


def coordinate(degrees: object, bound: float) -> str:
    """Latitude (``bound`` 90) or longitude (180) with five decimals, about a metre."""
    value = _finite(degrees)
    if value is None or abs(value) > bound:
        return PLACEHOLDER
    return f"{value:.5f}"


def rate(per_second: object) -> str:
    value = _finite(per_second)
    if value is None or not 0.0 <= value < 1e9:
        return PLACEHOLDER
    return f"{value:.1f}"


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


def fit_middle(text: str, width: int) -> str:
    """Like :func:`fit`, but a cut keeps the tail, and a third of the head: ids differ
    at their end (``office-mapo``, ``office-jongno``), so in 8 cells ``of…-mapo`` and
    ``of…ongno`` stay apart where a cut at the end would show ``office-…`` twice."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    if width < 4:
        return set_cell_size(text, width - 1) + "…"
    head = (width - 1) // 3
    tail = width - 1 - head
    # Cut from the end in cells: a wide character must not be split in two.
    chars: list[str] = []
    for char in reversed(text):
        if cell_len("".join(chars)) + cell_len(char) > tail:
            break
        chars.append(char)
    end = "".join(reversed(chars))
    return set_cell_size(set_cell_size(text, head) + "…" + end, width)


def countdown(deadline: object, now: float) -> str:
    """Time left to ``deadline``: ``4m59s``; past it, overdue with a minus: ``-1m05s``
    (at most 7 cells). No deadline: an empty string; an implausible one: ``PLACEHOLDER``."""
    if deadline is None:
        return ""
    if not plausible_time(deadline):
        return PLACEHOLDER
    left = deadline - now  # type: ignore[operator]  # plausible_time: a real number
    return age(left) if left > -1 else "-" + age(-left)  # never "-0s"


def place_label(district: str, place: str) -> str:
    """District and place for a narrow column: Seoul's "-gu" dropped, and the district
    left out when the place already starts with it ("Dongdaemun underpass 0004", not
    "Dongdaemun-gu Dongdaemun underpass 0004", which 80 columns cut to the same text
    for every camera of the district)."""
    district, place = plain(district), plain(place)
    base = district.removesuffix("-gu")
    if place.lower().startswith(base.lower()) and base:
        return place
    return f"{base} {place}".strip()


def search_query(text: str) -> str:
    """What an operator typed into a pane's search, as it is matched and shown."""
    return " ".join(plain(text).lower().split())


def search_text(*fields: object) -> str:
    """The text a pane's search looks in: every field, plain and lower case."""
    return " ".join(plain(f) for f in fields).lower()


def matches(haystack: str, query: str) -> bool:
    """Every word of ``query`` (from :func:`search_query`) is somewhere in ``haystack``."""
    return all(word in haystack for word in query.split())
