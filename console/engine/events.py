"""Raw events into incidents: SOS folding, CCTV correlation, camera faults, responders."""

from __future__ import annotations

from console.engine.base import CORE, EngineBase, is_fault
from console.engine.effects import (
    CameraChanged,
    Effect,
    IncidentChanged,
    Rejected,
    ResponderChanged,
    SendReceipt,
)
from console.engine.model import PART_FAULT, PART_SOS, Camera, Incident, Responder
from console.engine.rules import cctv_priority, cctv_title, coords, fault_title, sos_title
from protocols.schemas import (
    CameraHealth,
    CameraHealthStatus,
    CctvEvent,
    CorrelatedEvent,
    IncidentKind,
    IncidentStatus,
    Receipt,
    ResponderReport,
    ResponderStatus,
    SosAlarm,
)


class EventHandlers(EngineBase):
    # --- SOS -----------------------------------------------------------------------------

    def _receipt(self, ev: SosAlarm, incident_id: str, now: float) -> SendReceipt:
        return SendReceipt(
            Receipt(alarm_id=ev.alarm_id, source=ev.source, incident_id=incident_id, ts=now)
        )

    def _on_sos(self, ev: SosAlarm, now: float) -> list[Effect]:
        st = self.st
        key = f"{ev.source}/{ev.alarm_id}"
        seen = st.alarms.get(key)
        if seen is not None:
            # A resend of an alarm we hold: same receipt, nothing counted again.
            return [self._receipt(ev, seen[0], now)]
        self._prune(now)
        st.events_total += 1
        effects: list[Effect] = []
        detail = f"{ev.trigger.value}, ±{ev.accuracy_m:.0f} m"
        if ev.battery is not None:
            detail += f", battery {ev.battery}%"
        event = CorrelatedEvent(ts=ev.ts, kind="sos", source=ev.device_id, detail=detail[:200])
        open_id = st.device_open.get(ev.device_id)
        inc = st.incidents.get(open_id) if open_id is not None else None
        if inc is not None and now - inc.last_sos <= self.cfg.correlation.sos_fold_s:
            inc.sos_count += 1
            self._add_event(inc, event, now)
            # The person may be moving: the incident follows the latest fix.
            inc.lat, inc.lon = ev.lat, ev.lon
            self.sos_index.upsert(inc.id, ev.lat, ev.lon)
            inc.place, inc.district = self._place(ev.lat, ev.lon)
            inc.last_sos = inc.last_event = now
            inc.person = ev.name or inc.person
            inc.phone = ev.phone or inc.phone
            effects.append(IncidentChanged(inc.id))
        else:
            place, district = self._place(ev.lat, ev.lon)
            inc = Incident(
                id=self._next_id(),
                kind=IncidentKind.SOS,
                priority=self.cfg.priority.sos,
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
                parts={PART_SOS: self.cfg.priority.sos},
                last_event=now,
                last_sos=now,
                device_id=ev.device_id,
            )
            self._history(inc, now, CORE, "opened", f"SOS {ev.alarm_id} from {ev.source}")
            st.device_open[ev.device_id] = inc.id
            self._open_incident(inc, now, effects)
        st.alarms[key] = (inc.id, now)
        effects.append(self._receipt(ev, inc.id, now))
        return effects

    def _place(self, lat: float, lon: float) -> tuple[str, str]:
        """(place, district) of a position: near the closest camera, else coordinates."""
        near = self.cam_index.nearest(lat, lon, 1, active_only=False)
        cam = self.st.cameras.get(near[0][0]) if near else None
        if cam is not None and near[0][1] <= self.cfg.dispatch.camera_radius_m:
            return f"near {cam.name or cam.id}"[:200], self._district(lat, lon, cam.district)
        return coords(lat, lon), self._district(lat, lon)

    def _nearest_open_sos(self, lat: float, lon: float, now: float) -> Incident | None:
        corr = self.cfg.correlation
        for incident_id, _dist in self.sos_index.within(lat, lon, corr.radius_m):
            inc = self.st.incidents.get(incident_id)
            if inc is not None and now - inc.last_sos <= corr.window_s:
                return inc
        return None

    # --- CCTV ----------------------------------------------------------------------------

    def _on_cctv(self, ev: CctvEvent, now: float) -> list[Effect]:
        st = self.st
        key = f"{ev.camera_id}/{ev.event_id}"
        seen = st.cctv_events.get(key)
        if ev.withdrawn:
            return self._withdraw(ev, key, seen[0] if seen else None, now)
        if seen is not None:
            return self._update_cctv(ev, key, seen[0], now)
        self._prune(now)
        effects: list[Effect] = []
        cam = st.cameras.get(ev.camera_id)
        lat = ev.lat if ev.lat is not None else (cam.lat if cam else None)
        lon = ev.lon if ev.lon is not None else (cam.lon if cam else None)
        if lat is None or lon is None:
            st.rejected_total += 1
            return [
                Rejected(f"CCTV event {ev.event_id}: camera {ev.camera_id} has no known position")
            ]
        st.events_total += 1
        if cam is None:
            cam = self._register_camera(ev.camera_id, lat, lon, now, effects)
        cam.last_seen = max(cam.last_seen, now)
        priority = cctv_priority(self.cfg.priority, ev.kind, now)
        part = f"cctv:{key}"
        event = CorrelatedEvent(
            ts=ev.ts,
            kind=ev.kind.value,
            source=ev.camera_id,
            detail=f"confidence {ev.confidence:.2f}, event {ev.event_id}"[:200],
            snapshot_url=ev.snapshot_url,
        )
        target = self._nearest_open_sos(lat, lon, now)
        fold_key = f"{ev.camera_id}/{ev.kind.value}"
        if target is None:
            fold_id = st.cctv_open.get(fold_key)
            fold = st.incidents.get(fold_id) if fold_id is not None else None
            if fold is not None and now - fold.last_event <= self.cfg.correlation.cctv_fold_s:
                target = fold
        if target is not None:
            self._add_event(target, event, now)
            target.parts[part] = priority
            if target.kind is IncidentKind.CCTV:
                target.last_event = now
            self._reprioritise(target, now, effects)
            effects.append(IncidentChanged(target.id))
        else:
            target = Incident(
                id=self._next_id(),
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
            self._history(target, now, CORE, "opened", f"{ev.kind.value} on {ev.camera_id}")
            st.cctv_open[fold_key] = target.id
            self._open_incident(target, now, effects)
        if ev.snapshot_url:
            target.snapshots[ev.camera_id] = ev.snapshot_url
        self._camera_alarm(target, ev.camera_id, +1, effects)
        st.cctv_events[key] = (target.id, now)
        st.cctv_latest[key] = (ev.kind.value, now, ev.confidence)
        return effects

    def _update_cctv(self, ev: CctvEvent, key: str, incident_id: str, now: float) -> list[Effect]:
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
        self._prune(now)
        st.events_total += 1
        effects: list[Effect] = []
        inc.parts[part] = min(inc.parts[part], cctv_priority(self.cfg.priority, ev.kind, now))
        st.cctv_latest[key] = (ev.kind.value, first_seen, max(prev_confidence, ev.confidence))
        if kind_changed:
            change = f"{prev_kind} → {ev.kind.value}"
        else:
            change = f"confidence {prev_confidence:.2f} → {ev.confidence:.2f}"
        self._add_event(
            inc,
            CorrelatedEvent(
                ts=ev.ts,
                kind=ev.kind.value,
                source=ev.camera_id,
                detail=f"update: {change}, event {ev.event_id}"[:200],
                snapshot_url=ev.snapshot_url,
            ),
            now,
        )
        if kind_changed:
            self._history(inc, now, CORE, "updated", f"event {ev.event_id}: {change}")
            if (
                inc.kind is IncidentKind.CCTV
                and inc.camera_id == ev.camera_id
                and list(inc.parts) == [part]
            ):
                self._rekind_cctv(inc, ev)
        if inc.kind is IncidentKind.CCTV:
            inc.last_event = now
        if ev.snapshot_url:
            inc.snapshots[ev.camera_id] = ev.snapshot_url
        self._reprioritise(inc, now, effects)
        effects.append(IncidentChanged(inc.id))
        return effects

    def _rekind_cctv(self, inc: Incident, ev: CctvEvent) -> None:
        """A CCTV incident of one event whose kind changed: new title, new fold key."""
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
        inc = st.incidents.get(incident_id) if incident_id is not None else None
        part = f"cctv:{key}"
        if inc is None or part not in inc.parts:
            # Unknown, already withdrawn, or its incident is closed: nothing left to change.
            return []
        self._prune(now)
        st.events_total += 1
        effects: list[Effect] = []
        del inc.parts[part]
        self._add_event(
            inc,
            CorrelatedEvent(
                ts=ev.ts,
                kind="withdrawn",
                source=ev.camera_id,
                detail=f"{ev.kind.value} event {ev.event_id} withdrawn by the analytics"[:200],
            ),
            now,
        )
        self._camera_alarm(inc, ev.camera_id, -1, effects)
        if inc.kind is IncidentKind.CCTV and not inc.parts:
            if not inc.responders:
                self._close(
                    inc,
                    IncidentStatus.FALSE_ALARM,
                    now,
                    CORE,
                    "withdrawn by the analytics",
                    effects,
                )
                return effects
            self._history(inc, now, CORE, "withdrawn", "all events withdrawn; units still assigned")
        else:
            self._reprioritise(inc, now, effects)
        effects.append(IncidentChanged(inc.id))
        return effects

    # --- cameras -------------------------------------------------------------------------

    def _register_camera(
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
                self._district(lat, lon) if lat is not None and lon is not None else "unknown"
            )
        cam = Camera(
            id=camera_id, name=name or camera_id, district=district, lat=lat, lon=lon, last_seen=now
        )
        self.st.cameras[camera_id] = cam
        self._index_camera(cam, None)
        effects.append(CameraChanged(cam.id, cam.district))
        return cam

    def _index_camera(self, cam: Camera, old_district: str | None) -> None:
        if cam.lat is not None and cam.lon is not None:
            self.cam_index.upsert(cam.id, cam.lat, cam.lon)
        if old_district is not None and old_district != cam.district:
            members = self.district_cams.get(old_district)
            if members is not None:
                members.pop(cam.id, None)
                if not members:
                    del self.district_cams[old_district]
        self.district_cams.setdefault(cam.district, {})[cam.id] = None

    def _on_camera(self, ev: CameraHealth, now: float) -> list[Effect]:
        st = self.st
        self._prune(now)
        st.events_total += 1
        effects: list[Effect] = []
        cam = st.cameras.get(ev.camera_id)
        changed = False
        if cam is None:
            cam = self._register_camera(
                ev.camera_id, ev.lat, ev.lon, now, effects, ev.name, ev.district
            )
        else:
            changed = self._update_camera(cam, ev, effects)
        cam.last_seen = max(cam.last_seen, now)
        old_health = cam.health
        if ev.status is not old_health:
            cam.health = ev.status
            changed = True
            self._camera_fault(cam, old_health, ev, now, effects)
        if changed:
            effects.append(CameraChanged(cam.id, cam.district))
        return effects

    def _update_camera(self, cam: Camera, ev: CameraHealth, effects: list[Effect]) -> bool:
        """Apply the descriptive fields of a health report; True if any changed."""
        changed = False
        old_district = cam.district
        if ev.name is not None and ev.name != cam.name:
            cam.name, changed = ev.name, True
        if ev.lat is not None and ev.lon is not None and (ev.lat, ev.lon) != (cam.lat, cam.lon):
            cam.lat, cam.lon, changed = ev.lat, ev.lon, True
            if not ev.district:
                cam.district = self._district(ev.lat, ev.lon, cam.district)
        if ev.district:
            cam.district = ev.district
        if changed or cam.district != old_district:
            self._index_camera(cam, old_district)
            if cam.district != old_district:
                effects.append(CameraChanged(cam.id, old_district))
            changed = True
        return changed

    def _camera_fault(
        self,
        cam: Camera,
        old: CameraHealthStatus,
        ev: CameraHealth,
        now: float,
        effects: list[Effect],
    ) -> None:
        st = self.st
        open_id = st.fault_open.get(cam.id)
        inc = st.incidents.get(open_id) if open_id is not None else None
        event = CorrelatedEvent(
            ts=ev.ts, kind=ev.status.value, source=cam.id, detail=f"{old.value} → {ev.status.value}"
        )
        if not is_fault(ev.status):
            if inc is not None:  # recovery: recorded, the operator closes the fault
                self._add_event(inc, event, now)
                inc.last_event = now
                effects.append(IncidentChanged(inc.id))
            return
        if inc is not None and now - inc.last_event <= self.cfg.correlation.flap_window_s:
            self._add_event(inc, event, now)
            inc.last_event = now
            effects.append(IncidentChanged(inc.id))
            return
        priority = self.cfg.priority.camera_fault
        has_pos = cam.lat is not None and cam.lon is not None
        inc = Incident(
            id=self._next_id(),
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
        self._history(inc, now, CORE, "opened", f"camera {cam.id} {ev.status.value}")
        st.fault_open[cam.id] = inc.id
        self._open_incident(inc, now, effects)

    # --- responders ----------------------------------------------------------------------

    def _on_responder(self, ev: ResponderReport, now: float) -> list[Effect]:
        st = self.st
        self._prune(now)
        st.events_total += 1
        effects: list[Effect] = [ResponderChanged(ev.responder_id)]
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
            )
            st.responders[resp.id] = resp
        else:
            resp.kind, resp.lat, resp.lon = ev.kind, ev.lat, ev.lon
            resp.last_seen = max(resp.last_seen, now)
            if ev.name is not None:
                resp.name = ev.name
            if ev.position_only:
                # A bare fix (OwnTracks): the status and the assignment stay as they are.
                self.resp_index.upsert(
                    resp.id, resp.lat, resp.lon, resp.status is ResponderStatus.AVAILABLE
                )
                return effects
            inc = st.incidents.get(resp.incident_id) if resp.incident_id is not None else None
            if resp.incident_id is not None and inc is None:
                resp.incident_id = resp.assigned_by = None
            if inc is not None:
                self._assigned_report(resp, inc, ev.status, now, effects)
            if ev.status is not resp.status:
                resp.status = ev.status
                resp.status_since = now
        self.resp_index.upsert(
            resp.id, resp.lat, resp.lon, resp.status is ResponderStatus.AVAILABLE
        )
        return effects

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
            self._history(inc, now, resp.id, "released", f"{resp.id} reported {status.value}")
        elif status is ResponderStatus.ON_SCENE and inc.status is IncidentStatus.DISPATCHED:
            inc.status = IncidentStatus.ON_SCENE
            self._history(inc, now, resp.id, "on-scene", f"{resp.id} reported on scene")
        else:
            self._history(inc, now, resp.id, status.value, f"{resp.id} reported {status.value}")
        effects.append(IncidentChanged(inc.id))
