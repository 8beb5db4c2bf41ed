"""Pick the unit to send. The nearest free one is preselected, so `d` `enter` dispatches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from console.tui.screens.frames import ConsoleModal
from console.tui.screens.vim_list import VimOptionList
from protocols.schemas import IncidentState, ResponderState
from widgets.format import RESPONDER_STYLE, age, distance, plain
from widgets.incident_detail import first_free


class DispatchScreen(ConsoleModal[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel")
    ]

    def __init__(self, incident: IncidentState, responders: Mapping[str, ResponderState]) -> None:
        super().__init__()
        self.incident, self.responders = incident, responders
        self.default = first_free(incident, responders)

    def compose(self) -> ComposeResult:
        inc = self.incident
        with Vertical(classes="dialog"):
            # The title quotes the incident: its texts are the source's, so plain and no markup.
            title = f"Dispatch to {plain(inc.id)} · {plain(inc.district)} {plain(inc.place)}"
            yield Label(title, classes="dialog-title", markup=False)
            options = []
            seen: set[str] = set()
            for rec in inc.recommended:
                if rec.responder_id in seen:  # a repeated unit: OptionList refuses duplicate ids
                    continue
                seen.add(rec.responder_id)
                unit = self.responders.get(rec.responder_id)
                status = plain(unit.status) if unit else "?"
                line = Text(f"{plain(rec.responder_id):<16} {plain(rec.kind):<7} "
                            f"{distance(rec.distance_m):>8}  ETA {age(rec.eta_s):>6}  ")  # fmt: skip
                line.append(status, style=RESPONDER_STYLE.get(status, "dim"))
                options.append(Option(line, id=rec.responder_id))
            yield VimOptionList(*options, id="units")
            yield Label("[b]enter[/b] dispatch   [b]j/k[/b] other unit   [b]esc[/b] cancel",
                        classes="dialog-keys")  # fmt: skip

    def on_mount(self) -> None:
        units = self.query_one(OptionList)
        if self.default is not None:
            units.highlighted = units.get_option_index(self.default)
        units.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
