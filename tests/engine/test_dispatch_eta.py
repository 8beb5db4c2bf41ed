"""Recommendations: the units that can take the job, ranked by ETA (issue 18, point 2)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.config import Config
from console.engine.engine import Engine
from console.engine.rules import speed_mps
from console.engine.settings import DispatchConfig
from protocols.geo import haversine_m
from protocols.schemas import Action, ResponderStatus, UnitKind
from tests.engine.test_engine_support import DAY, LAT, LON, do, engine, responder, sos

I1 = "I-000001"
M_PER_DEG = 111_195.0  # metres per degree of latitude


def north(metres: float) -> float:
    return LAT + metres / M_PER_DEG


def ids(eng: Engine, now: float = DAY + 1) -> list[str]:
    return [r.responder_id for r in eng.incident_state(I1, now).recommended]


@pytest.fixture
def eng() -> Engine:
    e = engine()
    e.handle_event(sos(), DAY)
    return e


def test_a_police_car_further_away_beats_a_guard_on_foot(eng: Engine) -> None:
    eng.handle_event(responder("guard-1", kind=UnitKind.GUARD, lat=north(1600)), DAY)
    eng.handle_event(responder("police-1", kind=UnitKind.POLICE, lat=north(2700)), DAY)
    recs = eng.incident_state(I1, DAY + 1).recommended
    assert [r.responder_id for r in recs] == ["police-1", "guard-1"]
    assert recs[0].eta_s == pytest.approx(2700 / (30 / 3.6), abs=1)  # 5.4 min at 30 km/h
    assert recs[1].eta_s == pytest.approx(1600 / (6 / 3.6), abs=1)  # 16 min at 6 km/h
    assert recs[0].distance_m == pytest.approx(2700, rel=1e-3)
    # d with no unit named sends the fastest, not the nearest
    assert do(eng, Action.DISPATCH, now=DAY + 2).reason == f"dispatched police-1 to {I1}"


def test_police_cars_are_not_left_out_behind_many_slow_units(eng: Engine) -> None:
    for i in range(8):  # eight guards and scouts close by, 19-50 min away on foot
        kind = UnitKind.GUARD if i % 2 else UnitKind.SCOUT
        eng.handle_event(responder(f"foot-{i}", kind=kind, lat=north(1600 + 300 * i)), DAY)
    for i in range(2):
        eng.handle_event(responder(f"police-{i}", kind=UnitKind.POLICE, lat=north(5000 + i)), DAY)
    assert ids(eng)[:2] == ["police-0", "police-1"]


def test_only_units_that_can_take_the_job(eng: Engine) -> None:
    eng.handle_event(responder("off", lat=north(100), status=ResponderStatus.OFF_DUTY), DAY)
    eng.handle_event(responder("busy", lat=north(200), status=ResponderStatus.EN_ROUTE), DAY)
    eng.handle_event(responder("silent", lat=north(300)), DAY - 700)  # last heard 701 s ago
    eng.handle_event(responder("free", lat=north(5000)), DAY)
    assert ids(eng) == ["free"]
    do(eng, Action.DISPATCH, responder_id="free", now=DAY + 2)
    assert ids(eng, DAY + 3) == []
    # heard from again: back in the list
    eng.handle_event(responder("silent", lat=north(300)), DAY + 4)
    assert ids(eng, DAY + 5) == ["silent"]


def test_a_unit_becomes_stale_at_stale_after_s(eng: Engine) -> None:
    eng.handle_event(responder("P-1"), DAY)
    assert ids(eng, DAY + 600) == ["P-1"]
    assert ids(eng, DAY + 600.5) == []
    # the automatic pick never takes a silent unit either
    assert not do(eng, Action.DISPATCH, now=DAY + 601).ok


def test_a_last_will_takes_the_unit_out_of_every_list(eng: Engine) -> None:
    """OwnTracks turns a lost phone's last will into an off-duty report (protocols.owntracks)."""
    eng.handle_event(responder("P-1"), DAY)
    assert ids(eng) == ["P-1"]
    eng.handle_event(responder("P-1", status=ResponderStatus.OFF_DUTY), DAY + 2)
    assert ids(eng, DAY + 3) == []


# --- exact top-k by ETA, against brute force ------------------------------------------

