"""Trust: who may report what, and which times and positions are believed.

A *source* is the ``<source>`` level of ``ansim/v1/raw/<source>/<kind>``, which the
broker's ACL binds to one account (an SOS also names it in its payload, checked
against the topic at ingest). What a source reports is namespaced by it:

- SOS devices: an SOS folds into an open incident only from the same source *and*
  device (``State.device_open`` is keyed ``source/device``), so another source
  cannot touch it. An SOS is never refused for what it says (only for a payload
  ``source`` that is not the topic's, which ingest refuses first).
- Cameras, responders and CAP senders are owned: by the sources the configuration
  names for the id (``[owners]``, glob patterns), else by the first source that
  reports it (``State.*_owner``, so replay and snapshots agree). A report about an id
  another source owns is refused with a reason.

Plausibility: positions outside the service area are refused (an SOS keeps its
alarm and loses only the position); a fix that moved faster than its kind can is
recorded, not applied; a time too far ahead or too old is replaced by the receive
time (an SOS, a CCTV event, a camera report, a public alert) or refused (a
responder report that is too old).

:meth:`Trust.refusal` is a pure function of the state and the input: the core asks it
before journaling and dead-letters what it refuses; ``Engine.handle_event`` asks it
again, so an input refused there changes nothing whoever calls.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping, Sequence

from console.engine.context import Context
from protocols.geo import haversine_m
from protocols.public_alert import PublicAlert
from protocols.schemas import (
    MAX_TIMESTAMP,
    CameraHealth,
    CctvEvent,
    ResponderReport,
    SosAlarm,
    UnitKind,
)

_MEMO_MAX = 65_536


class Registry:
    """The configured owners of one kind of id: source -> glob patterns, memoised per id."""

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self._rules = [
            (source, re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)))
            for source, patterns in sorted(table.items())
            if patterns
        ]
        self._memo: dict[str, tuple[str, ...]] = {}

    def sources(self, ident: str) -> tuple[str, ...]:
        """The sources the configuration names for ``ident`` (empty: it names none)."""
        if not self._rules:
            return ()
        found = self._memo.get(ident)
        if found is None:
            if len(self._memo) >= _MEMO_MAX:
                self._memo.clear()
            found = tuple(source for source, rx in self._rules if rx.match(ident))
            self._memo[ident] = found
        return found


def where(lat: float, lon: float) -> str:
    return f"{lat:.5f}, {lon:.5f}"


def age(seconds: float) -> str:
    """A duration for a reason: seconds, hours or days."""
    seconds = abs(seconds)
    if seconds < 3600.0:
        return f"{seconds:.0f} s"
    if seconds < 2 * 86400.0:
        return f"{seconds / 3600.0:.1f} h"
    return f"{seconds / 86400.0:.0f} days"


class Trust:
    """Ownership and plausibility over the shared state."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.st = ctx.st
        owners = ctx.settings.owners
        self.first_come = owners.first_come
        self.cameras = Registry(owners.cameras)
        self.responders = Registry(owners.responders)
        self.senders = Registry(owners.senders)
        self.rules = ctx.settings.plausibility
        self.in_area = ctx.district_map.in_service_area
        self.max_kmh = {
            UnitKind.POLICE: self.rules.max_police_kmh,
            UnitKind.SCOUT: self.rules.max_scout_kmh,
            UnitKind.GUARD: self.rules.max_guard_kmh,
        }

    # --- ownership -----------------------------------------------------------------------

    def owner_problem(self, source: str | None, event: object) -> str | None:
        """Why ``source`` may not report ``event``'s id, or None. ``None``: unattributed."""
        if source is None:
            return None
        st = self.st
        match event:
            case CctvEvent() | CameraHealth():
                return self._check(self.cameras, st.camera_owner, "camera", event.camera_id, source)
            case ResponderReport():
                return self._check(
                    self.responders, st.responder_owner, "responder", event.responder_id, source
                )
            case PublicAlert():
                return self._check(
                    self.senders, st.sender_owner, "CAP sender", event.sender, source
                )
            case SosAlarm() if event.source != source:
                return f"SOS source '{event.source}' does not match the topic's source '{source}'"
        return None  # an SOS: its device is namespaced by its source

    def _check(
        self, registry: Registry, owners: dict[str, str], what: str, ident: str, source: str
    ) -> str | None:
        named = registry.sources(ident)
        shown = ident[:100]
        if named:
            if source in named:
                return None
            return (
                f"{what} {shown} is reported by {', '.join(named)} ([owners] configuration),"
                f" not by source {source}"
            )
        owner = owners.get(ident)
        if owner is None:
            if self.first_come:
                return None
            return f"{what} {shown} is not in the [owners] configuration (first_come is off)"
        if owner == source:
            return None
        return f"{what} {shown} belongs to source {owner} (the first to report it), not to {source}"

    def may_speak_for(self, source: str | None, sender: str) -> bool:
        """Whether ``source`` may raise, update or cancel the CAP alerts of ``sender``."""
        if source is None:
            return True
        return self._check(self.senders, self.st.sender_owner, "", sender, source) is None

    def claim(self, source: str | None, event: object) -> None:
        """After an input was applied: its source owns what it registered, if nobody did."""
        if source is None:
            return
        st = self.st
        match event:
            case CctvEvent() | CameraHealth():
                ident = event.camera_id
                if ident in st.cameras and not self.cameras.sources(ident):
                    st.camera_owner.setdefault(ident, source)
            case ResponderReport():
                ident = event.responder_id
                if ident in st.responders and not self.responders.sources(ident):
                    st.responder_owner.setdefault(ident, source)
            case PublicAlert():
                if not self.senders.sources(event.sender):
                    st.sender_owner.setdefault(event.sender, source)

    # --- plausibility --------------------------------------------------------------------

    def refusal(self, event: object, now: float, source: str | None) -> str | None:
        """Why ``event`` from ``source`` cannot be accepted at ``now``, or None.

        Pure: the same state and input give the same answer, before journaling and in
        the engine (and in the replay of what was journaled).
        """
        problem = self.owner_problem(source, event)
        if problem is not None:
            return problem
        match event:
            case ResponderReport():
                if not self.in_area(event.lat, event.lon):
                    return (
                        f"responder {event.responder_id}: position {where(event.lat, event.lon)}"
                        " is outside the service area"
                    )
                if event.ts < now - self.rules.max_age_responder_s:
                    return (
                        f"responder {event.responder_id}: report is {age(now - event.ts)} old"
                        f" (limit {age(self.rules.max_age_responder_s)})"
                    )
            case CameraHealth():
                return self._camera_refusal(event)
            case CctvEvent():
                return self._cctv_refusal(event)
            case PublicAlert():
                if (
                    event.lat is not None
                    and event.lon is not None
                    and not self.in_area(event.lat, event.lon)
                    and self.our_district(event.districts) is None
                ):
                    return (
                        f"public alert {event.identifier[:100]}: position"
                        f" {where(event.lat, event.lon)} is outside the service area"
                        " and it names none of its districts"
                    )
        return None

    def _camera_refusal(self, ev: CameraHealth) -> str | None:
        # Without a position a camera is still known (its faults matter), but unplaced:
        # never published at 0, 0, and its CCTV events are refused until it is placed.
        if ev.lat is not None and ev.lon is not None and not self.in_area(ev.lat, ev.lon):
            return (
                f"camera {ev.camera_id}: position {where(ev.lat, ev.lon)}"
                " is outside the service area"
            )
        return None

    def _cctv_refusal(self, ev: CctvEvent) -> str | None:
        if ev.withdrawn or f"{ev.camera_id}/{ev.event_id}" in self.st.cctv_events:
            return None  # a withdrawal or an update: about an event already placed
        pos = self.cctv_position(ev)
        if pos is None and self.ctx.across_border(ev.district):
            return None  # a neighbour's camera not heard of here yet: dropped, not refused
        if pos is None:
            return (
                f"CCTV event {ev.event_id}: camera {ev.camera_id} has no known position"
                " (report it with lat and lon, or give the event one)"
            )
        if not self.in_area(*pos):
            return f"CCTV event {ev.event_id}: position {where(*pos)} is outside the service area"
        return None

    def cctv_position(self, ev: CctvEvent) -> tuple[float, float] | None:
        """Where a CCTV event is: its own position, else its camera's."""
        cam = self.st.cameras.get(ev.camera_id)
        lat = ev.lat if ev.lat is not None else (cam.lat if cam else None)
        lon = ev.lon if ev.lon is not None else (cam.lon if cam else None)
        if lat is None or lon is None:
            return None
        return lat, lon

    def believed_time(self, ts: float, now: float, max_age_s: float) -> tuple[float, str | None]:
        """``ts`` if it is within the allowed skew of ``now``, else ``now`` and why."""
        if not (math.isfinite(ts) and 0.0 <= ts <= MAX_TIMESTAMP):
            return now, f"its time {ts!r:.40} is not a UNIX time"
        if ts > now + self.rules.max_ahead_s:
            return now, f"its time is {age(ts - now)} ahead of the receive time"
        if ts < now - max_age_s:
            return now, f"its time is {age(now - ts)} before the receive time"
        return ts, None

    def jump(
        self,
        max_kmh: float,
        before: tuple[float, float, float],
        after: tuple[float, float, float],
    ) -> str | None:
        """Why a move from ``before`` to ``after`` (lat, lon, time) is impossible, or None."""
        lat0, lon0, t0 = before
        lat1, lon1, t1 = after
        dist = haversine_m(lat0, lon0, lat1, lon1)
        dt = abs(t1 - t0)  # fixes may arrive out of order: the time between them counts
        if dist <= self.rules.jump_slack_m + max_kmh / 3.6 * dt:
            return None
        return (
            f"{where(lat1, lon1)} is {dist / 1000.0:.1f} km from the last fix, {age(dt)} apart"
            f" (more than {max_kmh:g} km/h)"
        )

    def our_district(self, names: Sequence[str]) -> str | None:
        """The first of ``names`` that is one of the city's districts."""
        by_name = self.ctx.district_map.by_name
        return next((n for n in names if n in by_name), None)

    def district(self, named: str | None, lat: float | None, lon: float | None) -> str | None:
        """A reported district if it is one of the city's, else the position's, else None."""
        if named and named in self.ctx.district_map.by_name:
            return named
        if lat is not None and lon is not None:
            return self.ctx.district(lat, lon)
        return None
