"""Shared state and helpers of the engine: incidents, history, SLA deadlines, closing.

``EngineBase`` holds the state and the derived indexes; the event handlers
(``engine_events``), the command handlers (``engine_commands``) and the read
side (``engine_read``) are mixins over it, composed in ``console.engine.engine``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any, TypeVar

from console.config import Config
from console.engine.effects import (
    CameraChanged,
    Effect,
    IncidentChanged,
    IncidentClosed,
    NewHighPriority,
    ResponderChanged,
)
from console.engine.geo import GridIndex, PointIndexLike, load_district_of, make_point_index
from console.engine.model import (
    DEADLINE_ACK,
    DEADLINE_DISPATCH,
    Camera,
    Incident,
    State,
)
from console.engine.rules import FAULTS, eta_s
from protocols.schemas import (
    CameraStatus,
    CorrelatedEvent,
    HistoryEntry,
    IncidentKind,
    IncidentStatus,
    Recommendation,
    ResponderStatus,
)

CORE = "core"  # the actor of automatic changes
MAX_EVENTS = 200  # correlated events kept per incident (the first one and the latest)
MAX_CLOSED = 10_000  # closed incidents kept for queries and clear refusals
REPLY_RETENTION_S = 7 * 86400.0  # idempotency memory for commands
ALARM_RETENTION_S = 7 * 86400.0  # resends of an SOS get the same receipt this long
CCTV_EVENT_RETENTION_S = 86400.0  # CCTV duplicates and withdrawals are matched this long
ALERT_RETENTION_S = 30 * 86400.0  # CAP Updates and Cancels find their alert this long
SOS_CELL_DEG = 0.005  # the open-SOS correlation grid


class EngineBase:
    def __init__(self, config: Config, *, prefer_numpy: bool = True) -> None:
        self.cfg = config
        self.st = State()
        self._prefer_numpy = prefer_numpy
        self._district_of: Callable[[float, float], str] = load_district_of()
        self._rebuild_indexes()

    # --- derived indexes ---------------------------------------------------------------

    def _rebuild_indexes(self) -> None:
        """Indexes are derived state: built from ``self.st`` in its (deterministic) order."""
        self.sos_index = GridIndex(SOS_CELL_DEG)
        self.cam_index: PointIndexLike = make_point_index(self._prefer_numpy)
        self.resp_index: PointIndexLike = make_point_index(self._prefer_numpy)
        for inc in self.st.incidents.values():
            if inc.kind is IncidentKind.SOS:
                self.sos_index.upsert(inc.id, inc.lat, inc.lon)
        self.district_cams: dict[str, dict[str, None]] = {}
        for cam in self.st.cameras.values():
            self.district_cams.setdefault(cam.district, {})[cam.id] = None
            if cam.lat is not None and cam.lon is not None:
                self.cam_index.upsert(cam.id, cam.lat, cam.lon)
        for resp in self.st.responders.values():
            self.resp_index.upsert(
                resp.id, resp.lat, resp.lon, resp.status is ResponderStatus.AVAILABLE
            )
        self._rebuild_shelters()

    def _rebuild_shelters(self) -> None:
        self.shelter_index: PointIndexLike = make_point_index(self._prefer_numpy)
        self.shelters_by_id = {shelter.id: shelter for shelter in self.st.shelters}
        for shelter in self.shelters_by_id.values():
            self.shelter_index.upsert(shelter.id, shelter.lat, shelter.lon)

    def _district(self, lat: float, lon: float, fallback: str = "unknown") -> str:
        name = self._district_of(lat, lon)  # nearest district centre: always an answer
        return name or fallback or "unknown"

    # --- incidents -----------------------------------------------------------------------

    def _next_id(self) -> str:
        self.st.seq += 1
        return f"I-{self.st.seq:06d}"

    def _open_incident(self, inc: Incident, now: float, effects: list[Effect]) -> None:
        self.st.incidents[inc.id] = inc
        self.st.unacked[inc.id] = inc.created
        self.st.open_by_priority[inc.priority - 1] += 1
        if inc.kind is IncidentKind.SOS:
            self.sos_index.upsert(inc.id, inc.lat, inc.lon)
        self._arm_sla(inc, now)
        effects.append(IncidentChanged(inc.id))
        if inc.priority == 1:
            effects.append(NewHighPriority(inc.id))

    def _history(
        self, inc: Incident, now: float, actor: str, action: str, detail: str = ""
    ) -> None:
        inc.history.append(HistoryEntry(ts=now, actor=actor, action=action, detail=detail[:4000]))
        inc.updated = now

    def _add_event(self, inc: Incident, event: CorrelatedEvent, now: float) -> None:
        inc.events.append(event)
        if len(inc.events) > MAX_EVENTS:
            del inc.events[1]  # keep the first (what opened it) and the latest
            inc.events_dropped += 1
        inc.updated = now

    def _reprioritise(self, inc: Incident, now: float, effects: list[Effect]) -> None:
        """Priority is the most urgent live part; never below what the kind started with."""
        if not inc.parts:
            return
        new = min(inc.parts.values())
        if new == inc.priority:
            return
        self.st.open_by_priority[inc.priority - 1] -= 1
        self.st.open_by_priority[new - 1] += 1
        raised = new < inc.priority
        self._history(inc, now, CORE, "priority", f"P{inc.priority} → P{new}")
        inc.priority = new
        if raised:
            self._arm_sla(inc, now)
            if new == 1:
                effects.append(NewHighPriority(inc.id))

    # --- SLA -----------------------------------------------------------------------------

    def _arm_sla(self, inc: Incident, now: float) -> None:
        if inc.priority != 1:
            return
        sla = self.cfg.sla
        if inc.status is IncidentStatus.NEW and inc.ack_deadline is None:
            inc.ack_deadline = now + sla.ack_p1_s
            self._push_deadline(inc.ack_deadline, inc.id, DEADLINE_ACK)
        elif inc.status is IncidentStatus.ACKNOWLEDGED and inc.dispatch_deadline is None:
            inc.dispatch_deadline = now + sla.dispatch_p1_s
            self._push_deadline(inc.dispatch_deadline, inc.id, DEADLINE_DISPATCH)

    def _push_deadline(self, deadline: float, incident_id: str, which: int) -> None:
        self.st.deadline_seq += 1
        heapq.heappush(self.st.deadlines, (deadline, self.st.deadline_seq, incident_id, which))

    # --- cameras -------------------------------------------------------------------------

    def _camera_status(self, cam: Camera) -> CameraStatus:
        if cam.alarms:
            return CameraStatus.ALARM
        return CameraStatus(cam.health.value)

    def _camera_alarm(
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

    def _close(
        self,
        inc: Incident,
        status: IncidentStatus,
        now: float,
        actor: str,
        disposition: str | None,
        effects: list[Effect],
    ) -> None:
        st = self.st
        freed = list(inc.responders)
        for rid in freed:
            self._free_responder(rid, now, effects)
        inc.responders.clear()
        inc.status = status
        inc.closed_at = now
        inc.disposition = disposition
        detail = disposition or ""
        if freed:
            detail = f"{detail}; freed {', '.join(freed)}".lstrip("; ")
        self._history(inc, now, actor, status.value, detail)
        for camera_id in list(inc.cam_live):
            self._camera_alarm(inc, camera_id, -inc.cam_live[camera_id], effects)
        st.open_by_priority[inc.priority - 1] -= 1
        st.unacked.pop(inc.id, None)
        if inc.kind is IncidentKind.SOS:
            self.sos_index.remove(inc.id)
        for table, key in (
            (st.device_open, inc.device_id),
            (st.fault_open, inc.camera_id),
            (st.cctv_open, f"{inc.camera_id}/{inc.cctv_kind}"),
        ):
            if key is not None and table.get(key) == inc.id:
                del table[key]
        del st.incidents[inc.id]
        st.closed[inc.id] = inc
        while len(st.closed) > MAX_CLOSED:
            del st.closed[next(iter(st.closed))]
        effects.append(IncidentClosed(inc.id))

    def _free_responder(self, responder_id: str, now: float, effects: list[Effect]) -> None:
        resp = self.st.responders.get(responder_id)
        if resp is None:
            return
        resp.incident_id = None
        resp.assigned_by = None
        if resp.status is not ResponderStatus.OFF_DUTY:
            resp.status = ResponderStatus.AVAILABLE
            resp.status_since = now
            self.resp_index.set_active(resp.id, True)
        effects.append(ResponderChanged(resp.id))

    # --- dispatch support -----------------------------------------------------------------

    def _recommend(self, inc: Incident, k: int) -> list[Recommendation]:
        """The ``k`` nearest available responders, ties broken by id (deterministic)."""
        if k <= 0 or not has_position(inc):
            return []
        return self._recommend_from(self.resp_index.nearest(inc.lat, inc.lon, k + 4), k)

    def _recommend_from(self, found: list[tuple[str, float]], k: int) -> list[Recommendation]:
        """The first ``k`` still available of ``found`` (the index's nearest, k + 4 of them)."""
        found.sort(key=lambda kd: (kd[1], kd[0]))
        out: list[Recommendation] = []
        for responder_id, dist in found:
            resp = self.st.responders.get(responder_id)
            if resp is None or resp.status is not ResponderStatus.AVAILABLE:
                continue
            out.append(
                Recommendation(
                    responder_id=resp.id,
                    kind=resp.kind,
                    distance_m=round(dist, 1),
                    eta_s=eta_s(self.cfg.dispatch, resp.kind, dist),
                )
            )
            if len(out) == k:
                break
        return out

    # --- retention -----------------------------------------------------------------------

    def _prune(self, now: float) -> None:
        """Forget old dedupe memory, oldest first. Only called on journaled inputs."""
        _expire(self.st.replies, now - REPLY_RETENTION_S)
        _expire(self.st.alarms, now - ALARM_RETENTION_S)
        _expire(self.st.cctv_events, now - CCTV_EVENT_RETENTION_S)
        _expire(self.st.cctv_latest, now - CCTV_EVENT_RETENTION_S)
        _expire(self.st.alerts, now - ALERT_RETENTION_S)


def has_position(inc: Incident) -> bool:
    """Camera faults of a camera never positioned sit at (0, 0): nothing is near them."""
    return not (inc.lat == 0.0 and inc.lon == 0.0)


def is_fault(status: object) -> bool:
    return status in FAULTS


_Entry = TypeVar("_Entry", bound=tuple[Any, ...])


def _expire(table: dict[str, _Entry], cutoff: float) -> None:
    """Drop entries first seen before ``cutoff``; the dict is in arrival order."""
    while table:
        first = next(iter(table))
        if table[first][1] >= cutoff:
            return
        del table[first]
