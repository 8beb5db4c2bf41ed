"""Correlation and priority: SOS folding, CCTV near an SOS, CCTV folding, withdrawals, faults."""

from __future__ import annotations

from collections.abc import Sequence

from console.config import Config, PriorityConfig
from console.engine.effects import (
    CameraChanged,
    IncidentClosed,
    NewHighPriority,
    Rejected,
    SendReceipt,
)
from console.engine.engine import Engine
from protocols.schemas import (
    Action,
    CameraHealthStatus,
    CameraStatus,
    CctvKind,
    IncidentKind,
    IncidentStatus,
)
from tests.engine.test_engine_support import (
    DAY,
    LAT,
    LON,
    NIGHT,
    camera,
    cctv,
    do,
    engine,
    responder,
    sos,
)

I1, I2, I3 = "I-000001", "I-000002", "I-000003"
OFFLINE, ONLINE = CameraHealthStatus.OFFLINE, CameraHealthStatus.ONLINE


def receipts(effects: Sequence[object]) -> list[str]:
    return [e.receipt.incident_id for e in effects if isinstance(e, SendReceipt)]


# --- SOS ----------------------------------------------------------------------------------


def test_resend_of_same_alarm_gets_receipt_and_counts_nothing() -> None:
    e = engine()
    assert receipts(e.handle_event(sos("a1"), DAY)) == [I1]
    snap = e.snapshot()
    effects = e.handle_event(sos("a1"), DAY + 5)
    assert receipts(effects) == [I1] and len(effects) == 1
    assert e.snapshot() == snap
    s = e.incident_state(I1, DAY)
    assert s.sos_count == 1 and len(s.events) == 1


def test_same_alarm_id_from_another_source_is_another_alarm() -> None:
    e = engine()
    e.handle_event(sos("a1", source="app"), DAY)
    effects = e.handle_event(sos("a1", source="gateway"), DAY + 1)
    # Another source's device of the same name is another device: its own incident.
    assert receipts(effects) == [I2] and e.incident_state(I1, DAY).sos_count == 1


def test_repeated_sos_from_a_device_folds_and_follows_the_person() -> None:
    e = engine()
    e.handle_event(sos("a1"), DAY)
    effects = e.handle_event(sos("a2", lat=LAT + 0.002), DAY + 60)
    assert receipts(effects) == [I1] and not any(isinstance(x, NewHighPriority) for x in effects)
    s = e.incident_state(I1, DAY + 60)
    assert s.sos_count == 2 and [ev.kind for ev in s.events] == ["sos", "sos"]
    assert s.lat == LAT + 0.002
    assert e.open_incident_ids() == [I1]


def test_sos_after_fold_window_opens_a_new_incident() -> None:
    e = engine()
    e.handle_event(sos("a1"), DAY)
    e.handle_event(sos("a2"), DAY + 1800)  # at the edge: folds
    assert receipts(e.handle_event(sos("a3"), DAY + 1800 + 1801)) == [I2]
    assert e.open_incident_ids() == [I1, I2]


def test_sos_after_its_incident_closed_opens_a_new_one_but_resends_keep_the_old_id() -> None:
    e = engine()
    e.handle_event(sos("a1"), DAY)
    do(e, Action.RESOLVE, disposition="ok")
    assert receipts(e.handle_event(sos("a1"), DAY + 20)) == [I1]
    assert e.open_incident_ids() == []
    assert receipts(e.handle_event(sos("a2"), DAY + 30)) == [I2]


def test_other_devices_do_not_fold() -> None:
    e = engine()
    e.handle_event(sos("a1", device="d1"), DAY)
    e.handle_event(sos("a2", device="d2"), DAY + 1)
    assert e.open_incident_ids() == [I1, I2]


# --- CCTV near an SOS -------------------------------------------------------------------------


def with_cameras() -> Engine:
    e = engine()
    e.handle_event(camera("cam1", lat=LAT + 0.001), DAY - 1000)  # ~111 m north
    e.handle_event(camera("far", lat=LAT + 0.01), DAY - 1000)  # ~1.1 km north
    return e


def test_cctv_near_open_sos_attaches_to_it() -> None:
    e = with_cameras()
    e.handle_event(sos("a1"), DAY)
    effects = e.handle_event(cctv("e1", "cam1", url="http://vms/1.jpg"), DAY + 30)
    assert CameraChanged("cam1", "Jung-gu") in effects
    assert e.open_incident_ids() == [I1]
    s = e.incident_state(I1, DAY + 30)
    assert s.priority == 1 and [ev.kind for ev in s.events] == ["sos", "scream"]
    cam = next(c for c in s.cameras if c.camera_id == "cam1")
    assert cam.status is CameraStatus.ALARM and cam.snapshot_url == "http://vms/1.jpg"
    assert not any(isinstance(x, NewHighPriority) for x in effects)


