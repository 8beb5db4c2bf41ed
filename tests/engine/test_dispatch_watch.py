"""Retained recommendations never go stale: a unit's change republishes exactly the
incidents whose published list it changes (issue 18, point 2; console.engine.eta_watch)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.config import Config
from console.engine.effects import Effect, IncidentChanged
from console.engine.engine import Engine
from console.engine.eta_rank import Ranked
from console.engine.settings import EngineSettings, SlaConfig
from protocols.schemas import Action, ResponderStatus, UnitKind
from tests.engine.test_engine_support import DAY, LAT, LON, cmd, engine, responder, sos

M_PER_DEG = 111_195.0


def north(metres: float, lat: float = LAT) -> float:
    return lat + metres / M_PER_DEG


def move(eng: Engine, now: float, rid: str, *args: Any, **kw: Any) -> list[Effect]:
    """A unit's report, sent and stamped ``now`` (a fix's own time decides what is believable)."""
    return eng.handle_event(responder(rid, *args, ts=now, **kw), now)


def republished(effects: list[Effect]) -> list[str]:
    return sorted({e.incident_id for e in effects if isinstance(e, IncidentChanged)})


def publish(eng: Engine, now: float) -> None:
    """What the core's publisher does: compute (and so publish) every open incident."""
    eng.incident_states(eng.open_incident_ids(), now)


@pytest.fixture
def city() -> Engine:
    """Two incidents 5 km apart, three police cars near the first, one near the second."""
    e = engine()
    e.handle_event(sos("a1", device="d1"), DAY)  # I-000001 at LAT
    e.handle_event(sos("a2", device="d2", lat=north(5000)), DAY)  # I-000002, 5 km north
    for i, metres in enumerate((300, 900, 1500)):
        move(e, DAY, f"P-{i}", lat=north(metres))
    move(e, DAY, "P-9", lat=north(5200))
    publish(e, DAY + 1)
    return e


def test_nothing_is_republished_before_anything_was_published() -> None:
    e = engine()
    e.handle_event(sos(), DAY)
    move(e, DAY, "P-1")
    assert republished(move(e, DAY + 1, "P-1", ResponderStatus.OFF_DUTY)) == []


def test_a_unit_going_off_duty_republishes_the_incidents_listing_it(city: Engine) -> None:
    # k = 5 and four units: every incident lists every free unit.
    effects = move(city, DAY + 2, "P-0", ResponderStatus.OFF_DUTY, north(300))
    assert republished(effects) == ["I-000001", "I-000002"]
    publish(city, DAY + 3)
    assert "P-0" not in [
        r.responder_id for r in city.incident_state("I-000001", DAY + 3).recommended
    ]
    # already off every list: going off duty again changes nothing
    again = move(city, DAY + 4, "P-0", ResponderStatus.OFF_DUTY, north(300))
    assert republished(again) == []


def test_a_dispatch_republishes_the_lists_naming_the_unit(city: Engine) -> None:
    effects = city.handle_command(cmd(Action.DISPATCH, "I-000001", responder_id="P-9"), DAY + 2)
    assert republished(effects) == ["I-000001", "I-000002"]


def test_a_creeping_unit_republishes_nothing(city: Engine) -> None:
    for step in range(1, 6):  # 10 m at a time: ETAs move ~1 s, the order holds
        effects = move(city, DAY + 1 + step, "P-1", lat=north(900 + 10 * step))
        assert republished(effects) == []


def test_a_unit_drifting_past_the_tolerance_republishes(city: Engine) -> None:
    # P-9 is 200 m from I-000002 (24 s at 30 km/h); 30 s of tolerance is 250 m more.
    effects = move(city, DAY + 2, "P-9", lat=north(5200 + 300))
    assert "I-000002" in republished(effects)


def test_an_overtaking_unit_republishes_the_list_whose_order_changed(city: Engine) -> None:
    # P-2 (1.5 km) drives to 100 m from I-000001, ahead of P-0 (300 m); for I-000002 it was
    # and stays behind P-9, and its ETA there grows by 170 s: republished too (tolerance).
    effects = move(city, DAY + 60, "P-2", lat=north(100))
    assert republished(effects) == ["I-000001", "I-000002"]
    publish(city, DAY + 61)
    first = city.incident_state("I-000001", DAY + 61).recommended[0]
    assert first.responder_id == "P-2"


def test_a_unit_coming_on_duty_is_listed_where_it_is_among_the_fastest() -> None:
    e = engine()
    e.handle_event(sos("a1", device="d1"), DAY)
    e.handle_event(sos("a2", device="d2", lat=north(20_000)), DAY)  # 20 km north
    for i in range(6):  # six cars around I-000002 only
        move(e, DAY, f"N-{i}", lat=north(20_000 + 100 * i))
    for i in range(5):  # five cars 2 km from I-000001
        move(e, DAY, f"S-{i}", lat=north(2000 + 10 * i))
    publish(e, DAY + 1)
    # A car comes on duty 500 m from I-000001: first there; at I-000002 it is 19.5 km
    # away behind six closer cars, so that list does not change.
    effects = move(e, DAY + 2, "new", lat=north(500))
    assert republished(effects) == ["I-000001"]


def test_a_unit_falling_silent_is_taken_off_at_the_tick(city: Engine) -> None:
    move(city, DAY + 500, "P-0", lat=north(300))  # heard from later
    for i in (1, 2, 9):
        lat = north({1: 900, 2: 1500, 9: 5200}[i])
        move(city, DAY + 500, f"P-{i}", lat=lat)
    city.tick(DAY + 501)  # the SLA escalations of the two SOS, out of the way
    publish(city, DAY + 501)
    move(city, DAY + 900, "P-0", lat=north(300))  # P-0 keeps reporting
    assert republished(city.tick(DAY + 1000)) == []
    effects = city.tick(DAY + 1101)  # the others: last heard 601 s ago
    assert republished(effects) == ["I-000001", "I-000002"]
    assert republished(city.tick(DAY + 1102)) == []  # asked once, until published again


