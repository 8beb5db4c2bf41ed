"""Cameras: registration, their health reports, and the fault incidents those open.

A camera is known from its first health report or its first CCTV event (which
must then carry a position). A position must be inside the service area
(``Trust.refusal``); a camera known without one is unplaced: its faults open
incidents at "position unknown", it is not published among its district's cameras
(never at 0, 0), and its CCTV events are refused until it is placed. Its district
is the reported one only when that is one of the city's; else the position's. A transition into a fault opens a ``camera-fault``
incident; further faults within the flap window fold into it; recovery is
recorded there and leaves closing it to the operator.

A camera reported into another partition's district (its topic's; read across the
border, docs/partitions.md) is a neighbour's: registered and kept up to date so that
its CCTV events can be placed, and listed among an incident's nearby cameras, but it
never opens a fault, is never published among its district's cameras (its pages are its
owner's) and its reports are not counted in ``events_total`` (its owner counts them).
"""

from __future__ import annotations

from console.engine.context import Context
from console.engine.effects import CameraChanged, Effect, IncidentChanged
from console.engine.incidents import CORE, Incidents, record_history
from console.engine.model import PART_FAULT, Camera, Incident
from console.engine.rules import FAULTS, fault_title
from console.engine.trust import Trust
from protocols.schemas import (
    CameraHealth,
    CameraHealthStatus,
    CameraStatus,
    CorrelatedEvent,
    IncidentKind,
    IncidentStatus,
)


def camera_status(cam: Camera) -> CameraStatus:
    """``alarm`` while an open incident holds a live event of the camera, else its health."""
    if cam.alarms:
        return CameraStatus.ALARM
    return CameraStatus(cam.health.value)


