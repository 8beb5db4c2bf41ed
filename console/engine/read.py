"""The read side: the state the core publishes, built from the engine's state."""

from __future__ import annotations

from collections.abc import Sequence

from console.engine.cameras import camera_status
from console.engine.context import Context
from console.engine.effects import Effect
from console.engine.incidents import CORE, has_position
from console.engine.model import Incident
from console.engine.responders import Responders, recommendation
from console.engine.sos import receipt
from console.engine.spatial_batch import nearest_many
from protocols.camera_pages import camera_counts
from protocols.schemas import (
    CameraCell,
    DistrictCameras,
    HistoryEntry,
    IncidentState,
    NearbyCamera,
    NearbyShelter,
    Recommendation,
    ResponderState,
    SosAlarm,
    Summary,
)

SHELTER_MEMO_MAX = 200_000  # positions remembered (about 100 bytes each plus the tuples)

_ShelterMemo = dict[tuple[float, float], tuple[NearbyShelter, ...]]


# One incident is one retained message, which must stay far below the broker's packet
# limit (deploy/: 8 MiB; a bigger publish disconnects the core) whatever a source or an
# operator repeats: a stream of impossible jumps adds a history entry each, and notes are
# unbounded. The engine and the journal keep everything; the state shows the first
# entries (what opened it), the latest, and how many lie between.
PUBLISHED_HISTORY_HEAD = 20
PUBLISHED_HISTORY_TAIL = 180
PUBLISHED_NOTES = 100  # the latest


def published_history(history: list[HistoryEntry]) -> tuple[HistoryEntry, ...]:
    head, tail = PUBLISHED_HISTORY_HEAD, PUBLISHED_HISTORY_TAIL
    if len(history) <= head + tail:
        return tuple(history)
    left_out = len(history) - head - tail
    gap = HistoryEntry(
        ts=history[head].ts,
        actor=CORE,
        action="omitted",
        detail=f"{left_out} entries not shown here; the journal has every one",
    )
    return (*history[:head], gap, *history[-tail:])


