"""Responders: their own reports, freeing them when an incident closes, who is fastest.

A unit's report moves it and may change its status. A unit assigned to an incident that
reports itself available or off duty is released from it: recorded, the incident carries
an alert for its owner, and if no unit is left on a dispatched or on-scene incident it
goes back to acknowledged (a new dispatch is needed; a P1's dispatch SLA counts again).
A fix that jumps faster than the unit's kind can move is not applied (recorded in its
incident's history, if it has one); a report too old is refused before.

Every change of a unit's position, status or freshness asks the recommendation watch
(:mod:`console.engine.eta_watch`) which published recommendations it makes wrong, and
those incidents are republished.

A unit reported into another partition's district (its topic's: its home, read across
the border, docs/partitions.md) is tracked for the recommendations only: its position and status
are kept and it is ranked like any other (marked with its home), but it is never
published here (its state topic is its owner's), its reports never change its
assignment (its owner decides), except that a unit lent to one of our incidents moves
that incident as an own unit would, and they are not counted in ``events_total``. On the
owner's side a lent unit stays lent to the other core's incident, which it cannot see,
until the unit reports itself done or that core gives it back.

A unit whose reports come into another partition's district than before changes hands:
its home becomes that district (a neighbour's unit is recommended with its owner's
district, where a dispatch asks for it). Leaving this partition, its retained state
under its old home is cleared (``ResponderGone``: its new owner publishes it); coming
(back) into it, it is published under its new home. Either way the lists recommending
it are republished, marked with its home or no longer.
"""

from __future__ import annotations

from console.engine.context import Context
from console.engine.effects import Effect, IncidentChanged, ResponderChanged, ResponderGone
from console.engine.eta_rank import EtaRanker, Ranked
from console.engine.incidents import CORE, arm_sla, has_position, record_history
from console.engine.model import BORROWED, CORE_PREFIX, Incident, Responder
from console.engine.trust import Trust
from protocols.schemas import (
    IncidentStatus,
    Recommendation,
    ResponderReport,
    ResponderStatus,
    UnitKind,
)

CONFIRM_MAX = 32  # incidents ranked afresh at most, per look (Responders._confirmed)
LEAVING = (ResponderStatus.AVAILABLE, ResponderStatus.OFF_DUTY)
ACTIVE = (IncidentStatus.DISPATCHED, IncidentStatus.ON_SCENE)