def test_a_republished_incident_is_watched_again_once_published(city: Engine) -> None:
    assert republished(move(city, DAY + 60, "P-1", lat=north(50)))
    publish(city, DAY + 61)
    back = move(city, DAY + 120, "P-1", lat=north(900))
    assert "I-000001" in republished(back)


def test_moves_in_one_moment_are_looked_at_together(city: Engine) -> None:
    """Under a storm of reports moves are looked at every COALESCE_S, or at the tick."""
    city.tick(DAY + 59)  # the SLA escalations of the two SOS, out of the way
    first = move(city, DAY + 60, "P-2", lat=north(100))
    assert republished(first) == ["I-000001", "I-000002"]
    publish(city, DAY + 60)
    later = move(city, DAY + 60.1, "P-2", lat=north(1000))
    assert republished(later) == []  # within the same half second
    assert republished(city.tick(DAY + 60.2)) == ["I-000001", "I-000002"]


# --- the property: flagged exactly when the published list would change ---------------

unit_change = st.tuples(
    st.integers(0, 7),  # which unit
    st.sampled_from(["move", "move", "move", "creep", "status"]),
    st.floats(-0.02, 0.02),
    st.floats(-0.02, 0.02),
    st.sampled_from(list(ResponderStatus)),
    # A minute later (each move looked at as it comes), or a tenth of a second (looked at
    # together with the others of the moment, at the tick).
    st.sampled_from([60.0, 60.0, 0.1]),
)


def fresh(eng: Engine, now: float) -> dict[str, list[Ranked]]:
    k = eng.settings.dispatch.responders
    incs = [eng.st.incidents[i] for i in eng.open_incident_ids()]
    ranked = eng.responders.ranker.fastest_many([(i.lat, i.lon) for i in incs], k, now)
    return {inc.id: r for inc, r in zip(incs, ranked, strict=True)}


def would_change(eng: Engine, shown: list[Ranked], now_ranked: list[Ranked]) -> bool:
    tol = eng.settings.dispatch.eta_tolerance_s
    if [r.responder_id for r in shown] != [r.responder_id for r in now_ranked]:
        return True
    return any(abs(a.eta - b.eta) > tol for a, b in zip(shown, now_ranked, strict=True))


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(st.tuples(st.floats(-0.02, 0.02), st.floats(-0.02, 0.02)), min_size=1, max_size=5),
    st.lists(unit_change, min_size=1, max_size=25),
)
def test_republished_exactly_when_the_published_list_would_change(
    places: list[tuple[float, float]], changes: list[tuple[Any, ...]]
) -> None:
    # No SLA escalations: every incident republished here is for its recommendations.
    quiet = EngineSettings(sla=SlaConfig(ack_p1_s=1e9, dispatch_p1_s=1e9))
    eng = Engine(quiet, Config().city.district_map())
    kinds = list(UnitKind)
    where: dict[str, tuple[float, float]] = {}
    for i in range(8):
        where[f"U{i}"] = (LAT + 0.003 * i - 0.01, LON + 0.002 * (i % 3))
        lat, lon = where[f"U{i}"]
        move(eng, DAY, f"U{i}", lat=lat, lon=lon, kind=kinds[i % 3])
    for j, (dlat, dlon) in enumerate(places):
        eng.handle_event(sos(f"a{j}", device=f"d{j}", lat=LAT + dlat, lon=LON + dlon), DAY)
    now = DAY + 1
    publish(eng, now)
    shown = fresh(eng, now)
    for which, how, dlat, dlon, status, later in changes:
        now += later
        rid = f"U{which}"
        lat, lon = where[rid]
        if how == "move":
            lat, lon = LAT + dlat, LON + dlon
        elif how == "creep":
            lat, lon = lat + dlat / 200, lon + dlon / 200
        report = responder(
            rid,
            status if how == "status" else eng.st.responders[rid].status,
            lat=lat,
            lon=lon,
            kind=kinds[which % 3],
            ts=now,
        )
        where[rid] = (lat, lon)
        # The tick takes off units that fell silent (600 s without a report).
        flagged = republished(eng.handle_event(report, now) + eng.tick(now))
        current = fresh(eng, now)
        changed = sorted(i for i in current if would_change(eng, shown[i], current[i]))
        assert flagged == changed
        # the core publishes what was flagged
        eng.incident_states(flagged, now)
        shown.update({i: current[i] for i in flagged})


def test_many_lists_at_once_are_republished_without_confirming_each() -> None:
    """More candidates than CONFIRM_MAX in one look: all republished, none missed."""
    from console.engine.responders import CONFIRM_MAX

    e = engine()
    for j in range(CONFIRM_MAX + 20):  # a crowd of incidents within 400 m
        spot = (LAT + 0.0001 * (j % 7), LON + 0.0001 * (j // 7))
        e.handle_event(sos(f"a{j}", device=f"d{j}", lat=spot[0], lon=spot[1]), DAY)
    for i in range(6):
        move(e, DAY, f"far-{i}", lat=north(3000 + 50 * i))
    publish(e, DAY + 1)
    effects = move(e, DAY + 2, "near", lat=north(100))  # comes on duty in the crowd
    assert republished(effects) == sorted(e.open_incident_ids())
