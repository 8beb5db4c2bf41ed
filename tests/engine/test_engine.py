"""The incident engine: lifecycle, refusals, roles, ownership, idempotency, SLA, dispatch."""

from __future__ import annotations

import pytest

from console.config import Config, SlaConfig
from console.engine.commands import NO_INCIDENT
from console.engine.effects import (
    Escalated,
    IncidentChanged,
    IncidentClosed,
    NewHighPriority,
    ResponderChanged,
    SendReceipt,
)
from console.engine.engine import Engine
from console.engine.lending import CORE_ACTIONS
from protocols.schemas import (
    Action,
    IncidentStatus,
    ResponderStatus,
    Role,
    Shelter,
    UnitKind,
)
from tests.engine.test_engine_support import (
    DAY,
    LAT,
    LON,
    camera,
    cmd,
    do,
    engine,
    reply_of,
    responder,
    restore,
    sos,
)

I1 = "I-000001"


@pytest.fixture
def eng() -> Engine:
    e = engine()
    e.handle_event(responder("P-1"), DAY - 100)
    e.handle_event(responder("P-2", lat=LAT + 0.02), DAY - 100)
    effects = e.handle_event(sos(), DAY)
    assert NewHighPriority(I1) in effects
    return e


def status(e: Engine, incident_id: str = I1) -> IncidentStatus:
    return e.incident_state(incident_id, DAY + 100).status


# --- the lifecycle ------------------------------------------------------------------------


def test_new_sos_is_p1_with_receipt_and_deadline(eng: Engine) -> None:
    state = eng.incident_state(I1, DAY)
    assert (state.priority, state.status, state.sos_count) == (1, IncidentStatus.NEW, 1)
    assert state.ack_deadline == DAY + 30
    assert state.person == "Kim Minji"
    assert [h.action for h in state.history] == ["opened"]
    assert eng.open_incident_ids() == [I1]


def test_full_path_ack_dispatch_on_scene_resolve(eng: Engine) -> None:
    r = do(eng, Action.ACK, now=DAY + 5)
    assert r.ok and r.incident_id == I1
    s = eng.incident_state(I1, DAY + 5)
    assert s.status is IncidentStatus.ACKNOWLEDGED and s.owner == "op1"
    assert s.acknowledged_at == DAY + 5 and s.ack_deadline is None
    assert s.dispatch_deadline == DAY + 5 + 120
    assert s.recommended[0].responder_id == "P-1"  # the nearest
    r = do(eng, Action.DISPATCH, now=DAY + 6)
    assert r.ok and "P-1" in r.reason
    s = eng.incident_state(I1, DAY + 6)
    assert s.status is IncidentStatus.DISPATCHED and s.responders == ("P-1",)
    assert s.dispatch_deadline is None
    assert eng.responder_state("P-1").status is ResponderStatus.DISPATCHED
    assert eng.responder_state("P-1").incident_id == I1
    assert do(eng, Action.ON_SCENE, now=DAY + 7).ok
    assert status(eng) is IncidentStatus.ON_SCENE
    assert eng.responder_state("P-1").status is ResponderStatus.ON_SCENE
    effects = eng.handle_command(
        cmd(Action.RESOLVE, disposition="escorted home"), DAY + 8, Role.OPERATOR
    )
    assert reply_of(effects).ok
    assert IncidentClosed(I1) in effects and ResponderChanged("P-1") in effects
    assert eng.open_incident_ids() == []
    s = eng.incident_state(I1, DAY + 8)
    assert s.status is IncidentStatus.RESOLVED and s.disposition == "escorted home"
    assert s.closed_at == DAY + 8 and s.responders == ()
    assert eng.responder_state("P-1").status is ResponderStatus.AVAILABLE
    assert eng.responder_state("P-1").incident_id is None
    actions = [(h.actor, h.action) for h in s.history]
    assert actions == [
        ("core", "opened"),
        ("op1", "acknowledged"),
        ("op1", "dispatched"),
        ("op1", "on-scene"),
        ("op1", "resolved"),
    ]


