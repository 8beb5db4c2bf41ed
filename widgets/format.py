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
    UnitKind,
)
from protocols.text import printable
from widgets.i18n import _, language, pgettext

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


def age(seconds: object, cells: int | None = None) -> str:
    """Compact age: 45s, 12m05s, 3h07m, 2d04h (at most 6 cells); in Korean 45초, 12분05초,
    3시간07분, 2일04시간 (at most 10 cells, see :func:`age_width`).

    Negative (a clock a little ahead) shows as 0s; beyond 9999 days as >9999d. With
    ``cells``, an age longer than that drops its smaller unit (``23시간``) rather than
    being cut in the middle."""
    value = _finite(seconds)
    if value is None:
        return PLACEHOLDER
    units = _AGE_UNITS_KO if language() == "ko" else _AGE_UNITS_EN
    if value >= (_MAX_DAYS + 1) * 86400:
        return f">{_MAX_DAYS}{units[3]}"
    s = max(0, int(value))
    if s < 60:
        return f"{s}{units[0]}"
    if s < 3600:
        major, minor = f"{s // 60}{units[1]}", f"{s % 60:02d}{units[0]}"
    elif s < 86400:
        major, minor = f"{s // 3600}{units[2]}", f"{s % 3600 // 60:02d}{units[1]}"
    else:
        days = s // 86400
        major, minor = f"{days}{units[3]}", f"{s % 86400 // 3600:02d}{units[2]}"
        if days >= 100:
            return major
    if cells is not None and cell_len(major + minor) > cells:
        return major
    return major + minor


# Seconds, minutes, hours, days: the English letters, the Korean words.
_AGE_UNITS_EN: Final = ("s", "m", "h", "d")
_AGE_UNITS_KO: Final = ("초", "분", "시간", "일")


def age_width() -> int:
    """Cells of an age column: 6 in English ("12m05s"); 9 in Korean ("9시간59분", longer
    ages drop their smaller unit to fit: "23시간")."""
    return 9 if language() == "ko" else 6


def countdown_width() -> int:
    """Cells of an SLA countdown column: 7 in English ("-12m05s"), 9 in Korean ("-12분05초")."""
    return 9 if language() == "ko" else 7


def ago(text: str) -> str:
    """An age said as a time past: "1m13s ago", "1분13초 전"."""
    return _("{age} ago").format(age=text)


def since(ts: object, now: float, cells: int | None = None) -> str:
    """Age of what happened at ``ts``; a time no clock could give shows ``PLACEHOLDER``."""
    if not plausible_time(ts):
        return PLACEHOLDER
    return age(now - ts, cells)  # type: ignore[operator]  # plausible_time: a real number


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

# The dicts hold the English words (the catalog's ids); a widget shows them through the
# functions below, which translate at render time, so a language switch shows next frame.


def kind_label(kind: object) -> str:
    """An incident kind in at most 5 cells (the queue's column): SOS, CCTV, CAM, ALERT."""
    label = KIND_LABEL.get(kind)  # type: ignore[call-overload]  # anything may arrive
    return pgettext("kind", label) if label else plain(kind)


def status_label(status: object) -> str:
    """An incident status in at most 5 cells (the queue's column): NEW, ACK, DISP..."""
    label = STATUS_LABEL.get(status)  # type: ignore[call-overload]  # anything may arrive
    return pgettext("status", label) if label else PLACEHOLDER


def _word(context: str, words: dict[str, str], value: object) -> str:
    """A wire value shown in words: known ones translated, anything else as it came."""
    word = words.get(value) if isinstance(value, str) else None
    return pgettext(context, word) if word else plain(value)


# Incident statuses in full words (the detail); the English is the wire's word, upper case.
_INCIDENT_STATUS_WORD: Final[dict[str, str]] = {
    IncidentStatus.NEW: "NEW",
    IncidentStatus.ACKNOWLEDGED: "ACKNOWLEDGED",
    IncidentStatus.DISPATCHED: "DISPATCHED",
    IncidentStatus.ON_SCENE: "ON-SCENE",
    IncidentStatus.RESOLVED: "RESOLVED",
    IncidentStatus.FALSE_ALARM: "FALSE-ALARM",
}
_UNIT_KIND_WORD: Final[dict[str, str]] = {k.value: k.value for k in UnitKind}
_UNIT_STATUS_WORD: Final[dict[str, str]] = {s.value: s.value for s in ResponderStatus}
_CAMERA_STATUS_WORD: Final[dict[str, str]] = {s.value: s.value for s in CameraStatus}


def incident_status_word(status: object) -> str:
    """An incident status in full: ON-SCENE, 현장 도착."""
    if status in _INCIDENT_STATUS_WORD:
        return pgettext("incident status", _INCIDENT_STATUS_WORD[status])
    return plain(status).upper()


