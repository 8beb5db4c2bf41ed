"""Quitting the all-in-one: leave the city running for the other seats, or stop it all.

The all-in-one console started (or found) the broker, core and simulator that other
seats may be using. The dialog says who else is connected and preselects what keeps
them working: leave it running when anyone is, stop everything when no one is.
`enter` takes the highlighted choice, `l` and `s` choose directly, `esc` stays.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from console.tui.screens.frames import ConsoleModal
from console.tui.screens.vim_list import VimOptionList
from widgets.format import plain

NAMES_SHOWN = 4  # more than this are counted, not named: the line must fit at 80 columns


class CityChoice(enum.Enum):
    LEAVE = "leave"  # the broker, core and simulator keep running in the background
    STOP = "stop"  # stop them all: every other seat loses the broker


def seats_line(others: Sequence[str], twins: int) -> str:
    """Who else is connected, in one sentence (names are the wire's: plain text)."""
    count = len(others) + twins
    if count == 0:
        return "No other seat is connected."
    named = [plain(name) for name in others[:NAMES_SHOWN]]
    rest = len(others) - len(named)
    if rest:
        named.append(f"{rest} more")
    if twins:
        named.append(f"{twins} more signed in as you")
    seats = "1 other seat is" if count == 1 else f"{count} other seats are"
    return f"{seats} connected: {', '.join(named)}. Stopping everything disconnects them."


def default_choice(others: Sequence[str], twins: int) -> CityChoice:
    return CityChoice.LEAVE if others or twins else CityChoice.STOP


class QuitScreen(ConsoleModal[CityChoice | None]):
    DEFAULT_CSS = """
    QuitScreen #seats { width: 1fr; margin-bottom: 1; }
    QuitScreen #left-running { width: 1fr; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "choose('leave')", "Leave running", id="quit.leave"),
        Binding("s", "choose('stop')", "Stop everything", id="quit.stop"),
        Binding("n,escape", "cancel", "Cancel", id="quit.cancel"),
    ]

    def __init__(self, others: Sequence[str], twins: int = 0, services: str = "") -> None:
        super().__init__()
        self.others, self.twins = list(others), twins
        self.services = services or "the broker, core and simulator"
        self.default = default_choice(others, twins)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Quit Ansim?", classes="dialog-title")
            yield Static(seats_line(self.others, self.twins), markup=False, id="seats")
            yield VimOptionList(
                Option(f"Leave the city running: {self.services}", id=CityChoice.LEAVE.value),
                Option("Stop everything", id=CityChoice.STOP.value),
                id="choices",
            )
            yield Static(
                "Left running, they carry on in the background, also once this terminal "
                "closes (logs in var/logs/). Come back with `ansim` or `make run` in this "
                "folder (it attaches to them), or `ansim console`. To stop them later, run "
                "`ansim` here again and quit it with s.",
                markup=False,
                id="left-running",
            )
            yield Label(
                "[b]enter[/b] choose   [b]j/k[/b] move   [b]l[/b] leave running   "
                "[b]s[/b] stop all   [b]esc[/b] stay",
                classes="dialog-keys",
            )

    def on_mount(self) -> None:
        choices = self.query_one(OptionList)
        choices.highlighted = choices.get_option_index(self.default.value)
        choices.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.action_choose(event.option.id or "")

    def action_choose(self, choice: str) -> None:
        self.dismiss(CityChoice(choice))

    def action_cancel(self) -> None:
        self.dismiss(None)
