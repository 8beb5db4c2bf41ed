"""The incident lifecycle every input goes through: open, record, reprioritise, escalate, close.

:class:`Incidents` is the one place incidents are opened and closed, so the
bookkeeping around them (priority counts, the unacknowledged queue, the open-SOS
index, camera alarms, the SLA heap, freeing units, the redaction schedule) is
kept in step in one place whatever closed them: a command, a withdrawn CCTV
event or a cancelled public alert.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from console.engine.effects import (
    CameraChanged,
    Effect,
    Escalated,
    IncidentChanged,
    IncidentClosed,
    NewHighPriority,
)
from console.engine.model import DEADLINE_ACK, DEADLINE_DISPATCH, Incident, device_key
from console.engine.shift import FINISHED_MAX, times_of
from protocols.schemas import CorrelatedEvent, HistoryEntry, IncidentKind, IncidentStatus

if TYPE_CHECKING:
    from console.engine.context import Context
    from console.engine.lending import Lending
    from console.engine.privacy import Privacy
    from console.engine.responders import Responders

CORE = "core"  # the actor of automatic changes
MAX_EVENTS = 200  # correlated events kept per incident (the first one and the latest)
MAX_CLOSED = 10_000  # closed incidents kept for queries and clear refusals

Deadline = tuple[float, int, str, int]  # (deadline, seq, incident id, DEADLINE_*)


def record_history(inc: Incident, now: float, actor: str, action: str, detail: str = "") -> None:
    inc.history.append(HistoryEntry(ts=now, actor=actor, action=action, detail=detail[:4000]))
    inc.updated = now


def has_position(inc: Incident) -> bool:
    """Incidents without a believable position sit at (0, 0): nothing is near them.

    (Camera faults of a camera never positioned, public alerts without an area, an SOS
    whose position was outside the service area.)
    """
    return not (inc.lat == 0.0 and inc.lon == 0.0)


def arm_sla(ctx: Context, inc: Incident, now: float) -> None:
    """A P1's next deadline: acknowledged by, when new; dispatched by, when acknowledged."""
    if inc.priority != 1:
        return
    sla, st = ctx.settings.sla, ctx.st
    if inc.status is IncidentStatus.NEW and inc.ack_deadline is None:
        inc.ack_deadline = now + sla.ack_p1_s
        which, deadline = DEADLINE_ACK, inc.ack_deadline
    elif inc.status is IncidentStatus.ACKNOWLEDGED and inc.dispatch_deadline is None:
        inc.dispatch_deadline = now + sla.dispatch_p1_s
        which, deadline = DEADLINE_DISPATCH, inc.dispatch_deadline
    else:
        return
    st.deadline_seq += 1
    heapq.heappush(st.deadlines, (deadline, st.deadline_seq, inc.id, which))


