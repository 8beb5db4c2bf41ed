"""SOS alarms from phones: a new incident, a repeat folded into it, a resend answered.

Every accepted SOS gets a receipt: the phone app shows the person that the
control room has her alarm. A resend (same source and alarm id) gets the same
receipt again and changes nothing; a new alarm from a device whose SOS incident
is still open, within ``sos_fold_s`` of its last one, folds into that incident.
"""

from __future__ import annotations

from console.engine.context import Context
from console.engine.effects import Effect, IncidentChanged, SendReceipt
from console.engine.incidents import CORE, Incidents, record_history
from console.engine.model import PART_SOS, Incident
from console.engine.rules import coords, sos_title
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

    def __init__(self, ctx: Context, incidents: Incidents) -> None:
        self.ctx = ctx
        self.st = ctx.st
        self.incidents = incidents

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
        detail = f"{ev.trigger.value}, ±{ev.accuracy_m:.0f} m"
        if ev.battery is not None:
            detail += f", battery {ev.battery}%"
        event = CorrelatedEvent(ts=ev.ts, kind="sos", source=ev.device_id, detail=detail[:200])
        open_id = st.device_open.get(ev.device_id)
        inc = st.incidents.get(open_id) if open_id is not None else None
        if inc is not None and now - inc.last_sos <= self.ctx.settings.correlation.sos_fold_s:
            inc.sos_count += 1
            self.incidents.add_event(inc, event, now)
            # The person may be moving: the incident follows the latest fix.
            inc.lat, inc.lon = ev.lat, ev.lon
            self.ctx.sos_index.upsert(inc.id, ev.lat, ev.lon)
            inc.place, inc.district = self._place(ev.lat, ev.lon)
            inc.last_sos = inc.last_event = now
            inc.person = ev.name or inc.person
            inc.phone = ev.phone or inc.phone
            effects.append(IncidentChanged(inc.id))
        else:
            place, district = self._place(ev.lat, ev.lon)
            priority = self.ctx.settings.priority.sos
            inc = Incident(
                id=self.incidents.next_id(),
                kind=IncidentKind.SOS,
                priority=priority,
                status=IncidentStatus.NEW,
                lat=ev.lat,
                lon=ev.lon,
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
            )
            record_history(inc, now, CORE, "opened", f"SOS {ev.alarm_id} from {ev.source}")
            st.device_open[ev.device_id] = inc.id
            self.incidents.open(inc, now, effects)
        st.alarms[key] = (inc.id, now)
        effects.append(receipt(ev, inc.id, now))
        return effects

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
