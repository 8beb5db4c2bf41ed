"""Across a partition's border: a neighbour's cameras and units read as context only.

The engine of a partition that owns Mapo-gu alone (``EngineSettings.districts``) reads a
camera and a unit of Seodaemun-gu, its neighbour: the camera's CCTV events may join an
SOS here, the unit may be recommended here, and nothing of either is ever published or
decided here (docs/partitions.md, "Borders").
"""

from __future__ import annotations

import msgspec

from console.config import Config, PriorityConfig
from console.engine.effects import CameraChanged, Effect, IncidentChanged, ResponderChanged
from console.engine.engine import Engine
from console.engine.settings import EngineSettings
from protocols import codec
from protocols.schemas import (
    CameraHealthStatus,
    CctvEvent,
    CctvKind,
    IncidentKind,
    Recommendation,
    ResponderStatus,
    UnitKind,
)
from tests.engine.test_engine_support import DAY, camera, cctv, responder, sos

OWN = "Mapo-gu"
NEIGHBOUR = "Seodaemun-gu"
# Either side of the Mapo-gu / Seodaemun-gu line of the district map, 194 m apart.
IN_MAPO = (37.5690, 126.9244)
ACROSS = (37.5700, 126.9262)
# Further into Seodaemun-gu: 1.4 km from the SOS, beyond the correlation radius (300 m).
DEEP = (37.5790, 126.9380)
FIRST = "north-000001"


def settings(own: frozenset[str] = frozenset({OWN}), sos_priority: int = 1) -> EngineSettings:
    base = Config().engine_settings()
    return msgspec.structs.replace(
        base,
        priority=PriorityConfig(sos=sos_priority),
        partition="north" if own else base.partition,
        id_prefix="north" if own else base.id_prefix,
        districts=own,
    )


def make(own: frozenset[str] = frozenset({OWN}), sos_priority: int = 1) -> Engine:
    return Engine(settings(own, sos_priority), Config().city.district_map())


def neighbours_camera(
    e: Engine, status: CameraHealthStatus = CameraHealthStatus.ONLINE
) -> list[Effect]:
    """What a core subscribed to the border reads: the camera's report, in its district."""
    lat, lon = ACROSS
    return e.handle_event(
        camera("sdm-1", status, lat=lat, lon=lon, district=NEIGHBOUR), DAY - 100, source="vms"
    )


def sos_in_mapo() -> object:
    return sos("a1", lat=IN_MAPO[0], lon=IN_MAPO[1])


def test_the_points_are_where_the_tests_say() -> None:
    districts = Config().city.district_map()
    assert districts.district_of(*IN_MAPO) == OWN
    assert districts.district_of(*ACROSS) == NEIGHBOUR
    assert districts.district_of(*DEEP) == NEIGHBOUR


def test_a_neighbours_cctv_event_joins_an_sos_here_and_raises_it() -> None:
    e = make(sos_priority=3)
    assert neighbours_camera(e) == []  # registered, and nothing of it to publish here
    e.handle_event(sos_in_mapo(), DAY)
    assert e.incident_state(FIRST, DAY).priority == 3
    effects = e.handle_event(cctv("e1", "sdm-1", url="http://vms/1.jpg"), DAY + 30, source="vms")
    assert effects == [IncidentChanged(FIRST)]
    assert e.open_incident_ids() == [FIRST]
    s = e.incident_state(FIRST, DAY + 30)
    assert [(ev.kind, ev.source) for ev in s.events] == [("sos", "dev1"), ("scream", "sdm-1")]
    assert s.priority == 2  # a scream is P2 (the SOS here is P3): the rules, as for an own camera
    assert "sdm-1" in {c.camera_id for c in s.cameras}  # shown among the nearby cameras
    # Its owner's camera pages, never this partition's.
    assert e.districts() == []
    assert e.st.border_events_ignored == 0


def test_a_neighbours_event_withdrawn_or_ended_changes_its_sos_only() -> None:
    e = make()
    neighbours_camera(e)
    e.handle_event(sos_in_mapo(), DAY)
    e.handle_event(cctv("e1", "sdm-1"), DAY + 30, source="vms")
    effects = e.handle_event(cctv("e1", "sdm-1", withdrawn=True), DAY + 40, source="vms")
    assert effects == [IncidentChanged(FIRST)]
    assert [ev.kind for ev in e.incident_state(FIRST, DAY).events][-1] == "withdrawn"


def across(event: CctvEvent) -> CctvEvent:
    """As the intake gives it when published into the neighbour's district (its topic's)."""
    return msgspec.structs.replace(event, district=NEIGHBOUR)


