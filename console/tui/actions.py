"""The console's commands: keys that change the record, and the core's answers.

A mixin for :class:`console.tui.app.AnsimApp`. Every action picks the selected
open incident, asks a dialog when it needs more (unit, disposition, note),
and sends one ``Command``; nothing is queued while the link is down. The
core answers with a ``Reply``: a refusal is shown in red, a success as a
short toast ("Dispatched police-07 to I-000012 (SOS, Gangnam Teheran-ro 5)").

Every toast and dialog names the incident by id, kind and place: `a`, `e` and `c`
send at once, with no dialog, so the toast that says what was sent is the
operator's only check that the cursor was where they thought.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from textual import work

from console.tui.keys_text import N_
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.dispatch import DispatchScreen
from console.tui.screens.note import NoteScreen
from console.tui.screens.resolve import ResolveScreen
from protocols.schemas import Action, Command, IncidentState, Reply, Role
from widgets.format import KIND_LABEL, district_name, kind_label, plain
from widgets.i18n import _, pgettext

if TYPE_CHECKING:
    from textual.app import App

    from console.tui.state_store import StateStore

    _Base = App[int]
else:
    _Base = object

SendCommand = Callable[[Command], Awaitable[None]]

# What is being sent, for the toast at the keypress of an action without a dialog
# (English, the catalog's ids: translated when shown).
SENDING: dict[Action, str] = {
    Action.ACK: N_("Acknowledging {incident}"),
    Action.ESCALATE: N_("Escalating {incident}"),
    Action.CLAIM: N_("Claiming {incident}"),
    Action.RELEASE: N_("Releasing {incident}"),
    Action.CANCEL_ESCALATION: N_("Cancelling the escalation of {incident}"),
    Action.ON_SCENE: N_("Marking {incident} on scene"),
}

# What an ok Reply means, for the toast: (template with {unit} {incident} {detail}).
DONE: dict[Action, str] = {
    Action.ACK: N_("Acknowledged {incident}"),
    Action.DISPATCH: N_("Dispatched {unit} to {incident}"),
    Action.ON_SCENE: N_("{incident} on scene"),
    Action.RESOLVE: N_("Resolved {incident}: {detail}"),
    Action.FALSE_ALARM: N_("Closed {incident} as a false alarm"),
    Action.ESCALATE: N_("Escalated {incident}"),
    Action.CANCEL_ESCALATION: N_("Escalation cancelled on {incident}"),
    Action.NOTE: N_("Note added to {incident}"),
    Action.CLAIM: N_("You own {incident}"),
    Action.RELEASE: N_("Released {incident}"),
    Action.REASSIGN: N_("Reassigned {incident} to {target}"),
    Action.HANDOVER: N_("Handover note kept for the next shift"),
}


DONE_OTHER = N_("{incident}: done")  # an action DONE does not know (a newer core's)


def describe(inc: IncidentState) -> str:
    """How a toast or a dialog names an incident: ``I-000017 (SOS, Gangnam Teheran-ro 5)``."""
    kind = kind_label(inc.kind) if inc.kind in KIND_LABEL else plain(inc.kind, 12)
    district = plain(district_name(inc.district), 40)
    return f"{plain(inc.id)} ({kind}, {district} {plain(inc.place, 60)})"


def done_text(command: Command, about: str | None = None) -> str:
    """The toast for an accepted command; ``about`` names its incident (see describe)."""
    template = _(DONE.get(command.action, DONE_OTHER))
    return template.format(
        unit=command.responder_id or "?",
        incident=about or command.incident_id or "?",
        detail=pgettext("disposition", command.disposition) if command.disposition else "",
        target=plain(command.text or "?", 64),
    )


class CommandActions(_Base):
    """Command actions; the app provides the attributes annotated here."""

    role: Role
    operator: str
    connected: bool
    send_command: SendCommand | None
    clock: Callable[[], float]
    store: StateStore
    _session: str
    _seq: int
    _sent: dict[str, Command]  # cmd_id → command, until its Reply arrives
    _about: dict[str, str]  # cmd_id → its incident, named for the toasts (describe)

    def selected_incident(self) -> IncidentState | None:
        raise NotImplementedError

    def hold_selection(self) -> None:
        """The operator acted on the selection: from now on it follows that incident."""
        raise NotImplementedError

    def _target(self) -> IncidentState | None:
        """The incident a command is for, or None after telling the operator why not."""
        if self.role == Role.OBSERVER:
            self.notify(_("Observer seat: commands are not available."), severity="warning")
            return None
        inc = self.selected_incident()
        if inc is None:
            self.notify(_("No open incident selected."), severity="warning")
            return None
        self.hold_selection()
        if not self.connected or self.send_command is None:
            self.notify(_("Not connected to the broker: command NOT sent."), severity="error")
            return None
        return inc

    def send(self, action: Action, inc: IncidentState, **fields: Any) -> Command | None:
        return self.send_about(action, describe(inc), incident_id=inc.id, **fields)

    def send_about(self, action: Action, about: str, **fields: Any) -> Command | None:
        """Send a command; ``about`` names what it concerns in the notices that follow
        (an incident, or a handover note, which concerns none)."""
        if not self.connected or self.send_command is None:
            self.notify(_("Not connected to the broker: command NOT sent."), severity="error")
            return None
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
        return command

    @work(group="send")
    async def _deliver(self, command: Command) -> None:
        assert self.send_command is not None
        try:
            await self.send_command(command)
        except Exception as exc:  # NotConnected, timeout: say so, never retry silently
            self._sent.pop(command.cmd_id, None)
            about = self._about.pop(command.cmd_id, None) or command.incident_id
            text = _("{action} {incident} NOT sent: {error}").format(
                action=command.action, incident=about, error=exc
            )
            self.notify(plain(text), severity="error", markup=False)

    def reply_received(self, reply: Reply) -> None:
        command = self._sent.pop(reply.cmd_id, None)
        about = self._about.pop(reply.cmd_id, None)
        if not reply.ok:
            # Toasts parse markup by default; the reason and the id come from the wire.
            # The reason is the core's words, shown as sent; only the framing translates.
            reason = plain(reply.reason) or _("no reason given")
            self.notify(_("Refused: {reason}").format(reason=reason),
                        title=about or plain(reply.incident_id), severity="error", timeout=10,
                        markup=False)  # fmt: skip
        elif command is not None:
            self.notify(plain(done_text(command, about)), timeout=3, markup=False)

    # --- the actions ------------------------------------------------------------------

    def _simple(self, action: Action) -> None:
        inc = self._target()
        if inc is not None and self.send(action, inc) is not None:
            sending = _(SENDING[action]) if action in SENDING else "{incident}"
            self.notify(sending.format(incident=describe(inc)), timeout=3, markup=False)

    def action_ack(self) -> None:
        self._simple(Action.ACK)

    def action_escalate(self) -> None:
        self._simple(Action.ESCALATE)

    def action_claim(self) -> None:
        self._simple(Action.CLAIM)

    def action_release(self) -> None:
        self._simple(Action.RELEASE)

    def action_cancel_escalation(self) -> None:
        self._simple(Action.CANCEL_ESCALATION)

    def action_on_scene(self) -> None:
        self._simple(Action.ON_SCENE)

    def action_dispatch(self) -> None:
        inc = self._target()
        if inc is None:
            return
        if not inc.recommended:
            self.notify(_("No recommended unit for this incident yet."), severity="warning")
            return

        def chosen(unit: str | None) -> None:
            if unit:
                self.send(Action.DISPATCH, inc, responder_id=unit)

        self.push_screen(DispatchScreen(inc, self.store.responders), chosen)

    def action_resolve(self) -> None:
        inc = self._target()
        if inc is not None:
            screen = ResolveScreen(inc.id, describe(inc))
            self.push_screen(screen, self._then(Action.RESOLVE, inc, "disposition"))

    def action_false_alarm(self) -> None:
        inc = self._target()
        if inc is not None:
            question = ConfirmScreen(
                _("Close {incident} as a false alarm?").format(incident=describe(inc)), inc.title
            )
            self.push_screen(question, self._then(Action.FALSE_ALARM, inc))

    def action_note(self) -> None:
        inc = self._target()
        if inc is not None:
            self.push_screen(
                NoteScreen(inc.id, describe(inc)), self._then(Action.NOTE, inc, "text")
            )

    def _then(
        self, action: Action, inc: IncidentState, field: str | None = None
    ) -> Callable[[Any], None]:
        """A dialog callback: send ``action`` if the dialog was not backed out of."""

        def done(result: Any) -> None:
            if result:
                self.send(action, inc, **({field: result} if field else {}))

        return done
