"""Engine changes for the foreign formats: position-only fixes, CCTV updates, CAP public alerts."""

from __future__ import annotations

import msgspec

from console.config import Config
from console.core.ingest import confidence_bucket, dedupe_key
from console.engine.effects import IncidentChanged, IncidentClosed, NewHighPriority
from protocols.public_alert import CapReference, PublicAlert
from protocols.schemas import (
    Action,
    CctvKind,
    IncidentKind,
    IncidentStatus,
    ResponderReport,
    ResponderStatus,
    UnitKind,
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

# --- a. position-only responder reports ---------------------------------------------------


def fix(
    responder_id: str, lat: float, status: ResponderStatus = ResponderStatus.AVAILABLE
) -> ResponderReport:
    return ResponderReport(
        responder_id=responder_id,
        kind=UnitKind.SCOUT,
        status=status,
        lat=lat,
        lon=LON,
        ts=DAY,
        position_only=True,
    )


def test_position_only_moves_a_dispatched_unit_without_releasing_it() -> None:
    eng = engine()
    eng.handle_event(responder("P-1"), DAY)
    eng.handle_event(sos(), DAY + 1)
    assert do(eng, Action.DISPATCH, responder_id="P-1").ok
    effects = eng.handle_event(fix("P-1", LAT + 0.002), DAY + 20)
    resp = eng.responder_state("P-1")
    assert resp.status is ResponderStatus.DISPATCHED
    assert resp.incident_id == "I-000001"
    assert resp.lat == LAT + 0.002
    assert eng.incident_state("I-000001", DAY + 20).responders == ("P-1",)
    assert not any(isinstance(e, IncidentChanged) for e in effects)
    # A full report (not position-only) with "available" still releases it, as before.
    eng.handle_event(responder("P-1"), DAY + 30)
    assert eng.responder_state("P-1").incident_id is None


def test_position_only_keeps_off_duty_and_uses_status_for_a_new_unit() -> None:
    eng = engine()
    eng.handle_event(fix("S-1", LAT), DAY)
    assert eng.responder_state("S-1").status is ResponderStatus.AVAILABLE  # never seen: used
    eng.handle_event(responder("S-1", ResponderStatus.OFF_DUTY), DAY + 1)
    eng.handle_event(fix("S-1", LAT + 0.001), DAY + 2)
    state = eng.responder_state("S-1")
    assert state.status is ResponderStatus.OFF_DUTY and state.lat == LAT + 0.001
    eng.handle_event(sos(), DAY + 3)
    assert eng.incident_state("I-000001", DAY + 3).recommended == ()  # still not free


# --- b. CCTV updates (same event id) -------------------------------------------------------


def test_update_with_a_new_kind_reprioritises_the_same_incident() -> None:
    eng = engine()
    eng.handle_event(camera("cam1"), DAY - 10)
    eng.handle_event(cctv("f1", kind=CctvKind.LOITERING), DAY)  # P4 by day
    assert eng.incident_state("I-000001", DAY).priority == 4
    upgrade = msgspec.structs.replace(cctv("f1", kind=CctvKind.SCREAM), confidence=0.95)
    effects = eng.handle_event(upgrade, DAY + 5)
    assert eng.open_incident_ids() == ["I-000001"]  # updated, not duplicated
    inc = eng.incident_state("I-000001", DAY + 5)
    assert inc.priority == 2
    assert inc.title.startswith("Scream")
    assert inc.events[-1].detail.startswith("update: loitering → scream")
    assert [h.action for h in inc.history][-2:] == ["updated", "priority"]
    assert IncidentChanged("I-000001") in effects
    # The same kind again, at a lower confidence: the same event again, nothing changes.
    before = eng.snapshot()
    assert eng.handle_event(cctv("f1", kind=CctvKind.SCREAM), DAY + 6) == []
    assert eng.snapshot() == before
    # A later scream event of that camera folds into it under its new kind.
    eng.handle_event(cctv("f2", kind=CctvKind.SCREAM), DAY + 7)
    assert eng.open_incident_ids() == ["I-000001"]


def test_update_with_higher_confidence_is_recorded_and_never_lowers_priority() -> None:
    eng = engine()
    eng.handle_event(camera("cam1"), DAY - 10)
    low = msgspec.structs.replace(cctv("f1", kind=CctvKind.SCREAM), confidence=0.6)
    eng.handle_event(low, DAY)
    higher = msgspec.structs.replace(low, confidence=0.8, kind=CctvKind.CROWDING)  # P3 kind
    eng.handle_event(higher, DAY + 1)
    inc = eng.incident_state("I-000001", DAY + 1)
    assert inc.priority == 2  # a less urgent kind does not lower it
    rise = msgspec.structs.replace(higher, confidence=0.9)
    eng.handle_event(rise, DAY + 2)
    inc = eng.incident_state("I-000001", DAY + 2)
    assert "confidence 0.80 → 0.90" in inc.events[-1].detail
    assert len(eng.open_incident_ids()) == 1


def test_update_after_withdrawal_or_close_is_ignored() -> None:
    eng = engine()
    eng.handle_event(camera("cam1"), DAY - 10)
    eng.handle_event(cctv("f1", kind=CctvKind.LOITERING), DAY)
    eng.handle_event(cctv("f1", kind=CctvKind.LOITERING, withdrawn=True), DAY + 1)
    assert eng.open_incident_ids() == []
    assert eng.handle_event(cctv("f1", kind=CctvKind.SCREAM), DAY + 2) == []
    assert eng.open_incident_ids() == []


def test_dedupe_key_folds_resends_and_keeps_upgrades() -> None:
    ev = msgspec.structs.replace(cctv("f1", kind=CctvKind.LOITERING), confidence=0.71)
    same = msgspec.structs.replace(ev, confidence=0.78)
    higher = msgspec.structs.replace(ev, confidence=0.81)
    kind = msgspec.structs.replace(ev, kind=CctvKind.SCREAM)
    gone = msgspec.structs.replace(ev, withdrawn=True)
    keys = [dedupe_key(m) for m in (ev, same, higher, kind, gone)]
    assert keys[0] == keys[1] == "cctv:cam1:f1:loitering:c7"
    assert len(set(keys)) == 4
    assert keys[4] == "cctv:cam1:f1:withdrawn"
    assert [confidence_bucket(c) for c in (0.0, 0.3, 0.7, 0.99, 1.0)] == [0, 3, 7, 9, 10]


# --- c. CAP public alerts ---------------------------------------------------------------------


def alert(
    identifier: str = "KNPA-1",
    msg_type: str = "Alert",
    priority: int = 2,
    refs: tuple[str, ...] = (),
    **kw: object,
) -> PublicAlert:
    fields: dict[str, object] = {
        "identifier": identifier,
        "sender": "police@seoul.go.kr",
        "sent": DAY - 60,
        "msg_type": msg_type,
        "priority": priority,
        "headline": "Suspect at large near City Hall",
        "event": "Police alert",
        "area_desc": "Jung-gu, around City Hall",
        "districts": ("Jung-gu", "Jongno-gu"),
        "lat": LAT,
        "lon": LON,
        "references": tuple(
            CapReference(sender="police@seoul.go.kr", identifier=r, sent=DAY - 120) for r in refs
        ),
        "urgency": "Immediate",
        "severity": "Severe",
        "certainty": "Likely",
    }
    fields.update(kw)
    return msgspec.convert(fields, PublicAlert)


def test_alert_opens_a_public_alert_incident() -> None:
    eng = engine()
    effects = eng.handle_event(alert(priority=1), DAY)
    inc = eng.incident_state("I-000001", DAY)
    assert inc.kind is IncidentKind.PUBLIC_ALERT
    assert inc.priority == 1 and inc.status is IncidentStatus.NEW
    assert (inc.lat, inc.lon, inc.district) == (LAT, LON, "Jung-gu")
    assert inc.title == "Suspect at large near City Hall"
    assert inc.place == "Jung-gu, around City Hall"
    assert inc.source == "police@seoul.go.kr"
    assert inc.ack_deadline is not None  # P1: SLA armed
    assert NewHighPriority("I-000001") in effects
    assert eng.handle_event(alert(priority=1), DAY + 1) == []  # a resend folds
    assert eng.open_incident_ids() == ["I-000001"]


def test_alert_without_position_or_headline() -> None:
    eng = engine()
    eng.handle_event(alert(lat=None, lon=None, headline="", districts=()), DAY)
    inc = eng.incident_state("I-000001", DAY)
    assert (inc.lat, inc.lon, inc.district) == (0.0, 0.0, "unknown")
    assert inc.title == "Police alert" and inc.recommended == ()


def test_update_by_reference_changes_the_incident_and_cancel_closes_it() -> None:
    eng = engine()
    eng.handle_event(alert("KNPA-1", priority=2), DAY)
    eng.handle_event(
        alert("KNPA-2", "Update", 1, refs=("KNPA-1",), headline="Suspect armed", lat=LAT + 0.01),
        DAY + 60,
    )
    assert eng.open_incident_ids() == ["I-000001"]
    inc = eng.incident_state("I-000001", DAY + 60)
    assert inc.priority == 1 and inc.title == "Suspect armed" and inc.lat == LAT + 0.01
    assert [h.action for h in inc.history] == ["opened", "updated", "priority"]
    # A Cancel that refers to the update (the latest message) closes it.
    effects = eng.handle_event(alert("KNPA-3", "Cancel", refs=("KNPA-1", "KNPA-2")), DAY + 90)
    assert IncidentClosed("I-000001") in effects
    closed = eng.incident_state("I-000001", DAY + 90)
    assert closed.status is IncidentStatus.RESOLVED
    assert closed.disposition == "cancelled by sender"
    assert eng.summary(DAY + 90).open_total == 0
    # A Cancel again (another id) of a closed alert changes nothing.
    assert eng.handle_event(alert("KNPA-4", "Cancel", refs=("KNPA-1",)), DAY + 95) == []


def test_cancel_with_units_assigned_leaves_it_to_the_operator() -> None:
    eng = engine()
    eng.handle_event(responder("P-1"), DAY - 5)
    eng.handle_event(alert("KNPA-1"), DAY)
    assert do(eng, Action.DISPATCH, responder_id="P-1").ok
    eng.handle_event(alert("KNPA-2", "Cancel", refs=("KNPA-1",)), DAY + 30)
    inc = eng.incident_state("I-000001", DAY + 30)
    assert inc.status is IncidentStatus.DISPATCHED
    assert inc.history[-1].action == "cancelled"


def test_update_of_an_unknown_alert_opens_its_own_incident() -> None:
    eng = engine()
    eng.handle_event(alert("KNPA-9", "Update", 3, refs=("never-seen",)), DAY)
    assert eng.incident_state("I-000001", DAY).priority == 3


def test_alerts_replay_and_snapshot_identically() -> None:
    inputs = [
        (alert("A1"), DAY),
        (alert("A2", "Update", 1, refs=("A1",)), DAY + 10),
        (alert("B1", priority=3, lat=LAT + 0.02), DAY + 20),
        (alert("A3", "Cancel", refs=("A2",)), DAY + 30),
    ]
    a, b = engine(), engine()
    for message, now in inputs:
        assert a.handle_event(message, now) == b.handle_event(message, now)
    assert a.snapshot() == b.snapshot()
    restored = restore(Config(), a.snapshot())
    assert restored.snapshot() == a.snapshot()
    assert restored.handle_event(alert("B2", "Cancel", refs=("B1",)), DAY + 40) == a.handle_event(
        alert("B2", "Cancel", refs=("B1",)), DAY + 40
    )
