"""Smart-CCTV events: correlated with an open SOS, folded, updated, withdrawn.

A CCTV event near an open SOS (``radius_m``, ``window_s``) joins it; otherwise
it folds into its camera's open incident of the same kind (``cctv_fold_s``), or
opens one. The same event id again may be an update (a new kind, a higher
confidence) or a withdrawal; each event is a *part* of its incident, and the
incident's priority is the most urgent live part. An update's new kind re-titles
its CCTV incident unless another of the incident's events is more urgent. An event's
end (``ended``, Frigate's ``end``) is recorded on its incident and never opens one.

An event of a neighbour's camera (published into another partition's district, read
across the border: docs/partitions.md) only ever joins an open SOS nearby, exactly as
an own camera's would; with none it is dropped and counted (``border_events_ignored``),
for its owner opens the CCTV incident. It never opens or folds into a CCTV incident here, and never
sets its camera's "alarm" status (the camera's pages are its owner's to publish).
"""

from __future__ import annotations

from console.engine.cameras import Cameras
from console.engine.context import Context
from console.engine.effects import Effect, IncidentChanged, Rejected
from console.engine.incidents import CORE, Incidents, record_history
from console.engine.model import Incident
from console.engine.rules import cctv_priority, cctv_title
from console.engine.sos import SosAlarms
from console.engine.trust import Trust
from protocols.schemas import CctvEvent, CorrelatedEvent, IncidentKind, IncidentStatus


