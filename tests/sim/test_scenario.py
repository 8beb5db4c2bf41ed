"""The scenario generator: pure, deterministic, realistic enough to exercise the core."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from console.sim import seoul
from console.sim.city import build_city
from console.sim.scenario import SCENARIOS, Emit, Scenario, generate, registration
from protocols import codec, topics
from protocols.geo import haversine_m
from protocols.schemas import (
    CameraHealth,
    CameraHealthStatus,
    CctvEvent,
    ResponderReport,
    ResponderStatus,
    SosAlarm,
)

START = 1_750_000_000.0
CITY = build_city(7, 2000, 60, 100)


def run(
    scenario: str = "evening", rate: float = 20.0, duration: float = 600.0, seed: int = 7
) -> list[Emit]:
    return list(
        Scenario(CITY, seed=seed, scenario=scenario, rate=rate, start=START).events(duration)
    )


def test_same_seed_same_sequence() -> None:
    a = [
        codec.encode(e.message)
        for e in generate(CITY, seed=7, scenario="storm", rate=30, start=START, duration=120)
    ]
    b = [
        codec.encode(e.message)
        for e in generate(CITY, seed=7, scenario="storm", rate=30, start=START, duration=120)
    ]
    c = [
        codec.encode(e.message)
        for e in generate(CITY, seed=8, scenario="storm", rate=30, start=START, duration=120)
    ]
    assert a == b
    assert a != c


def test_registration_first_every_camera_and_responder() -> None:
    reg = list(registration(CITY, START))
    cams = [e.message for e in reg if isinstance(e.message, CameraHealth)]
    units = [e.message for e in reg if isinstance(e.message, ResponderReport)]
    assert len(cams) == 2000 and len(units) == 60
    assert all(c.status is CameraHealthStatus.ONLINE and c.name and c.district for c in cams)
    assert all(c.lat is not None and c.lon is not None for c in cams)
    assert cams[0].district == seoul.district_of(cams[0].lat or 0, cams[0].lon or 0)
    assert all(u.status is ResponderStatus.AVAILABLE and u.name for u in units)
    assert all(e.ts == START for e in reg)


def test_time_order_span_and_rate() -> None:
    events = run(rate=20.0, duration=600.0)
    ts = [e.ts for e in events]
    assert ts == sorted(ts)
    assert START <= ts[0] and ts[-1] < START + 600
    # Poisson at 20/s plus follow-ups: about 12,000, give or take.
    assert 10_000 < len(events) < 16_000


def test_every_message_is_valid_on_the_wire_and_on_its_topic() -> None:
    for emit in itertools.islice(
        generate(CITY, seed=3, scenario="storm", rate=50, start=START, duration=300), 20_000
    ):
        kind_type = topics.RAW_KINDS[emit.kind]
        assert isinstance(emit.message, kind_type)
        assert codec.decode(codec.encode(emit.message), kind_type) == emit.message
        assert emit.message.ts == emit.ts


def test_cameras_and_units_publish_into_their_home_district_and_an_sos_into_none() -> None:
    """What lets each partition's core subscribe to its own districts (docs/partitions.md)."""
    camera_district = {c: CITY.camera_district_name(i) for i, c in enumerate(CITY.camera_ids)}
    unit_home = {u.id: u.district for u in CITY.responders}
    emits = list(
        itertools.islice(
            generate(CITY, seed=3, scenario="storm", rate=50, start=START, duration=300), 20_000
        )
    )
    seen: Counter[str] = Counter()
    for emit in emits:
        message = emit.message
        if isinstance(message, CameraHealth | CctvEvent):
            assert emit.district == camera_district[message.camera_id]
        elif isinstance(message, ResponderReport):
            # Its home, where it started, wherever its patrol has taken it since.
            assert emit.district == message.district == unit_home[message.responder_id]
        else:
            assert isinstance(message, SosAlarm) and emit.district is None
        seen[type(message).__name__] += 1
    assert set(seen) == {"CameraHealth", "CctvEvent", "ResponderReport", "SosAlarm"}
    assert len({e.district for e in emits}) == len(seoul.DISTRICTS) + 1  # every one, and None


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_mix(scenario: str) -> None:
    # Quiet and evening are mostly units' position fixes: a faster run sees enough alarms.
    events = run(scenario=scenario, rate=20.0 if scenario == "storm" else 100.0, duration=900.0)
    kinds = Counter(e.kind for e in events)
    # The simulator does not play public alerts (they come from CAP senders).
    assert all(kinds[k] > 0 for k in topics.RAW_KINDS if k != topics.RAW_ALERT)
    sos = [e.message for e in events if isinstance(e.message, SosAlarm)]
    assert len({a.alarm_id for a in sos}) == len(sos)  # unique per source
    assert {a.trigger.value for a in sos} == {"button", "shake", "voice", "timer-expired"}
    assert all(a.phone and a.phone.startswith("010-") and a.name for a in sos)
    assert any(not a.name.isascii() for a in sos) and any(a.name.isascii() for a in sos)
    cctv = [e.message for e in events if isinstance(e.message, CctvEvent)]
    assert len({c.kind for c in cctv}) == 7
    assert all(0.5 <= c.confidence <= 0.99 for c in cctv)
    faults = Counter(e.message.status for e in events if isinstance(e.message, CameraHealth))
    assert faults[CameraHealthStatus.OFFLINE] and faults[CameraHealthStatus.ONLINE]
    assert faults[CameraHealthStatus.VIDEO_LOSS] and faults[CameraHealthStatus.TAMPERED]


