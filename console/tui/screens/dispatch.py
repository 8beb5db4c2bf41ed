"""Pick the unit to send. The fastest free one is preselected, so `d` `enter` dispatches.

The list is the core's recommendation (free units heard from recently, lowest ETA
first), less any unit this console already knows to be busy or off duty: an off-duty
or dispatched unit is never offered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from console.tui.keys_text import N_
from console.tui.screens.frames import ConsoleModal
from console.tui.screens.vim_list import VimOptionList
from protocols.schemas import IncidentState, Recommendation, ResponderState
from widgets.format import distance, district_name, pad, plain, unit_kind
from widgets.i18n import _
from widgets.incident_detail import eta, free_recommendations


def unit_line(rec: Recommendation, kind_width: int = 6) -> Text:
    """One unit: ETA first (what the choice is about), then who, what and how far.

    ``ETA  5:24  police-07         police   2.7 km``: 44 cells, so it fits the dialog at 80
    columns with room to spare. ``kind_width``: the widest kind listed, in cells (a
    Korean kind such as 스카우트 is wider than six), so the distances stay aligned."""
    line = Text()
    line.append(_("ETA {eta:>6}").format(eta=eta(rec.eta_s)), style="bold")
    kind = pad(kind_text(rec), kind_width)
    line.append(f"  {plain(rec.responder_id, 16):<16}  {kind} ")
    line.append(f"{distance(rec.distance_m):>8}", style="dim")
    return line


def kind_text(rec: Recommendation) -> str:
    return plain(unit_kind(rec.kind), 6)


class DispatchScreen(ConsoleModal[str | None]):
    DEFAULT_CSS = """
    DispatchScreen .dialog-hint { color: $text-muted; }
    DispatchScreen #no-units { width: 1fr; color: $warning; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", N_("Cancel"), id="dialog.cancel")
    ]

    def __init__(self, incident: IncidentState, responders: Mapping[str, ResponderState]) -> None:
        super().__init__()
        self.incident, self.responders = incident, responders
        self.units = free_recommendations(incident, responders)
        self.default = self.units[0].responder_id if self.units else None

    def compose(self) -> ComposeResult:
        inc = self.incident
        with Vertical(classes="dialog"):
            # The title quotes the incident: its texts are the source's, so plain and no markup.
            title = _("Dispatch to {incident} · {district} {place}").format(
                incident=plain(inc.id), district=district_name(inc.district), place=plain(inc.place)
            )
            yield Label(title, classes="dialog-title", markup=False)
            if self.units:
                yield Label(_("Free units, fastest first"), classes="dialog-hint")
                width = max(6, *(cell_len(kind_text(rec)) for rec in self.units))
                options = [Option(unit_line(rec, width), id=rec.responder_id) for rec in self.units]
                yield VimOptionList(*options, id="units")
                keys = _("[b]enter[/b] dispatch   [b]j/k[/b] other unit   [b]esc[/b] cancel")
            else:
                yield Label(
                    _(
                        "No free unit recommended: every one listed is busy or off duty now. "
                        "The list refreshes as units report."
                    ),
                    id="no-units",
                )
                keys = _("[b]esc[/b] cancel")
            yield Label(keys, classes="dialog-keys")

    def on_mount(self) -> None:
        if not self.units:
            return
        units = self.query_one(OptionList)
        if self.default is not None:
            units.highlighted = units.get_option_index(self.default)
        units.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