class Responders:
    """The units: reports in, assignment released, the fastest available ones out."""

    def __init__(self, ctx: Context, trust: Trust) -> None:
        self.ctx = ctx
        self.st = ctx.st
        self.trust = trust
        self.ranker = EtaRanker(ctx)

    def handle(self, ev: ResponderReport, now: float) -> list[Effect]:
        st = self.st
        self.ctx.prune(now)
        # A tracker's clock ahead of ours: the fix is taken as of now (too old is refused).
        fix_ts = min(ev.ts, now)
        resp = st.responders.get(ev.responder_id)
        home = resp.home if resp is not None else ev.district or self.ctx.district(ev.lat, ev.lon)
        was_own = self.ctx.own_unit(ev.responder_id)
        own = self.ctx.reported_into(st.border_units, ev.responder_id, ev.district)
        effects: list[Effect] = []
        if own:  # a neighbour's unit is its owner's to count and to publish
            st.events_total += 1
            effects.append(ResponderChanged(ev.responder_id))
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
                home=home,
            )
            st.responders[resp.id] = resp
            self.changed(resp, now, None, effects)
            return effects
        before = self.before(resp, now)
        if own is not was_own and ev.district:
            self._changed_hands(resp, ev.district, own, now, effects)
        resp.kind = ev.kind
        self._move(resp, ev, fix_ts, now, effects)
        resp.last_seen = max(resp.last_seen, now)
        if ev.name is not None:
            resp.name = ev.name
        if not ev.position_only:
            # A bare fix (OwnTracks) leaves the status and the assignment as they are; a
            # neighbour's unit's assignment is its owner's to change, except that a unit
            # lent to one of ours moves our incident (on scene, done) as an own one would.
            if own or resp.assigned_by == BORROWED:
                self._follow_assignment(resp, ev.status, now, effects)
            if ev.status is not resp.status:
                resp.status = ev.status
                resp.status_since = now
        self.changed(resp, now, before, effects)
        return effects

    def _changed_hands(
        self, resp: Responder, district: str, own: bool, now: float, effects: list[Effect]
    ) -> None:
        """``resp`` is reported into ``district``, of another partition than its home's
        (``own``: of this one, again): its home is that district now."""
        # The topic it was published under (``Engine.responder_home``), before it moves.
        old = resp.home or self.ctx.district(resp.lat, resp.lon)
        resp.home = district
        if not own:
            # Its state topic here would stay retained, frozen, beside its new owner's.
            effects.append(ResponderGone(resp.id, old))
            inc = self._incident_of(resp)
            if inc is not None:
                # Still listed on the incident, but its reports no longer move it here.
                why = f"{resp.id} now reports into {district}, another partition's district"
                record_history(inc, now, CORE, "unit transferred", why)
                effects.append(IncidentChanged(inc.id))
        # Every list showing it shows it as the wrong partition's (``Recommendation.home``).
        listing = self.ctx.watch.stale_due(lambda unit: unit == resp.id)
        effects += [IncidentChanged(i) for i in listing]

    def _incident_of(self, resp: Responder) -> Incident | None:
        return self.st.incidents.get(resp.incident_id) if resp.incident_id is not None else None

    def _follow_assignment(
        self, resp: Responder, status: ResponderStatus, now: float, effects: list[Effect]
    ) -> None:
        """A report's status, for the incident the unit is assigned to (if still open)."""
        st = self.st
        inc = st.incidents.get(resp.incident_id) if resp.incident_id is not None else None
        if resp.incident_id is not None and inc is None:
            lent = (resp.assigned_by or "").startswith(CORE_PREFIX)
            # Lent to another partition's incident (not ours to see): it stays lent until
            # the unit reports itself done or that core gives it back (RETURN).
            if not lent or status in LEAVING:
                resp.incident_id = resp.assigned_by = None
        if inc is not None:
            self._assigned_report(resp, inc, status, now, effects)

    # --- keeping the index and the published recommendations right ---------------------

    def before(self, resp: Responder, now: float) -> Before:
        """What :meth:`changed` compares with: take it before changing the unit."""
        return Before(self.ranker.eligible(resp, now), resp.kind, resp.lat, resp.lon)

    def changed(
        self, resp: Responder, now: float, before: Before | None, effects: list[Effect]
    ) -> None:
        """Index the unit as it is now and republish the incidents whose published
        recommendations it made wrong (``before``: None for a unit new to the engine)."""
        self.ctx.place_responder(resp)
        eligible = self.ranker.eligible(resp, now)
        if before is None:
            before = Before(False, resp.kind, resp.lat, resp.lon)
        moved = (
            not before.eligible
            or (resp.lat, resp.lon) != (before.lat, before.lon)
            or resp.kind is not before.kind
        )
        found = self.ctx.watch.unit_changed(
            resp.id, resp.kind, (resp.lat, resp.lon), eligible=eligible, moved=moved, now=now
        )
        stale = found.sure + self._confirmed(found.maybe, now)
        if stale:
            listed = {e.incident_id for e in effects if isinstance(e, IncidentChanged)}
            effects += [IncidentChanged(i) for i in sorted(set(stale)) if i not in listed]

    def _confirmed(self, maybe: list[str], now: float) -> list[str]:
        """Of incidents whose published list may be wrong, those it is: ranked afresh and
        compared (``RecommendationWatch.differs``), and marked for republishing.

        More than ``CONFIRM_MAX`` at once (a storm, a unit coming on duty in a busy city)
        are all republished unconfirmed: a few more publications instead of a ranking each.
        """
        if not maybe:
            return []
        watch, incidents = self.ctx.watch, self.st.incidents
        if len(maybe) > CONFIRM_MAX:
            return watch.mark(maybe)
        check = [incidents[i] for i in maybe if i in incidents]
        k = self.ctx.settings.dispatch.responders
        ranked = self.ranker.fastest_many([(i.lat, i.lon) for i in check], k + 1, now)
        return watch.mark(
            inc.id
            for inc, fresh in zip(check, ranked, strict=True)
            if watch.differs(inc.id, inc.lat, inc.lon, fresh)
        )

    def stale_due(self, now: float) -> list[Effect]:
        """Republish the incidents listing a unit not heard from within ``stale_after_s``,
        and those the moves not looked at yet make wrong (``RecommendationWatch.flush``)."""
        cutoff = now - self.ctx.settings.dispatch.stale_after_s
        responders = self.st.responders

        def silent(responder_id: str) -> bool:
            resp = responders.get(responder_id)
            return resp is None or resp.last_seen < cutoff

        watch = self.ctx.watch
        flagged = watch.stale_due(silent) + self._confirmed(watch.flush(now), now)
        return [IncidentChanged(i) for i in sorted(set(flagged))]

    # --- reports -------------------------------------------------------------------------

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
        if status in LEAVING:
            resp.incident_id = resp.assigned_by = None
            unit_left(self.ctx, inc, resp.id, f"reported {status.value}", now)
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
        before = self.before(resp, now)
        resp.incident_id = None
        resp.assigned_by = None
        if resp.status is not ResponderStatus.OFF_DUTY:
            resp.status = ResponderStatus.AVAILABLE
            resp.status_since = now
        effects.append(ResponderChanged(resp.id))
        self.changed(resp, now, before, effects)

    # --- dispatch support -----------------------------------------------------------------

    def recommend(self, inc: Incident, k: int, now: float) -> list[Recommendation]:
        """The ``k`` units with the lowest ETA that can take the job, ties by id."""
        if k <= 0 or not has_position(inc):
            return []
        ranked = self.ranker.fastest_many([(inc.lat, inc.lon)], k, now)[0]
        return [recommendation(r, self.neighbour_home(r.responder_id)) for r in ranked]

    def neighbour_home(self, responder_id: str) -> str | None:
        """The home district of a neighbour partition's unit; None for an own one."""
        resp = self.st.responders.get(responder_id)
        if resp is None or self.ctx.own_unit(responder_id):
            return None
        return resp.home


