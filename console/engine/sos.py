"""SOS alarms from phones: a new incident, a repeat folded into it, a resend answered.

Every accepted SOS gets a receipt: the phone app shows the person that the
control room has her alarm. A resend (same source and alarm id) gets the same
receipt again and changes nothing; a new alarm from the same source and device
whose SOS incident is still open, within ``sos_fold_s`` of its last one, folds
into that incident. An SOS is never refused: a position outside the service
area, an impossible jump or a wrong clock is recorded in the history and only
that part is not believed (``console.engine.trust``).
"""

from __future__ import annotations

from console.engine.context import Context
from console.engine.effects import Effect, IncidentChanged, SendReceipt
from console.engine.incidents import CORE, Incidents, has_position, record_history
from console.engine.model import PART_SOS, Incident, device_key
from console.engine.rules import coords, sos_title
from console.engine.trust import Trust, where
from protocols.schemas import (
    CorrelatedEvent,
    IncidentKind,
    IncidentStatus,
    Receipt,
    SosAlarm,
)


def receipt(ev: SosAlarm, incident_id: str, now: float) -> SendReceipt:
    return SendReceipt(
        Receipt(alarm_id=ev.alarm_id, source=ev.source, incident_id=incident_id, ts=now)
    )


class SosAlarms:
    """SOS alarms into incidents, and the open SOS incidents a CCTV event may join."""

    def __init__(self, ctx: Context, incidents: Incidents, trust: Trust) -> None:
        self.ctx = ctx
        self.st = ctx.st
        self.incidents = incidents
        self.trust = trust

    def handle(self, ev: SosAlarm, now: float) -> list[Effect]:
        st = self.st
        key = f"{ev.source}/{ev.alarm_id}"
        seen = st.alarms.get(key)
        if seen is not None:
            # A resend of an alarm we hold: same receipt, nothing counted again.
            return [receipt(ev, seen[0], now)]
        self.ctx.prune(now)
        st.events_total += 1
        effects: list[Effect] = []
        trust = self.trust
        # A phone's clock may be wrong: the alarm is kept, with the receive time.
        ts, clock = trust.believed_time(ev.ts, now, trust.rules.max_age_sos_s)
        fix_ts = min(ts, now)
        detail = f"{ev.trigger.value}, ±{ev.accuracy_m:.0f} m"
        if ev.battery is not None:
            detail += f", battery {ev.battery}%"
        event = CorrelatedEvent(ts=ts, kind="sos", source=ev.device_id, detail=detail[:200])
        outside = None
        if not trust.in_area(ev.lat, ev.lon):
            outside = f"position {where(ev.lat, ev.lon)} is outside the service area"
        device = device_key(ev.source, ev.device_id)
        open_id = st.device_open.get(device)
        inc = st.incidents.get(open_id) if open_id is not None else None
        if inc is not None and now - inc.last_sos <= self.ctx.settings.correlation.sos_fold_s:
            inc.sos_count += 1
            self.incidents.add_event(inc, event, now)
            self._follow(inc, ev, fix_ts, outside, now)
            inc.last_sos = inc.last_event = now
            inc.person = ev.name or inc.person
            inc.phone = ev.phone or inc.phone
            effects.append(IncidentChanged(inc.id))
        else:
            inc = self._new(ev, event, fix_ts, outside, now)
            st.device_open[device] = inc.id
            self.incidents.open(inc, now, effects)
        if clock is not None:
            record_history(
                inc, now, CORE, "time replaced", f"SOS {ev.alarm_id}: {clock}; receive time used"
            )
        st.alarms[key] = (inc.id, now)
        effects.append(receipt(ev, inc.id, now))
        return effects

    def _new(
        self,
        ev: SosAlarm,
        event: CorrelatedEvent,
        fix_ts: float,
        outside: str | None,
        now: float,
    ) -> Incident:
        """A new SOS incident; one whose position is not believable is kept, unplaced."""
        if outside is None:
            lat, lon = ev.lat, ev.lon
            place, district = self._place(lat, lon)
        else:
            lat, lon, place, district, fix_ts = 0.0, 0.0, "position unknown", "unknown", 0.0
        priority = self.ctx.settings.priority.sos
        inc = Incident(
            id=self.incidents.next_id(),
            kind=IncidentKind.SOS,
            priority=priority,
            status=IncidentStatus.NEW,
            lat=lat,
            lon=lon,
            district=district,
            place=place,
            source=ev.device_id,
            title=sos_title(ev.trigger),
            created=now,
            updated=now,
            person=ev.name,
            phone=ev.phone,
            sos_count=1,
            events=[event],
            parts={PART_SOS: priority},
            last_event=now,
            last_sos=now,
            device_id=ev.device_id,
            origin=ev.source,
            fix_ts=fix_ts,
        )
        record_history(inc, now, CORE, "opened", f"SOS {ev.alarm_id} from {ev.source}")
        if outside is not None:
            self.st.implausible_total += 1
            record_history(inc, now, CORE, "position unknown", f"SOS {ev.alarm_id}: {outside}")
        return inc

    def _follow(
        self, inc: Incident, ev: SosAlarm, fix_ts: float, outside: str | None, now: float
    ) -> None:
        """The person may be moving: the incident follows a believable newer fix."""
        if outside is None and (ev.lat, ev.lon) == (inc.lat, inc.lon):
            inc.fix_ts = max(inc.fix_ts, fix_ts)  # where it is already: nothing to judge
            return
        problem = outside
        if problem is None and has_position(inc):
            problem = self.trust.jump(
                self.trust.rules.max_phone_kmh,
                (inc.lat, inc.lon, inc.fix_ts),
                (ev.lat, ev.lon, fix_ts),
            )
        if problem is not None:
            self.st.implausible_total += 1
            record_history(inc, now, CORE, "position kept", f"SOS {ev.alarm_id}: {problem}")
            return
        inc.lat, inc.lon, inc.fix_ts = ev.lat, ev.lon, fix_ts
        self.ctx.sos_index.upsert(inc.id, ev.lat, ev.lon)
        inc.place, inc.district = self._place(ev.lat, ev.lon)

    def _place(self, lat: float, lon: float) -> tuple[str, str]:
        """(place, district) of a position: near the closest camera, else coordinates."""
        ctx = self.ctx
        near = ctx.cam_index.nearest(lat, lon, 1, active_only=False)
        cam = self.st.cameras.get(near[0][0]) if near else None
        if cam is not None and near[0][1] <= ctx.settings.dispatch.camera_radius_m:
            return f"near {cam.name or cam.id}"[:200], ctx.district(lat, lon, cam.district)
        return coords(lat, lon), ctx.district(lat, lon)

    def nearest_open(self, lat: float, lon: float, now: float) -> Incident | None:
        """The nearest open SOS within ``radius_m`` whose latest alarm is in the window."""
        corr = self.ctx.settings.correlation
        for incident_id, _dist in self.ctx.sos_index.within(lat, lon, corr.radius_m):
            inc = self.st.incidents.get(incident_id)
            if inc is not None and now - inc.last_sos <= corr.window_s:
                return inc
        return None
