"""Trust: positions inside the service area, no impossible jumps, times within the skew."""

from __future__ import annotations

import msgspec
import pytest

from console.config import CityConfig, Config
from console.engine.districts import DistrictMap
from console.engine.effects import Effect, Rejected, SendReceipt
from protocols.public_alert import PublicAlert
from protocols.schemas import Action, CameraHealthStatus, IncidentKind, ResponderStatus, UnitKind
from tests.engine.test_engine_support import (
    DAY,
    LAT,
    LON,
    camera,
    cctv,
    do,
    engine,
    responder,
    sos,
)

I1, I2 = "I-000001", "I-000002"
JEJU = (33.4996, 126.5312)


def rejected(effects: list[Effect]) -> str:
    [only] = effects
    assert isinstance(only, Rejected), effects
    return only.reason


def history(e: object, incident_id: str, now: float = DAY + 3600) -> list[tuple[str, str]]:
    state = e.incident_state(incident_id, now)  # type: ignore[attr-defined]
    return [(h.action, h.detail) for h in state.history]


# --- the service area --------------------------------------------------------------------


def test_the_service_area_is_derived_from_the_districts_or_given() -> None:
    area = Config().city.district_map().service_area
    assert area[0] < 37.45 and area[2] > 37.69 and area[1] < 126.8 and area[3] > 127.15
    assert Config().city.district_map().in_service_area(LAT, LON)
    assert not Config().city.district_map().in_service_area(*JEJU)
    given = msgspec.convert({"service_area": [37.0, 126.0, 38.0, 128.0]}, CityConfig)
    assert given.district_map().service_area == (37.0, 126.0, 38.0, 128.0)
    with pytest.raises(msgspec.ValidationError, match="service_area"):
        msgspec.convert({"service_area": [38.0, 126.0, 37.0, 128.0]}, CityConfig)
    with pytest.raises(ValueError):
        DistrictMap(Config().city.districts, service_area=[1.0, 2.0])


def test_an_sos_outside_the_area_is_kept_without_its_position() -> None:
    e = engine()
    effects = e.handle_event(sos("a1", lat=0.0, lon=0.0), DAY)
    assert any(isinstance(x, SendReceipt) for x in effects)  # never lost
    s = e.incident_state(I1, DAY)
    assert (s.lat, s.lon, s.place, s.district) == (0.0, 0.0, "position unknown", "unknown")
    assert s.recommended == ()
    assert (
        "position unknown",
        "SOS a1: position 0.00000, 0.00000 is outside the service area",
    ) in history(e, I1)
    # A later fix inside the area places it.
    e.handle_event(responder("P-1"), DAY)
    e.handle_event(sos("a2"), DAY + 30)
    s = e.incident_state(I1, DAY + 30)
    assert (s.lat, s.lon) == (LAT, LON) and [r.responder_id for r in s.recommended] == ["P-1"]


def test_a_second_sos_at_zero_zero_does_not_move_the_incident() -> None:
    e = engine()
    e.handle_event(responder("P-1"), DAY)
    e.handle_event(sos("a1"), DAY)
    e.handle_event(sos("a2", lat=0.0, lon=0.0), DAY + 30)
    s = e.incident_state(I1, DAY + 30)
    assert (s.lat, s.lon) == (LAT, LON) and s.sos_count == 2 and s.recommended
    assert history(e, I1)[-1][0] == "position kept"
    assert e.st.implausible_total == 1


def test_reports_outside_the_area_are_refused() -> None:
    e = engine()
    assert "outside the service area" in rejected(
        e.handle_event(responder(lat=JEJU[0], lon=JEJU[1]), DAY)
    )
    assert "outside the service area" in rejected(
        e.handle_event(camera(lat=JEJU[0], lon=JEJU[1]), DAY)
    )
    assert "outside the service area" in rejected(
        e.handle_event(cctv("e1", "camX", lat=JEJU[0], lon=JEJU[1]), DAY)
    )
    assert e.st.responders == {} and e.st.cameras == {} and e.st.incidents == {}


