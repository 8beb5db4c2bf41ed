"""The supervisor's two dialogs: reassign an incident to an operator, and a handover note.

Both are one line of input: `enter` sends, `esc` backs out. The operator id is
checked here against the wire's id rule only so a typo is said at once, in the
dialog; whether the reassignment is allowed is the core's decision (it answers
with a refusal and its reason).
"""

from __future__ import annotations

import re
from typing import ClassVar, Final

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Label

from console.tui.keys_text import N_
from console.tui.screens.frames import ConsoleModal
from widgets.format import plain
from widgets.i18n import _

# protocols.schemas.Ident: what an operator id may be made of.
OPERATOR_ID: Final = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")


class ReassignScreen(ConsoleModal[str | None]):
    """Ask which operator gets the incident; dismisses with the id, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", N_("Cancel"), id="dialog.cancel")
    ]

    def __init__(self, incident_id: str, about: str = "", owner: str | None = None) -> None:
        """``about``: the incident named in full; ``owner``: who has it now (None: nobody)."""
        super().__init__()
        self.incident_id, self.about, self.owner = incident_id, about, owner

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            about = plain(self.about or self.incident_id)
            yield Label(_("Reassign {incident}").format(incident=about), classes="dialog-title",
                        markup=False)  # fmt: skip
            owner = plain(self.owner) if self.owner else _("nobody")
            yield Label(_("Owned now by: {owner}").format(owner=owner), markup=False)
            yield Input(placeholder=_("operator id, e.g. op2"), max_length=128, id="operator")
            yield Label("", id="reassign-error", markup=False)
            yield Label(_("[b]enter[/b] reassign   [b]esc[/b] cancel"), classes="dialog-keys")

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        operator = event.value.strip()
        if not operator:
            self.dismiss(None)
        elif not OPERATOR_ID.fullmatch(operator):
            error = _("Not an operator id: letters, digits and _ . : @ - only.")
            self.query_one("#reassign-error", Label).update(error)
        else:
            self.dismiss(operator)

    def action_cancel(self) -> None:
        self.dismiss(None)


class HandoverScreen(ConsoleModal[str | None]):
    """Ask for a note to the next shift; dismisses with its text, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", N_("Cancel"), id="dialog.cancel")
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(_("Handover note for the next shift"), classes="dialog-title")
            yield Input(placeholder=_("what the next shift must know, …"), max_length=4000,
                        id="handover")  # fmt: skip
            yield Label(_("[b]enter[/b] save   [b]esc[/b] cancel"), classes="dialog-keys")

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
