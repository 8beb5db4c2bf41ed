"""Trust: what a source reports is namespaced by it (docs/engine.md, "Trust")."""

from __future__ import annotations

import msgspec

from console.config import Config
from console.engine.effects import Effect, Rejected, SendReceipt
from console.engine.engine import Engine
from console.engine.settings import OwnersConfig
from protocols.public_alert import CapReference, PublicAlert
from protocols.schemas import (
    Action,
    CameraHealthStatus,
    CctvKind,
    IncidentStatus,
    ResponderStatus,
)
from tests.engine.test_engine_support import (
    DAY,
    LAT,
    LON,
    camera,
    cctv,
    do,
    engine,
    responder,
    restore,
    sos,
)

I1, I2 = "I-000001", "I-000002"


def rejected(effects: list[Effect]) -> str:
    [only] = effects
    assert isinstance(only, Rejected), effects
    return only.reason


def with_owners(**owners: object) -> tuple[Config, Engine]:
    cfg = Config(owners=msgspec.convert(owners, OwnersConfig))
    return cfg, engine(cfg)


# --- SOS devices: namespaced, never refused ---------------------------------------------


def test_another_sources_sos_with_the_same_device_never_touches_the_incident() -> None:
    e = engine()
    e.handle_event(sos("a1", device="phone-7", source="app"), DAY)
    far = LAT + 0.1  # ~11 km away
    forged = msgspec.structs.replace(
        sos("x1", device="phone-7", source="evil", lat=far), name="Someone Else", phone="999"
    )
    effects = e.handle_event(forged, DAY + 5)
    receipt = [x.receipt for x in effects if isinstance(x, SendReceipt)]
    assert [r.incident_id for r in receipt] == [I2]  # its own incident, and a receipt
    victim = e.incident_state(I1, DAY + 5)
    assert (victim.person, victim.phone, victim.lat) == ("Kim Minji", "010-0000-0000", LAT)
    assert victim.sos_count == 1


def test_the_same_source_and_device_still_fold() -> None:
    e = engine()
    e.handle_event(sos("a1", device="phone-7", source="app"), DAY)
    e.handle_event(sos("a2", device="phone-7", source="app", lat=LAT + 0.001), DAY + 30)
    s = e.incident_state(I1, DAY + 30)
    assert s.sos_count == 2 and s.lat == LAT + 0.001
    assert e.open_incident_ids() == [I1]


def test_closing_frees_the_namespaced_device() -> None:
    e = engine()
    e.handle_event(sos("a1", source="app"), DAY)
    do(e, Action.FALSE_ALARM, I1)
    assert e.st.device_open == {}
    e.handle_event(sos("a2", source="app"), DAY + 60)
    assert e.open_incident_ids() == [I2]


# --- cameras ----------------------------------------------------------------------------


def test_a_camera_belongs_to_the_first_source_that_reports_it() -> None:
    e = engine()
    e.handle_event(camera("cam1"), DAY, source="vms-a")
    assert e.st.camera_owner == {"cam1": "vms-a"}
    before = e.snapshot()
    for forged in (
        camera("cam1", lat=LAT + 0.05, name="renamed"),
        camera("cam1", CameraHealthStatus.TAMPERED),
        cctv("e1", "cam1", CctvKind.FIGHT),
    ):
        reason = rejected(e.handle_event(forged, DAY + 1, source="vms-b"))
        assert "cam1 belongs to source vms-a" in reason and "vms-b" in reason
        assert e.refusal(forged, DAY + 1, source="vms-b") == reason
        assert e.owner_problem("vms-b", forged) == reason
    assert e.snapshot() == before  # a refusal changes nothing, not even a count
    assert e.handle_event(camera("cam1", CameraHealthStatus.OFFLINE), DAY + 2, source="vms-a")
    assert e.incident_state(I1, DAY + 2).kind.value == "camera-fault"


def test_a_camera_first_seen_in_a_cctv_event_is_owned_by_its_source() -> None:
    e = engine()
    e.handle_event(cctv("e1", "cam9", lat=LAT, lon=LON), DAY, source="vms-a")
    assert e.st.camera_owner == {"cam9": "vms-a"}
    assert rejected(e.handle_event(cctv("e2", "cam9"), DAY + 1, source="vms-b"))


def test_the_configuration_names_the_owners_of_a_camera() -> None:
    _, e = with_owners(cameras={"vms-mapo": ["cam-mapo-*"], "frigate": ["cam-mapo-01"]})
    reason = rejected(e.handle_event(camera("cam-mapo-02"), DAY, source="vms-b"))
    assert "reported by vms-mapo ([owners] configuration)" in reason
    assert e.handle_event(camera("cam-mapo-01"), DAY, source="vms-mapo")
    assert e.handle_event(cctv("e1", "cam-mapo-01"), DAY + 1, source="frigate")
    assert e.st.camera_owner == {}  # named by the configuration: nothing to remember
    # An id no pattern names: first come, first owner.
    assert e.handle_event(camera("cam-jung-1"), DAY, source="vms-b")
    assert e.st.camera_owner == {"cam-jung-1": "vms-b"}


def test_without_first_come_only_named_ids_are_accepted() -> None:
    _, e = with_owners(first_come=False, responders={"tracker": ["police-*"]})
    assert "first_come is off" in rejected(
        e.handle_event(responder("scout-1"), DAY, source="tracker")
    )
    assert not any(
        isinstance(x, Rejected)
        for x in e.handle_event(responder("police-1"), DAY, source="tracker")
    )