class Cameras:
    """The camera registry, its spatial and per-district indexes, and camera faults."""

    def __init__(self, ctx: Context, incidents: Incidents, trust: Trust) -> None:
        self.ctx = ctx
        self.st = ctx.st
        self.incidents = incidents
        self.trust = trust

    def handle(self, ev: CameraHealth, now: float) -> list[Effect]:
        st = self.st
        self.ctx.prune(now)
        effects: list[Effect] = []
        cam = st.cameras.get(ev.camera_id)
        was_own = self.ctx.own_camera(ev.camera_id)
        own = self.ctx.reported_into(st.border_cameras, ev.camera_id, ev.district)
        changed = False
        if cam is None:
            district = self.trust.district(ev.district, ev.lat, ev.lon)
            cam = self.register(ev.camera_id, ev.lat, ev.lon, now, effects, ev.name, district)
        else:
            old_district = cam.district
            if self._describe(cam, ev) or own is not was_own:
                self._reindex(cam, old_district, was_own, effects)
                changed = True
        cam.last_seen = max(cam.last_seen, now)
        if own:
            st.events_total += 1
        old_health = cam.health
        if ev.status is not old_health:
            cam.health = ev.status
            changed = True
            if own:  # a neighbour's camera fault is its owner's incident
                self._fault(cam, old_health, ev, now, effects)
        if changed and own:
            effects.append(CameraChanged(cam.id, cam.district))
        return effects

    def whose(self, camera_id: str, district: str | None, effects: list[Effect]) -> bool:
        """Whose the camera of a CCTV event published into ``district`` is (True: this
        partition's); a known camera changing hands takes that district and leaves (or
        joins) this partition's camera pages."""
        cam = self.st.cameras.get(camera_id)
        was_own = self.ctx.own_camera(camera_id)
        own = self.ctx.reported_into(self.st.border_cameras, camera_id, district)
        if cam is not None and own is not was_own:
            old_district = cam.district
            cam.district = self.trust.district(district, None, None) or cam.district
            self._reindex(cam, old_district, was_own, effects)
            if own:
                effects.append(CameraChanged(cam.id, cam.district))
        return own

    def register(
        self,
        camera_id: str,
        lat: float | None,
        lon: float | None,
        now: float,
        effects: list[Effect],
        name: str | None = None,
        district: str | None = None,
    ) -> Camera:
        if not district:
            district = (
                self.ctx.district(lat, lon) if lat is not None and lon is not None else "unknown"
            )
        cam = Camera(
            id=camera_id, name=name or camera_id, district=district, lat=lat, lon=lon, last_seen=now
        )
        self.st.cameras[camera_id] = cam
        self._reindex(cam, None, False, effects)
        if self.ctx.own_camera(camera_id):
            effects.append(CameraChanged(cam.id, cam.district))
        return cam

    def _reindex(
        self, cam: Camera, old_district: str | None, was_own: bool, effects: list[Effect]
    ) -> None:
        """Every placed camera in the spatial index (correlation, nearby cameras); only the
        partition's own in ``district_cams``, the camera pages it publishes. A camera that
        leaves an own page (moved, or now a neighbour's) republishes that page."""
        if cam.lat is not None and cam.lon is not None:
            self.ctx.cam_index.upsert(cam.id, cam.lat, cam.lon)
        own = self.ctx.own_camera(cam.id)
        district_cams = self.ctx.district_cams
        if was_own and old_district is not None and (old_district != cam.district or not own):
            members = district_cams.get(old_district)
            if members is not None:
                members.pop(cam.id, None)
                if not members:
                    del district_cams[old_district]
            effects.append(CameraChanged(cam.id, old_district))
        if own:
            district_cams.setdefault(cam.district, {})[cam.id] = None

    def _describe(self, cam: Camera, ev: CameraHealth) -> bool:
        """Apply the descriptive fields of a health report; True if any changed."""
        changed = False
        old_district = cam.district
        if ev.name is not None and ev.name != cam.name:
            cam.name, changed = ev.name, True
        moved = ev.lat is not None and ev.lon is not None and (ev.lat, ev.lon) != (cam.lat, cam.lon)
        if moved:
            cam.lat, cam.lon, changed = ev.lat, ev.lon, True
        if moved or ev.district:
            # Only one of the city's district names is taken; else the position decides.
            cam.district = self.trust.district(ev.district, cam.lat, cam.lon) or cam.district
        return changed or cam.district != old_district

    def _fault(
        self,
        cam: Camera,
        old: CameraHealthStatus,
        ev: CameraHealth,
        now: float,
        effects: list[Effect],
    ) -> None:
        st = self.st
        incidents = self.incidents
        open_id = st.fault_open.get(cam.id)
        inc = st.incidents.get(open_id) if open_id is not None else None
        ts, clock = self.trust.believed_time(ev.ts, now, self.trust.rules.max_age_s)
        detail = f"{old.value} → {ev.status.value}" + (f" ({clock})" if clock else "")
        event = CorrelatedEvent(ts=ts, kind=ev.status.value, source=cam.id, detail=detail[:200])
        if ev.status not in FAULTS:
            if inc is not None:  # recovery: recorded, the operator closes the fault
                incidents.add_event(inc, event, now)
                inc.last_event = now
                effects.append(IncidentChanged(inc.id))
            return
        if inc is not None and now - inc.last_event <= self.ctx.settings.correlation.flap_window_s:
            incidents.add_event(inc, event, now)
            inc.last_event = now
            effects.append(IncidentChanged(inc.id))
            return
        priority = self.ctx.settings.priority.camera_fault
        has_pos = cam.lat is not None and cam.lon is not None
        inc = Incident(
            id=incidents.next_id(),
            kind=IncidentKind.CAMERA_FAULT,
            priority=priority,
            status=IncidentStatus.NEW,
            lat=cam.lat if cam.lat is not None else 0.0,
            lon=cam.lon if cam.lon is not None else 0.0,
            district=cam.district,
            place=(cam.name or cam.id)[:200] if has_pos else "position unknown",
            source=cam.id,
            title=fault_title(ev.status, cam.name or cam.id),
            created=now,
            updated=now,
            events=[event],
            parts={PART_FAULT: priority},
            last_event=now,
            camera_id=cam.id,
        )
        record_history(inc, now, CORE, "opened", f"camera {cam.id} {ev.status.value}")
        st.fault_open[cam.id] = inc.id
        incidents.open(inc, now, effects)
