"""The console's own keys (the footer, the help, the palette list them in this order).

Descriptions and tooltips are English, the catalog's ids, marked with ``N_``: the app
gives each node a translated copy (:mod:`console.tui.keys_text`). Every binding has an
id, so ``[console] keys`` can remap it.
"""

from __future__ import annotations

from textual.binding import Binding, BindingType

from console.tui.keys_text import N_

APP_BINDINGS: list[BindingType] = [
    Binding("question_mark", "help", N_("Help"), tooltip=N_("Keys that apply here"), id="help"),
    Binding(
        "colon",
        "command_palette",
        N_("Commands"),
        tooltip=N_("Command palette: every action by name"),
        show=False,
        id="palette",
    ),
    # Textual adds its own ctrl+p only when no binding names the palette action, so
    # `:` above took it away: bound here again, priority like Textual's (an Input
    # focused still opens the palette).
    Binding(
        "ctrl+p",
        "command_palette",
        N_("Commands"),
        tooltip=N_("Command palette: every action by name"),
        show=False,
        priority=True,
        id="palette.ctrl",
    ),
    Binding(
        "slash",
        "filter",
        N_("Filter"),
        tooltip=N_("Filter the queue: p1..p4, new/ack/disp, district, text"),
        id="filter",
    ),
    Binding(
        "escape",
        "back_out",
        N_("Back"),
        tooltip=N_("Close the detail, clear the filter"),
        show=False,
        id="back",
    ),
    Binding("1", "pane('queue')", N_("Queue pane"), show=False, id="pane.queue"),
    Binding("2", "pane('cameras')", N_("Camera pane"), show=False, id="pane.cameras"),
    Binding("3", "pane('responders')", N_("Responder pane"), show=False, id="pane.responders"),
    Binding("4", "pane('closed')", N_("Closed incidents"), show=False, id="pane.closed"),
    Binding("5", "pane('supervisor')", N_("Supervisor pane"), show=False, id="pane.supervisor"),
    Binding(
        "enter",
        "details",
        N_("Details"),
        tooltip=N_("Everything about the selected incident"),
        show=False,
        id="details",
    ),
    Binding("a", "ack", N_("Ack"), tooltip=N_("Acknowledge the selected incident"), id="ack"),
    Binding(
        "d",
        "dispatch",
        N_("Dispatch"),
        tooltip=N_("Dispatch a unit (fastest free one preselected)"),
        id="dispatch",
    ),
    Binding("r", "resolve", N_("Resolve"), tooltip=N_("Resolve with a disposition"), id="resolve"),
    Binding(
        "f", "false_alarm", N_("False"), tooltip=N_("Close as a false alarm"), id="false_alarm"
    ),
    Binding(
        "e", "escalate", N_("Escalate"), tooltip=N_("Escalate to the supervisor"), id="escalate"
    ),
    Binding("n", "note", N_("Note"), tooltip=N_("Add a note to the record"), id="note"),
    Binding(
        "c",
        "claim",
        N_("Claim"),
        tooltip=N_("Take ownership of the incident"),
        show=False,
        id="claim",
    ),
    Binding(
        "space",
        "jump_new_p1",
        N_("New P1"),
        tooltip=N_("Select the newest new P1 (announced in the status bar)"),
        show=False,
        id="jump.p1",
    ),
    Binding("q", "quit_confirm", N_("Quit"), tooltip=N_("Quit (asks first)"), id="quit"),
    # Textual's ctrl+q quits at once; in a control room it asks like `q` does.
    Binding(
        "ctrl+q",
        "quit_confirm",
        N_("Quit"),
        tooltip=N_("Quit (asks first)"),
        show=False,
        priority=True,
        id="quit.ctrl",
    ),
]
