"""The simulated units on a job (pure): en route at their kind's speed, on scene, back."""

from __future__ import annotations

import itertools

import msgspec
import pytest

from console.config import SimulateConfig
from console.engine.settings import DispatchConfig
from console.sim.picture import Picture
from console.sim.units import Units
from protocols.geo import haversine_m
from protocols.schemas import (
    IncidentKind,
    IncidentState,
    IncidentStatus,
    ResponderReport,
    ResponderState,
    ResponderStatus,
    UnitKind,
)

T0 = 1_800_000_000.0
HOME = (37.5000, 127.0000)
SCENE = (37.5090, 127.0000)  # ~1 km north
SETTINGS = SimulateConfig(units_turnout_s=20.0, units_report_s=10.0)
DISPATCH = DispatchConfig(speed_police_kmh=36.0, speed_scout_kmh=3.6)  # 10 m/s, 1 m/s


class FakeBeat:
    def __init__(self) -> None:
        self.held: list[str] = []
        self.released: list[tuple[str, float, float, float]] = []

    def hold(self, unit_id: str) -> None:
        self.held.append(unit_id)

    def release(self, unit_id: str, lat: float, lon: float, ts: float) -> None:
        self.released.append((unit_id, lat, lon, ts))


def unit(
    status: ResponderStatus = ResponderStatus.DISPATCHED,
    incident: str | None = "I-000001",
    at: tuple[float, float] = HOME,
    rid: str = "unit-police-01",
    kind: UnitKind = UnitKind.POLICE,
) -> ResponderState:
    return ResponderState(
        id=rid,
        kind=kind,
        status=status,
        lat=at[0],
        lon=at[1],
        last_seen=T0,
        status_since=T0,
        incident_id=incident,
    )


def incident(iid: str = "I-000001", at: tuple[float, float] = SCENE) -> IncidentState:
    return IncidentState(
        id=iid,
        kind=IncidentKind.SOS,
        priority=1,
        status=IncidentStatus.DISPATCHED,
        lat=at[0],
        lon=at[1],
        district="Jung-gu",
        place="",
        source="phone-1",
        title="SOS",
        created=T0,
        updated=T0,
    )


def setup(
    *states: ResponderState, settings: SimulateConfig = SETTINGS
) -> tuple[Units, Picture, FakeBeat]:
    beat = FakeBeat()
    units = Units(
        {"unit-police-01": UnitKind.POLICE, "unit-scout-01": UnitKind.SCOUT},
        settings,
        DISPATCH,
        beat=beat,
        seed=1,
    )
    picture = Picture()
    picture.incident(incident())
    for s in states:
        picture.responder(s)
        units.observe(s, T0)
    return units, picture, beat


def drive(
    units: Units, picture: Picture, until: float, start: float = T0
) -> list[tuple[float, ResponderReport]]:
    out = []
    now = start
    while now < until:
        now += 1.0
        out += [(now, r) for r in units.reports(now, picture)]
    return out


def test_a_dispatched_unit_turns_out_drives_at_its_speed_and_reports_on_scene() -> None:
    units, picture, beat = setup(unit())
    assert beat.held == ["unit-police-01"]
    said = drive(units, picture, T0 + 400)
    statuses = [r.status for _, r in said]
    assert statuses[0] is ResponderStatus.EN_ROUTE and statuses[-1] is ResponderStatus.ON_SCENE
    assert set(statuses[1:-1]) == {ResponderStatus.EN_ROUTE}
    first, last = said[0][0], said[-1][0]
    assert T0 + 10 <= first <= T0 + 30  # turnout: 20 s, half to one and a half of it
    distance = haversine_m(*HOME, *SCENE)
    assert last - first == pytest.approx(distance / 10.0, abs=1.5)  # 10 m/s
    assert (said[-1][1].lat, said[-1][1].lon) == SCENE
    # Every leg is one report interval at most, never faster than the unit's kind.
    for (t1, a), (t2, b) in itertools.pairwise(said):
        assert t2 - t1 <= 10.0
        assert haversine_m(a.lat, a.lon, b.lat, b.lon) <= 10.0 * (t2 - t1) + 1.0
    assert drive(units, picture, T0 + 900, start=T0 + 400) == []  # on scene: it stays, silent


def test_freed_it_goes_back_to_its_beat_from_where_it_is() -> None:
    units, picture, beat = setup(unit())
    said = drive(units, picture, T0 + 60)
    where = said[-1][1]
    units.observe(unit(ResponderStatus.AVAILABLE, None, (where.lat, where.lon)), T0 + 61)
    assert beat.released == [("unit-police-01", where.lat, where.lon, T0 + 61)]
    assert units.trips == {} and drive(units, picture, T0 + 200, start=T0 + 61) == []


def test_it_never_reports_available_while_assigned_and_heals_a_crossed_report() -> None:
    units, picture, _ = setup(unit())
    said = drive(units, picture, T0 + 400)
    assert ResponderStatus.AVAILABLE not in {r.status for _, r in said}
    # The core freed it, then our "en route" arrived: it is left en route to nothing.
    units.observe(unit(ResponderStatus.AVAILABLE, None), T0 + 401)
    units.observe(unit(ResponderStatus.EN_ROUTE, None), T0 + 402)
    healed = units.reports(T0 + 403, picture)
    assert [r.status for r in healed] == [ResponderStatus.AVAILABLE]
    assert units.reports(T0 + 404, picture) == []


def test_taken_elsewhere_it_turns_from_where_it_is_without_a_new_turnout() -> None:
    units, picture, _ = setup(unit())
    drive(units, picture, T0 + 60)
    far = (37.4910, 127.0000)  # ~1 km south of home
    picture.incident(incident("I-000002", far))
    units.observe(unit(ResponderStatus.DISPATCHED, "I-000002"), T0 + 61)
    said = drive(units, picture, T0 + 800, start=T0 + 61)
    assert said[0][0] == T0 + 62 and said[0][1].status is ResponderStatus.EN_ROUTE
    assert said[-1][1].status is ResponderStatus.ON_SCENE
    assert (said[-1][1].lat, said[-1][1].lon) == far


def test_put_on_scene_by_an_operator_it_stops_driving() -> None:
    units, picture, _ = setup(unit())
    drive(units, picture, T0 + 40)
    units.observe(unit(ResponderStatus.ON_SCENE), T0 + 41)
    assert units.reports(T0 + 100, picture) == []


def test_it_waits_for_the_incident_and_ignores_units_not_its_own() -> None:
    stranger = unit(rid="police-mapo-07")
    units, picture, beat = setup(stranger, unit(incident="I-000009"))
    assert beat.held == ["unit-police-01"]
    assert drive(units, picture, T0 + 120) == []  # I-000009 not published yet
    picture.incident(incident("I-000009"))
    assert drive(units, picture, T0 + 200, start=T0 + 120)


def test_a_scout_walks() -> None:
    units, picture, _ = setup(unit(rid="unit-scout-01", kind=UnitKind.SCOUT))
    said = drive(units, picture, T0 + 3000)
    assert said[-1][1].status is ResponderStatus.ON_SCENE
    walked = said[-1][0] - said[0][0]
    assert walked == pytest.approx(haversine_m(*HOME, *SCENE) / 1.0, abs=2.0)


def test_without_turnout_it_sets_off_at_once() -> None:
    settings = msgspec.structs.replace(SETTINGS, units_turnout_s=0.0)
    units, picture, _ = setup(unit(), settings=settings)
    assert units.reports(T0 + 0.5, picture)[0].status is ResponderStatus.EN_ROUTE