def test_cctv_attaches_to_the_nearest_sos() -> None:
    e = with_cameras()
    e.handle_event(sos("a1", device="d1", lat=LAT - 0.001), DAY)  # ~222 m from cam1
    e.handle_event(sos("a2", device="d2", lat=LAT + 0.0015), DAY)  # ~55 m from cam1
    e.handle_event(cctv("e1", "cam1"), DAY + 1)
    assert len(e.incident_state(I2, DAY).events) == 2
    assert len(e.incident_state(I1, DAY).events) == 1


def test_cctv_beyond_radius_or_window_is_its_own_incident() -> None:
    e = with_cameras()
    e.handle_event(sos("a1"), DAY)
    e.handle_event(cctv("e1", "far"), DAY + 1)
    assert e.open_incident_ids() == [I1, I2]
    assert e.incident_state(I2, DAY).kind is IncidentKind.CCTV
    e.handle_event(cctv("e2", "cam1"), DAY + 601)  # SOS is 601 s old: outside window_s
    assert e.open_incident_ids() == [I1, I2, I3]


def test_cctv_does_not_attach_to_a_closed_sos() -> None:
    e = with_cameras()
    e.handle_event(sos("a1"), DAY)
    do(e, Action.FALSE_ALARM)
    e.handle_event(cctv("e1", "cam1"), DAY + 1)
    assert e.open_incident_ids() == [I2]


# --- CCTV on its own ------------------------------------------------------------------------------


def test_cctv_priorities_by_kind_day_and_night() -> None:
    e = with_cameras()
    cases = [
        (CctvKind.SCREAM, DAY, 2),
        (CctvKind.FIGHT, DAY, 2),
        (CctvKind.PERSON_DOWN, DAY, 2),
        (CctvKind.LOITERING, DAY, 4),
        (CctvKind.LOITERING, NIGHT, 3),
        (CctvKind.INTRUSION, DAY, 4),
        (CctvKind.INTRUSION, NIGHT, 3),
        (CctvKind.CROWDING, NIGHT, 3),
    ]
    for i, (kind, now, priority) in enumerate(cases):
        e.handle_event(cctv(f"e{i}", f"c{i}", kind, lat=LAT + i * 0.01, lon=LON), now)
        iid = f"I-{i + 1:06d}"
        assert e.incident_state(iid, now).priority == priority, kind


def test_cctv_events_of_one_camera_and_kind_fold() -> None:
    e = with_cameras()
    e.handle_event(cctv("e1", "far"), DAY)
    e.handle_event(cctv("e2", "far"), DAY + 100)
    e.handle_event(cctv("e3", "far"), DAY + 220)  # 120 s after the last one: folds
    assert e.open_incident_ids() == [I1]
    assert len(e.incident_state(I1, DAY).events) == 3
    e.handle_event(cctv("e4", "far", CctvKind.FIGHT), DAY + 221)  # another kind
    e.handle_event(cctv("e5", "far"), DAY + 221 + 121)  # too late
    assert e.open_incident_ids() == [I1, I2, I3]


def test_duplicate_cctv_event_is_ignored() -> None:
    e = with_cameras()
    e.handle_event(cctv("e1", "far"), DAY)
    snap = e.snapshot()
    assert e.handle_event(cctv("e1", "far"), DAY + 1) == []
    assert e.snapshot() == snap


def test_cctv_from_unknown_camera() -> None:
    e = engine()
    effects = e.handle_event(cctv("e1", "ghost"), DAY)
    assert len(effects) == 1 and isinstance(effects[0], Rejected)
    # A refusal changes nothing in the engine: the core dead-letters it and counts it.
    assert "no known position" in effects[0].reason and e.open_incident_ids() == []
    effects = e.handle_event(cctv("e2", "ghost", lat=LAT, lon=LON), DAY)
    assert e.open_incident_ids() == [I1]
    assert e.district_cameras(e.districts()[0], DAY).alarm == 1


def test_higher_priority_event_raises_the_incident() -> None:
    cfg = Config(priority=PriorityConfig(fight=1))
    e = engine(cfg)
    e.handle_event(camera("cam1"), DAY)
    e.handle_event(cctv("e1", "cam1", CctvKind.FIGHT, lat=LAT, lon=LON), DAY)
    assert e.incident_state(I1, DAY).ack_deadline == DAY + 30
    e2 = engine(Config(priority=PriorityConfig(scream=1)))
    e2.handle_event(camera("cam1"), DAY)
    e2.handle_event(cctv("e1", "cam1", CctvKind.SCREAM), DAY)
    assert e2.incident_state(I1, DAY).priority == 1


# --- withdrawals ----------------------------------------------------------------------------


def test_withdrawn_only_event_closes_as_false_alarm_by_core() -> None:
    e = with_cameras()
    e.handle_event(cctv("e1", "cam1"), DAY)
    assert e.district_cameras("Jung-gu", DAY).alarm == 1
    effects = e.handle_event(cctv("e1", "cam1", withdrawn=True), DAY + 5)
    assert IncidentClosed(I1) in effects and CameraChanged("cam1", "Jung-gu") in effects
    s = e.incident_state(I1, DAY + 5)
    assert s.status is IncidentStatus.FALSE_ALARM and s.history[-1].actor == "core"
    assert s.events[-1].kind == "withdrawn"
    assert e.district_cameras("Jung-gu", DAY).alarm == 0
    assert e.handle_event(cctv("e1", "cam1", withdrawn=True), DAY + 6) == []