class ReadSide:
    """What the core publishes: incident, camera, responder states and the summary."""

    def __init__(self, ctx: Context, responders: Responders) -> None:
        self.ctx = ctx
        self.st = ctx.st
        self.responders = responders
        # Nearest shelters by position, valid for the shelter index they were asked of.
        self._shelter_memo: tuple[object, _ShelterMemo] = (None, {})

    def incident_state(self, incident_id: str, now: float) -> IncidentState:
        """An open or recently closed incident, with dispatch support (KeyError if unknown)."""
        return self.incident_states([incident_id], now)[0]

    def incident_states(self, incident_ids: Sequence[str], now: float) -> list[IncidentState]:
        """:meth:`incident_state` of each, the fastest-responder and nearest-shelter questions
        of all of them asked at once (:mod:`console.engine.eta_rank`,
        :mod:`console.engine.spatial_batch`: a fraction of the numpy calls of one by one).

        What is computed here is what the core publishes: the recommendations are
        remembered (``Context.watch``), so a unit's later change republishes exactly the
        incidents whose list it makes wrong.
        """
        incs = [self.st.incidents.get(i) or self.st.closed[i] for i in incident_ids]
        helped = [inc for inc in incs if inc.id in self.st.incidents and has_position(inc)]
        k = self.ctx.settings.dispatch.responders
        watch = self.ctx.watch
        # One more than shown: the best unit left out bounds what may change unseen.
        found = self.responders.ranker.fastest_many([(i.lat, i.lon) for i in helped], k + 1, now)
        home = self.responders.neighbour_home
        recommended = {
            inc.id: tuple(recommendation(r, home(r.responder_id)) for r in ranked[:k])
            for inc, ranked in zip(helped, found, strict=True)
        }
        watch.record_many(
            [(inc.id, inc.lat, inc.lon, ranked) for inc, ranked in zip(helped, found, strict=True)]
        )
        for inc in incs:
            if inc.id not in recommended:
                watch.forget(inc.id)
        shelters = self._shelters_of(helped)
        return [
            self._state(inc, self._nearby_cameras(inc), recommended[inc.id], shelters[inc.id])
            if inc.id in recommended  # open, with a position: dispatch support
            else self._state(inc, (), (), ())
            for inc in incs
        ]

    def _state(
        self,
        inc: Incident,
        cameras: tuple[NearbyCamera, ...],
        recommended: tuple[Recommendation, ...],
        shelters: tuple[NearbyShelter, ...],
    ) -> IncidentState:
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
            notes=tuple(inc.notes[-PUBLISHED_NOTES:]),
            history=published_history(inc.history),
            ack_deadline=inc.ack_deadline,
            dispatch_deadline=inc.dispatch_deadline,
            acknowledged_at=inc.acknowledged_at,
            closed_at=inc.closed_at,
            disposition=inc.disposition,
            cameras=cameras,
            recommended=recommended,
            shelters=shelters,
            alert=inc.alert,
            alert_ts=inc.alert_ts,
            home=inc.home or inc.district,
            partition=self.ctx.settings.partition,
        )

    def _nearby_cameras(self, inc: Incident) -> tuple[NearbyCamera, ...]:
        limit = self.ctx.settings.dispatch.cameras
        if limit <= 0:
            return ()
        found = self.ctx.cam_index.within(
            inc.lat, inc.lon, self.ctx.settings.dispatch.camera_radius_m, limit=limit + 4
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
                    status=camera_status(cam),
                    name=cam.name,
                    snapshot_url=inc.snapshots.get(cam.id),
                )
            )
        return tuple(out)

    def _shelters_of(self, incs: list[Incident]) -> dict[str, tuple[NearbyShelter, ...]]:
        """Memoised by position: shelters only change with ``set_shelters``, which builds a
        new index (and so empties the memo). Positions not in the memo are asked at once."""
        index = self.ctx.shelter_index
        memo = self._shelter_memo
        if memo[0] is not index:
            memo = self._shelter_memo = (index, {})
        cache = memo[1]
        missing = list(dict.fromkeys((i.lat, i.lon) for i in incs if (i.lat, i.lon) not in cache))
        k = self.ctx.settings.dispatch.shelters
        if len(cache) + len(missing) > SHELTER_MEMO_MAX:
            cache.clear()
            missing = list(dict.fromkeys((i.lat, i.lon) for i in incs))
        if missing:
            if k <= 0 or not self.ctx.shelters_by_id:
                found: list[list[tuple[str, float]]] = [[] for _ in missing]
            else:
                found = nearest_many(self.ctx.shelter_index, missing, k + 4, active_only=False)
            for position, near in zip(missing, found, strict=True):
                cache[position] = self._shelters_from(near, k)
        return {i.id: cache[(i.lat, i.lon)] for i in incs}

    def _shelters_from(self, found: list[tuple[str, float]], k: int) -> tuple[NearbyShelter, ...]:
        found.sort(key=lambda kd: (kd[1], kd[0]))
        out = []
        for shelter_id, dist in found[:k]:
            s = self.ctx.shelters_by_id[shelter_id]
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
        """Districts with cameras this partition publishes (``district_cams`` holds no
        neighbour's camera)."""
        return sorted(self.ctx.district_cams)

    def district_cameras(self, district: str, now: float) -> DistrictCameras:
        cells = []
        for camera_id in sorted(self.ctx.district_cams.get(district, ())):
            cam = self.st.cameras[camera_id]
            if cam.lat is None or cam.lon is None:
                continue  # unplaced: known (its faults are incidents), never shown at 0, 0
            cells.append(
                CameraCell(
                    id=cam.id,
                    status=camera_status(cam),
                    lat=cam.lat,
                    lon=cam.lon,
                    name=cam.name,
                    last_seen=cam.last_seen,
                )
            )
        return DistrictCameras(
            district=district, ts=now, cameras=tuple(cells), **camera_counts(cells)
        )

    def responder_ids(self) -> list[str]:
        """The units this partition publishes: not a neighbour's (read as context only)."""
        neighbours = self.st.border_units
        if not neighbours:
            return list(self.st.responders)
        return [rid for rid in self.st.responders if rid not in neighbours]

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
            district=self.ctx.district(r.lat, r.lon),
            home=r.home or self.ctx.district(r.lat, r.lon),
        )

    def summary(self, now: float) -> Summary:
        st = self.st
        oldest = next(iter(st.unacked.values()), None) if st.unacked else None
        return Summary(
            ts=now,
            partition=self.ctx.settings.partition,
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
        return [receipt(event, seen[0], now)]
