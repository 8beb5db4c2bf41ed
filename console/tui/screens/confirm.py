"""A yes/no question: `y` or `enter` confirms, `n` or `esc` backs out."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Label

from console.tui.keys_text import N_
from console.tui.screens.frames import ConsoleModal
from widgets.format import plain
from widgets.i18n import _


class ConfirmScreen(ConsoleModal[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", N_("Yes"), id="confirm.yes"),
        Binding("n,escape", "answer(False)", N_("No"), id="confirm.no"),
    ]

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question, self.detail = question, detail

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            # The question and detail may quote an incident (its title): plain text only.
            yield Label(plain(self.question), classes="dialog-title", markup=False)
            if self.detail:
                yield Label(plain(self.detail), markup=False)
            yield Label(_("[b]y[/b]/enter yes   [b]n[/b]/esc no"), classes="dialog-keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
