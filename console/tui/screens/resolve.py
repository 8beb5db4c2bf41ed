"""Choose a disposition to close an incident: `enter` closes, `esc` backs out."""

from __future__ import annotations

from typing import ClassVar, Final

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Label, OptionList

from console.tui.keys_text import N_
from console.tui.screens.frames import ConsoleModal
from console.tui.screens.vim_list import VimOptionList
from widgets.format import plain
from widgets.i18n import _, pgettext

# What the core records (English codes, on the wire); the dialog shows them translated.
DISPOSITIONS: Final = (
    "assisted on scene",
    "escorted home",
    "handed to police",
    "medical assistance",
    "person safe, no action",
    "no trace at location",
    "duplicate",
    "other (see notes)",
)


class ResolveScreen(ConsoleModal[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", N_("Cancel"), id="dialog.cancel")
    ]

    def __init__(self, incident_id: str, about: str = "") -> None:
        """``about``: the incident named in full (id, kind, place), shown in the title."""
        super().__init__()
        self.incident_id, self.about = incident_id, about

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            title = _("Resolve {incident}: disposition").format(
                incident=plain(self.about or self.incident_id)
            )
            yield Label(title, classes="dialog-title", markup=False)
            shown = [pgettext("disposition", code) for code in DISPOSITIONS]
            yield VimOptionList(*shown, id="dispositions")
            yield Label(_("[b]j/k[/b] choose   [b]enter[/b] resolve   [b]esc[/b] cancel"),
                        classes="dialog-keys")  # fmt: skip

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = 0

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(DISPOSITIONS[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)