def test_dispatch_before_ack_auto_acknowledges(eng: Engine) -> None:
    r = do(eng, Action.DISPATCH, responder_id="P-2")
    assert r.ok
    s = eng.incident_state(I1, DAY + 10)
    assert s.status is IncidentStatus.DISPATCHED and s.owner == "op1"
    assert s.acknowledged_at == DAY + 10 and s.responders == ("P-2",)
    assert [h.action for h in s.history][1:] == ["acknowledged", "dispatched"]
    assert eng.summary(DAY + 10).oldest_unacked is None


def test_false_alarm_frees_responders(eng: Engine) -> None:
    do(eng, Action.DISPATCH)
    r = do(eng, Action.FALSE_ALARM, text="pocket dial")
    assert r.ok
    s = eng.incident_state(I1, DAY + 10)
    assert s.status is IncidentStatus.FALSE_ALARM and s.disposition == "pocket dial"
    assert eng.responder_state("P-1").status is ResponderStatus.AVAILABLE


def test_resolve_before_ack_needs_disposition(eng: Engine) -> None:
    r = do(eng, Action.RESOLVE)
    assert not r.ok and "disposition" in r.reason
    assert status(eng) is IncidentStatus.NEW
    assert do(eng, Action.RESOLVE, disposition="duplicate of a call").ok
    assert status(eng) is IncidentStatus.RESOLVED


def test_resolve_after_ack_without_disposition(eng: Engine) -> None:
    do(eng, Action.ACK)
    assert do(eng, Action.RESOLVE).ok
    assert eng.incident_state(I1, DAY).disposition == "resolved"