class CctvEvents:
    """CCTV events into incidents; they join an open SOS nearby before anything else."""

    def __init__(
        self, ctx: Context, incidents: Incidents, cameras: Cameras, sos: SosAlarms, trust: Trust
    ) -> None:
        self.ctx = ctx
        self.st = ctx.st
        self.incidents = incidents
        self.cameras = cameras
        self.sos = sos
        self.trust = trust

    def handle(self, ev: CctvEvent, now: float) -> list[Effect]:
        st = self.st
        ctx = self.ctx
        incidents = self.incidents
        key = f"{ev.camera_id}/{ev.event_id}"
        seen = st.cctv_events.get(key)
        if ev.withdrawn:
            return self._withdraw(ev, key, seen[0] if seen else None, now)
        if ev.ended:
            # The end of an event never seen says nothing to act on: it opens nothing.
            return self._end(ev, key, seen[0], now) if seen is not None else []
        if seen is not None:
            return self._update(ev, key, seen[0], now)
        ctx.prune(now)
        effects: list[Effect] = []
        cam = st.cameras.get(ev.camera_id)
        pos = self.trust.cctv_position(ev)
        if pos is None and ctx.across_border(ev.district):
            st.border_events_ignored += 1  # a neighbour's camera never registered here
            return []
        if pos is None:  # Trust.refusal refuses it first; kept for callers that do not ask
            st.rejected_total += 1
            return [
                Rejected(f"CCTV event {ev.event_id}: camera {ev.camera_id} has no known position")
            ]
        lat, lon = pos
        own = self.cameras.whose(ev.camera_id, ev.district, effects)
        if cam is None:
            # Partitioned, the district it was published into decides whose pages list it;
            # unpartitioned, its position does, as it always did.
            named = ev.district if ctx.own_districts else None
            district = self.trust.district(named, lat, lon)
            cam = self.cameras.register(ev.camera_id, lat, lon, now, effects, district=district)
        cam.last_seen = max(cam.last_seen, now)
        target = self.sos.nearest_open(lat, lon, now)
        if not own and target is None:
            st.border_events_ignored += 1  # its owner's core opens the CCTV incident
            return effects
        if own:
            st.events_total += 1
        priority = cctv_priority(ctx.settings.priority, ev.kind, now)
        part = f"cctv:{key}"
        event = CorrelatedEvent(
            ts=self._ts(ev, now),
            kind=ev.kind.value,
            source=ev.camera_id,
            detail=f"confidence {ev.confidence:.2f}, event {ev.event_id}"[:200],
            snapshot_url=ev.snapshot_url,
        )
        fold_key = f"{ev.camera_id}/{ev.kind.value}"
        if target is None:
            fold_id = st.cctv_open.get(fold_key)
            fold = st.incidents.get(fold_id) if fold_id is not None else None
            if fold is not None and now - fold.last_event <= ctx.settings.correlation.cctv_fold_s:
                target = fold
        if target is not None:
            incidents.add_event(target, event, now)
            target.parts[part] = priority
            if target.kind is IncidentKind.CCTV:
                target.last_event = now
            incidents.reprioritise(target, now, effects)
            effects.append(IncidentChanged(target.id))
        else:
            target = Incident(
                id=incidents.next_id(),
                kind=IncidentKind.CCTV,
                priority=priority,
                status=IncidentStatus.NEW,
                lat=lat,
                lon=lon,
                district=cam.district,
                place=(cam.name or cam.id)[:200],
                source=ev.camera_id,
                title=cctv_title(ev.kind, cam.name or cam.id),
                created=now,
                updated=now,
                events=[event],
                parts={part: priority},
                last_event=now,
                camera_id=ev.camera_id,
                cctv_kind=ev.kind.value,
            )
            record_history(target, now, CORE, "opened", f"{ev.kind.value} on {ev.camera_id}")
            st.cctv_open[fold_key] = target.id
            incidents.open(target, now, effects)
        if ev.snapshot_url:
            target.snapshots[ev.camera_id] = ev.snapshot_url
        if own:
            incidents.camera_alarm(target, ev.camera_id, +1, effects)
        st.cctv_events[key] = (target.id, now)
        st.cctv_latest[key] = (ev.kind.value, now, ev.confidence)
        return effects

    def _update(self, ev: CctvEvent, key: str, incident_id: str, now: float) -> list[Effect]:
        """The same event id again (a Frigate ``update``).

        A new kind or a higher confidence is recorded on its incident and may raise
        the priority (never lower it: withdrawal is the way down); the same kind at
        the same or a lower confidence is the same event again and changes nothing.
        """
        st = self.st
        prev = st.cctv_latest.get(key)
        if prev is None:
            return []  # held since before updates were tracked: the same event again
        prev_kind, first_seen, prev_confidence = prev
        kind_changed = ev.kind.value != prev_kind
        if not kind_changed and ev.confidence <= prev_confidence:
            return []  # the same event again
        inc = st.incidents.get(incident_id)
        part = f"cctv:{key}"
        if inc is None or part not in inc.parts:
            return []  # its incident is closed, or the event was withdrawn
        self.ctx.prune(now)
        self._count(ev)
        effects: list[Effect] = []
        inc.parts[part] = min(
            inc.parts[part], cctv_priority(self.ctx.settings.priority, ev.kind, now)
        )
        st.cctv_latest[key] = (ev.kind.value, first_seen, max(prev_confidence, ev.confidence))
        if kind_changed:
            change = f"{prev_kind} → {ev.kind.value}"
        else:
            change = f"confidence {prev_confidence:.2f} → {ev.confidence:.2f}"
        self.incidents.add_event(
            inc,
            CorrelatedEvent(
                ts=self._ts(ev, now),
                kind=ev.kind.value,
                source=ev.camera_id,
                detail=f"update: {change}, event {ev.event_id}"[:200],
                snapshot_url=ev.snapshot_url,
            ),
            now,
        )
        if kind_changed:
            record_history(inc, now, CORE, "updated", f"event {ev.event_id}: {change}")
            if inc.kind is IncidentKind.CCTV and inc.camera_id == ev.camera_id:
                # Unless another of its events is more urgent, the incident is now this kind.
                others = [p for k, p in inc.parts.items() if k != part]
                if not others or inc.parts[part] <= min(others):
                    self._rekind(inc, ev)
        if inc.kind is IncidentKind.CCTV:
            inc.last_event = now
        if ev.snapshot_url:
            inc.snapshots[ev.camera_id] = ev.snapshot_url
        self.incidents.reprioritise(inc, now, effects)
        effects.append(IncidentChanged(inc.id))
        return effects

    def _end(self, ev: CctvEvent, key: str, incident_id: str, now: float) -> list[Effect]:
        """The analytics stopped tracking the event: on its incident's record, which stays
        open for the operator (the end of a scream is not the end of the danger)."""
        effects = self._update(ev, key, incident_id, now)  # an end may carry a last change
        inc = self.st.incidents.get(incident_id)
        if inc is None or f"cctv:{key}" not in inc.parts:
            return effects  # its incident is closed, or the event was withdrawn
        if not effects:
            self.ctx.prune(now)
            self._count(ev)
        self.incidents.add_event(
            inc,
            CorrelatedEvent(
                ts=self._ts(ev, now),
                kind="ended",
                source=ev.camera_id,
                detail=f"{ev.kind.value} event {ev.event_id} ended (no longer tracked)"[:200],
            ),
            now,
        )
        record_history(inc, now, CORE, "event ended", f"{ev.kind.value} event {ev.event_id}")
        if IncidentChanged(inc.id) not in effects:
            effects.append(IncidentChanged(inc.id))
        return effects

    def _count(self, ev: CctvEvent) -> None:
        """In ``events_total`` unless a neighbour's camera's: its owner counts that."""
        if self.ctx.own_camera(ev.camera_id):
            self.st.events_total += 1

    def _ts(self, ev: CctvEvent, now: float) -> float:
        """The event's time, or the receive time when the camera's clock is off."""
        return self.trust.believed_time(ev.ts, now, self.trust.rules.max_age_s)[0]

    def _rekind(self, inc: Incident, ev: CctvEvent) -> None:
        """A CCTV incident whose leading event changed kind: new title, new fold key."""
        st = self.st
        old_fold = f"{inc.camera_id}/{inc.cctv_kind}"
        if st.cctv_open.get(old_fold) == inc.id:
            del st.cctv_open[old_fold]
        inc.cctv_kind = ev.kind.value
        st.cctv_open.setdefault(f"{ev.camera_id}/{ev.kind.value}", inc.id)
        cam = st.cameras.get(ev.camera_id)
        inc.title = cctv_title(ev.kind, (cam.name or cam.id) if cam else ev.camera_id)

    def _withdraw(
        self, ev: CctvEvent, key: str, incident_id: str | None, now: float
    ) -> list[Effect]:
        st = self.st
        incidents = self.incidents
        inc = st.incidents.get(incident_id) if incident_id is not None else None
        part = f"cctv:{key}"
        if inc is None or part not in inc.parts:
            # Unknown, already withdrawn, or its incident is closed: nothing left to change.
            return []
        self.ctx.prune(now)
        self._count(ev)
        effects: list[Effect] = []
        del inc.parts[part]
        incidents.add_event(
            inc,
            CorrelatedEvent(
                ts=self._ts(ev, now),
                kind="withdrawn",
                source=ev.camera_id,
                detail=f"{ev.kind.value} event {ev.event_id} withdrawn by the analytics"[:200],
            ),
            now,
        )
        if self.ctx.own_camera(ev.camera_id):
            incidents.camera_alarm(inc, ev.camera_id, -1, effects)
        if inc.kind is IncidentKind.CCTV and not inc.parts:
            if not inc.responders:
                incidents.close(
                    inc,
                    IncidentStatus.FALSE_ALARM,
                    now,
                    CORE,
                    "withdrawn by the analytics",
                    effects,
                )
                return effects
            record_history(
                inc, now, CORE, "withdrawn", "all events withdrawn; units still assigned"
            )
        else:
            incidents.reprioritise(inc, now, effects)
        effects.append(IncidentChanged(inc.id))
        return effects
