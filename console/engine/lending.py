"""A unit across a partition border: asked of its owner, lent or refused, given back.

A unit has one owner, the partition of its home district. Its core alone assigns
it. Another partition's core sees it near the border (console.engine.partitions,
``border_m``) and may recommend it; when an operator there dispatches it, that core
asks the owner with a LEND command, and the owner applies it in its own order,
among its own operators' dispatches. So two partitions dispatching one unit at
once get one success and one refusal that names the incident that has it.

The owner's answer is a Reply on the asking core's reply topic; the asking core
journals it like any input and only then assigns the unit (or shows the refusal
on the incident as an alert for its owner). A closed incident gives its borrowed
units back with a RETURN.

A LEND names the source whose reports the asking core ranked (``disposition``). A city
of several partitions names its owners ([owners], checked at load), so every core agrees
who reports a unit; should a core still hold first-come owners (a configuration built
without the loader), the owner refuses when its unit of that id is another source's,
rather than send its own unit, wherever it is, for a namesake.

Only a partition core may borrow: commands from an operator id with the
``ansim-core`` prefix, which the broker's ACL gives to the cores' accounts alone.
"""

from __future__ import annotations

from typing import Final

from console.engine.context import Context
from console.engine.effects import AskPartition, Effect, IncidentChanged, ResponderChanged
from console.engine.incidents import record_history
from console.engine.model import BORROWED, CORE_PREFIX, Incident, Responder
from console.engine.responders import Responders
from protocols.schemas import Action, Command, IncidentStatus, Reply, ResponderStatus

# The commands one partition's core sends another's (never an operator's).
CORE_ACTIONS: Final = frozenset({Action.LEND, Action.RETURN})


class LendRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_foreign(ctx: Context, resp: Responder) -> bool:
    """A unit of another partition (reported into its district, seen near the border):
    its owner decides for it (``Context.own_unit``)."""
    return not ctx.own_unit(resp.id)