@pytest.mark.parametrize(
    ("setup", "action", "words"),
    [
        ([Action.ACK], Action.ACK, "already acknowledged"),
        ([], Action.ON_SCENE, "no unit dispatched"),
        ([Action.ACK], Action.ON_SCENE, "no unit dispatched"),
        ([Action.DISPATCH, Action.ON_SCENE], Action.ON_SCENE, "already on scene"),
        ([Action.DISPATCH], Action.ACK, "already dispatched"),
        ([Action.ESCALATE], Action.ESCALATE, "already escalated"),
        ([], Action.RELEASE, "not owned"),
        ([], Action.NOTE, "needs text"),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(
    eng: Engine, setup: list[Action], action: Action, words: str
) -> None:
    for a in setup:
        assert do(eng, a).ok
    before = eng.snapshot()
    r = do(eng, action)
    assert not r.ok and words in r.reason
    after = restore(Config(), eng.snapshot())
    after.st.replies = restore(Config(), before).st.replies
    assert after.snapshot() == before


def test_commands_on_unknown_and_closed_incidents(eng: Engine) -> None:
    r = do(eng, Action.ACK, incident_id="I-999999")
    assert not r.ok and r.reason == "unknown incident I-999999"
    r = do(eng, Action.ACK, incident_id=None)
    assert not r.ok and "no incident" in r.reason
    do(eng, Action.FALSE_ALARM)
    for action in set(Action) - CORE_ACTIONS - NO_INCIDENT:  # those name no incident here
        r = do(eng, action, text="x")
        assert not r.ok and r.reason == f"incident {I1} is closed (false-alarm)"


def test_escalate_and_cancel(eng: Engine) -> None:
    effects = eng.handle_command(cmd(Action.ESCALATE, text="caller screaming"), DAY, Role.OPERATOR)
    assert Escalated(I1, "caller screaming") in effects
    assert eng.incident_state(I1, DAY).escalated
    r = do(eng, Action.CANCEL_ESCALATION)
    assert not r.ok and "supervisor" in r.reason
    assert do(eng, Action.CANCEL_ESCALATION, role=Role.SUPERVISOR, operator="sup").ok
    assert not eng.incident_state(I1, DAY).escalated
    r = do(eng, Action.CANCEL_ESCALATION, role=Role.SUPERVISOR, operator="sup")
    assert not r.ok and "not escalated" in r.reason


def test_notes_are_recorded(eng: Engine) -> None:
    assert do(eng, Action.NOTE, text="caller says she is near exit 3").ok
    s = eng.incident_state(I1, DAY)
    assert s.notes[0].text == "caller says she is near exit 3" and s.notes[0].operator == "op1"
    assert s.history[-1].action == "note"


# --- roles and ownership ---------------------------------------------------------------------


def test_observer_is_read_only(eng: Engine) -> None:
    before = eng.incident_state(I1, DAY)
    for action in Action:
        r = do(eng, action, role=Role.OBSERVER, operator="obs", text="x")
        assert not r.ok and r.reason == "observer seat is read-only"
    assert eng.incident_state(I1, DAY) == before


def test_owner_blocks_other_operators(eng: Engine) -> None:
    assert do(eng, Action.ACK, operator="op1").ok
    for action in (Action.DISPATCH, Action.RESOLVE, Action.ESCALATE, Action.CLAIM, Action.NOTE):
        r = do(eng, action, operator="op2", text="x")
        assert not r.ok and r.reason == f"incident {I1} is owned by op1"
    assert do(eng, Action.DISPATCH, operator="op1").ok


def test_claim_and_release(eng: Engine) -> None:
    assert do(eng, Action.CLAIM, operator="op2").ok
    assert eng.incident_state(I1, DAY).owner == "op2"
    r = do(eng, Action.CLAIM, operator="op2")
    assert r.ok and "already owned" in r.reason
    # acknowledging someone else's incident is refused; the owner's ack keeps the owner
    assert not do(eng, Action.ACK, operator="op1").ok
    assert do(eng, Action.ACK, operator="op2").ok
    assert do(eng, Action.RELEASE, operator="op2").ok
    assert eng.incident_state(I1, DAY).owner is None
    assert do(eng, Action.DISPATCH, operator="op1").ok
    assert eng.incident_state(I1, DAY).owner == "op1"


def test_operator_cannot_assign_to_another(eng: Engine) -> None:
    r = do(eng, Action.CLAIM, operator="op1", text="op2")
    assert not r.ok and "supervisor" in r.reason


def test_supervisor_takes_over_reassigns_and_closes(eng: Engine) -> None:
    do(eng, Action.ACK, operator="op1")
    assert do(eng, Action.CLAIM, operator="sup", role=Role.SUPERVISOR, text="op3").ok
    assert eng.incident_state(I1, DAY).owner == "op3"
    assert do(eng, Action.CLAIM, operator="sup", role=Role.SUPERVISOR).ok
    s = eng.incident_state(I1, DAY)
    assert s.owner == "sup" and "taken over from op3" in s.history[-1].detail
    assert do(eng, Action.RELEASE, operator="sup", role=Role.SUPERVISOR).ok
    do(eng, Action.CLAIM, operator="op1")
    assert do(eng, Action.RESOLVE, operator="sup", role=Role.SUPERVISOR).ok


def test_supervisor_moves_an_assigned_responder(eng: Engine) -> None:
    eng.handle_event(sos("a2", device="dev2", lat=LAT + 0.01), DAY + 1)
    do(eng, Action.DISPATCH, responder_id="P-1", operator="op1")
    r = do(eng, Action.DISPATCH, "I-000002", responder_id="P-1", operator="op2")
    assert not r.ok
    assert r.reason == "responder P-1 is already assigned to I-000001 (dispatched by op1)"
    r = do(
        eng, Action.DISPATCH, "I-000002", responder_id="P-1", operator="sup", role=Role.SUPERVISOR
    )
    assert r.ok
    assert eng.incident_state(I1, DAY).responders == ()
    assert eng.incident_state("I-000002", DAY).responders == ("P-1",)
    assert eng.responder_state("P-1").incident_id == "I-000002"


# --- dispatch -------------------------------------------------------------------------------


def test_double_dispatch_race_names_the_winner(eng: Engine) -> None:
    eng.handle_event(sos("a2", device="dev2"), DAY + 1)
    first = do(eng, Action.DISPATCH, I1, responder_id="P-2", operator="op1")
    second = do(eng, Action.DISPATCH, "I-000002", responder_id="P-2", operator="op2")
    assert first.ok and not second.ok
    assert "I-000001" in second.reason and "op1" in second.reason


def test_dispatch_refusals(eng: Engine) -> None:
    eng.handle_event(responder("P-9", status=ResponderStatus.OFF_DUTY), DAY)
    eng.handle_event(responder("P-8", status=ResponderStatus.EN_ROUTE), DAY)
    r = do(eng, Action.DISPATCH, responder_id="P-9")
    assert not r.ok and r.reason == "responder P-9 is off duty"
    r = do(eng, Action.DISPATCH, responder_id="P-8")
    assert not r.ok and "en-route, not available" in r.reason
    r = do(eng, Action.DISPATCH, responder_id="nobody")
    assert not r.ok and r.reason == "unknown responder nobody"
    assert do(eng, Action.DISPATCH, responder_id="P-1").ok
    r = do(eng, Action.DISPATCH, responder_id="P-1")
    assert not r.ok and "already assigned to I-000001" in r.reason
    assert do(eng, Action.DISPATCH).ok  # the next nearest: P-2
    r = do(eng, Action.DISPATCH)
    assert not r.ok and r.reason == "no available responder for I-000001"
    assert eng.incident_state(I1, DAY).responders == ("P-1", "P-2")


def test_recommendations_eta_by_unit_kind() -> None:
    e = engine()
    e.handle_event(responder("S-1", kind=UnitKind.SCOUT, lat=LAT + 0.001), DAY)
    e.handle_event(responder("P-1", kind=UnitKind.POLICE, lat=LAT + 0.01), DAY)
    e.handle_event(responder("G-1", kind=UnitKind.GUARD, status=ResponderStatus.OFF_DUTY), DAY)
    e.handle_event(sos(), DAY)
    rec = e.incident_state(I1, DAY).recommended
    assert [r.responder_id for r in rec] == ["S-1", "P-1"]
    scout, police = rec
    assert scout.distance_m == pytest.approx(111.2, abs=0.5)
    assert scout.eta_s == pytest.approx(scout.distance_m / (5 / 3.6), abs=1)
    assert police.eta_s == pytest.approx(police.distance_m / (30 / 3.6), abs=1)


def test_shelters_and_cameras_near_an_incident(eng: Engine) -> None:
    eng.set_shelters(
        [
            Shelter(id="S1", name="GS25", kind="24h-store", lat=LAT + 0.001, lon=LON),
            Shelter(id="S2", name="Police box", kind="police-box", lat=LAT + 0.01, lon=LON),
        ]
    )
    eng.handle_event(camera("near", lat=LAT + 0.0005), DAY)
    eng.handle_event(camera("far", lat=LAT + 0.01), DAY)
    s = eng.incident_state(I1, DAY)
    assert [x.shelter_id for x in s.shelters] == ["S1", "S2"]
    assert [c.camera_id for c in s.cameras] == ["near"]
    assert s.cameras[0].status.value == "online"
    restored = restore(Config(), eng.snapshot())
    assert restored.incident_state(I1, DAY) == s


# --- responders reporting ---------------------------------------------------------------------


def test_responder_reports_follow_the_incident(eng: Engine) -> None:
    do(eng, Action.DISPATCH, responder_id="P-1")
    effects = eng.handle_event(responder("P-1", status=ResponderStatus.EN_ROUTE), DAY + 20)
    assert IncidentChanged(I1) in effects and ResponderChanged("P-1") in effects
    assert eng.responder_state("P-1").status is ResponderStatus.EN_ROUTE
    assert status(eng) is IncidentStatus.DISPATCHED
    eng.handle_event(responder("P-1", status=ResponderStatus.ON_SCENE), DAY + 30)
    s = eng.incident_state(I1, DAY + 30)
    assert s.status is IncidentStatus.ON_SCENE and s.history[-1].actor == "P-1"
    eng.handle_event(responder("P-1", status=ResponderStatus.AVAILABLE), DAY + 40)
    assert eng.incident_state(I1, DAY).responders == ()
    assert eng.responder_state("P-1").incident_id is None
    # Its last unit gone: back to acknowledged, with an alert (tests/engine/test_unit_released.py).
    assert status(eng) is IncidentStatus.ACKNOWLEDGED


def test_responder_position_updates_move_recommendations(eng: Engine) -> None:
    eng.handle_event(responder("P-2", lat=LAT), DAY + 1)
    assert eng.incident_state(I1, DAY).recommended[0].responder_id == "P-2"


# --- idempotency ----------------------------------------------------------------------------------


def test_same_command_twice_same_reply_no_second_change(eng: Engine) -> None:
    c = cmd(Action.DISPATCH, cmd_id="dup-1")
    first = eng.handle_command(c, DAY + 1, Role.OPERATOR)
    snap = eng.snapshot()
    again = eng.handle_command(c, DAY + 2, Role.OPERATOR)
    assert again == [e for e in first if type(e).__name__ == "SendReply"]
    assert eng.snapshot() == snap
    assert eng.incident_state(I1, DAY).responders == ("P-1",)
    # the same cmd_id from another operator is another command
    r = reply_of(
        eng.handle_command(
            cmd(Action.NOTE, cmd_id="dup-1", operator="op1", text="x"), DAY, Role.OPERATOR
        )
    )
    assert r == reply_of(first)


def test_refused_command_repeats_its_refusal(eng: Engine) -> None:
    c = cmd(Action.ON_SCENE, cmd_id="x1")
    r1 = reply_of(eng.handle_command(c, DAY + 1, Role.OPERATOR))
    do(eng, Action.DISPATCH)
    r2 = reply_of(eng.handle_command(c, DAY + 5, Role.OPERATOR))
    assert r1 == r2 and not r2.ok
    assert status(eng) is IncidentStatus.DISPATCHED


# --- SLA ----------------------------------------------------------------------------------------


def test_unacknowledged_p1_escalates_after_ack_sla(eng: Engine) -> None:
    assert eng.tick(DAY + 29.9) == []
    effects = eng.tick(DAY + 30)
    assert [type(e) for e in effects] == [Escalated, IncidentChanged]
    s = eng.incident_state(I1, DAY + 30)
    assert s.escalated and s.history[-1].actor == "core" and "acknowledged" in s.history[-1].detail
    assert not [e for e in eng.tick(DAY + 1000) if isinstance(e, Escalated)]  # once


def test_acknowledged_undispatched_p1_escalates_after_dispatch_sla(eng: Engine) -> None:
    do(eng, Action.ACK, now=DAY + 10)
    assert eng.tick(DAY + 129) == []
    effects = eng.tick(DAY + 130)
    assert Escalated(I1, "SLA: not dispatched within 120 s of acknowledgement") in effects


def test_dispatch_in_time_means_no_escalation(eng: Engine) -> None:
    do(eng, Action.ACK, now=DAY + 10)
    do(eng, Action.DISPATCH, now=DAY + 20)
    assert eng.tick(DAY + 10_000) == []
    assert not eng.incident_state(I1, DAY).escalated


def test_closed_incident_never_escalates(eng: Engine) -> None:
    do(eng, Action.FALSE_ALARM)
    assert eng.tick(DAY + 10_000) == []


def test_sla_uses_config() -> None:
    e = engine(Config(sla=SlaConfig(ack_p1_s=5, dispatch_p1_s=7)))
    e.handle_event(sos(), DAY)
    assert e.incident_state(I1, DAY).ack_deadline == DAY + 5
    assert e.tick(DAY + 5)


def test_tick_is_cheap_with_many_open_incidents() -> None:
    import time

    e = engine()
    for i in range(20_000):
        lat, lon = LAT + (i % 20) * 1e-3, LON + (i // 20 % 20) * 1e-3
        e.handle_event(sos(f"a{i}", device=f"d{i}", lat=lat, lon=lon), DAY)
    start = time.perf_counter()
    for k in range(1000):
        assert e.tick(DAY + k * 0.01) == []
    assert time.perf_counter() - start < 0.05
    assert len(e.tick(DAY + 31)) == 2 * 20_000


# --- summary ----------------------------------------------------------------------------------


def test_summary_counts(eng: Engine) -> None:
    eng.handle_event(camera("cam9", status=camera().status), DAY)
    eng.handle_event(
        camera("cam9", status=__import__("protocols.schemas").schemas.CameraHealthStatus.OFFLINE),
        DAY + 5,
    )
    s = eng.summary(DAY + 10)
    assert s.open_by_priority == (1, 0, 0, 1) and s.open_total == 2
    assert s.oldest_unacked == DAY
    do(eng, Action.ACK)
    assert eng.summary(DAY).oldest_unacked == DAY + 5
    do(eng, Action.FALSE_ALARM)
    assert eng.summary(DAY).open_by_priority == (0, 0, 0, 1)


def test_receipt_for_a_journaled_resend_changes_nothing(eng: Engine) -> None:
    snap = eng.snapshot()
    (effect,) = eng.receipt_for(sos(), DAY + 1)
    assert isinstance(effect, SendReceipt) and effect.receipt.incident_id == I1
    assert eng.receipt_for(sos("never"), DAY) == []
    assert eng.snapshot() == snap