def test_a_neighbours_cctv_event_with_no_sos_nearby_opens_nothing() -> None:
    e = make()
    neighbours_camera(e)
    e.handle_event(sos_in_mapo(), DAY)
    before = e.st.events_total
    deep = across(cctv("e1", "sdm-2", lat=DEEP[0], lon=DEEP[1]))
    far = e.handle_event(deep, DAY + 30, source="vms")
    none_open = make()
    neighbours_camera(none_open)
    near = none_open.handle_event(cctv("e2", "sdm-1"), DAY + 30, source="vms")
    assert far == [] and near == []
    assert e.open_incident_ids() == [FIRST] and none_open.open_incident_ids() == []
    assert e.st.border_events_ignored == none_open.st.border_events_ignored == 1
    assert e.st.events_total == before  # its owner counts it
    # An own camera at the same place opens a CCTV incident, as before.
    opened = none_open.handle_event(cctv("e3", "mapo-1", lat=IN_MAPO[0], lon=IN_MAPO[1]), DAY + 31)
    assert none_open.incident_state(FIRST, DAY).kind is IncidentKind.CCTV
    assert CameraChanged("mapo-1", OWN) in opened


def test_a_neighbours_event_never_folds_into_an_own_cctv_incident() -> None:
    e = make()
    neighbours_camera(e)
    e.handle_event(cctv("e1", "mapo-1", lat=IN_MAPO[0], lon=IN_MAPO[1]), DAY)
    assert e.handle_event(cctv("e2", "sdm-1"), DAY + 5, source="vms") == []
    assert [ev.source for ev in e.incident_state(FIRST, DAY).events] == ["mapo-1"]


def test_a_neighbours_camera_going_offline_opens_no_fault() -> None:
    e = make()
    neighbours_camera(e)
    effects = neighbours_camera(e, CameraHealthStatus.OFFLINE)
    assert effects == [] and e.open_incident_ids() == []
    assert e.st.cameras["sdm-1"].health is CameraHealthStatus.OFFLINE
    assert e.districts() == []
    # An own camera's fault still opens its incident.
    e.handle_event(camera("mapo-1", CameraHealthStatus.OFFLINE, lat=IN_MAPO[0], lon=IN_MAPO[1],
                          district=OWN), DAY)  # fmt: skip
    assert e.incident_state(FIRST, DAY).kind is IncidentKind.CAMERA_FAULT
    assert e.districts() == [OWN]


def neighbours_unit(
    e: Engine, status: ResponderStatus = ResponderStatus.AVAILABLE, ts: float = DAY
) -> list[Effect]:
    report = responder("sdm-p1", status, lat=ACROSS[0], lon=ACROSS[1], kind=UnitKind.POLICE, ts=ts)
    report = msgspec.structs.replace(report, district=NEIGHBOUR)
    return e.handle_event(report, ts, source="radio")


def test_a_neighbours_unit_is_recommended_marked_and_never_published() -> None:
    e = make()
    e.handle_event(sos_in_mapo(), DAY)
    effects = neighbours_unit(e)
    assert not any(isinstance(x, ResponderChanged) for x in effects)
    own = responder("mapo-p1", lat=IN_MAPO[0] - 0.01, lon=IN_MAPO[1], kind=UnitKind.POLICE)
    assert ResponderChanged("mapo-p1") in e.handle_event(own, DAY, source="radio")
    recommended = e.incident_state(FIRST, DAY).recommended
    assert [(r.responder_id, r.home) for r in recommended] == [
        ("sdm-p1", NEIGHBOUR),
        ("mapo-p1", None),
    ]
    assert e.responder_ids() == ["mapo-p1"]  # the neighbour's state topic is its owner's
    # Its report that it is busy takes it out of the list; nothing of it is published.
    effects = neighbours_unit(e, ResponderStatus.EN_ROUTE, DAY + 10)
    assert not any(isinstance(x, ResponderChanged) for x in effects)
    assert [r.responder_id for r in e.incident_state(FIRST, DAY + 10).recommended] == ["mapo-p1"]
    assert e.st.responders["sdm-p1"].incident_id is None


def test_a_recommendation_of_an_own_unit_is_the_same_on_the_wire_as_before() -> None:
    own = Recommendation(responder_id="p1", kind=UnitKind.POLICE, distance_m=10.0, eta_s=2.0)
    assert b"home" not in codec.encode(own)
    theirs = msgspec.structs.replace(own, home=NEIGHBOUR)
    assert codec.decode(codec.encode(theirs), Recommendation).home == NEIGHBOUR


