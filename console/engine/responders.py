"""Responders: their own reports, freeing them when an incident closes, who is nearest.

A unit's report moves it and may change its status; a unit assigned to an
incident that reports itself available or off duty is released from it (the
incident keeps its status: the operator decides what happens next). A fix that
jumps faster than the unit's kind can move is not applied (recorded in its
incident's history, if it has one); a report too old is refused before.
"""

from __future__ import annotations

from console.engine.context import Context
from console.engine.effects import Effect, IncidentChanged, ResponderChanged
from console.engine.incidents import CORE, has_position, record_history
from console.engine.model import Incident, Responder
from console.engine.rules import eta_s
from console.engine.trust import Trust
from protocols.schemas import (
    IncidentStatus,
    Recommendation,
    ResponderReport,
    ResponderStatus,
)


class Responders:
    """The units: reports in, assignment released, nearest available ones out."""

    def __init__(self, ctx: Context, trust: Trust) -> None:
        self.ctx = ctx
        self.st = ctx.st
        self.trust = trust

    def handle(self, ev: ResponderReport, now: float) -> list[Effect]:
        st = self.st
        index = self.ctx.resp_index
        self.ctx.prune(now)
        st.events_total += 1
        effects: list[Effect] = [ResponderChanged(ev.responder_id)]
        # A tracker's clock ahead of ours: the fix is taken as of now (too old is refused).
        fix_ts = min(ev.ts, now)
        resp = st.responders.get(ev.responder_id)
        if resp is None:
            resp = Responder(
                id=ev.responder_id,
                kind=ev.kind,
                status=ev.status,
                lat=ev.lat,
                lon=ev.lon,
                last_seen=now,
                status_since=now,
                name=ev.name or "",
                fix_ts=fix_ts,
            )
            st.responders[resp.id] = resp
        else:
            resp.kind = ev.kind
            self._move(resp, ev, fix_ts, now, effects)
            resp.last_seen = max(resp.last_seen, now)
            if ev.name is not None:
                resp.name = ev.name
            if ev.position_only:
                # A bare fix (OwnTracks): the status and the assignment stay as they are.
                index.upsert(resp.id, resp.lat, resp.lon, resp.status is ResponderStatus.AVAILABLE)
                return effects
            inc = st.incidents.get(resp.incident_id) if resp.incident_id is not None else None
            if resp.incident_id is not None and inc is None:
                resp.incident_id = resp.assigned_by = None
            if inc is not None:
                self._assigned_report(resp, inc, ev.status, now, effects)
            if ev.status is not resp.status:
                resp.status = ev.status
                resp.status_since = now
        index.upsert(resp.id, resp.lat, resp.lon, resp.status is ResponderStatus.AVAILABLE)
        return effects

    def _move(
        self,
        resp: Responder,
        ev: ResponderReport,
        fix_ts: float,
        now: float,
        effects: list[Effect],
    ) -> None:
        """Take a believable fix; an impossible jump is not applied."""
        if (ev.lat, ev.lon) == (resp.lat, resp.lon):
            resp.fix_ts = max(resp.fix_ts, fix_ts)  # where it is already
            return
        trust = self.trust
        problem = trust.jump(
            trust.max_kmh[resp.kind],
            (resp.lat, resp.lon, resp.fix_ts),
            (ev.lat, ev.lon, fix_ts),
        )
        if problem is None:
            resp.lat, resp.lon, resp.fix_ts = ev.lat, ev.lon, fix_ts
            return
        self.st.implausible_total += 1
        inc = self.st.incidents.get(resp.incident_id) if resp.incident_id is not None else None
        if inc is not None:
            record_history(inc, now, CORE, "position kept", f"{resp.id}: {problem}")
            effects.append(IncidentChanged(inc.id))

    def _assigned_report(
        self,
        resp: Responder,
        inc: Incident,
        status: ResponderStatus,
        now: float,
        effects: list[Effect],
    ) -> None:
        """A report from a unit assigned to ``inc``: follow it, or release the unit."""
        if status is resp.status:
            return
        if status in (ResponderStatus.AVAILABLE, ResponderStatus.OFF_DUTY):
            inc.responders.remove(resp.id)
            resp.incident_id = resp.assigned_by = None
            record_history(inc, now, resp.id, "released", f"{resp.id} reported {status.value}")
        elif status is ResponderStatus.ON_SCENE and inc.status is IncidentStatus.DISPATCHED:
            inc.status = IncidentStatus.ON_SCENE
            record_history(inc, now, resp.id, "on-scene", f"{resp.id} reported on scene")
        else:
            record_history(inc, now, resp.id, status.value, f"{resp.id} reported {status.value}")
        effects.append(IncidentChanged(inc.id))

    def free(self, responder_id: str, now: float, effects: list[Effect]) -> None:
        """Release a unit from its incident: available again, unless it is off duty."""
        resp = self.st.responders.get(responder_id)
        if resp is None:
            return
        resp.incident_id = None
        resp.assigned_by = None
        if resp.status is not ResponderStatus.OFF_DUTY:
            resp.status = ResponderStatus.AVAILABLE
            resp.status_since = now
            self.ctx.resp_index.set_active(resp.id, True)
        effects.append(ResponderChanged(resp.id))

    # --- dispatch support -----------------------------------------------------------------

    def recommend(self, inc: Incident, k: int) -> list[Recommendation]:
        """The ``k`` nearest available responders, ties broken by id (deterministic)."""
        if k <= 0 or not has_position(inc):
            return []
        return self.recommend_from(self.ctx.resp_index.nearest(inc.lat, inc.lon, k + 4), k)

    def recommend_from(self, found: list[tuple[str, float]], k: int) -> list[Recommendation]:
        """The first ``k`` still available of ``found`` (the index's nearest, k + 4 of them)."""
        found.sort(key=lambda kd: (kd[1], kd[0]))
        out: list[Recommendation] = []
        dispatch = self.ctx.settings.dispatch
        for responder_id, dist in found:
            resp = self.st.responders.get(responder_id)
            if resp is None or resp.status is not ResponderStatus.AVAILABLE:
                continue
            out.append(
                Recommendation(
                    responder_id=resp.id,
                    kind=resp.kind,
                    distance_m=round(dist, 1),
                    eta_s=eta_s(dispatch, resp.kind, dist),
                )
            )
            if len(out) == k:
                break
        return out
