"""The supervisor's commands: reassign the selected incident, write a handover note.

A mixin for :class:`console.tui.app.AnsimApp`, beside ``actions.CommandActions``.
Both are offered to the supervisor role only (``SUPERVISING``, hidden for the others
by the app's ``action_allowed``); the core checks the role again and refuses with
its reason, journaled either way. A handover note concerns no incident, so it is
sent without one.
"""

from __future__ import annotations

from typing import Final

from console.tui.actions import CommandActions, describe
from console.tui.screens.reassign import HandoverScreen, ReassignScreen
from protocols.schemas import Action
from widgets.i18n import _

SUPERVISING: Final = frozenset({"reassign", "handover"})


class SupervisorActions(CommandActions):
    """Reassign and handover; the app provides what ``CommandActions`` annotates."""

    def action_reassign(self) -> None:
        inc = self._target()
        if inc is None:
            return

        def chosen(operator: str | None) -> None:
            if operator:
                self.send(Action.REASSIGN, inc, text=operator)

        self.push_screen(ReassignScreen(inc.id, describe(inc), inc.owner), chosen)

    def action_handover(self) -> None:
        def written(text: str | None) -> None:
            if text:
                self.send_about(Action.HANDOVER, _("Handover note"), text=text)

        self.push_screen(HandoverScreen(), written)