class Before:
    """A unit as it was before a change, as far as recommendations care."""

    __slots__ = ("eligible", "kind", "lat", "lon")

    def __init__(self, eligible: bool, kind: UnitKind, lat: float, lon: float) -> None:
        self.eligible = eligible
        self.kind = kind
        self.lat = lat
        self.lon = lon


def recommendation(r: Ranked, home: str | None = None) -> Recommendation:
    """What the console is shown of a ranked unit: metres to 0.1, ETA to the second, and
    ``home``, the home district of a neighbour partition's unit (None: an own one)."""
    return Recommendation(
        responder_id=r.responder_id,
        kind=r.kind,
        distance_m=round(r.distance_m, 1),
        eta_s=float(round(r.eta)),
        home=home,
    )


def unit_left(
    ctx: Context,
    inc: Incident,
    responder_id: str,
    why: str,
    now: float,
    *,
    actor: str | None = None,
    action: str = "released",
) -> None:
    """``responder_id`` no longer works ``inc`` (it reported itself free, or was taken away).

    Recorded, and the incident carries an alert for its owner. The last unit leaving a
    dispatched or on-scene incident puts it back to acknowledged: it needs a new dispatch,
    and a P1's dispatch deadline counts again. The next dispatch, or closing, clears the alert.
    """
    if responder_id in inc.responders:
        inc.responders.remove(responder_id)
    record_history(inc, now, actor or responder_id, action, f"{responder_id} {why}")
    alert = f"{responder_id} left: {why}"
    if not inc.responders and inc.status in ACTIVE:
        inc.status = IncidentStatus.ACKNOWLEDGED
        alert += "; no unit assigned, dispatch again"
        record_history(inc, now, CORE, "needs dispatch", f"no unit left after {responder_id}")
        arm_sla(ctx, inc, now)
    elif inc.responders:
        alert += f"; {len(inc.responders)} still assigned"
    inc.alert = alert[:200]
    inc.alert_ts = now