def test_a_restored_engine_keeps_the_neighbours_as_context() -> None:
    e = make()
    neighbours_camera(e)
    neighbours_unit(e)
    e.handle_event(sos_in_mapo(), DAY)
    e.handle_event(cctv("e1", "sdm-1"), DAY + 30, source="vms")
    again = Engine.restore(settings(), Config().city.district_map(), e.snapshot())
    assert again.snapshot() == e.snapshot()
    assert again.districts() == [] and again.responder_ids() == []
    assert again.incident_state(FIRST, DAY + 30) == e.incident_state(FIRST, DAY + 30)
    assert neighbours_camera(again, CameraHealthStatus.OFFLINE) == []


def test_unpartitioned_every_camera_and_unit_is_own_as_before() -> None:
    e = make(frozenset())
    assert CameraChanged("sdm-1", NEIGHBOUR) in neighbours_camera(e)
    assert ResponderChanged("sdm-p1") in neighbours_unit(e)
    e.handle_event(cctv("e1", "sdm-1"), DAY, source="vms")  # no SOS: its own incident
    assert e.incident_state("I-000001", DAY).kind is IncidentKind.CCTV
    neighbours_camera(e, CameraHealthStatus.OFFLINE)
    assert e.incident_state("I-000002", DAY).kind is IncidentKind.CAMERA_FAULT
    e.handle_event(sos_in_mapo(), DAY + 1)
    assert [r.home for r in e.incident_state("I-000003", DAY + 1).recommended] == [None]
    assert e.districts() == [NEIGHBOUR] and e.responder_ids() == ["sdm-p1"]
    assert e.st.border_events_ignored == 0


def test_what_comes_without_a_district_is_own_wherever_it_is() -> None:
    """A foreign format the home partition reads (Frigate, OwnTracks) names no district:
    it reached this core because it is this partition's, even positioned across the line."""
    e = make()
    lat, lon = ACROSS
    e.handle_event(camera("frigate-1", lat=lat, lon=lon, district=None), DAY - 100)
    e.handle_event(camera("frigate-1", CameraHealthStatus.OFFLINE, lat=lat, lon=lon,
                          district=None), DAY - 50)  # fmt: skip
    assert e.incident_state(FIRST, DAY).kind is IncidentKind.CAMERA_FAULT
    e.handle_event(cctv("e1", "frigate-2", lat=lat, lon=lon), DAY)
    assert e.incident_state("north-000002", DAY).kind is IncidentKind.CCTV
    tracker = responder("owntracks-1", lat=lat, lon=lon)
    assert ResponderChanged("owntracks-1") in e.handle_event(tracker, DAY)
    assert e.responder_ids() == ["owntracks-1"] and e.st.border_cameras == {}


def test_an_unknown_cameras_event_published_across_is_a_neighbours_wherever_it_is() -> None:
    e = make()
    on_our_side = across(cctv("e1", "sdm-9", lat=IN_MAPO[0], lon=IN_MAPO[1]))
    assert e.handle_event(on_our_side, DAY, source="vms") == []
    assert e.open_incident_ids() == [] and e.districts() == []
    assert e.st.cameras["sdm-9"].district == NEIGHBOUR


def test_an_event_of_a_neighbours_camera_never_heard_of_is_dropped_not_refused() -> None:
    """Its registration came before this core listened: nowhere to place it, and nothing
    wrong with it (its owner takes it), so no dead letter either."""
    e = make()
    e.handle_event(sos_in_mapo(), DAY)
    unplaced = across(cctv("e1", "sdm-unknown"))
    assert e.refusal(unplaced, DAY + 1, source="vms") is None
    assert e.handle_event(unplaced, DAY + 1, source="vms") == []
    assert e.st.border_events_ignored == 1 and "sdm-unknown" not in e.st.cameras
    # An own camera's event without a position is still refused, with the reason.
    assert "no known position" in (e.refusal(cctv("e2", "mine"), DAY + 1, source="vms") or "")


def test_a_camera_published_into_an_own_district_again_is_own_again() -> None:
    e = make()
    neighbours_camera(e)
    lat, lon = ACROSS
    moved = camera("sdm-1", CameraHealthStatus.OFFLINE, lat=lat, lon=lon, district=OWN)
    effects = e.handle_event(moved, DAY, source="vms")
    assert CameraChanged("sdm-1", OWN) in effects
    assert CameraChanged("sdm-1", NEIGHBOUR) not in effects  # never a neighbour's page
    assert e.districts() == [OWN]
    assert e.incident_state(FIRST, DAY).kind is IncidentKind.CAMERA_FAULT


def test_a_neighbours_low_priority_event_never_lowers_an_sos() -> None:
    e = make()
    neighbours_camera(e)
    e.handle_event(sos_in_mapo(), DAY)
    e.handle_event(cctv("e1", "sdm-1", kind=CctvKind.LOITERING), DAY + 30, source="vms")
    # A low-priority event never lowers the SOS (the most urgent part wins).
    assert e.incident_state(FIRST, DAY + 30).priority == 1