def test_withdrawing_one_of_two_events_keeps_the_incident() -> None:
    e = with_cameras()
    e.handle_event(cctv("e1", "cam1"), DAY)
    e.handle_event(cctv("e2", "cam1"), DAY + 1)
    e.handle_event(cctv("e1", "cam1", withdrawn=True), DAY + 2)
    assert e.open_incident_ids() == [I1]
    assert e.district_cameras("Jung-gu", DAY).alarm == 1
    e.handle_event(cctv("e2", "cam1", withdrawn=True), DAY + 3)
    assert e.open_incident_ids() == []


def test_withdrawal_with_a_unit_dispatched_leaves_it_to_the_operator() -> None:
    e = with_cameras()
    e.handle_event(responder("P-1"), DAY)
    e.handle_event(cctv("e1", "cam1"), DAY)
    do(e, Action.DISPATCH)
    e.handle_event(cctv("e1", "cam1", withdrawn=True), DAY + 2)
    s = e.incident_state(I1, DAY)
    assert s.status is IncidentStatus.DISPATCHED and s.history[-1].action == "withdrawn"


def test_withdrawn_event_in_an_sos_is_recorded_only() -> None:
    e = with_cameras()
    e.handle_event(sos("a1"), DAY)
    e.handle_event(cctv("e1", "cam1"), DAY + 1)
    e.handle_event(cctv("e1", "cam1", withdrawn=True), DAY + 2)
    s = e.incident_state(I1, DAY)
    assert s.status is IncidentStatus.NEW and s.priority == 1
    assert [ev.kind for ev in s.events] == ["sos", "scream", "withdrawn"]


def test_withdrawal_of_unknown_event_changes_nothing() -> None:
    e = with_cameras()
    snap = e.snapshot()
    assert e.handle_event(cctv("nope", "cam1", withdrawn=True), DAY) == []
    assert e.snapshot() == snap


# --- camera health --------------------------------------------------------------------------


def test_camera_registration_and_status() -> None:
    e = engine()
    effects = e.handle_event(camera("cam1", name="Exit 3", district="Mapo-gu"), DAY)
    assert effects == [CameraChanged("cam1", "Mapo-gu")]
    assert e.handle_event(camera("cam1", name="Exit 3", district="Mapo-gu"), DAY + 60) == []
    d = e.district_cameras("Mapo-gu", DAY + 60)
    assert d.online == 1 and d.cameras[0].name == "Exit 3" and d.cameras[0].last_seen == DAY + 60
    effects = e.handle_event(camera("cam1", district="Jung-gu"), DAY + 61)
    assert (
        CameraChanged("cam1", "Mapo-gu") in effects and CameraChanged("cam1", "Jung-gu") in effects
    )
    assert e.districts() == ["Jung-gu"]


def test_camera_fault_is_one_incident_while_flapping() -> None:
    e = engine()
    e.handle_event(camera("cam1"), DAY)
    e.handle_event(camera("cam1", OFFLINE), DAY + 10)
    s = e.incident_state(I1, DAY)
    assert (s.kind, s.priority, s.source) == (IncidentKind.CAMERA_FAULT, 4, "cam1")
    assert e.district_cameras("Jung-gu", DAY).offline == 1
    e.handle_event(camera("cam1", ONLINE), DAY + 100)
    assert e.open_incident_ids() == [I1]  # recovery does not close it
    e.handle_event(camera("cam1", OFFLINE), DAY + 900)
    e.handle_event(camera("cam1", CameraHealthStatus.TAMPERED), DAY + 910)
    assert e.open_incident_ids() == [I1]
    kinds = [ev.kind for ev in e.incident_state(I1, DAY).events]
    assert kinds == ["offline", "online", "offline", "tampered"]
    assert e.district_cameras("Jung-gu", DAY).tampered == 1


def test_camera_fault_after_flap_window_or_closing_is_new() -> None:
    e = engine()
    e.handle_event(camera("cam1", OFFLINE), DAY)
    e.handle_event(camera("cam1", ONLINE), DAY + 10)
    e.handle_event(camera("cam1", OFFLINE), DAY + 10 + 901)
    assert e.open_incident_ids() == [I1, I2]
    do(e, Action.RESOLVE, I2, disposition="fixed")
    e.handle_event(camera("cam1", ONLINE), DAY + 2000)
    e.handle_event(camera("cam1", OFFLINE), DAY + 2001)
    assert e.open_incident_ids() == [I1, I3]


def test_camera_without_position_can_still_fault() -> None:
    e = engine()
    e.handle_event(camera("cam1", OFFLINE, lat=None, lon=None, district=None), DAY)
    s = e.incident_state(I1, DAY)
    assert s.place == "position unknown" and s.recommended == () and s.district == "unknown"
