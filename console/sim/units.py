"""The simulated units follow the core's dispatches: en route, on scene, back on patrol.

Pure: the core's published responder and incident states come in through a
:class:`~console.sim.picture.Picture`, the time as an argument, and the unit reports
to publish go out. The live simulator and the accelerated shift test run this same code.

A unit the core marks ``dispatched`` to an incident turns out (``[simulate]
units_turnout_s``), reports ``en-route`` and drives straight at its kind's ``[dispatch]``
speed, reporting its position every ``units_report_s``, then reports ``on-scene`` at the
incident. It stays until the core frees it (the incident closed, or a supervisor took
it elsewhere), and only then goes back to its beat, where the scenario moves it again.
It never reports ``available`` while it is assigned: that releases it from the incident
(and raises an alert there). While a unit is on a job the scenario does not report it
(:class:`Beat`), so its patrol fixes cannot pull it back to its beat mid-trip.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from console.config import SimulateConfig
from console.engine.rules import speed_mps
from console.engine.settings import DispatchConfig
from console.sim.picture import Picture
from protocols.geo import haversine_m
from protocols.schemas import ResponderReport, ResponderState, ResponderStatus, UnitKind

_ASSIGNED = (ResponderStatus.DISPATCHED, ResponderStatus.EN_ROUTE, ResponderStatus.ON_SCENE)
_ARRIVED_M = 1.0  # closer than this to the scene is there


class Beat(Protocol):
    """The scenario's side: it stops patrolling a unit on a job, and resumes it after."""

    def hold(self, unit_id: str) -> None: ...

    def release(self, unit_id: str, lat: float, lon: float, ts: float) -> None: ...


@dataclass
class Trip:
    """One unit's way to one incident."""

    unit_id: str
    kind: UnitKind
    incident_id: str
    lat: float  # where the unit is, as of ``at``
    lon: float
    at: float
    depart_at: float
    started: bool = False  # has reported en route
    arrived: bool = False
    next_report: float = 0.0