def unit_kind(kind: object) -> str:
    """A unit's kind: police, 경찰."""
    return _word("unit kind", _UNIT_KIND_WORD, kind)


def unit_status(status: object) -> str:
    """A unit's status: en-route, 이동 중."""
    return _word("unit status", _UNIT_STATUS_WORD, status)


def camera_status(status: object) -> str:
    """A camera's status: video-loss, 영상 손실."""
    return _word("camera status", _CAMERA_STATUS_WORD, status)


# What the core writes in an incident's history, and the kinds of shelter: known words
# are translated, anything else is shown as it came.
_HISTORY_WORD: Final[dict[str, str]] = {
    w: w
    for w in (
        "opened", "updated", "cancelled", "withdrawn", "event ended", "needs dispatch",
        "position kept", "position unknown", "time replaced", "priority", "acknowledged",
        "assigned", "claimed", "released", "dispatched", "on-scene", "escalated",
        "escalation-cancelled", "note", "unit asked", "unit refused", "resolve", "resolved",
        "false-alarm", "core",
    )
}  # fmt: skip
_SHELTER_WORD: Final[dict[str, str]] = {w: w for w in ("police-box", "safe-house")}


def history_action(action: object) -> str:
    """What happened, in a history line: dispatched, 출동 지령."""
    return _word("history", _HISTORY_WORD, action)


def shelter_kind(kind: object) -> str:
    """A shelter's kind: police-box, 치안센터."""
    return _word("shelter", _SHELTER_WORD, kind)


def district_name(name: object) -> str:
    """A district as the wire names it (romanised, "Gangnam-gu") in the active language
    ("강남구"); a district the catalog does not know stays as it came."""
    text = plain(name)
    if not text:
        return text
    shown = pgettext("district", text)
    if shown == text and language() == "ko" and not text.endswith("-gu"):
        # A source that says "Gangnam" for "Gangnam-gu": the catalog names the gu.
        gu = text + "-gu"
        full = pgettext("district", gu)
        return full if full != gu else text
    return shown


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


def countdown(deadline: object, now: float, cells: int | None = None) -> str:
    """Time left to ``deadline``: ``4m59s``; past it, overdue with a minus: ``-1m05s``
    (at most 7 cells, :func:`countdown_width` in the active language). No deadline: an
    empty string; an implausible one: ``PLACEHOLDER``."""
    if deadline is None:
        return ""
    if not plausible_time(deadline):
        return PLACEHOLDER
    left = deadline - now  # type: ignore[operator]  # plausible_time: a real number
    if left > -1:
        return age(left, cells)
    return "-" + age(-left, None if cells is None else cells - 1)  # never "-0s"


def place_label(district: str, place: str) -> str:
    """District and place for a narrow column: Seoul's "-gu" dropped, and the district
    left out when the place already starts with it ("Dongdaemun underpass 0004", not
    "Dongdaemun-gu Dongdaemun underpass 0004", which 80 columns cut to the same text
    for every camera of the district). In Korean the district is its Korean name, "구"
    dropped likewise unless one syllable would be left ("강남 역삼로 12", "중구 을지로").
    The district always goes through the catalog, so the pseudo-locale test sees it."""
    district, place = plain(district), plain(place)
    base = district.removesuffix("-gu")
    if place.lower().startswith(base.lower()) and base:
        return place
    shown = district_name(district)
    if shown != district:  # the catalog knows the district: its Korean name
        short = shown.removesuffix("구") if len(shown) > 2 else shown  # in syllables
        if place.startswith(short):
            return place
        base = short
    return f"{base} {place}".strip()


def fit_right(text: str, width: int) -> str:
    """``text`` right-aligned in exactly ``width`` cells; cut as :func:`fit` when longer."""
    return pad_left(text, width) if cell_len(text) <= width else fit(text, width)


def pad(text: str, width: int) -> str:
    """``text`` padded with spaces to ``width`` cells (never cut): ``str.ljust`` in cells."""
    return text + " " * max(0, width - cell_len(text))


def pad_left(text: str, width: int) -> str:
    """``text`` right-aligned in ``width`` cells (never cut): ``str.rjust`` in cells."""
    return " " * max(0, width - cell_len(text)) + text


def search_query(text: str) -> str:
    """What an operator typed into a pane's search, as it is matched and shown."""
    return " ".join(plain(text).lower().split())


def search_text(*fields: object) -> str:
    """The text a pane's search looks in: every field, plain and lower case."""
    return " ".join(plain(f) for f in fields).lower()


def matches(haystack: str, query: str) -> bool:
    """Every word of ``query`` (from :func:`search_query`) is somewhere in ``haystack``."""
    return all(word in haystack for word in query.split())
