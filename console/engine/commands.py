"""Operator commands: the incident lifecycle, ownership, roles, idempotency.

Every command gets exactly one reply. A handler validates everything before it
changes anything, so a refusal leaves the state untouched (except the memory
of the reply itself, which makes the command idempotent).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import ClassVar, Final, get_args

from console.engine.context import Context
from console.engine.effects import Effect, Escalated, IncidentChanged, ResponderChanged, SendReply
from console.engine.incidents import Incidents, record_history
from console.engine.lending import CORE_PREFIX, Lending, LendRefused, is_foreign
from console.engine.model import Incident, Responder
from console.engine.responders import Responders, unit_left
from protocols.schemas import (
    Action,
    Command,
    IncidentStatus,
    Note,
    Reply,
    ResponderStatus,
    Role,
    ShortText,
)

_IDENT = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")
# Commands about no incident (the supervisor's note for the next shift).
NO_INCIDENT: Final = frozenset({Action.HANDOVER})
HANDOVER_KEPT = 50  # the newest notes for the next shift kept in the state
# IncidentState.disposition is a ShortText: one taken from a command's text (a LongText)
# is cut to fit, or the closed incident's state (``ansim export``) would not decode.
DISPOSITION_MAX: Final[int] = get_args(ShortText)[1].max_length


class Refusal(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Commands:
    """Operator commands against open incidents, each answered by exactly one reply."""

    def __init__(
        self, ctx: Context, incidents: Incidents, responders: Responders, lending: Lending
    ) -> None:
        self.ctx = ctx
        self.st = ctx.st
        self.incidents = incidents
        self.responders = responders
        self.lending = lending

    def handle(self, cmd: Command, now: float, role: Role) -> list[Effect]:
        key = f"{cmd.operator}/{cmd.cmd_id}"
        seen = self.st.replies.get(key)
        if seen is not None:
            return [SendReply(seen[0])]  # a resend: the first answer, nothing done again
        self.ctx.prune(now)
        effects: list[Effect] = []
        try:
            if role is Role.OBSERVER:
                raise Refusal("observer seat is read-only")
            if cmd.action is Action.LEND:  # from another partition's core
                message = self.lending.lend(cmd, now, effects)
            elif cmd.action is Action.RETURN:
                message = self.lending.take_back(cmd, now, effects)
            elif cmd.action is Action.HANDOVER:
                message = self._handover(cmd, now, role)
            else:
                inc = self._target(cmd, role)
                message = self._handlers[cmd.action](self, inc, cmd, now, role, effects)
            ok = True
        except (Refusal, LendRefused) as refusal:
            effects = []
            ok, message = False, refusal.reason
        reply = Reply(
            cmd_id=cmd.cmd_id,
            operator=cmd.operator,
            ok=ok,
            ts=now,
            reason=message[:4000],
            incident_id=cmd.incident_id,
        )
        self.st.replies[key] = (reply, now)
        effects.append(SendReply(reply))
        return effects

    def resend(self, cmd: Command, now: float) -> list[Effect]:
        """A command whose id the journal already holds: never done again. Its first
        answer if still remembered; past ``REPLY_RETENTION_S`` a refusal saying so, or
        live state would change without a record to replay (the journal folds it)."""
        seen = self.st.replies.get(f"{cmd.operator}/{cmd.cmd_id}")
        if seen is not None:
            return [SendReply(seen[0])]
        reason = f"command {cmd.cmd_id} was already taken; nothing done (use a new command id)"
        return [SendReply(Reply(cmd_id=cmd.cmd_id, operator=cmd.operator, ok=False, ts=now,
                                reason=reason, incident_id=cmd.incident_id))]  # fmt: skip

    def _target(self, cmd: Command, role: Role) -> Incident:
        """The open incident the command is about, after the role and owner checks."""
        if role is Role.OBSERVER:
            raise Refusal("observer seat is read-only")
        if cmd.incident_id is None:
            raise Refusal(f"{cmd.action.value}: no incident given")
        inc = self.st.incidents.get(cmd.incident_id)
        if inc is None:
            closed = self.st.closed.get(cmd.incident_id)
            if closed is not None:
                raise Refusal(f"incident {closed.id} is closed ({closed.status.value})")
            raise Refusal(f"unknown incident {cmd.incident_id}")
        scope = self.ctx.settings.scopes.get(cmd.operator)
        home = inc.home or inc.district
        if scope is not None and home not in scope:
            raise Refusal(
                f"incident {inc.id} is in {home}; {cmd.operator} acts in "
                f"{', '.join(sorted(scope)) or 'no district'} only"
            )
        if cmd.action is Action.CANCEL_ESCALATION and role is not Role.SUPERVISOR:
            raise Refusal("only a supervisor may cancel an escalation")
        if cmd.action is Action.REASSIGN and role is not Role.SUPERVISOR:
            raise Refusal(f"only a supervisor may reassign {inc.id}")
        if inc.owner is not None and inc.owner != cmd.operator and role is not Role.SUPERVISOR:
            raise Refusal(f"incident {inc.id} is owned by {inc.owner}")
        return inc

    # --- lifecycle -----------------------------------------------------------------------

    def _acknowledge(self, inc: Incident, operator: str, now: float, detail: str) -> None:
        inc.status = IncidentStatus.ACKNOWLEDGED
        inc.acknowledged_at = now
        inc.ack_deadline = None
        self.st.unacked.pop(inc.id, None)
        if inc.owner is None:
            inc.owner = operator
        record_history(inc, now, operator, "acknowledged", detail)

    def _ack(self, inc: Incident, cmd: Command, now: float, role: Role, fx: list[Effect]) -> str:
        if inc.status is not IncidentStatus.NEW:
            raise Refusal(f"incident {inc.id} is already {inc.status.value}")
        self._acknowledge(inc, cmd.operator, now, cmd.text or "")
        self.incidents.arm_sla(inc, now)
        fx.append(IncidentChanged(inc.id))
        return f"acknowledged {inc.id}"

    def _dispatch(
        self, inc: Incident, cmd: Command, now: float, role: Role, fx: list[Effect]
    ) -> str:
        resp, dist = self._pick_responder(inc, cmd, now)
        if resp.status is ResponderStatus.OFF_DUTY:
            raise Refusal(f"responder {resp.id} is off duty")
        if resp.incident_id == inc.id:
            raise Refusal(f"responder {resp.id} is already assigned to {inc.id}")
        if is_foreign(self.ctx, resp):  # its partition's core decides: ask it
            fx += self.lending.ask(inc, resp, cmd, now)
            return f"asked the partition of {resp.home} for {resp.id}; its answer follows"
        holder = self.st.incidents.get(resp.incident_id) if resp.incident_id else None
        if holder is None and resp.incident_id is not None:  # lent to another partition
            raise Refusal(
                f"responder {resp.id} is already assigned to {resp.incident_id}"
                f" (dispatched by {resp.assigned_by or 'unknown'})"
            )
        if holder is not None and role is not Role.SUPERVISOR:
            raise Refusal(
                f"responder {resp.id} is already assigned to {holder.id}"
                f" (dispatched by {resp.assigned_by or 'unknown'})"
            )
        if holder is None and resp.status is not ResponderStatus.AVAILABLE:
            raise Refusal(f"responder {resp.id} is {resp.status.value}, not available")
        # --- checks done: apply ---
        before = self.responders.before(resp, now)
        if holder is not None:
            why = f"reassigned to {inc.id} by {cmd.operator}"
            unit_left(self.ctx, holder, resp.id, why, now, actor=cmd.operator, action="reassigned")
            fx.append(IncidentChanged(holder.id))
        if inc.status is IncidentStatus.NEW:
            self._acknowledge(inc, cmd.operator, now, "with dispatch")
        if inc.owner is None:
            inc.owner = cmd.operator
        if inc.status is IncidentStatus.ACKNOWLEDGED:
            inc.status = IncidentStatus.DISPATCHED
        inc.dispatch_deadline = None
        inc.alert, inc.alert_ts = "", None  # a unit is on its way again
        inc.responders.append(resp.id)
        resp.status = ResponderStatus.DISPATCHED
        resp.status_since = now
        resp.incident_id = inc.id
        resp.assigned_by = cmd.operator
        detail = f"{resp.id} ({resp.kind.value}"
        detail += f", {dist:.0f} m)" if dist is not None else ")"
        if holder is not None:
            detail += f", taken from {holder.id}"
        if cmd.text:
            detail += f": {cmd.text}"
        record_history(inc, now, cmd.operator, "dispatched", detail)
        fx += [IncidentChanged(inc.id), ResponderChanged(resp.id)]
        # Busy now: every published list naming it is republished.
        self.responders.changed(resp, now, before, fx)
        return f"dispatched {resp.id} to {inc.id}"

    def _pick_responder(
        self, inc: Incident, cmd: Command, now: float
    ) -> tuple[Responder, float | None]:
        if cmd.responder_id is None:
            top = self.responders.recommend(inc, 1, now)
            if not top:
                raise Refusal(f"no available responder for {inc.id}")
            return self.st.responders[top[0].responder_id], top[0].distance_m
        resp = self.st.responders.get(cmd.responder_id)
        if resp is None:
            raise Refusal(f"unknown responder {cmd.responder_id}")
        return resp, None

    def _on_scene(
        self, inc: Incident, cmd: Command, now: float, role: Role, fx: list[Effect]
    ) -> str:
        if inc.status is IncidentStatus.ON_SCENE:
            raise Refusal(f"incident {inc.id} is already on scene")
        if inc.status is not IncidentStatus.DISPATCHED or not inc.responders:
            raise Refusal(f"incident {inc.id} has no unit dispatched")
        inc.status = IncidentStatus.ON_SCENE
        for rid in inc.responders:
            resp = self.st.responders[rid]
            if resp.status is not ResponderStatus.ON_SCENE:
                resp.status = ResponderStatus.ON_SCENE
                resp.status_since = now
                fx.append(ResponderChanged(rid))
        record_history(inc, now, cmd.operator, "on-scene", cmd.text or "")
        fx.append(IncidentChanged(inc.id))
        return f"{inc.id} on scene"

    def _resolve(
        self, inc: Incident, cmd: Command, now: float, role: Role, fx: list[Effect]
    ) -> str:
        disposition = _disposition(cmd, "")
        if inc.status is IncidentStatus.NEW and not disposition:
            raise Refusal(
                f"incident {inc.id} is not acknowledged: resolving it needs a disposition"
            )
        self.incidents.close(
            inc, IncidentStatus.RESOLVED, now, cmd.operator, disposition or "resolved", fx
        )
        return f"resolved {inc.id}"

    def _false_alarm(
        self, inc: Incident, cmd: Command, now: float, role: Role, fx: list[Effect]
    ) -> str:
        disposition = _disposition(cmd, "false alarm")
        self.incidents.close(inc, IncidentStatus.FALSE_ALARM, now, cmd.operator, disposition, fx)
        return f"{inc.id} closed as a false alarm"

    def _escalate(
        self, inc: Incident, cmd: Command, now: float, role: Role, fx: list[Effect]
    ) -> str:
        if inc.escalated:
            raise Refusal(f"incident {inc.id} is already escalated")
        reason = cmd.text or f"escalated by {cmd.operator}"
        inc.escalated = True
        record_history(inc, now, cmd.operator, "escalated", reason)
        fx += [Escalated(inc.id, reason), IncidentChanged(inc.id)]
        return f"escalated {inc.id}"

    def _cancel_escalation(
        self, inc: Incident, cmd: Command, now: float, role: Role, fx: list[Effect]
    ) -> str:
        if not inc.escalated:
            raise Refusal(f"incident {inc.id} is not escalated")
        inc.escalated = False
        record_history(inc, now, cmd.operator, "escalation-cancelled", cmd.text or "")
        fx.append(IncidentChanged(inc.id))
        return f"escalation of {inc.id} cancelled"

    def _note(self, inc: Incident, cmd: Command, now: float, role: Role, fx: list[Effect]) -> str:
        text = (cmd.text or "").strip()
        if not text:
            raise Refusal("a note needs text")
        inc.notes.append(Note(ts=now, operator=cmd.operator, text=text))
        record_history(inc, now, cmd.operator, "note", text[:200])
        fx.append(IncidentChanged(inc.id))
        return f"note added to {inc.id}"

    def _claim(self, inc: Incident, cmd: Command, now: float, role: Role, fx: list[Effect]) -> str:
        target = (cmd.text or "").strip() or cmd.operator
        if target != cmd.operator:
            if role is not Role.SUPERVISOR:
                raise Refusal("only a supervisor may assign an incident to another operator")
            if not _IDENT.match(target) or target.startswith(CORE_PREFIX):  # as _reassign
                raise Refusal(f"not an operator id: {target[:80]!r}")
        if inc.owner == target:
            return f"{inc.id} is already owned by {target}"
        previous = inc.owner
        inc.owner = target
        if target == cmd.operator:
            detail = f"taken over from {previous}" if previous else ""
            record_history(inc, now, cmd.operator, "claimed", detail)
        else:
            detail = f"to {target}" + (f" (from {previous})" if previous else "")
            record_history(inc, now, cmd.operator, "assigned", detail)
        fx.append(IncidentChanged(inc.id))
        return f"{inc.id} is owned by {target}"

    def _release(
        self, inc: Incident, cmd: Command, now: float, role: Role, fx: list[Effect]
    ) -> str:
        if inc.owner is None:
            raise Refusal(f"incident {inc.id} is not owned")
        previous = inc.owner
        inc.owner = None
        record_history(
            inc, now, cmd.operator, "released", "" if previous == cmd.operator else previous
        )
        fx.append(IncidentChanged(inc.id))
        return f"released {inc.id}"

    # --- the shift supervisor ----------------------------------------------------------------

    def _reassign(
        self, inc: Incident, cmd: Command, now: float, role: Role, fx: list[Effect]
    ) -> str:
        """Give an open incident to another operator (the supervisor's; ``_target`` has
        checked the role and the supervisor's districts)."""
        target = (cmd.text or "").strip()
        if not target:
            raise Refusal(f"reassign {inc.id}: no operator given")
        if not _IDENT.match(target) or target.startswith(CORE_PREFIX):  # a core's account
            raise Refusal(f"not an operator id: {target[:80]!r}")
        if inc.owner == target:
            raise Refusal(f"incident {inc.id} is already owned by {target}")
        previous = inc.owner
        inc.owner = target
        record_history(
            inc, now, cmd.operator, "reassigned", f"from {previous or 'nobody'} to {target}"
        )
        fx.append(IncidentChanged(inc.id))
        return f"reassigned {inc.id} to {target}"

    def _handover(self, cmd: Command, now: float, role: Role) -> str:
        """A supervisor's note for the next shift (in the shift report), about no incident."""
        if role is not Role.SUPERVISOR:
            raise Refusal("only a supervisor may write the handover note")
        text = (cmd.text or "").strip()
        if not text:
            raise Refusal("a handover note needs text")
        notes = self.st.handover
        notes.append(Note(ts=now, operator=cmd.operator, text=text))
        del notes[:-HANDOVER_KEPT]
        return "handover note kept"

    _handlers: ClassVar[dict[Action, Callable[..., str]]] = {
        Action.ACK: _ack,
        Action.DISPATCH: _dispatch,
        Action.ON_SCENE: _on_scene,
        Action.RESOLVE: _resolve,
        Action.FALSE_ALARM: _false_alarm,
        Action.ESCALATE: _escalate,
        Action.CANCEL_ESCALATION: _cancel_escalation,
        Action.NOTE: _note,
        Action.CLAIM: _claim,
        Action.RELEASE: _release,
        Action.REASSIGN: _reassign,
    }


def _disposition(cmd: Command, default: str) -> str:
    return (cmd.disposition or cmd.text or default)[:DISPOSITION_MAX]