def test_a_public_alert_outside_the_area_needs_one_of_the_districts() -> None:
    e = engine()
    far = PublicAlert(
        identifier="A1",
        sender="kma",
        sent=DAY,
        msg_type="Alert",
        priority=3,
        lat=JEJU[0],
        lon=JEJU[1],
    )
    assert "outside the service area" in rejected(e.handle_event(far, DAY))
    named = msgspec.structs.replace(far, districts=("Nowhere-gu", "Jung-gu"))
    e.handle_event(named, DAY)
    s = e.incident_state(I1, DAY)
    assert s.district == "Jung-gu" and (s.lat, s.lon) == (0.0, 0.0)


# --- impossible jumps --------------------------------------------------------------------


def test_an_sos_fix_that_jumps_is_recorded_not_applied() -> None:
    e = engine()
    e.handle_event(sos("a1"), DAY)
    # 12 km north in 10 s: far beyond a phone's 200 km/h.
    e.handle_event(sos("a2", lat=LAT + 0.108, ts=DAY + 10), DAY + 10)
    s = e.incident_state(I1, DAY + 10)
    assert (s.lat, s.lon) == (LAT, LON) and s.sos_count == 2 and len(s.events) == 2
    action, detail = history(e, I1)[-1]
    assert action == "position kept" and "12.0 km" in detail and "200 km/h" in detail
    # Twenty minutes later the same place is plausible (a car): it follows.
    e.handle_event(sos("a3", lat=LAT + 0.108, ts=DAY + 1210), DAY + 1210)
    assert e.incident_state(I1, DAY + 1210).lat == LAT + 0.108


def test_fixes_out_of_order_are_judged_by_the_time_between_them() -> None:
    e = engine()
    e.handle_event(sos("a1", ts=DAY + 600), DAY + 600)
    e.handle_event(sos("a2", lat=LAT + 0.03, ts=DAY), DAY + 601)  # 3.3 km, 10 min apart
    assert e.incident_state(I1, DAY + 601).lat == LAT + 0.03
    e.handle_event(sos("a3", lat=LAT + 0.15, ts=DAY + 60), DAY + 602)  # 13 km in a minute
    assert e.incident_state(I1, DAY + 602).lat == LAT + 0.03


def test_a_responder_fix_that_jumps_does_not_move_the_unit() -> None:
    e = engine()
    e.handle_event(responder("S-1", kind=UnitKind.SCOUT, lat=LAT), DAY)
    e.handle_event(responder("S-1", kind=UnitKind.SCOUT, lat=LAT + 0.1, ts=DAY + 60), DAY + 60)
    assert e.responder_state("S-1").lat == LAT and e.st.implausible_total == 1
    # Police may drive fast: 2 km in a minute is 120 km/h.
    e.handle_event(responder("P-1", lat=LAT), DAY)
    e.handle_event(responder("P-1", lat=LAT + 0.018, ts=DAY + 60), DAY + 60)
    assert e.responder_state("P-1").lat == LAT + 0.018


def test_a_jump_of_an_assigned_unit_is_in_its_incidents_history() -> None:
    e = engine()
    e.handle_event(responder("P-1"), DAY)
    e.handle_event(sos("a1"), DAY)
    do(e, Action.DISPATCH, I1, responder_id="P-1", now=DAY + 5)
    # 10 km in 10 s: the status is taken, the position is not.
    e.handle_event(responder("P-1", ResponderStatus.EN_ROUTE, lat=LAT + 0.1, ts=DAY + 10), DAY + 10)
    unit = e.responder_state("P-1")
    assert unit.lat == LAT + 0.005 and unit.status is ResponderStatus.EN_ROUTE
    entries = history(e, I1)
    assert entries[-2][0] == "position kept" and entries[-2][1].startswith("P-1: ")
    assert entries[-1] == ("en-route", "P-1 reported en-route")


def test_a_fix_a_second_older_from_another_tracker_still_moves_the_unit() -> None:
    e = engine()
    e.handle_event(responder("S-1", kind=UnitKind.SCOUT, ts=DAY + 100.7), DAY + 100.7)
    e.handle_event(responder("S-1", kind=UnitKind.SCOUT, lat=LAT + 0.001, ts=DAY + 100), DAY + 101)
    assert e.responder_state("S-1").lat == LAT + 0.001


# --- times -------------------------------------------------------------------------------


@pytest.mark.parametrize("ts", [DAY + 3 * 365 * 86400, 0.0, DAY - 2 * 86400, DAY + 301])
def test_an_sos_with_a_wrong_clock_is_kept_with_the_receive_time(ts: float) -> None:
    e = engine()
    effects = e.handle_event(sos("a1", ts=ts), DAY)
    assert any(isinstance(x, SendReceipt) for x in effects)
    s = e.incident_state(I1, DAY)
    assert s.events[0].ts == DAY
    action, detail = history(e, I1)[-1]
    assert action == "time replaced" and "receive time" in detail


