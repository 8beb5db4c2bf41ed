"""A unit across a partition border: two engines, the north's and the south's, exchange
the LEND, its answer and the RETURN as their cores would (console.engine.lending)."""

from __future__ import annotations

import msgspec

from console.config import Config
from console.engine.effects import AskPartition, Effect, SendReply
from console.engine.engine import Engine
from console.engine.lending import CORE_PREFIX
from protocols.schemas import (
    Action,
    Command,
    IncidentStatus,
    Reply,
    ResponderReport,
    ResponderStatus,
    Role,
    UnitKind,
)
from tests.engine.test_engine_support import DAY, sos
from tests.partitioned import NORTH, SOUTH

CFG = Config(partitions={"north": NORTH, "south": SOUTH})
MAPO = (37.5594, 126.9085)
YEONGDEUNGPO = (37.5222, 126.9103)
NORTH_CORE = f"{CORE_PREFIX}-north"


def engine(partition: str) -> Engine:
    return Engine(CFG.engine_settings(partition), CFG.city.district_map())


def unit(ts: float = DAY) -> ResponderReport:
    """A south police car on the south bank, seen by both cores."""
    return ResponderReport(
        responder_id="police-y1", kind=UnitKind.POLICE, status=ResponderStatus.AVAILABLE,
        lat=37.528, lon=126.912, ts=ts, district="Yeongdeungpo-gu",
    )  # fmt: skip


def reply_of(effects: list[Effect]) -> Reply:
    return next(e.reply for e in effects if isinstance(e, SendReply))


def asks(effects: list[Effect]) -> list[AskPartition]:
    return [e for e in effects if isinstance(e, AskPartition)]


def command(operator: str, cmd_id: str, **fields: object) -> Command:
    return Command(cmd_id=cmd_id, operator=operator, ts=DAY + 10, **fields)  # type: ignore[arg-type]


def as_north(ask: AskPartition) -> Command:
    """What the north's core sends: its own id as the operator (Core._addressed)."""
    return msgspec.structs.replace(ask.command, operator=NORTH_CORE)


def setup() -> tuple[Engine, Engine, str, str]:
    north, south = engine("north"), engine("south")
    for e in (north, south):
        e.handle_event(unit(), DAY)
    north.handle_event(sos("n1", "dev-n", *MAPO), DAY)
    south.handle_event(sos("s1", "dev-s", *YEONGDEUNGPO), DAY)
    return north, south, north.open_incident_ids()[0], south.open_incident_ids()[0]


def test_the_neighbours_unit_is_lent_and_the_owners_own_dispatch_is_refused_by_name() -> None:
    north, south, n1, s1 = setup()
    assert (n1, s1) == ("north-000001", "south-000001")
    out = north.handle_command(
        command("op-n", "c1", action=Action.DISPATCH, incident_id=n1, responder_id="police-y1"),
        DAY + 10,
    )
    answer = reply_of(out)
    assert answer.ok and "asked the partition of Yeongdeungpo-gu" in answer.reason
    (ask,) = asks(out)
    assert ask.district == "Yeongdeungpo-gu" and ask.command.action is Action.LEND
    lent = reply_of(south.handle_command(as_north(ask), DAY + 11, Role.OPERATOR))
    assert lent.ok and lent.operator == NORTH_CORE
    late = south.handle_command(
        command("op-s", "c2", action=Action.DISPATCH, incident_id=s1, responder_id="police-y1"),
        DAY + 12,
    )
    assert reply_of(late).reason == (
        f"responder police-y1 is already assigned to {n1} (dispatched by {NORTH_CORE})"
    )
    north.handle_event(lent, DAY + 13)
    state = north.incident_state(n1, DAY + 13)
    assert state.status is IncidentStatus.DISPATCHED and state.responders == ("police-y1",)
    assert "lent by Yeongdeungpo-gu" in state.history[-1].detail


def test_two_partitions_at_once_one_success_one_refusal_that_names_the_holder() -> None:
    north, south, n1, s1 = setup()
    out = north.handle_command(
        command("op-n", "c1", action=Action.DISPATCH, incident_id=n1, responder_id="police-y1"),
        DAY + 10,
    )
    (ask,) = asks(out)
    mine = south.handle_command(
        command("op-s", "c2", action=Action.DISPATCH, incident_id=s1, responder_id="police-y1"),
        DAY + 10,
    )
    assert reply_of(mine).ok  # the owner's operator came first
    refused = reply_of(south.handle_command(as_north(ask), DAY + 11, Role.OPERATOR))
    assert not refused.ok
    assert refused.reason == (
        f"responder police-y1 is already assigned to {s1} (dispatched by op-s)"
    )
    north.handle_event(refused, DAY + 12)
    state = north.incident_state(n1, DAY + 12)
    assert state.responders == () and state.status is not IncidentStatus.DISPATCHED
    assert state.alert == f"police-y1 not lent: {refused.reason}"