class Incidents:
    """Open and closed incidents, their priority, and the SLA deadlines of P1s."""

    def __init__(self, ctx: Context, responders: Responders, privacy: Privacy) -> None:
        self.ctx = ctx
        self.st = ctx.st
        self.responders = responders
        self.privacy = privacy
        self.lending: Lending | None = None  # set by the engine (console.engine.lending)

    def next_id(self) -> str:
        self.st.seq += 1
        return f"{self.ctx.settings.id_prefix}-{self.st.seq:06d}"

    def open(self, inc: Incident, now: float, effects: list[Effect]) -> None:
        st = self.st
        inc.home = inc.home or inc.district
        st.incidents[inc.id] = inc
        st.unacked[inc.id] = inc.created
        st.open_by_priority[inc.priority - 1] += 1
        if inc.kind is IncidentKind.SOS and has_position(inc):
            self.ctx.sos_index.upsert(inc.id, inc.lat, inc.lon)
        self.arm_sla(inc, now)
        effects.append(IncidentChanged(inc.id))
        if inc.priority == 1:
            effects.append(NewHighPriority(inc.id))

    def add_event(self, inc: Incident, event: CorrelatedEvent, now: float) -> None:
        inc.events.append(event)
        if len(inc.events) > MAX_EVENTS:
            del inc.events[1]  # keep the first (what opened it) and the latest
            inc.events_dropped += 1
        inc.updated = now

    def reprioritise(self, inc: Incident, now: float, effects: list[Effect]) -> None:
        """Priority is the most urgent live part; never below what the kind started with."""
        if not inc.parts:
            return
        new = min(inc.parts.values())
        if new == inc.priority:
            return
        self.st.open_by_priority[inc.priority - 1] -= 1
        self.st.open_by_priority[new - 1] += 1
        raised = new < inc.priority
        record_history(inc, now, CORE, "priority", f"P{inc.priority} → P{new}")
        inc.priority = new
        if raised:
            self.arm_sla(inc, now)
            if new == 1:
                effects.append(NewHighPriority(inc.id))

    # --- SLA -----------------------------------------------------------------------------

    def arm_sla(self, inc: Incident, now: float) -> None:
        arm_sla(self.ctx, inc, now)

    def deadline_live(self, entry: Deadline) -> bool:
        """Whether a heap entry can still fire (open, still waiting for that very deadline)."""
        deadline, _, incident_id, which = entry
        inc = self.st.incidents.get(incident_id)
        if inc is None:
            return False
        if which == DEADLINE_ACK:
            return inc.status is IncidentStatus.NEW and inc.ack_deadline == deadline
        return inc.status is IncidentStatus.ACKNOWLEDGED and inc.dispatch_deadline == deadline

    def escalate_due(self, now: float) -> list[Effect]:
        """Escalate every incident whose SLA deadline passed by ``now``.

        O(log n) per due deadline, O(1) otherwise. Stale entries (acknowledged,
        dispatched or closed in time) are dropped as they come due.
        """
        heap = self.st.deadlines
        effects: list[Effect] = []
        sla = self.ctx.settings.sla
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if not self.deadline_live(entry):
                continue
            _, _, incident_id, which = entry
            inc = self.st.incidents[incident_id]
            if which == DEADLINE_ACK:
                reason = f"SLA: not acknowledged within {sla.ack_p1_s:g} s"
            else:
                reason = f"SLA: not dispatched within {sla.dispatch_p1_s:g} s of acknowledgement"
            inc.escalated = True
            record_history(inc, now, CORE, "escalated", reason)
            effects += [Escalated(incident_id, reason), IncidentChanged(incident_id)]
        return effects

    def live_deadlines(self) -> list[Deadline]:
        """The deadlines that can still fire, sorted: equal states, equal snapshots."""
        return sorted(e for e in self.st.deadlines if self.deadline_live(e))

    # --- camera alarms -------------------------------------------------------------------

    def camera_alarm(
        self, inc: Incident, camera_id: str, delta: int, effects: list[Effect]
    ) -> None:
        """Count a live CCTV event of ``camera_id`` in ``inc`` in (+1) or out (-1)."""
        count = inc.cam_live.get(camera_id, 0) + delta
        cam = self.st.cameras.get(camera_id)
        if count > 0:
            inc.cam_live[camera_id] = count
            if cam is not None and inc.id not in cam.alarms:
                cam.alarms.append(inc.id)
                if len(cam.alarms) == 1:
                    effects.append(CameraChanged(cam.id, cam.district))
        else:
            inc.cam_live.pop(camera_id, None)
            if cam is not None and inc.id in cam.alarms:
                cam.alarms.remove(inc.id)
                if not cam.alarms:
                    effects.append(CameraChanged(cam.id, cam.district))

    # --- closing -------------------------------------------------------------------------

    def close(
        self,
        inc: Incident,
        status: IncidentStatus,
        now: float,
        actor: str,
        disposition: str | None,
        effects: list[Effect],
    ) -> None:
        st = self.st
        self.ctx.watch.forget(inc.id)  # before the units come free: never republished
        if self.lending is not None:  # borrowed units go back to their partitions
            effects += self.lending.give_back(inc, now)
        freed = list(inc.responders)
        for rid in freed:
            self.responders.free(rid, now, effects)
        inc.responders.clear()
        inc.status = status
        inc.closed_at = now
        inc.disposition = disposition
        inc.alert, inc.alert_ts = "", None
        detail = disposition or ""
        if freed:
            detail = f"{detail}; freed {', '.join(freed)}".lstrip("; ")
        record_history(inc, now, actor, status.value, detail)
        st.finished[inc.id] = (times_of(inc).as_row(), now)  # for the shift's figures
        if len(st.finished) > FINISHED_MAX:
            del st.finished[next(iter(st.finished))]  # the oldest close
        for camera_id in list(inc.cam_live):
            self.camera_alarm(inc, camera_id, -inc.cam_live[camera_id], effects)
        st.open_by_priority[inc.priority - 1] -= 1
        st.unacked.pop(inc.id, None)
        if inc.kind is IncidentKind.SOS:
            self.ctx.sos_index.remove(inc.id)
        device = device_key(inc.origin, inc.device_id) if inc.device_id is not None else None
        for table, key in (
            (st.device_open, device),
            (st.fault_open, inc.camera_id),
            (st.cctv_open, f"{inc.camera_id}/{inc.cctv_kind}"),
        ):
            if key is not None and table.get(key) == inc.id:
                del table[key]
        del st.incidents[inc.id]
        st.closed[inc.id] = inc
        while len(st.closed) > MAX_CLOSED:
            del st.closed[next(iter(st.closed))]
        # Personal data held by a closed incident is due for redaction from now on.
        self.privacy.schedule(inc)
        effects.append(IncidentClosed(inc.id))
