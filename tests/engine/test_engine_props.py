"""Properties of the engine over random input sequences (hypothesis).

Replay determinism, snapshot/restore, SOS never lost, idempotent commands,
and invariants that must hold after every step whatever the operators do.
"""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.config import Config
from console.engine.effects import Effect, SendReceipt, SendReply
from console.engine.engine import Engine
from console.engine.settings import EngineSettings
from protocols.public_alert import CapReference, PublicAlert
from protocols.schemas import (
    Action,
    CameraHealthStatus,
    CctvKind,
    Command,
    ResponderStatus,
    Role,
)
from tests.engine.test_engine_support import DAY, LAT, LON, camera, cctv, responder, sos

OPERATORS = [
    ("op1", Role.OPERATOR),
    ("op2", Role.OPERATOR),
    ("sup", Role.SUPERVISOR),
    ("obs", Role.OBSERVER),
]
SPOT = st.integers(0, 4).map(lambda i: (LAT + i * 0.0015, LON))  # 0-660 m apart

sos_input = st.tuples(st.just("sos"), st.integers(0, 6), st.integers(0, 2), SPOT)
cctv_input = st.tuples(
    st.just("cctv"),
    st.integers(0, 6),
    st.integers(0, 2),
    st.sampled_from(list(CctvKind)),
    st.booleans(),
    st.sampled_from([0.6, 0.9]),  # confidence: the same event id again may be an update
)
camera_input = st.tuples(
    st.just("camera"), st.integers(0, 2), st.sampled_from(list(CameraHealthStatus))
)
responder_input = st.tuples(
    st.just("responder"),
    st.integers(0, 3),
    st.sampled_from(list(ResponderStatus)),
    SPOT,
    st.booleans(),  # position only (OwnTracks)
)
alert_input = st.tuples(
    st.just("alert"),
    st.integers(0, 5),  # identifier
    st.sampled_from(["Alert", "Alert", "Update", "Cancel"]),
    st.integers(0, 5),  # the identifier it refers to
    st.integers(1, 4),  # priority
    SPOT,
)
command_input = st.tuples(
    st.just("cmd"),
    st.sampled_from([0, 0, 0, 1, 1, 2, 3]),  # operator (3 is the observer)
    st.sampled_from(list(Action)),
    st.integers(1, 4),  # incident number
    st.one_of(st.none(), st.integers(0, 3)),  # responder
    st.booleans(),  # with text / disposition
    st.integers(0, 30),  # cmd id: small, so repeats happen
)
tick_input = st.tuples(st.just("tick"))
step = st.tuples(
    st.sampled_from(
        [
            sos_input,
            command_input,
            cctv_input,
            command_input,
            camera_input,
            command_input,
            responder_input,
            command_input,
            alert_input,
            tick_input,
            command_input,
        ]
    ).flatmap(lambda strategy: strategy),
    st.sampled_from([0.0, 1.0, 7.0, 45.0, 200.0, 700.0]),
)
steps = st.lists(step, min_size=12, max_size=60)


def setup_inputs() -> list[tuple[Any, float]]:
    return [(camera(f"cam{i}", lat=LAT + i * 0.0015), DAY - 10) for i in range(3)] + [
        (responder(f"R{i}", lat=LAT + i * 0.001), DAY - 10) for i in range(4)
    ]


def to_message(raw: tuple[Any, ...]) -> tuple[Any, Role]:
    kind = raw[0]
    if kind == "sos":
        _, alarm, device, (lat, lon) = raw
        return sos(f"a{alarm}", device=f"d{device}", lat=lat, lon=lon), Role.OPERATOR
    if kind == "cctv":
        _, event, cam, ckind, withdrawn, confidence = raw
        event_msg = cctv(f"e{event}", f"cam{cam}", ckind, withdrawn=withdrawn)
        return msgspec.structs.replace(event_msg, confidence=confidence), Role.OPERATOR
    if kind == "camera":
        _, cam, status = raw
        return camera(f"cam{cam}", status, lat=LAT + cam * 0.0015), Role.OPERATOR
    if kind == "responder":
        _, r, status, (lat, lon), position_only = raw
        report = responder(f"R{r}", status, lat=lat, lon=lon)
        return msgspec.structs.replace(report, position_only=position_only), Role.OPERATOR
    if kind == "alert":
        _, ident, msg_type, ref, priority, (lat, lon) = raw
        refs = (
            ()
            if msg_type == "Alert"
            else (CapReference(sender="s", identifier=f"A{ref}", sent=DAY),)
        )
        message = PublicAlert(
            identifier=f"A{ident}" if msg_type == "Alert" else f"A{ident}-{msg_type}",
            sender="s",
            sent=DAY,
            msg_type=msg_type,
            priority=priority,
            headline=f"alert {ident}",
            lat=lat,
            lon=lon,
            references=refs,
        )
        return message, Role.OPERATOR
    if kind == "cmd":
        _, op, action, inc, resp, text, cmd_id = raw
        operator, role = OPERATORS[op]
        command = Command(
            cmd_id=f"c{cmd_id}",
            operator=operator,
            action=action,
            ts=DAY,
            incident_id=f"I-{inc:06d}",
            responder_id=None if resp is None else f"R{resp}",
            disposition="handled" if text else None,
            text="sup" if text and action is Action.CLAIM else ("words" if text else None),
        )
        return command, role
    return None, Role.OPERATOR


