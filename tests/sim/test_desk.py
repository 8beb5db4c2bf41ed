"""The simulated colleagues (pure): which incidents they take, and each step they send."""

from __future__ import annotations

import msgspec

from console.config import SimulateConfig
from console.sim.desk import MAX_TRIES, REPLY_TIMEOUT_S, Desk, Plan
from console.sim.picture import Picture
from protocols.schemas import (
    Action,
    CorrelatedEvent,
    IncidentKind,
    IncidentState,
    IncidentStatus,
    Recommendation,
    Reply,
    ResponderState,
    ResponderStatus,
    UnitKind,
)

T0 = 1_800_000_000.0
SETTINGS = SimulateConfig(
    desk=2, desk_pick_s=90.0, desk_pick_p1_s=20.0, desk_think_s=10.0, desk_on_scene_s=300.0
)


def inc(
    iid: str = "I-000001",
    *,
    kind: IncidentKind = IncidentKind.SOS,
    priority: int = 1,
    status: IncidentStatus = IncidentStatus.NEW,
    owner: str | None = None,
    created: float = T0,
    responders: tuple[str, ...] = (),
    recommended: tuple[Recommendation, ...] = (),
    events: tuple[CorrelatedEvent, ...] = (),
) -> IncidentState:
    return IncidentState(
        id=iid,
        kind=kind,
        priority=priority,
        status=status,
        lat=37.5,
        lon=127.0,
        district="Jung-gu",
        place="",
        source="src",
        title="Person down at Jung alley 0001",
        created=created,
        updated=created,
        owner=owner,
        responders=responders,
        recommended=recommended,
        events=events,
    )


def rec(rid: str, eta: float, kind: UnitKind = UnitKind.POLICE) -> Recommendation:
    return Recommendation(responder_id=rid, kind=kind, distance_m=eta * 8, eta_s=eta)


def free(rid: str, status: ResponderStatus = ResponderStatus.AVAILABLE) -> ResponderState:
    return ResponderState(
        id=rid,
        kind=UnitKind.POLICE,
        status=status,
        lat=37.5,
        lon=127.0,
        last_seen=T0,
        status_since=T0,
    )


def ok(desk: Desk, command_id: str, now: float, good: bool = True) -> None:
    desk.reply(Reply(cmd_id=command_id, operator="desk-1", ok=good, ts=now, reason="no"), now)


def test_the_human_gets_the_first_pick() -> None:
    desk, picture = Desk(SETTINGS, session="s"), Picture()
    picture.incident(inc("I-000001", priority=4, kind=IncidentKind.CCTV))
    picture.incident(inc("I-000002", priority=1))
    picture.incident(inc("I-000003", priority=4, owner="op1", status=IncidentStatus.ACKNOWLEDGED))
    assert desk.commands(T0 + 19, picture) == []
    first = desk.commands(T0 + 20, picture)  # a P1 is taken before its ack SLA (30 s)
    assert [(c.action, c.incident_id, c.operator) for c in first] == [
        (Action.ACK, "I-000002", "desk-1")
    ]
    ok(desk, first[0].cmd_id, T0 + 21)
    picture.incident(inc("I-000002", status=IncidentStatus.ACKNOWLEDGED, owner="desk-1"))
    desk.jobs["I-000002"].next_at = T0 + 1000  # desk-1 is busy with it
    later = desk.commands(T0 + 90, picture)
    assert [(c.action, c.incident_id, c.operator) for c in later] == [
        (Action.ACK, "I-000001", "desk-2")  # the least busy colleague
    ]
    assert "I-000003" not in desk.jobs  # op1's


def test_a_dispatch_from_ack_to_resolve() -> None:
    desk, picture = Desk(SETTINGS, session="s"), Picture()
    picture.incident(inc())
    picture.responder(free("unit-a"))
    picture.responder(free("unit-b"))
    picture.responder(free("unit-c", ResponderStatus.DISPATCHED))
    now = T0 + 20
    (ack,) = desk.commands(now, picture)
    desk.jobs["I-000001"].plan = Plan.DISPATCH
    assert ack.cmd_id == "desk-1-s-1" and ack.ts == now
    ok(desk, ack.cmd_id, now)
    # Stale recommendations: unit-c has been taken since; the soonest free one goes.
    picture.incident(
        inc(
            status=IncidentStatus.ACKNOWLEDGED,
            owner="desk-1",
            recommended=(rec("unit-c", 30), rec("unit-b", 200), rec("unit-a", 90)),
        )
    )
    assert desk.commands(now + 1, picture) == []  # thinking
    now += 16
    (dispatch,) = desk.commands(now, picture)
    assert (dispatch.action, dispatch.responder_id) == (Action.DISPATCH, "unit-a")
    ok(desk, dispatch.cmd_id, now)
    picture.incident(inc(status=IncidentStatus.DISPATCHED, owner="desk-1", responders=("unit-a",)))
    for t in range(60):
        assert desk.commands(now + t, picture) == []  # its unit is on the way
    now += 60
    picture.incident(inc(status=IncidentStatus.ON_SCENE, owner="desk-1", responders=("unit-a",)))
    assert desk.commands(now, picture) == []
    stay = desk.jobs["I-000001"].stay_s
    assert 150 <= stay <= 450
    assert desk.commands(now + stay - 1, picture) == []
    (resolve,) = desk.commands(now + stay, picture)
    assert resolve.action is Action.RESOLVE and resolve.disposition