class Units:
    """The city's units on their jobs; the others are the scenario's, on patrol."""

    def __init__(
        self,
        kinds: dict[str, UnitKind],
        settings: SimulateConfig,
        dispatch: DispatchConfig,
        *,
        beat: Beat | None = None,
        seed: int = 0,
        homes: dict[str, str] | None = None,
    ) -> None:
        self.kinds = kinds  # the simulator's own units: it never reports anyone else's
        # Each unit's home district (where it started): its reports are published into
        # it, wherever the job takes it, so one partition's core keeps owning it.
        self.homes = homes or {}
        self.settings = settings
        self.dispatch = dispatch
        self.beat = beat
        self.trips: dict[str, Trip] = {}
        self._rng = random.Random(f"units:{seed}")
        self._heal: dict[str, ResponderState] = {}

    def attach(self, beat: Beat) -> None:
        """Patrolled by ``beat`` from now on; the units already on a job are held there."""
        self.beat = beat
        for unit_id in self.trips:
            beat.hold(unit_id)

    def observe(self, state: ResponderState, now: float) -> None:
        """The core published a unit's state: start, redirect, finish or correct its trip."""
        kind = self.kinds.get(state.id)
        if kind is None:
            return
        trip = self.trips.get(state.id)
        self._heal.pop(state.id, None)
        if state.incident_id is not None and state.status in _ASSIGNED:
            if trip is None or trip.incident_id != state.incident_id:
                self._start(state, kind, trip, now)
            elif state.status is ResponderStatus.ON_SCENE and not trip.arrived:
                trip.arrived = True  # an operator put it on scene: it stops driving
            return
        if trip is not None:
            # Freed (the incident closed) or off duty: back to its beat from where it last
            # reported (where the core has it, so its next patrol fix is no jump).
            del self.trips[state.id]
            if self.beat is not None:
                self.beat.release(state.id, trip.lat, trip.lon, now)
        elif state.status in (ResponderStatus.EN_ROUTE, ResponderStatus.ON_SCENE):
            # Our last report crossed the core freeing the unit: it would stay "en route"
            # to nothing, never recommended again. It is free, so it says so.
            self._heal[state.id] = state

    def _start(self, state: ResponderState, kind: UnitKind, old: Trip | None, now: float) -> None:
        if old is not None:
            # Taken elsewhere on the way: it turns from where it last reported, at once.
            lat, lon, turnout = old.lat, old.lon, 0.0
        else:
            lat, lon = state.lat, state.lon
            turnout = self.settings.units_turnout_s * self._rng.uniform(0.5, 1.5)
            if self.beat is not None:
                self.beat.hold(state.id)
        self.trips[state.id] = Trip(
            unit_id=state.id,
            kind=kind,
            incident_id=state.incident_id or "",
            lat=lat,
            lon=lon,
            at=now,
            depart_at=now + turnout,
            arrived=state.status is ResponderStatus.ON_SCENE,
        )

    def reports(self, now: float, picture: Picture) -> list[ResponderReport]:
        """What the units on a job say at ``now``: en route, a position, on scene."""
        out = [self._report(s, ResponderStatus.AVAILABLE, now) for s in self._heal.values()]
        self._heal.clear()
        for trip in self.trips.values():
            if trip.arrived or now < trip.depart_at:
                continue
            inc = picture.incidents.get(trip.incident_id)
            if inc is None or (inc.lat == 0.0 and inc.lon == 0.0):
                continue  # not published yet, or nowhere to drive to
            if not trip.started:
                trip.started, trip.at = True, now
                trip.next_report = now + self._leg(trip, inc.lat, inc.lon)
                out.append(self._trip_report(trip, ResponderStatus.EN_ROUTE, now))
            elif now >= trip.next_report:
                self._advance(trip, now, inc.lat, inc.lon)
                if haversine_m(trip.lat, trip.lon, inc.lat, inc.lon) <= _ARRIVED_M:
                    trip.arrived = True
                    out.append(self._trip_report(trip, ResponderStatus.ON_SCENE, now))
                else:
                    trip.next_report = now + self._leg(trip, inc.lat, inc.lon)
                    out.append(self._trip_report(trip, ResponderStatus.EN_ROUTE, now))
        return out

    def _leg(self, trip: Trip, lat: float, lon: float) -> float:
        """Seconds to the next report: the report interval, or the arrival if sooner."""
        left = haversine_m(trip.lat, trip.lon, lat, lon) / speed_mps(self.dispatch, trip.kind)
        return max(min(self.settings.units_report_s, left), 0.001)

    def _advance(self, trip: Trip, now: float, lat: float, lon: float) -> None:
        """Move the unit straight towards (lat, lon), at its kind's speed, up to ``now``."""
        step = speed_mps(self.dispatch, trip.kind) * max(now - trip.at, 0.0)
        left = haversine_m(trip.lat, trip.lon, lat, lon)
        if step >= left - _ARRIVED_M:
            trip.lat, trip.lon = lat, lon
        else:
            f = step / left
            trip.lat = round(trip.lat + (lat - trip.lat) * f, 6)
            trip.lon = round(trip.lon + (lon - trip.lon) * f, 6)
        trip.at = now

    def _trip_report(self, trip: Trip, status: ResponderStatus, now: float) -> ResponderReport:
        return ResponderReport(
            responder_id=trip.unit_id,
            kind=trip.kind,
            status=status,
            lat=trip.lat,
            lon=trip.lon,
            ts=now,
            district=self.homes.get(trip.unit_id),
        )

    def _report(
        self, state: ResponderState, status: ResponderStatus, now: float
    ) -> ResponderReport:
        return ResponderReport(
            responder_id=state.id,
            kind=state.kind,
            status=status,
            lat=state.lat,
            lon=state.lon,
            ts=now,
            district=self.homes.get(state.id),
        )
