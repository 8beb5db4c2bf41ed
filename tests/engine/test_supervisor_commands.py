"""The shift supervisor's commands: REASSIGN an open incident, HANDOVER a note.

Only a supervisor may do either; a refusal says why and changes nothing.
"""

from __future__ import annotations

import pytest

from console.config import Config
from console.engine.commands import HANDOVER_KEPT
from console.engine.effects import IncidentChanged
from console.engine.engine import Engine
from protocols.schemas import Action, Reply, Role
from tests.engine.test_engine_support import DAY, cmd, do, engine, reply_of, restore, sos

I1 = "I-000001"


@pytest.fixture
def eng() -> Engine:
    e = engine()
    e.handle_event(sos(), DAY)
    assert do(e, Action.ACK, operator="op1").ok
    return e


def owner(e: Engine) -> str | None:
    return e.incident_state(I1, DAY + 20).owner


# --- reassign ----------------------------------------------------------------------------


def test_an_operator_may_not_reassign(eng: Engine) -> None:
    for operator in ("op1", "op2"):  # neither the owner nor another operator
        r = do(eng, Action.REASSIGN, operator=operator, text="op3")
        assert not r.ok and r.reason == f"only a supervisor may reassign {I1}"
    assert owner(eng) == "op1"


def test_a_supervisor_reassigns(eng: Engine) -> None:
    effects = eng.handle_command(
        cmd(Action.REASSIGN, I1, operator="sup1", text="op2"), DAY + 15, Role.SUPERVISOR
    )
    r = reply_of(effects)
    assert r.ok and r.reason == f"reassigned {I1} to op2" and r.incident_id == I1
    assert IncidentChanged(I1) in effects
    assert owner(eng) == "op2"
    last = eng.incident_state(I1, DAY + 20).history[-1]
    assert (last.ts, last.actor, last.action, last.detail) == (
        DAY + 15, "sup1", "reassigned", "from op1 to op2"
    )  # fmt: skip
    # the new owner works it; the old one is now refused like any other operator
    r = do(eng, Action.NOTE, operator="op1", text="x")
    assert not r.ok and r.reason == f"incident {I1} is owned by op2"
    assert do(eng, Action.NOTE, operator="op2", text="on it").ok


def test_an_unowned_incident_is_reassigned_from_nobody() -> None:
    e = engine()
    e.handle_event(sos(), DAY)
    assert do(e, Action.REASSIGN, role=Role.SUPERVISOR, operator="sup1", text="op2").ok
    assert e.incident_state(I1, DAY).history[-1].detail == "from nobody to op2"


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("op1", f"incident {I1} is already owned by op1"),
        (None, f"reassign {I1}: no operator given"),
        ("  ", f"reassign {I1}: no operator given"),
        ("op 2", "not an operator id: 'op 2'"),
        ("op/2", "not an operator id: 'op/2'"),
        ("ansim-core-north", "not an operator id: 'ansim-core-north'"),
    ],
)
def test_a_reassignment_that_makes_no_sense_is_refused(
    eng: Engine, target: str | None, reason: str
) -> None:
    before = eng.incident_state(I1, DAY + 20)
    r = do(eng, Action.REASSIGN, role=Role.SUPERVISOR, operator="sup1", text=target)
    assert not r.ok and r.reason == reason
    assert eng.incident_state(I1, DAY + 20) == before


def test_a_closed_incident_is_not_reassigned(eng: Engine) -> None:
    assert do(eng, Action.FALSE_ALARM, operator="op1").ok
    r = do(eng, Action.REASSIGN, role=Role.SUPERVISOR, operator="sup1", text="op2")
    assert not r.ok and r.reason == f"incident {I1} is closed (false-alarm)"


def test_a_scoped_supervisor_reassigns_only_in_its_districts() -> None:
    e = engine(Config(scopes={"sup1": ["Mapo-gu"], "sup2": ["Jung-gu"]}))
    e.handle_event(sos(), DAY)  # near Seoul City Hall: Jung-gu
    r = do(e, Action.REASSIGN, role=Role.SUPERVISOR, operator="sup1", text="op2")
    assert not r.ok and r.reason == f"incident {I1} is in Jung-gu; sup1 acts in Mapo-gu only"
    assert do(e, Action.REASSIGN, role=Role.SUPERVISOR, operator="sup2", text="op2").ok


def test_an_observer_may_not_reassign(eng: Engine) -> None:
    r = do(eng, Action.REASSIGN, role=Role.OBSERVER, operator="watch1", text="op2")
    assert not r.ok and r.reason == "observer seat is read-only"


# --- handover ----------------------------------------------------------------------------


def handover(
    e: Engine, text: str | None, role: Role, operator: str = "sup1", at: float = DAY
) -> Reply:
    return reply_of(
        e.handle_command(cmd(Action.HANDOVER, None, operator=operator, text=text), at, role)
    )


def test_an_operator_or_observer_may_not_write_the_handover(eng: Engine) -> None:
    r = handover(eng, "quiet night", Role.OPERATOR, operator="op1")
    assert not r.ok and r.reason == "only a supervisor may write the handover note"
    r = handover(eng, "quiet night", Role.OBSERVER, operator="watch1")
    assert not r.ok and r.reason == "observer seat is read-only"
    assert eng.shift_report(DAY + 30).handover == ()


def test_a_supervisor_hands_over(eng: Engine) -> None:
    r = handover(eng, "  P-2's radio is faulty  ", Role.SUPERVISOR, at=DAY + 30)
    assert r.ok and r.reason == "handover note kept" and r.incident_id is None
    notes = eng.shift_report(DAY + 40).handover
    assert [(n.ts, n.operator, n.text) for n in notes] == [
        (DAY + 30, "sup1", "P-2's radio is faulty")
    ]
    r = handover(eng, " ", Role.SUPERVISOR)
    assert not r.ok and r.reason == "a handover note needs text"
    # kept across a snapshot (the core restarts from one)
    again = restore(Config(), eng.snapshot())
    assert again.shift_report(DAY + 40).handover == notes


def test_only_the_newest_handover_notes_are_kept(eng: Engine) -> None:
    for n in range(HANDOVER_KEPT + 5):
        assert handover(eng, f"note {n}", Role.SUPERVISOR, at=DAY + n).ok
    kept = eng.ctx.st.handover
    assert len(kept) == HANDOVER_KEPT and kept[0].text == "note 5"
    shown = eng.shift_report(DAY + 100).handover  # the report carries the newest 20
    assert [n.text for n in shown] == [f"note {n}" for n in range(35, 55)]
