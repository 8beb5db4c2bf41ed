"""The read side: the state the core publishes, built from the engine's state."""

from __future__ import annotations

from console.effects import Effect, SendReceipt
from console.engine_base import EngineBase, has_position
from console.engine_model import Incident
from protocols.schemas import (
    CameraCell,
    CameraStatus,
    DistrictCameras,
    IncidentState,
    NearbyCamera,
    NearbyShelter,
    Receipt,
    Recommendation,
    ResponderState,
    SosAlarm,
    Summary,
)

SHELTER_MEMO_MAX = 200_000  # positions remembered (about 100 bytes each plus the tuples)


class ReadSide(EngineBase):
    def incident_state(self, incident_id: str, now: float) -> IncidentState:
        """An open or recently closed incident, with dispatch support (KeyError if unknown)."""
        inc = self.st.incidents.get(incident_id)
        is_open = inc is not None
        if inc is None:
            inc = self.st.closed[incident_id]
        cameras: tuple[NearbyCamera, ...] = ()
        recommended: tuple[Recommendation, ...] = ()
        shelters: tuple[NearbyShelter, ...] = ()
        if is_open and has_position(inc):
            cameras = self._nearby_cameras(inc)
            recommended = tuple(self._recommend(inc, self.cfg.dispatch.responders))
            shelters = self._nearby_shelters(inc)
        return IncidentState(
            id=inc.id,
            kind=inc.kind,
            priority=inc.priority,
            status=inc.status,
            lat=inc.lat,
            lon=inc.lon,
            district=inc.district,
            place=inc.place,
            source=inc.source,
            title=inc.title,
            created=inc.created,
            updated=inc.updated,
            escalated=inc.escalated,
            owner=inc.owner,
            responders=tuple(inc.responders),
            person=inc.person,
            phone=inc.phone,
            sos_count=inc.sos_count,
            events=tuple(inc.events),
            notes=tuple(inc.notes),
            history=tuple(inc.history),
            ack_deadline=inc.ack_deadline,
            dispatch_deadline=inc.dispatch_deadline,
            acknowledged_at=inc.acknowledged_at,
            closed_at=inc.closed_at,
            disposition=inc.disposition,
            cameras=cameras,
            recommended=recommended,
            shelters=shelters,
        )

    def _nearby_cameras(self, inc: Incident) -> tuple[NearbyCamera, ...]:
        limit = self.cfg.dispatch.cameras
        if limit <= 0:
            return ()
        found = self.cam_index.within(
            inc.lat, inc.lon, self.cfg.dispatch.camera_radius_m, limit=limit + 4
        )
        found.sort(key=lambda kd: (kd[1], kd[0]))
        out = []
        for camera_id, dist in found[:limit]:
            cam = self.st.cameras.get(camera_id)
            if cam is None:
                continue
            out.append(
                NearbyCamera(
                    camera_id=cam.id,
                    distance_m=round(dist, 1),
                    status=self._camera_status(cam),
                    name=cam.name,
                    snapshot_url=inc.snapshots.get(cam.id),
                )
            )
        return tuple(out)

    def _nearby_shelters(self, inc: Incident) -> tuple[NearbyShelter, ...]:
        """Memoised by position: shelters only change with ``set_shelters``, which builds a
        new index (and so empties the memo). Was ~40 % of ``incident_state`` under a storm."""
        memo = self.__dict__.get("_shelter_memo")
        if memo is None or memo[0] is not self.shelter_index:
            memo = (self.shelter_index, {})
            self.__dict__["_shelter_memo"] = memo
        cache: dict[tuple[float, float], tuple[NearbyShelter, ...]] = memo[1]
        key = (inc.lat, inc.lon)
        found = cache.get(key)
        if found is None:
            if len(cache) >= SHELTER_MEMO_MAX:
                cache.clear()
            found = cache[key] = self._find_shelters(inc)
        return found

    def _find_shelters(self, inc: Incident) -> tuple[NearbyShelter, ...]:
        k = self.cfg.dispatch.shelters
        if k <= 0 or not self.shelters_by_id:
            return ()
        found = self.shelter_index.nearest(inc.lat, inc.lon, k + 4, active_only=False)
        found.sort(key=lambda kd: (kd[1], kd[0]))
        out = []
        for shelter_id, dist in found[:k]:
            s = self.shelters_by_id[shelter_id]
            out.append(
                NearbyShelter(
                    shelter_id=s.id,
                    name=s.name,
                    kind=s.kind,
                    distance_m=round(dist, 1),
                    lat=s.lat,
                    lon=s.lon,
                )
            )
        return tuple(out)

    def open_incident_ids(self) -> list[str]:
        return list(self.st.incidents)

    def districts(self) -> list[str]:
        return sorted(self.district_cams)

    def district_cameras(self, district: str, now: float) -> DistrictCameras:
        cells = []
        counts = {"online": 0, "offline": 0, "tampered": 0, "alarm": 0}
        for camera_id in sorted(self.district_cams.get(district, ())):
            cam = self.st.cameras[camera_id]
            status = self._camera_status(cam)
            bucket = "offline" if status is CameraStatus.VIDEO_LOSS else status.value
            counts[bucket] += 1
            cells.append(
                CameraCell(
                    id=cam.id,
                    status=status,
                    lat=cam.lat if cam.lat is not None else 0.0,
                    lon=cam.lon if cam.lon is not None else 0.0,
                    name=cam.name,
                    last_seen=cam.last_seen,
                )
            )
        return DistrictCameras(district=district, ts=now, cameras=tuple(cells), **counts)

    def responder_ids(self) -> list[str]:
        return list(self.st.responders)

    def responder_state(self, responder_id: str) -> ResponderState:
        r = self.st.responders[responder_id]
        return ResponderState(
            id=r.id,
            kind=r.kind,
            status=r.status,
            lat=r.lat,
            lon=r.lon,
            last_seen=r.last_seen,
            status_since=r.status_since,
            name=r.name,
            incident_id=r.incident_id,
        )

    def summary(self, now: float) -> Summary:
        st = self.st
        oldest = next(iter(st.unacked.values()), None) if st.unacked else None
        return Summary(
            ts=now,
            open_by_priority=(
                st.open_by_priority[0],
                st.open_by_priority[1],
                st.open_by_priority[2],
                st.open_by_priority[3],
            ),
            open_total=len(st.incidents),
            oldest_unacked=oldest,
            events_total=st.events_total,
            rejected_total=st.rejected_total,
        )

    def receipt_for(self, event: object, now: float) -> list[Effect]:
        """The receipt owed for an SOS already journaled (a resend); changes nothing."""
        if not isinstance(event, SosAlarm):
            return []
        seen = self.st.alarms.get(f"{event.source}/{event.alarm_id}")
        if seen is None:
            return []
        receipt = Receipt(alarm_id=event.alarm_id, source=event.source, incident_id=seen[0], ts=now)
        return [SendReceipt(receipt)]
