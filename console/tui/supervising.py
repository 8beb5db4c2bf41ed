"""The supervisor's commands: reassign the selected incident, write a handover note.

A mixin for :class:`console.tui.app.AnsimApp`, beside ``actions.CommandActions``.
Both are offered to the supervisor role only (``SUPERVISING``, hidden for the others
by the app's ``action_allowed``); the core checks the role again and refuses with
its reason, journaled either way. A handover note concerns no incident, so it is
sent without one.
"""

from __future__ import annotations

from typing import Any, Final

from console.tui.actions import CommandActions, describe
from console.tui.screens.reassign import HandoverScreen, ReassignScreen
from protocols.schemas import Action, Command
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
                self._send_without_incident(Action.HANDOVER, _("Handover note"), text=text)

        self.push_screen(HandoverScreen(), written)

    def _send_without_incident(self, action: Action, about: str, **fields: Any) -> None:
        """Like ``send``, for a command that concerns no incident; ``about`` names it."""
        if not self.connected or self.send_command is None:
            self.notify(_("Not connected to the broker: command NOT sent."), severity="error")
            return
        self._seq += 1
        command = Command(
            cmd_id=f"{self.operator}-{self._session}-{self._seq}",
            operator=self.operator,
            action=action,
            ts=self.clock(),
            **fields,
        )
        self._sent[command.cmd_id] = command
        self._about[command.cmd_id] = about
        self._deliver(command)