KINDS = list(UnitKind)
unit = st.tuples(
    st.floats(-0.05, 0.05),  # lat offset, degrees (about ±5.5 km)
    st.floats(-0.05, 0.05),
    st.sampled_from(KINDS),
    st.sampled_from([ResponderStatus.AVAILABLE] * 4 + [ResponderStatus.OFF_DUTY]),
    st.sampled_from([0.0, 0.0, 0.0, 900.0]),  # how long ago it last reported
)
place = st.tuples(st.floats(-0.05, 0.05), st.floats(-0.05, 0.05))


def brute_force(
    units: list[tuple[float, float, UnitKind, ResponderStatus, float]],
    lat: float,
    lon: float,
    k: int,
) -> list[tuple[float, str]]:
    cfg = DispatchConfig()
    ranked = []
    for i, (dlat, dlon, kind, status, ago) in enumerate(units):
        if status is not ResponderStatus.AVAILABLE or ago > cfg.stale_after_s:
            continue
        d = haversine_m(lat, lon, LAT + dlat, LON + dlon)
        ranked.append((d / speed_mps(cfg, kind), f"u{i:03d}"))
    return sorted(ranked)[:k]


def check_against_brute_force(
    eng: Engine,
    units: list[tuple[float, float, UnitKind, ResponderStatus, float]],
    places: list[tuple[float, float]],
) -> None:
    now = DAY + 1000
    for i, (dlat, dlon, kind, status, ago) in enumerate(units):
        report = responder(f"u{i:03d}", status, LAT + dlat, LON + dlon, kind, ts=now - ago)
        eng.handle_event(report, now - ago)
    for j, (dlat, dlon) in enumerate(places):
        eng.handle_event(sos(f"a{j}", device=f"d{j}", lat=LAT + dlat, lon=LON + dlon), now)
    k = eng.settings.dispatch.responders
    incident_ids = eng.open_incident_ids()
    states = eng.incident_states(incident_ids, now)
    for state in states:
        expected = brute_force(units, state.lat, state.lon, k)
        got = [(r.eta_s, r.responder_id) for r in state.recommended]
        assert len(got) == len(expected)
        for (eta, rid), (want_eta, want_id) in zip(got, expected, strict=True):
            assert eta == pytest.approx(want_eta, abs=0.51)
            if rid != want_id:  # only a near tie may come out the other way round
                others = [e for e, u in expected if u == rid]
                assert others and math.isclose(others[0], want_eta, rel_tol=1e-9, abs_tol=1e-6)


PROPS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPS
@given(st.lists(unit, min_size=1, max_size=40), st.lists(place, min_size=1, max_size=6))
def test_top_k_by_eta_is_exact(
    units: list[tuple[float, float, UnitKind, ResponderStatus, float]],
    places: list[tuple[float, float]],
) -> None:
    check_against_brute_force(engine(), units, places)


@PROPS
@given(st.lists(unit, min_size=1, max_size=25), st.lists(place, min_size=1, max_size=4))
def test_top_k_by_eta_is_exact_without_numpy(
    units: list[tuple[float, float, UnitKind, ResponderStatus, float]],
    places: list[tuple[float, float]],
) -> None:
    check_against_brute_force(engine(prefer_numpy=False), units, places)


def test_top_k_by_eta_is_exact_for_a_large_fleet() -> None:
    """Above spatial.SCAN_BELOW free units each kind's index answers; the same ranking."""
    import random

    rnd = random.Random(7)
    units = [
        (
            rnd.uniform(-0.1, 0.1),
            rnd.uniform(-0.1, 0.1),
            rnd.choice(KINDS),
            ResponderStatus.AVAILABLE if rnd.random() < 0.95 else ResponderStatus.OFF_DUTY,
            900.0 if rnd.random() < 0.05 else 0.0,
        )
        for _ in range(1700)
    ]
    places = [(rnd.uniform(-0.1, 0.1), rnd.uniform(-0.1, 0.1)) for _ in range(20)]
    eng = engine()
    check_against_brute_force(eng, units, places)
    assert eng.responders.ranker._columns is None  # it did take the per-kind way


def test_recommendations_are_the_same_after_a_restore(eng: Engine) -> None:
    for i in range(6):
        kind = KINDS[i % 3]
        eng.handle_event(responder(f"R{i}", kind=kind, lat=north(400 * i)), DAY)
    restored = Engine.restore(
        Config().engine_settings(), Config().city.district_map(), eng.snapshot()
    )
    assert restored.incident_state(I1, DAY + 5) == eng.incident_state(I1, DAY + 5)