def test_storm_is_worse_than_quiet() -> None:
    def share(events: list[Emit], kind: str) -> float:
        return sum(e.kind == kind for e in events) / len(events)

    quiet, storm = run("quiet"), run("storm")
    assert share(storm, topics.RAW_SOS) > 2 * share(quiet, topics.RAW_SOS)
    assert share(storm, topics.RAW_CAMERA) > 2 * share(quiet, topics.RAW_CAMERA)


def test_sos_bursts_bring_nearby_camera_evidence_within_a_minute() -> None:
    events = run(rate=20.0, duration=900.0)
    sos = [e.message for e in events if isinstance(e.message, SosAlarm)]
    index = {cam: i for i, cam in enumerate(CITY.camera_ids)}
    cctv = [
        e.message
        for e in events
        if isinstance(e.message, CctvEvent) and e.message.kind in ("scream", "fight", "person-down")
    ]
    corroborated = 0
    for alarm in sos:
        for ev in cctv:
            if 0 < ev.ts - alarm.ts <= 60:
                i = index[ev.camera_id]
                d = haversine_m(alarm.lat, alarm.lon, CITY.camera_lat[i], CITY.camera_lon[i])
                if d <= 300:
                    corroborated += 1
                    break
    assert corroborated > len(sos) * 0.3


def test_repeats_from_one_phone_and_flapping_cameras() -> None:
    events = run(rate=20.0, duration=1800.0)
    devices = Counter(e.message.device_id for e in events if isinstance(e.message, SosAlarm))
    assert any(n > 1 for n in devices.values())
    per_camera = Counter(
        e.message.camera_id
        for e in events
        if isinstance(e.message, CameraHealth) and e.message.status is CameraHealthStatus.OFFLINE
    )
    assert any(n >= 3 for n in per_camera.values())  # flaps: offline several times


def test_withdrawn_events_follow_their_event() -> None:
    events = run(rate=20.0, duration=900.0)
    first: dict[str, float] = {}
    withdrawn = 0
    for e in events:
        if isinstance(e.message, CctvEvent):
            if e.message.withdrawn:
                withdrawn += 1
                assert e.message.event_id in first and first[e.message.event_id] < e.ts
            else:
                first[e.message.event_id] = e.ts
    assert withdrawn > 0


def test_responders_move_a_little() -> None:
    events = run(rate=20.0, duration=600.0)
    home = {u.id: u for u in CITY.responders}
    for e in events:
        if isinstance(e.message, ResponderReport):
            u = home[e.message.responder_id]
            assert haversine_m(u.lat, u.lon, e.message.lat, e.message.lon) < 5000


def test_alarm_ids_carry_the_start_so_a_restart_does_not_reuse_them() -> None:
    a = Scenario(CITY, seed=7, scenario="storm", rate=50, start=START).events(60)
    b = Scenario(CITY, seed=7, scenario="storm", rate=50, start=START + 3600).events(60)
    ids_a = {e.message.alarm_id for e in a if isinstance(e.message, SosAlarm)}
    ids_b = {e.message.alarm_id for e in b if isinstance(e.message, SosAlarm)}
    assert ids_a and ids_b and not ids_a & ids_b


def test_rate_zero_and_empty_city() -> None:
    assert run(rate=0.0, duration=100.0) == []
    empty = build_city(7, 0, 0, 0)
    events = list(Scenario(empty, seed=1, scenario="storm", rate=50, start=START).events(60))
    assert events and all(isinstance(e.message, SosAlarm) for e in events)


def test_unknown_scenario() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        Scenario(CITY, seed=1, scenario="blizzard", rate=1, start=START)


def test_endless_stream_is_lazy() -> None:
    stream = Scenario(CITY, seed=1, scenario="quiet", rate=5, start=START).events(None)
    assert len(list(itertools.islice(stream, 1000))) == 1000


def test_a_unit_on_a_job_is_not_patrolled_and_the_rest_of_the_stream_is_the_same() -> None:
    def stream(held: str | None) -> list[Emit]:
        scenario = Scenario(CITY, seed=7, scenario="evening", rate=20, start=START)
        if held is not None:
            scenario.hold(held)
        return list(scenario.events(600))

    unit = CITY.responders[0].id
    free, holding = stream(None), stream(unit)

    def of(e: Emit) -> bool:
        return isinstance(e.message, ResponderReport) and e.message.responder_id == unit

    assert any(of(e) for e in free) and not any(of(e) for e in holding)
    assert [e for e in free if not of(e)] == holding


def test_a_released_unit_patrols_on_from_where_its_job_left_it() -> None:
    scenario = Scenario(CITY, seed=7, scenario="evening", rate=20, start=START)
    unit = CITY.responders[0]
    scenario.hold(unit.id)
    far = (unit.lat + 0.02, unit.lon)  # ~2 km from its beat
    scenario.release(unit.id, far[0], far[1], START)
    first = next(
        e.message
        for e in scenario.events(3600)
        if isinstance(e.message, ResponderReport) and e.message.responder_id == unit.id
    )
    # Within a step (and the drift home) of where it was left, not back at its beat.
    assert (
        haversine_m(first.lat, first.lon, *far)
        < 1000
        < haversine_m(first.lat, first.lon, unit.lat, unit.lon)
    )


def test_registration_leaves_out_units_on_a_job() -> None:
    skip = {CITY.responders[0].id}
    reported = [
        e.message.responder_id
        for e in registration(CITY, START, skip=skip)
        if isinstance(e.message, ResponderReport)
    ]
    assert len(reported) == len(CITY.responders) - 1 and not skip & set(reported)