def test_a_closed_incident_gives_the_unit_back() -> None:
    north, south, n1, _ = setup()
    (ask,) = asks(north.handle_command(
        command("op-n", "c1", action=Action.DISPATCH, incident_id=n1, responder_id="police-y1"),
        DAY + 10,
    ))  # fmt: skip
    lent = reply_of(south.handle_command(as_north(ask), DAY + 11, Role.OPERATOR))
    north.handle_event(lent, DAY + 12)
    out = north.handle_command(
        command("op-n", "c2", action=Action.RESOLVE, incident_id=n1, disposition="escorted"),
        DAY + 20,
    )
    assert reply_of(out).ok
    (back,) = asks(out)
    assert back.command.action is Action.RETURN and back.district == "Yeongdeungpo-gu"
    assert reply_of(south.handle_command(as_north(back), DAY + 21, Role.OPERATOR)).ok
    assert south.responder_state("police-y1").status is ResponderStatus.AVAILABLE
    assert south.responder_state("police-y1").incident_id is None


def test_only_a_partitions_core_may_borrow_and_only_its_own_units_are_lent() -> None:
    north, south, n1, _ = setup()
    sneaky = command("op-x", "c9", action=Action.LEND, incident_id=n1, responder_id="police-y1")
    refused = reply_of(south.handle_command(sneaky, DAY + 10, Role.SUPERVISOR))
    assert refused.reason == "lend: only a partition's core may ask for a unit"
    theirs = command(
        NORTH_CORE, "c8", action=Action.LEND, incident_id="x", responder_id="police-y1"
    )
    not_mine = reply_of(north.handle_command(theirs, DAY + 10, Role.OPERATOR))
    assert not_mine.reason == "responder police-y1 is not a unit of this partition"


def lend_to_north() -> tuple[Engine, Engine, str, str]:
    north, south, n1, s1 = setup()
    (ask,) = asks(north.handle_command(
        command("op-n", "c1", action=Action.DISPATCH, incident_id=n1, responder_id="police-y1"),
        DAY + 10,
    ))  # fmt: skip
    lent = reply_of(south.handle_command(as_north(ask), DAY + 11, Role.OPERATOR))
    north.handle_event(lent, DAY + 12)
    return north, south, n1, s1


def report(status: ResponderStatus, ts: float) -> ResponderReport:
    """The lent unit's tracker, read by its owner and, across the border, by the borrower."""
    return msgspec.structs.replace(unit(ts), status=status)


def test_a_lent_units_reports_move_the_borrowing_incident_and_keep_it_lent() -> None:
    north, south, n1, s1 = lend_to_north()
    for status, at in ((ResponderStatus.DISPATCHED, 20), (ResponderStatus.ON_SCENE, 30)):
        for e in (north, south):
            e.handle_event(report(status, DAY + at), DAY + at)
        # The owner keeps it lent to the north's incident, which it cannot see.
        held = south.responder_state("police-y1")
        assert (held.status, held.incident_id) == (status, n1)
        refused = reply_of(south.handle_command(command(
            "op-s", f"s{at}", action=Action.DISPATCH, incident_id=s1, responder_id="police-y1",
        ), DAY + at + 1))  # fmt: skip
        assert refused.reason.startswith(f"responder police-y1 is already assigned to {n1}")
    state = north.incident_state(n1, DAY + 31)
    assert state.status is IncidentStatus.ON_SCENE and state.responders == ("police-y1",)
    assert "police-y1 reported on scene" in [h.detail for h in state.history]

    # Done: it reports itself available; both cores let it go, the north says so.
    for e in (north, south):
        e.handle_event(report(ResponderStatus.AVAILABLE, DAY + 40), DAY + 40)
    assert south.responder_state("police-y1").incident_id is None
    after = north.incident_state(n1, DAY + 41)
    assert after.responders == () and "police-y1" in after.alert


def test_a_return_after_the_units_reports_still_frees_it() -> None:
    north, south, n1, _ = lend_to_north()
    for e in (north, south):
        e.handle_event(report(ResponderStatus.ON_SCENE, DAY + 20), DAY + 20)
    out = north.handle_command(
        command("op-n", "c2", action=Action.RESOLVE, incident_id=n1, disposition="escorted"),
        DAY + 30,
    )
    (back,) = asks(out)
    done = reply_of(south.handle_command(as_north(back), DAY + 31, Role.OPERATOR))
    assert done.ok and done.reason == f"police-y1 is back from {n1}"
    freed = south.responder_state("police-y1")
    assert (freed.status, freed.incident_id) == (ResponderStatus.AVAILABLE, None)