def test_an_sos_within_the_skew_keeps_its_own_time() -> None:
    e = engine()
    e.handle_event(sos("a1", ts=DAY + 200), DAY)
    e.handle_event(sos("a2", ts=DAY - 3600), DAY + 1)
    s = e.incident_state(I1, DAY + 1)
    assert [ev.ts for ev in s.events] == [DAY + 200, DAY - 3600]
    assert [h.action for h in s.history] == ["opened"]


def test_a_year_old_responder_report_is_refused() -> None:
    e = engine()
    e.handle_event(responder("P-1"), DAY)
    old = responder("P-1", ResponderStatus.OFF_DUTY, lat=LAT + 0.01, ts=DAY - 365 * 86400)
    assert "old" in rejected(e.handle_event(old, DAY + 10))
    assert e.responder_state("P-1").status is ResponderStatus.AVAILABLE


def test_a_responder_clock_ahead_counts_as_now() -> None:
    e = engine()
    e.handle_event(responder("P-1", ts=DAY + 10 * 86400), DAY)
    assert e.st.responders["P-1"].fix_ts == DAY
    e.handle_event(responder("P-1", lat=LAT + 0.006, ts=DAY + 30), DAY + 30)
    assert e.responder_state("P-1").lat == LAT + 0.006  # not "older than the last fix"


def test_cctv_and_camera_times_beyond_the_skew_are_replaced() -> None:
    e = engine()
    e.handle_event(camera("cam1"), DAY)
    e.handle_event(cctv("e1", "cam1", ts=DAY + 86400 * 100), DAY)
    assert e.incident_state(I1, DAY).events[0].ts == DAY
    e.handle_event(camera("cam1", CameraHealthStatus.OFFLINE, ts=1.0), DAY + 5)
    fault = e.incident_state(I2, DAY + 5)
    assert fault.events[0].ts == DAY + 5 and "before the receive time" in fault.events[0].detail


# --- cameras: position and district ------------------------------------------------------


def test_an_unplaced_camera_is_never_put_at_zero_and_its_events_are_refused() -> None:
    e = engine()
    e.handle_event(camera("cam1", CameraHealthStatus.OFFLINE, lat=None, lon=None), DAY)
    assert e.incident_state(I1, DAY).place == "position unknown"  # its fault is seen
    assert e.district_cameras("Jung-gu", DAY).cameras == ()  # but it is on no map
    reason = rejected(e.handle_event(cctv("e1", "cam1"), DAY + 1))
    assert "camera cam1 has no known position" in reason
    assert "camera cam2 has no known position" in rejected(e.handle_event(cctv("e2", "cam2"), DAY))
    # Placed: shown, and its events count.
    e.handle_event(camera("cam1", CameraHealthStatus.ONLINE), DAY + 2)
    assert [c.id for c in e.district_cameras("Jung-gu", DAY + 2).cameras] == ["cam1"]
    assert e.handle_event(cctv("e3", "cam1"), DAY + 3)
    assert len(e.open_incident_ids()) == 2


def test_a_reported_district_counts_only_if_it_is_one_of_the_city() -> None:
    e = engine()
    e.handle_event(camera("cam1", district="Atlantis"), DAY)
    assert e.st.cameras["cam1"].district == "Jung-gu"  # from the position
    e.handle_event(camera("cam2", district="Gangnam-gu"), DAY)
    assert e.st.cameras["cam2"].district == "Gangnam-gu"
    e.handle_event(camera("cam2", district="Nowhere"), DAY + 1)
    assert e.st.cameras["cam2"].district == "Jung-gu"
    assert e.districts() == ["Jung-gu"]


def test_an_sos_outside_the_area_is_not_near_any_cctv() -> None:
    e = engine()
    e.handle_event(sos("a1", lat=0.0, lon=0.0), DAY)
    assert e.sos_index.within(0.0, 0.0, 1000.0) == []
    e.handle_event(camera("cam1"), DAY)
    e.handle_event(cctv("e1", "cam1"), DAY + 1)
    assert e.incident_state(I2, DAY + 1).kind is IncidentKind.CCTV
