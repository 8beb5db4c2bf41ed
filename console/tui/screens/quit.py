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

from console.tui.keys_text import N_
from console.tui.screens.frames import ConsoleModal
from console.tui.screens.vim_list import VimOptionList
from widgets.format import plain
from widgets.i18n import _, ngettext

NAMES_SHOWN = 4  # more than this are counted, not named: the line must fit at 80 columns


class CityChoice(enum.Enum):
    LEAVE = "leave"  # the broker, core and simulator keep running in the background
    STOP = "stop"  # stop them all: every other seat loses the broker


def seats_line(others: Sequence[str], twins: int) -> str:
    """Who else is connected, in one sentence (names are the wire's: plain text)."""
    count = len(others) + twins
    if count == 0:
        return _("No other seat is connected.")
    named = [plain(name) for name in others[:NAMES_SHOWN]]
    rest = len(others) - len(named)
    if rest:
        named.append(_("{count} more").format(count=rest))
    if twins:
        named.append(_("{count} more signed in as you").format(count=twins))
    sentence = ngettext(
        "{count} other seat is connected: {names}. Stopping everything disconnects them.",
        "{count} other seats are connected: {names}. Stopping everything disconnects them.",
        count,
    )
    return sentence.format(count=count, names=", ".join(named))


def default_choice(others: Sequence[str], twins: int) -> CityChoice:
    return CityChoice.LEAVE if others or twins else CityChoice.STOP


class QuitScreen(ConsoleModal[CityChoice | None]):
    DEFAULT_CSS = """
    QuitScreen #seats { width: 1fr; margin-bottom: 1; }
    QuitScreen #left-running { width: 1fr; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "choose('leave')", N_("Leave running"), id="quit.leave"),
        Binding("s", "choose('stop')", N_("Stop everything"), id="quit.stop"),
        Binding("n,escape", "cancel", N_("Cancel"), id="quit.cancel"),
    ]

    def __init__(self, others: Sequence[str], twins: int = 0, services: str = "") -> None:
        super().__init__()
        self.others, self.twins = list(others), twins
        # The launcher's words for what it started, English: translated when known.
        self.services = _(services or N_("the broker, core and simulator"))
        self.default = default_choice(others, twins)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(_("Quit Ansim?"), classes="dialog-title")
            yield Static(seats_line(self.others, self.twins), markup=False, id="seats")
            yield VimOptionList(
                Option(
                    _("Leave the city running: {services}").format(services=self.services),
                    id=CityChoice.LEAVE.value,
                ),
                Option(_("Stop everything"), id=CityChoice.STOP.value),
                id="choices",
            )
            yield Static(
                _(
                    "Left running, they carry on in the background, also once this terminal "
                    "closes (logs in var/logs/). Come back with `ansim` or `make run` in this "
                    "folder (it attaches to them), or `ansim console`. To stop them later, run "
                    "`ansim` here again and quit it with s."
                ),
                markup=False,
                id="left-running",
            )
            yield Label(
                _(
                    "[b]enter[/b] choose   [b]j/k[/b] move   [b]l[/b] leave running   "
                    "[b]s[/b] stop all   [b]esc[/b] stay"
                ),
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
