"""No English word reaches the screen without the catalog: the pseudo-locale check.

In pseudo mode (widgets.i18n.set_pseudo) every string that went through ``_()``,
``pgettext`` or ``ngettext`` shows as ``⟦English⟧``. The main screen, the detail, the help
and the dispatch dialog are drawn at 80×24 and 160×48 on the offline fixtures, and every
word of three or more ASCII letters outside ``⟦…⟧`` must be wire data: a whole string (an
id, a place, a title, a name) of the fixture city the console was given, or one of the
few words of ALLOWED. Anything else is an English string that was never wrapped; the
failure lists each with the widget and row it is on.
"""

from __future__ import annotations

import enum
import io
import os
import re
import time
from collections.abc import Iterable, Iterator

import msgspec
import pytest
from rich.cells import cell_len
from rich.console import Console
from textual.errors import NoWidget
from textual.screen import ModalScreen
from textual.widget import Widget

from console.tui.app import AnsimApp
from protocols.schemas import Presence
from tests.tui.ui_fixtures import NOW, Recorder, cameras, clock, incidents, make_store, summary
from tests.tui.ui_fixtures import responders as units
from widgets import i18n

os.environ["TZ"] = "UTC"  # the detail's wall-clock times, as in test_ui_snapshots.py
time.tzset()

# Not language: the product's name, and the names printed on the keys of every keyboard
# (Korean ones included), which the footer and the help show as keys, not as words.
ALLOWED = frozenset({"Ansim", "enter", "esc", "tab", "space", "ctrl", "shift", "super", "home",
                     "end", "pgup", "pgdn", "down", "left", "right", "backspace"})  # fmt: skip

SCREENS = {
    "main": (),
    "detail": ("j", "j", "enter"),
    "help": ("question_mark",),
    "dispatch": ("j", "j", "d"),
}
SIZES = {"80x24": (80, 24), "160x48": (160, 48)}

# A token: what an id, a place or a key name is made of ("cam-gan-004", "Yeoksam-ro").
TOKEN = re.compile(r"[A-Za-z0-9_.:@/-]+")
LETTERS = re.compile(r"[A-Za-z]{3,}")
TRUNCATED = "…"
TWICE = re.compile(r"⟦⟦[^⟦⟧]*⟧⟧")


def _strings(value: object, field: str = "") -> Iterator[str]:
    """Every free-text string of a wire message. Enum values (kinds, statuses) and district
    names are words the console translates, so they are not wire data here."""
    if isinstance(value, enum.Enum) or field == "district":
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            yield from _strings(getattr(value, name), name)
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _strings(item, field)


def wire_phrases() -> tuple[str, ...]:
    """Whole strings of what make_store() holds (ids, places, titles, names), longest
    first: the city's data, shown as it came."""
    messages: list[object] = [*cameras(), *units(), *incidents(), summary()]
    messages.append(Presence(operator="op2", online=True, ts=NOW))
    found = {text for m in messages for text in _strings(m) if LETTERS.search(text)}
    return tuple(sorted(found, key=len, reverse=True))


WIRE = wire_phrases()


def _edge(line: str, at: int) -> bool:
    """Whether ``at`` is outside any token (a phrase matches whole tokens only)."""
    return at < 0 or at >= len(line) or not TOKEN.match(line[at])


def without_wire_data(line: str) -> str:
    """``line`` with every wire phrase blanked, whole or cut to fit ("Yeoksam-r…")."""
    for phrase in WIRE:
        start = line.find(phrase)
        while start >= 0:
            end = start + len(phrase)
            if _edge(line, start - 1) and _edge(line, end):
                line = line[:start] + " " * len(phrase) + line[end:]
            start = line.find(phrase, start + 1)
    cut = line.find(TRUNCATED)
    while cut >= 0:
        longest = max(
            (size for phrase in WIRE for size in range(3, len(phrase))
             if line[max(0, cut - size):cut] == phrase[:size] and _edge(line, cut - size - 1)),
            default=0,
        )  # fmt: skip
        line = line[: cut - longest] + " " * longest + line[cut:]
        cut = line.find(TRUNCATED, cut + 1)
    return line


def screen_lines(app: AnsimApp) -> list[str]:
    """The active screen as text, row by row (a modal without the screens under it)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True,
                      force_terminal=True, color_system=None, legacy_windows=False)  # fmt: skip
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text(styles=False).split("\n")[:height]


def _cells(line: str, width: int) -> list[str]:
    """One entry per terminal cell; a wide character's second cell is ""."""
    cells: list[str] = []
    for char in line:
        cells.append(char)
        if cell_len(char) == 2:
            cells.append("")
    return (cells + [" "] * width)[:width]


