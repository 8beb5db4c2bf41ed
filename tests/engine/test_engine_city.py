"""The service area is data the engine is given: any city, not the simulator's Seoul."""

from __future__ import annotations

from console.engine.districts import District, DistrictMap
from console.engine.engine import Engine
from console.engine.settings import EngineSettings
from tests.engine.test_engine_support import DAY, camera, sos

# Two made-up districts a kilometre or so apart, far from Seoul.
TOWN = DistrictMap(
    [
        District(name="North", slug="north", lat=10.01, lon=20.0, area_km2=1.0),
        District(name="South", slug="south", lat=10.0, lon=20.0, area_km2=1.0),
    ]
)


def test_districts_come_from_the_map_the_engine_is_given() -> None:
    e = Engine(EngineSettings(), TOWN)
    e.handle_event(sos("a1", device="d1", lat=10.0099, lon=20.0), DAY)
    e.handle_event(sos("a2", device="d2", lat=10.0001, lon=20.0), DAY)
    e.handle_event(camera("cam1", lat=10.0098, lon=20.0001, district=None), DAY)
    assert [e.incident_state(i, DAY).district for i in e.open_incident_ids()] == [
        "North",
        "South",
    ]
    assert e.districts() == ["North"]


def test_restore_keeps_the_given_map() -> None:
    e = Engine(EngineSettings(), TOWN)
    e.handle_event(sos(lat=10.0001, lon=20.0), DAY)
    restored = Engine.restore(EngineSettings(), TOWN, e.snapshot())
    assert restored.snapshot() == e.snapshot()
    assert restored.district_map is TOWN
    restored.handle_event(sos("a2", device="d2", lat=10.0099, lon=20.0), DAY + 1)
    assert restored.incident_state("I-000002", DAY + 1).district == "North"