class Lending:
    def __init__(self, ctx: Context, responders: Responders) -> None:
        self.ctx = ctx
        self.st = ctx.st
        self.responders = responders

    # --- the asking side ---------------------------------------------------------------

    def ask(self, inc: Incident, resp: Responder, cmd: Command, now: float) -> list[Effect]:
        """Ask the owner of ``resp`` to lend it to ``inc`` (the operator's dispatch)."""
        if resp.status is not ResponderStatus.AVAILABLE:
            raise LendRefused(f"responder {resp.id} is {resp.status.value}, not available")
        if any(r == resp.id and i == inc.id for i, r, _ in self.st.lends.values()):
            raise LendRefused(f"responder {resp.id} is already asked for {inc.id}")
        self.st.lend_seq += 1
        request = f"lend-{self.st.lend_seq}"
        self.st.lends[request] = (inc.id, resp.id, cmd.operator)
        record_history(inc, now, cmd.operator, "unit asked", f"{resp.id} of {resp.home}")
        # The source whose reports were ranked here (first-come owners only): the owner
        # checks that it would lend the unit we saw, not a namesake.
        reported_by = self.st.responder_owner.get(resp.id)
        ask = Command(cmd_id=request, operator=CORE_PREFIX, action=Action.LEND, ts=now,
                      incident_id=inc.id, responder_id=resp.id, text=inc.place,
                      disposition=reported_by)  # fmt: skip
        return [AskPartition(ask, resp.home), IncidentChanged(inc.id)]

    def answer(self, reply: Reply, now: float) -> list[Effect]:
        """The owner's answer to a LEND: assign the unit, or say why not on the incident."""
        pending = self.st.lends.pop(reply.cmd_id, None)
        if pending is None:
            return []  # a resent answer, or one to a request this core never made
        incident_id, responder_id, operator = pending
        inc = self.st.incidents.get(incident_id)
        resp = self.st.responders.get(responder_id)
        if not reply.ok:
            if inc is not None:
                why = f"{responder_id} not lent: {reply.reason}"[:200]
                inc.alert, inc.alert_ts = why, now
                record_history(inc, now, "core", "unit refused", why)
                return [IncidentChanged(inc.id)]
            return []
        if inc is None or resp is None:  # closed meanwhile: give it straight back
            home = resp.home if resp is not None else ""
            return [self._give_back(responder_id, incident_id, home, now)]
        if inc.status in (IncidentStatus.NEW, IncidentStatus.ACKNOWLEDGED):
            if inc.status is IncidentStatus.NEW:
                inc.acknowledged_at = now
                inc.ack_deadline = None
                self.st.unacked.pop(inc.id, None)
            inc.status = IncidentStatus.DISPATCHED
        inc.owner = inc.owner or operator
        inc.dispatch_deadline = None
        inc.alert, inc.alert_ts = "", None
        inc.responders.append(resp.id)
        resp.status, resp.status_since = ResponderStatus.DISPATCHED, now
        resp.incident_id, resp.assigned_by = inc.id, BORROWED
        record_history(inc, now, operator, "dispatched", f"{resp.id} (lent by {resp.home})")
        return [IncidentChanged(inc.id)]

    def give_back(self, inc: Incident, now: float) -> list[Effect]:
        """The borrowed units of a closing incident, back to their owners."""
        effects: list[Effect] = []
        for rid in list(inc.responders):
            resp = self.st.responders.get(rid)
            if resp is not None and is_foreign(self.ctx, resp):
                inc.responders.remove(rid)
                resp.incident_id = resp.assigned_by = None
                effects.append(self._give_back(rid, inc.id, resp.home, now))
        return effects

    def _give_back(self, responder_id: str, incident_id: str, home: str, now: float) -> Effect:
        self.st.lend_seq += 1
        back = Command(cmd_id=f"return-{self.st.lend_seq}", operator=CORE_PREFIX,
                       action=Action.RETURN, ts=now, incident_id=incident_id,
                       responder_id=responder_id)  # fmt: skip
        return AskPartition(back, home)

    # --- the owning side ---------------------------------------------------------------

    def lend(self, cmd: Command, now: float, effects: list[Effect]) -> str:
        """Another partition's core asks for one of this partition's units."""
        resp = self._own_unit(cmd)
        self._same_source(resp, cmd)
        holder = resp.incident_id
        if resp.status is ResponderStatus.OFF_DUTY:
            raise LendRefused(f"responder {resp.id} is off duty")
        if holder is not None:
            raise LendRefused(
                f"responder {resp.id} is already assigned to {holder}"
                f" (dispatched by {resp.assigned_by or 'unknown'})"
            )
        if resp.status is not ResponderStatus.AVAILABLE:
            raise LendRefused(f"responder {resp.id} is {resp.status.value}, not available")
        before = self.responders.before(resp, now)
        resp.status, resp.status_since = ResponderStatus.DISPATCHED, now
        resp.incident_id, resp.assigned_by = cmd.incident_id, cmd.operator
        effects.append(ResponderChanged(resp.id))
        self.responders.changed(resp, now, before, effects)
        return f"lent {resp.id} to {cmd.incident_id}"

    def _same_source(self, resp: Responder, cmd: Command) -> None:
        """The LEND names (``disposition``) the source whose reports the asking core
        ranked; lending ours when another source reports it there would send our unit,
        wherever it is, for one that is not. Units owned by the [owners] configuration
        have no first-come owner here and the same one in every core: nothing to check."""
        ours = self.st.responder_owner.get(resp.id)
        if ours is None or cmd.disposition == ours:
            return
        if cmd.disposition is None:
            raise LendRefused(
                f"responder {resp.id} is reported here by {ours}; the request names no"
                " source: the unit you ranked may not be ours"
            )
        raise LendRefused(
            f"responder {resp.id} is reported here by {ours}, not by {cmd.disposition[:64]}:"
            " the unit you ranked is not ours"
        )

    def take_back(self, cmd: Command, now: float, effects: list[Effect]) -> str:
        resp = self._own_unit(cmd)
        if resp.incident_id != cmd.incident_id or resp.assigned_by != cmd.operator:
            return f"{resp.id} was no longer lent to {cmd.incident_id}"
        self.responders.free(resp.id, now, effects)
        return f"{resp.id} is back from {cmd.incident_id}"

    def _own_unit(self, cmd: Command) -> Responder:
        if not cmd.operator.startswith(CORE_PREFIX):
            raise LendRefused(f"{cmd.action.value}: only a partition's core may ask for a unit")
        if cmd.responder_id is None or cmd.incident_id is None:
            raise LendRefused(f"{cmd.action.value}: a unit and an incident must be named")
        resp = self.st.responders.get(cmd.responder_id)
        if resp is None:
            raise LendRefused(f"unknown responder {cmd.responder_id}")
        if is_foreign(self.ctx, resp):
            raise LendRefused(f"responder {resp.id} is not a unit of this partition")
        return resp