def _owner_name(widget: Widget) -> str:
    return f"{type(widget).__name__}#{widget.id}" if widget.id else type(widget).__name__


def rows_by_widget(app: AnsimApp) -> dict[str, list[tuple[int, str]]]:
    """Each widget's own cells (not its children's), as (row, text) in reading order; a
    gap in a row (another widget in between) becomes a space. Under a modal, the dimmed
    screen below is left out: it is checked as a screen of its own."""
    width, height = app.size
    lines = screen_lines(app)
    modal = isinstance(app.screen, ModalScreen)
    rows: dict[str, dict[int, list[str]]] = {}
    for y in range(height):
        cells = _cells(lines[y] if y < len(lines) else "", width)
        last: dict[str, int] = {}
        for x in range(width):
            try:
                widget, _region = app.screen.get_widget_at(x, y)
            except NoWidget:
                continue
            if modal and widget is app.screen:
                continue
            name = _owner_name(widget)
            row = rows.setdefault(name, {}).setdefault(y, [])
            if name in last and last[name] != x - 1:
                row.append(" ")
            row.append(cells[x])
            last[name] = x
    return {
        name: sorted((y, "".join(c)) for y, c in by_row.items()) for name, by_row in rows.items()
    }


def unwrapped_words(rows: Iterable[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """(row, word) of every word outside ⟦…⟧ that is not wire data. A ⟦ left open at the
    end of a row that reaches its widget's edge goes on in the next row (wrapped text);
    a "…" closes it (a message cut to fit)."""
    open_ = 0
    for y, text in rows:
        outside: list[str] = []
        for char in text:
            if char == i18n.PSEUDO_OPEN:
                open_ += 1
                outside.append(" ")
            elif char == i18n.PSEUDO_CLOSE:
                open_ = max(0, open_ - 1)
                outside.append(" ")
            elif char == TRUNCATED and open_:
                open_ = 0
                outside.append(" ")
            else:
                outside.append(" " if open_ else char)
        if not text.rstrip() or text[-1] == " ":
            open_ = 0
        line = without_wire_data("".join(outside))
        for match in TOKEN.finditer(line):
            token = match.group().strip(".:/-")
            if LETTERS.search(token) and token not in ALLOWED:
                yield y, token
        for twice in TWICE.findall(text):
            yield y, f"{twice} (translated twice: a translation looked up as a message)"


@pytest.fixture
def pseudo() -> Iterator[None]:
    i18n.set_pseudo(True)
    try:
        yield
    finally:
        i18n.set_pseudo(False)


@pytest.mark.usefixtures("pseudo")
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("screen", SCREENS.keys())
async def test_every_word_on_screen_went_through_the_catalog(
    screen: str, size: tuple[int, int]
) -> None:
    app = AnsimApp(store=make_store(), operator="op1", send_command=Recorder(), clock=clock)
    async with app.run_test(size=size) as pilot:
        await pilot.press(*SCREENS[screen])
        await pilot.pause()
        found = [
            f"  {widget} row {y}: {word}"
            for widget, rows in rows_by_widget(app).items()
            for y, word in unwrapped_words(rows)
        ]
    assert not found, (
        f"{len(found)} words on the {screen} screen at {size[0]}x{size[1]} never went "
        "through _() (widgets.i18n), nor are they the fixture city's data:\n" + "\n".join(found)
    )


def test_the_check_sees_an_unwrapped_word_and_passes_wrapped_and_wire_ones() -> None:
    rows = [
        (0, "⟦Incident⟧ I-000001 Gangnam Yeoksam-ro 12  Priority"),
        (1, "⟦a message that wraps at the"),
        (2, "edge of its widget⟧ police-02 police"),
        (3, "⟦Cut to fi…  Dispatched cam-gan-0…  Kim Ji-w…"),
        (4, "⟦⟦connected⟧⟧"),
    ]
    assert list(unwrapped_words(rows)) == [
        (0, "Gangnam"),  # a district: the console names it in the seat's language
        (0, "Priority"),
        (2, "police"),  # a unit kind, not the unit police-02
        (3, "Dispatched"),
        (4, "⟦⟦connected⟧⟧ (translated twice: a translation looked up as a message)"),
    ]