def test_a_refused_step_is_tried_again_then_given_up_and_released() -> None:
    desk, picture = Desk(SETTINGS, session="s"), Picture()
    picture.incident(inc())
    now = T0 + 20
    for _ in range(MAX_TRIES):
        (ack,) = desk.commands(now, picture)
        assert ack.action is Action.ACK
        assert desk.commands(now + 1, picture) == []  # waiting for the reply
        ok(desk, ack.cmd_id, now + 1, good=False)
        now += 16
    (release,) = desk.commands(now, picture)
    assert release.action is Action.RELEASE
    assert desk.commands(now + 1000, picture) == []  # never taken again


def test_a_lost_reply_resends_the_same_command() -> None:
    desk, picture = Desk(SETTINGS, session="s"), Picture()
    picture.incident(inc())
    (ack,) = desk.commands(T0 + 20, picture)
    assert desk.commands(T0 + 20 + REPLY_TIMEOUT_S - 1, picture) == []
    (again,) = desk.commands(T0 + 20 + REPLY_TIMEOUT_S, picture)
    assert again == ack  # the same cmd_id: the core answers it once


def test_someone_else_takes_it_and_the_colleague_lets_go() -> None:
    desk, picture = Desk(SETTINGS, session="s"), Picture()
    picture.incident(inc())
    (ack,) = desk.commands(T0 + 20, picture)
    picture.incident(inc(status=IncidentStatus.ACKNOWLEDGED, owner="op1"))
    ok(desk, ack.cmd_id, T0 + 21, good=False)
    assert desk.commands(T0 + 100, picture) == [] and desk.jobs == {}


def test_a_camera_fault_is_resolved_once_the_camera_is_back() -> None:
    desk, picture = Desk(SETTINGS, session="s"), Picture()
    fault = {"kind": IncidentKind.CAMERA_FAULT, "priority": 4}
    picture.incident(inc(**fault))  # type: ignore[arg-type]
    (ack,) = desk.commands(T0 + 90, picture)
    ok(desk, ack.cmd_id, T0 + 90)
    picture.incident(inc(status=IncidentStatus.ACKNOWLEDGED, owner="desk-1", **fault))  # type: ignore[arg-type]
    assert desk.commands(T0 + 200, picture) == []  # still offline
    back = CorrelatedEvent(ts=T0 + 250, kind="online", source="cam-1")
    picture.incident(
        inc(status=IncidentStatus.ACKNOWLEDGED, owner="desk-1", events=(back,), **fault)  # type: ignore[arg-type]
    )
    (resolve,) = desk.commands(T0 + 300, picture)
    assert (resolve.action, resolve.disposition) == (Action.RESOLVE, "camera back online")


def test_no_unit_free_it_is_handed_to_the_police() -> None:
    desk, picture = Desk(SETTINGS, session="s"), Picture()
    picture.incident(inc())
    (ack,) = desk.commands(T0 + 20, picture)
    desk.jobs["I-000001"].plan = Plan.DISPATCH
    ok(desk, ack.cmd_id, T0 + 20)
    picture.incident(inc(status=IncidentStatus.ACKNOWLEDGED, owner="desk-1"))
    sent = []
    for t in range(21, 400):
        for c in desk.commands(T0 + t, picture):
            sent.append(c)
            ok(desk, c.cmd_id, T0 + t)
            picture.incident_gone(c.incident_id or "")  # the core closed it
    assert [(c.action, c.disposition) for c in sent] == [
        (Action.RESOLVE, "no unit free: handed to police")
    ]


def test_a_busy_desk_takes_no_more_but_a_p1_all_the_same() -> None:
    settings = msgspec.structs.replace(SETTINGS, desk=1, desk_max_each=2)
    desk, picture = Desk(settings, session="s"), Picture()
    for n in range(1, 4):
        picture.incident(inc(f"I-00000{n}", kind=IncidentKind.CCTV, priority=4))
    taken = desk.commands(T0 + 90, picture)
    assert [c.incident_id for c in taken] == ["I-000001", "I-000002"]
    picture.incident(inc("I-000009", created=T0 + 80))
    taken = desk.commands(T0 + 100, picture)
    assert [c.incident_id for c in taken] == ["I-000009"]


def test_no_colleagues_no_commands() -> None:
    desk, picture = Desk(msgspec.structs.replace(SETTINGS, desk=0), session="s"), Picture()
    picture.incident(inc())
    assert desk.commands(T0 + 1000, picture) == []