def apply(engine: Engine, raw: tuple[Any, ...], now: float) -> list[Effect]:
    message, role = to_message(raw)
    if message is None:
        return engine.tick(now)
    if isinstance(message, Command):
        return engine.handle_command(message, now, role)
    return engine.handle_event(message, now)


def run(
    seq: list[tuple[tuple[Any, ...], float]], engine: Engine | None = None
) -> tuple[Engine, list[list[Effect]]]:
    engine = engine or Engine(EngineSettings(), Config().city.district_map())
    out = []
    if not engine.st.cameras:
        for message, now in setup_inputs():
            engine.handle_event(message, now)
    now = DAY
    for raw, dt in seq:
        now += dt
        out.append(apply(engine, raw, now))
    return engine, out


def check_invariants(engine: Engine) -> None:
    st_ = engine.st
    holders: dict[str, str] = {}
    for inc in st_.incidents.values():
        assert not inc.status.is_closed
        for rid in inc.responders:
            assert rid not in holders, f"{rid} assigned to {holders[rid]} and {inc.id}"
            holders[rid] = inc.id
            assert st_.responders[rid].incident_id == inc.id
    for resp in st_.responders.values():
        if resp.incident_id is not None:
            assert holders.get(resp.id) == resp.incident_id
    for inc in st_.closed.values():
        assert inc.status.is_closed and inc.responders == [] and inc.closed_at is not None
    by_priority = [0, 0, 0, 0]
    for inc in st_.incidents.values():
        by_priority[inc.priority - 1] += 1
    summary = engine.summary(DAY)
    assert list(summary.open_by_priority) == by_priority
    assert summary.open_total == len(st_.incidents)
    unacked = [i.created for i in st_.incidents.values() if i.status.value == "new"]
    assert summary.oldest_unacked == (min(unacked) if unacked else None)
    for cam in st_.cameras.values():
        for iid in cam.alarms:
            assert st_.incidents[iid].cam_live.get(cam.id, 0) > 0
    for iid in engine.open_incident_ids():
        engine.incident_state(iid, DAY)  # never raises


FAST = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FAST
@given(steps)
def test_replay_is_deterministic(seq: list[tuple[tuple[Any, ...], float]]) -> None:
    a, effects_a = run(seq)
    b, effects_b = run(seq)
    assert a.snapshot() == b.snapshot()
    assert effects_a == effects_b


@FAST
@given(steps, st.integers(0, 40))
def test_snapshot_restore_continue_equals_uninterrupted(
    seq: list[tuple[tuple[Any, ...], float]], cut: int
) -> None:
    cut = min(cut, len(seq))
    whole, effects_whole = run(seq)
    first, effects_first = run(seq[:cut])
    restored = Engine.restore(EngineSettings(), Config().city.district_map(), first.snapshot())
    now = DAY + sum(dt for _, dt in seq[:cut])
    effects_rest = []
    for raw, dt in seq[cut:]:
        now += dt
        effects_rest.append(apply(restored, raw, now))
    assert restored.snapshot() == whole.snapshot()
    assert effects_first + effects_rest == effects_whole
    for iid in whole.open_incident_ids():
        assert restored.incident_state(iid, now) == whole.incident_state(iid, now)


@FAST
@given(steps)
def test_accepted_sos_never_disappears_unless_closed_by_command(
    seq: list[tuple[tuple[Any, ...], float]],
) -> None:
    engine, _ = run([])
    receipted: set[str] = set()
    closed_by_command: set[str] = set()
    now = DAY
    for raw, dt in seq:
        now += dt
        effects = apply(engine, raw, now)
        for e in effects:
            if isinstance(e, SendReceipt):
                receipted.add(e.receipt.incident_id)
            if isinstance(e, SendReply) and e.reply.ok and e.reply.incident_id:
                inc = engine.st.closed.get(e.reply.incident_id)
                if inc is not None and inc.closed_at == now:
                    closed_by_command.add(inc.id)
        open_ids = set(engine.open_incident_ids())
        assert receipted <= open_ids | closed_by_command


@FAST
@given(steps)
def test_same_command_twice_changes_nothing_more(seq: list[tuple[tuple[Any, ...], float]]) -> None:
    engine, _ = run([])
    now = DAY
    for raw, dt in seq:
        now += dt
        effects = apply(engine, raw, now)
        if raw[0] == "cmd":
            snap = engine.snapshot()
            again = apply(engine, raw, now + 1)
            assert again == [e for e in effects if isinstance(e, SendReply)]
            assert engine.snapshot() == snap


@FAST
@given(steps)
def test_random_operations_keep_invariants(seq: list[tuple[tuple[Any, ...], float]]) -> None:
    engine, _ = run([])
    now = DAY
    for raw, dt in seq:
        now += dt
        effects = apply(engine, raw, now)
        replies = [e for e in effects if isinstance(e, SendReply)]
        assert len(replies) == (1 if raw[0] == "cmd" else 0)
        if raw[0] == "cmd" and raw[1] == 3:  # the observer
            assert not replies[0].reply.ok
        check_invariants(engine)
