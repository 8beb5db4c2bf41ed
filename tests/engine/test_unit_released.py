"""A unit leaving an active incident is never silent (issue 18, point 3)."""

from __future__ import annotations

import pytest

from console.config import Config
from console.engine.effects import Escalated, IncidentChanged
from console.engine.engine import Engine
from protocols.schemas import Action, IncidentStatus, ResponderStatus, Role
from tests.engine.test_engine_support import DAY, LAT, do, engine, responder, sos

I1, I2 = "I-000001", "I-000002"


@pytest.fixture
def eng() -> Engine:
    e = engine()
    e.handle_event(sos(), DAY)  # a P1
    e.handle_event(responder("P-1"), DAY)
    e.handle_event(responder("P-2", lat=LAT + 0.01), DAY)
    return e


def report(e: Engine, rid: str, status: ResponderStatus, now: float) -> list[object]:
    lat = LAT + 0.005 if rid == "P-1" else LAT + 0.01
    return list(e.handle_event(responder(rid, status, lat=lat, ts=now), now))


def test_the_last_unit_leaving_puts_the_incident_back_with_an_alert(eng: Engine) -> None:
    assert do(eng, Action.DISPATCH, responder_id="P-1", now=DAY + 10).ok
    report(eng, "P-1", ResponderStatus.ON_SCENE, DAY + 20)
    assert eng.incident_state(I1, DAY + 20).status is IncidentStatus.ON_SCENE
    effects = report(eng, "P-1", ResponderStatus.AVAILABLE, DAY + 30)
    assert IncidentChanged(I1) in effects
    s = eng.incident_state(I1, DAY + 30)
    assert s.status is IncidentStatus.ACKNOWLEDGED
    assert s.responders == ()
    assert s.alert == "P-1 left: reported available; no unit assigned, dispatch again"
    assert s.alert_ts == DAY + 30
    actions = [(h.actor, h.action) for h in s.history[-2:]]
    assert actions == [("P-1", "released"), ("core", "needs dispatch")]
    # the unit is free for the next job, and recommended again
    assert eng.responder_state("P-1").incident_id is None
    assert "P-1" in [r.responder_id for r in s.recommended]


def test_the_next_dispatch_clears_the_alert(eng: Engine) -> None:
    do(eng, Action.DISPATCH, responder_id="P-1", now=DAY + 10)
    report(eng, "P-1", ResponderStatus.OFF_DUTY, DAY + 20)
    s = eng.incident_state(I1, DAY + 20)
    assert s.alert.startswith("P-1 left: reported off-duty")
    assert s.status is IncidentStatus.ACKNOWLEDGED
    assert do(eng, Action.DISPATCH, responder_id="P-2", now=DAY + 30).ok
    s = eng.incident_state(I1, DAY + 30)
    assert (s.alert, s.alert_ts) == ("", None)
    assert s.status is IncidentStatus.DISPATCHED


def test_closing_clears_the_alert(eng: Engine) -> None:
    do(eng, Action.DISPATCH, responder_id="P-1", now=DAY + 10)
    report(eng, "P-1", ResponderStatus.AVAILABLE, DAY + 20)
    do(eng, Action.RESOLVE, now=DAY + 30, disposition="gone")
    closed = eng.incident_state(I1, DAY + 30)
    assert closed.status is IncidentStatus.RESOLVED and closed.alert == ""


def test_a_unit_leaving_while_others_stay_raises_the_alert_only(eng: Engine) -> None:
    do(eng, Action.DISPATCH, responder_id="P-1", now=DAY + 10)
    do(eng, Action.DISPATCH, responder_id="P-2", now=DAY + 11)
    report(eng, "P-2", ResponderStatus.AVAILABLE, DAY + 20)
    s = eng.incident_state(I1, DAY + 20)
    assert s.status is IncidentStatus.DISPATCHED and s.responders == ("P-1",)
    assert s.alert == "P-2 left: reported available; 1 still assigned"


def test_the_dispatch_sla_counts_again_from_the_release(eng: Engine) -> None:
    do(eng, Action.ACK, now=DAY + 5)
    do(eng, Action.DISPATCH, responder_id="P-1", now=DAY + 10)
    assert not [e for e in eng.tick(DAY + 1000) if isinstance(e, Escalated)]
    report(eng, "P-1", ResponderStatus.AVAILABLE, DAY + 1000)
    sla = Config().engine_settings().sla.dispatch_p1_s
    assert eng.incident_state(I1, DAY + 1000).dispatch_deadline == DAY + 1000 + sla
    assert not [e for e in eng.tick(DAY + 1000 + sla - 1) if isinstance(e, Escalated)]
    escalated = [e for e in eng.tick(DAY + 1000 + sla) if isinstance(e, Escalated)]
    assert escalated == [Escalated(I1, f"SLA: not dispatched within {sla:g} s of acknowledgement")]


def test_a_unit_taken_by_a_supervisor_leaves_an_alert_behind(eng: Engine) -> None:
    eng.handle_event(sos("a2", device="d2", lat=LAT + 0.02), DAY)
    do(eng, Action.DISPATCH, I1, responder_id="P-1", now=DAY + 10)
    assert do(eng, Action.DISPATCH, I2, responder_id="P-1", now=DAY + 20, role=Role.SUPERVISOR,
              operator="sup").ok  # fmt: skip
    s = eng.incident_state(I1, DAY + 20)
    assert s.status is IncidentStatus.ACKNOWLEDGED
    assert s.alert == f"P-1 left: reassigned to {I2} by sup; no unit assigned, dispatch again"
    assert s.history[-2].actor == "sup" and s.history[-2].action == "reassigned"


def test_a_bare_position_fix_never_releases_a_unit(eng: Engine) -> None:
    import msgspec

    do(eng, Action.DISPATCH, responder_id="P-1", now=DAY + 10)
    fix = msgspec.structs.replace(
        responder("P-1", ResponderStatus.AVAILABLE, ts=DAY + 20), position_only=True
    )
    eng.handle_event(fix, DAY + 20)
    s = eng.incident_state(I1, DAY + 20)
    assert s.responders == ("P-1",) and s.alert == ""


def test_replaying_the_same_inputs_rebuilds_the_same_state(eng: Engine) -> None:
    """The core rebuilds the engine by replaying the journal: the release must replay alike."""

    def run(e: Engine) -> Engine:
        do(e, Action.DISPATCH, responder_id="P-1", now=DAY + 10, cmd_id="c1")
        report(e, "P-1", ResponderStatus.ON_SCENE, DAY + 20)
        report(e, "P-1", ResponderStatus.AVAILABLE, DAY + 30)
        e.tick(DAY + 200)
        return e

    fresh = engine()
    fresh.handle_event(sos(), DAY)
    fresh.handle_event(responder("P-1"), DAY)
    fresh.handle_event(responder("P-2", lat=LAT + 0.01), DAY)
    a, b = run(eng), run(fresh)
    assert a.snapshot() == b.snapshot()
    restored = Engine.restore(
        Config().engine_settings(), Config().city.district_map(), a.snapshot()
    )
    assert restored.incident_state(I1, DAY + 300) == a.incident_state(I1, DAY + 300)
    assert restored.incident_state(I1, DAY + 300).alert.startswith("P-1 left")
