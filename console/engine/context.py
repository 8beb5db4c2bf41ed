"""What every part of the engine shares: the state, what it is told, and derived indexes.

The parts (incidents, responders, cameras, SOS, CCTV, alerts, commands, privacy,
read side) each hold this one :class:`Context`. ``State`` is the whole truth
(the snapshot); the indexes are derived from it when the context is built, so
``Engine.restore`` builds a new context around the decoded state rather than
patching one in place, and no part ever sees the state object replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from console.engine.districts import DistrictMap
from console.engine.eta_watch import RecommendationWatch
from console.engine.geo import GridIndex, PointIndexLike, make_point_index
from console.engine.model import Responder, State
from console.engine.settings import EngineSettings
from protocols.schemas import IncidentKind, ResponderStatus, Shelter, UnitKind

REPLY_RETENTION_S = 7 * 86400.0  # idempotency memory for commands
ALARM_RETENTION_S = 7 * 86400.0  # resends of an SOS get the same receipt this long
CCTV_EVENT_RETENTION_S = 86400.0  # CCTV duplicates and withdrawals are matched this long
ALERT_RETENTION_S = 30 * 86400.0  # CAP Updates and Cancels find their alert this long
# Small cells: the open-SOS index is tiny and queried at the correlation radius (300 m).
SOS_CELL_DEG = 0.005


class Context:
    """The state, the settings, the districts, and the indexes derived from the state."""

    def __init__(
        self,
        state: State,
        settings: EngineSettings,
        districts: DistrictMap,
        *,
        prefer_numpy: bool = True,
    ) -> None:
        self.st = state
        self.settings = settings
        self.district_map = districts
        # The memoised lookup itself, so the hot path skips a bound-method hop.
        self.district_of: Callable[[float, float], str] = districts.district_of
        self.prefer_numpy = prefer_numpy
        # Open SOS incidents: small, with many inserts and removals, so the pure grid.
        self.sos_index = GridIndex(SOS_CELL_DEG)
        self.cam_index: PointIndexLike = make_point_index(prefer_numpy)
        self.resp_index: PointIndexLike = make_point_index(prefer_numpy)
        # Per unit kind, the free ones active: the k fastest are among each kind's k nearest.
        self.by_kind: dict[UnitKind, PointIndexLike] = {
            kind: make_point_index(prefer_numpy) for kind in UnitKind
        }
        self._kind_of: dict[str, UnitKind] = {}
        # Bumped on every change of a unit's position, status or last report: memos of
        # "the fleet at a time" (console.engine.eta_rank) are keyed on it.
        self.fleet_version = 0
        # What the read side last published as each incident's recommendations; not state
        # (a restored engine starts empty and the core publishes everything again).
        self.watch = RecommendationWatch(settings.dispatch)
        # The partition's own districts (empty: every one). A camera or unit of another
        # partition's district is read across the border as context (docs/partitions.md).
        self.own_districts = settings.districts
        self.by_name = districts.by_name
        # Own cameras by district: what the read side publishes as camera pages.
        self.district_cams: dict[str, dict[str, None]] = {}
        for inc in state.incidents.values():
            if inc.kind is IncidentKind.SOS and not (inc.lat == 0.0 and inc.lon == 0.0):
                self.sos_index.upsert(inc.id, inc.lat, inc.lon)
        # Dict insertion order is the state's own, so the indexes are built deterministically.
        for cam in state.cameras.values():
            if self.own_camera(cam.id):
                self.district_cams.setdefault(cam.district, {})[cam.id] = None
            if cam.lat is not None and cam.lon is not None:
                self.cam_index.upsert(cam.id, cam.lat, cam.lon)
        for resp in state.responders.values():
            self.place_responder(resp)
        self.shelter_index: PointIndexLike = make_point_index(prefer_numpy)
        self.shelters_by_id: dict[str, Shelter] = {}
        self.index_shelters()

    def across_border(self, district: str | None) -> bool:
        """Whether a report published into ``district`` (its topic's, or its payload's)
        is of another partition's camera or unit, which this core reads as context only.

        Only a district named so counts: what comes without one reached this core because
        it is this partition's (placed by its position, or a foreign format the home
        partition reads), wherever it is, so its position never makes it a neighbour's.
        """
        own = self.own_districts
        return bool(own and district) and district not in own and district in self.by_name

    def reported_into(self, table: dict[str, None], item_id: str, district: str | None) -> bool:
        """Note whose a camera or unit is (``table``: ``border_cameras`` or ``border_units``)
        from a report naming ``district``, if it names one; True if it is this partition's."""
        if district:
            if self.across_border(district):
                table[item_id] = None
            else:
                table.pop(item_id, None)
        return item_id not in table

    def own_camera(self, camera_id: str) -> bool:
        """Not a neighbour's: its faults, pages and alarms are this partition's."""
        return camera_id not in self.st.border_cameras

    def own_unit(self, responder_id: str) -> bool:
        """Not a neighbour's: this partition publishes it and decides its assignment."""
        return responder_id not in self.st.border_units

    def place_responder(self, resp: Responder) -> None:
        """Index a unit where it is now, active (recommendable) when it is available."""
        free = resp.status is ResponderStatus.AVAILABLE
        self.resp_index.upsert(resp.id, resp.lat, resp.lon, free)
        old = self._kind_of.get(resp.id)
        if old is not None and old is not resp.kind:
            self.by_kind[old].remove(resp.id)
        self._kind_of[resp.id] = resp.kind
        self.by_kind[resp.kind].upsert(resp.id, resp.lat, resp.lon, free)
        self.fleet_version += 1

    def index_shelters(self) -> None:
        """A new shelter index from ``st.shelters`` (a new object: memos keyed on it expire)."""
        self.shelter_index = make_point_index(self.prefer_numpy)
        self.shelters_by_id = {shelter.id: shelter for shelter in self.st.shelters}
        for shelter in self.shelters_by_id.values():
            self.shelter_index.upsert(shelter.id, shelter.lat, shelter.lon)

    def district(self, lat: float, lon: float, fallback: str = "unknown") -> str:
        name = self.district_of(lat, lon)  # nearest district centre: always an answer
        return name or fallback or "unknown"

    def prune(self, now: float) -> None:
        """Forget old dedupe memory, oldest first.

        Only called on journaled inputs, so a replay forgets at the very same moments.
        """
        st = self.st
        _expire(st.replies, now - REPLY_RETENTION_S)
        _expire(st.alarms, now - ALARM_RETENTION_S)
        _expire(st.cctv_events, now - CCTV_EVENT_RETENTION_S)
        _expire(st.cctv_latest, now - CCTV_EVENT_RETENTION_S)
        _expire(st.alerts, now - ALERT_RETENTION_S)
        _expire(st.finished, now - self.settings.supervisor.keep_s)


_Entry = TypeVar("_Entry", bound=tuple[Any, ...])


def _expire(table: dict[str, _Entry], cutoff: float) -> None:
    """Drop entries first seen before ``cutoff``; the dict is in arrival order."""
    while table:
        first = next(iter(table))
        if table[first][1] >= cutoff:
            return
        del table[first]
