"""Type a note for the incident log: `enter` saves, `esc` backs out."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Label

from console.tui.keys_text import N_
from console.tui.screens.frames import ConsoleModal
from widgets.format import plain
from widgets.i18n import _


class NoteScreen(ConsoleModal[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", N_("Cancel"), id="dialog.cancel")
    ]

    def __init__(self, incident_id: str, about: str = "") -> None:
        """``about``: the incident named in full (id, kind, place), shown in the title."""
        super().__init__()
        self.incident_id, self.about = incident_id, about

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            title = _("Note for {incident}").format(incident=plain(self.about or self.incident_id))
            yield Label(title, classes="dialog-title", markup=False)
            yield Input(placeholder=_("what happened, who called, …"), max_length=4000, id="note")
            yield Label(_("[b]enter[/b] save   [b]esc[/b] cancel"), classes="dialog-keys")

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        self.dismiss(text or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