def test_an_unattributed_input_claims_nothing_and_is_not_checked() -> None:
    e = engine()
    e.handle_event(camera("cam1"), DAY)  # a test, a tool, or a configured adapter
    assert e.st.camera_owner == {}
    e.handle_event(camera("cam1", name="by vms-b"), DAY + 1, source="vms-b")
    assert e.st.camera_owner == {"cam1": "vms-b"}  # the first attributed report claims it
    assert e.handle_event(camera("cam1", name="adapter"), DAY + 2) != []


# --- responders -------------------------------------------------------------------------


def test_a_responder_belongs_to_the_first_source_that_reports_it() -> None:
    e = engine()
    e.handle_event(responder("P-1"), DAY, source="police-trk")
    e.handle_event(sos(), DAY + 1)
    do(e, Action.DISPATCH, I1, responder_id="P-1", now=DAY + 2)
    jeju = responder("P-1", ResponderStatus.OFF_DUTY, lat=LAT + 0.01)
    reason = rejected(e.handle_event(jeju, DAY + 3, source="phone-app"))
    assert "responder P-1 belongs to source police-trk" in reason
    unit = e.responder_state("P-1")
    assert unit.status is ResponderStatus.DISPATCHED and unit.incident_id == I1
    assert e.incident_state(I1, DAY + 3).responders == ("P-1",)


# --- public alerts (CAP senders) --------------------------------------------------------


def alert(
    identifier: str,
    msg_type: str = "Alert",
    sender: str = "kma@korea.kr",
    refs: tuple[tuple[str, str], ...] = (),
) -> PublicAlert:
    return PublicAlert(
        identifier=identifier,
        sender=sender,
        sent=DAY,
        msg_type=msg_type,  # type: ignore[arg-type]
        priority=2,
        headline="Heavy rain",
        lat=LAT,
        lon=LON,
        references=tuple(CapReference(sender=s, identifier=i, sent=DAY) for s, i in refs),
    )


def test_a_cap_sender_belongs_to_the_first_source_that_used_it() -> None:
    e = engine()
    e.handle_event(alert("A1"), DAY, source="cap-gw")
    assert e.st.sender_owner == {"kma@korea.kr": "cap-gw"}
    cancel = alert("C1", "Cancel", refs=(("kma@korea.kr", "A1"),))
    reason = rejected(e.handle_event(cancel, DAY + 1, source="rogue"))
    assert "CAP sender kma@korea.kr belongs to source cap-gw" in reason
    assert e.open_incident_ids() == [I1]
    e.handle_event(cancel, DAY + 2, source="cap-gw")
    assert e.open_incident_ids() == []


def test_a_source_cannot_update_or_cancel_another_senders_alert_by_reference() -> None:
    e = engine()
    e.handle_event(alert("A1"), DAY, source="cap-gw")
    sneaky = alert("C9", "Cancel", sender="rogue@x", refs=(("kma@korea.kr", "A1"),))
    assert e.handle_event(sneaky, DAY + 1, source="rogue") == []  # refers to nothing of its own
    assert e.open_incident_ids() == [I1]
    update = alert("U9", "Update", sender="rogue@x", refs=(("kma@korea.kr", "A1"),))
    e.handle_event(update, DAY + 2, source="rogue")
    assert e.open_incident_ids() == [I1, I2]  # an Update of nothing it owns stands alone
    assert e.incident_state(I1, DAY + 2).status is IncidentStatus.NEW


def test_the_configuration_names_who_speaks_for_a_sender() -> None:
    _, e = with_owners(senders={"cap-gw": ["*@korea.kr"], "cap-spare": ["*@korea.kr"]})
    e.handle_event(alert("A1"), DAY, source="cap-gw")
    e.handle_event(
        alert("C1", "Cancel", refs=(("kma@korea.kr", "A1"),)), DAY + 1, source="cap-spare"
    )
    assert e.open_incident_ids() == []
    assert rejected(e.handle_event(alert("A2"), DAY + 2, source="other"))


# --- state: snapshots and the version-1 format ------------------------------------------


def test_owners_survive_a_snapshot() -> None:
    cfg = Config()
    e = engine(cfg)
    e.handle_event(camera("cam1"), DAY, source="vms-a")
    e.handle_event(responder("P-1"), DAY, source="trk")
    e.handle_event(alert("A1"), DAY, source="cap-gw")
    again = restore(cfg, e.snapshot())
    assert again.snapshot() == e.snapshot()
    assert rejected(again.handle_event(camera("cam1"), DAY + 1, source="vms-b"))


def test_a_version_1_snapshot_is_migrated() -> None:
    cfg = Config()
    e = engine(cfg)
    e.handle_event(sos("a1", device="phone-7", source="app"), DAY)
    e.handle_event(camera("cam1"), DAY)
    old = msgspec.structs.replace(e.st, version=1, device_open={"phone-7": I1})
    again = restore(cfg, msgspec.msgpack.encode(old))
    assert again.st.version == 2 and again.st.device_open == {"app/phone-7": I1}
    again.handle_event(sos("a2", device="phone-7", source="app"), DAY + 30)
    assert again.incident_state(I1, DAY + 30).sos_count == 2
    # Its source found in its history when its alarm ids are forgotten.
    old2 = msgspec.structs.replace(old, alarms={})
    assert restore(cfg, msgspec.msgpack.encode(old2)).st.device_open == {"app/phone-7": I1}


def test_an_sos_speaks_for_the_source_of_its_topic_only() -> None:
    e = engine()
    reason = rejected(e.handle_event(sos("a1", source="app"), DAY, source="gateway"))
    assert "does not match the topic's source 'gateway'" in reason
    assert e.handle_event(sos("a1", source="app"), DAY, source="app")
