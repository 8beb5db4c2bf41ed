"""A LEND names the source whose reports the borrower ranked, and the owner lends only
that unit (console.engine.lending): unit ids are first come per partition, so the south's
unit-vs and the unit-vs another source reports near the north's SOS may be two units."""

from __future__ import annotations

import msgspec

from console.config import Config
from console.engine.effects import AskPartition, Effect, SendReply
from console.engine.engine import Engine
from console.engine.lending import CORE_PREFIX
from console.engine.settings import OwnersConfig
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

MAPO = (37.5418, 126.9120)  # the north bank of the Han
NEAR = (37.5417, 126.9120)  # 11 m from it, reported into Yeongdeungpo-gu
GURO = (37.4943, 126.8560)  # 7 km away, in the south
NORTH_CORE = f"{CORE_PREFIX}-north"


def engines(cfg: Config) -> tuple[Engine, Engine, str]:
    north, south = (Engine(cfg.engine_settings(p), cfg.city.district_map()) for p in ("north", "south"))  # fmt: skip
    north.handle_event(sos("n1", "dev-n", *MAPO), DAY)
    return north, south, north.open_incident_ids()[0]


def unit(at: tuple[float, float], district: str) -> ResponderReport:
    return ResponderReport(responder_id="unit-vs", kind=UnitKind.POLICE, lat=at[0], lon=at[1],
                           status=ResponderStatus.AVAILABLE, ts=DAY, district=district)  # fmt: skip


def reply_of(effects: list[Effect]) -> Reply:
    return next(e.reply for e in effects if isinstance(e, SendReply))


def lend_of(north: Engine, incident_id: str) -> Command:
    """The operator's dispatch of the ranked unit-vs, as the north's core sends it."""
    out = north.handle_command(
        Command(cmd_id="c1", operator="op-n", ts=DAY + 10, action=Action.DISPATCH,
                incident_id=incident_id, responder_id="unit-vs"),
        DAY + 10, Role.OPERATOR,
    )  # fmt: skip
    assert reply_of(out).ok, reply_of(out).reason
    (ask,) = [e for e in out if isinstance(e, AskPartition)]
    return msgspec.structs.replace(ask.command, operator=NORTH_CORE)


def test_the_owner_refuses_to_lend_its_unit_for_another_sources_namesake() -> None:
    cfg = Config(partitions={"north": NORTH, "south": SOUTH})
    north, south, n1 = engines(cfg)
    south.handle_event(unit(GURO, "Guro-gu"), DAY, source="cam-1")  # the real unit-vs
    north.handle_event(unit(NEAR, "Yeongdeungpo-gu"), DAY + 1, source="cam-2")  # the namesake
    lend = lend_of(north, n1)
    assert lend.disposition == "cam-2"
    refused = reply_of(south.handle_command(lend, DAY + 11, Role.OPERATOR))
    assert not refused.ok
    assert refused.reason == (
        "responder unit-vs is reported here by cam-1, not by cam-2: the unit you ranked is not ours"
    )
    real = south.responder_state("unit-vs")
    assert (real.status, real.incident_id) == (ResponderStatus.AVAILABLE, None)
    north.handle_event(refused, DAY + 12)
    state = north.incident_state(n1, DAY + 12)
    assert state.responders == () and state.alert.startswith("unit-vs not lent: responder")


def test_the_same_source_in_both_partitions_is_lent() -> None:
    cfg = Config(partitions={"north": NORTH, "south": SOUTH})
    north, south, n1 = engines(cfg)
    south.handle_event(unit(NEAR, "Yeongdeungpo-gu"), DAY, source="cam-1")
    north.handle_event(unit(NEAR, "Yeongdeungpo-gu"), DAY, source="cam-1")
    lent = reply_of(south.handle_command(lend_of(north, n1), DAY + 11, Role.OPERATOR))
    assert lent.ok, lent.reason
    north.handle_event(lent, DAY + 12)
    state = north.incident_state(n1, DAY + 12)
    assert state.status is IncidentStatus.DISPATCHED and state.responders == ("unit-vs",)


def test_a_lend_that_names_no_source_is_refused_when_the_owner_knows_one() -> None:
    cfg = Config(partitions={"north": NORTH, "south": SOUTH})
    north, south, n1 = engines(cfg)
    south.handle_event(unit(GURO, "Guro-gu"), DAY, source="cam-1")
    north.handle_event(unit(NEAR, "Yeongdeungpo-gu"), DAY)  # unattributed: no owner noted
    lend = lend_of(north, n1)
    assert lend.disposition is None
    refused = reply_of(south.handle_command(lend, DAY + 11, Role.OPERATOR))
    assert not refused.ok
    assert refused.reason == (
        "responder unit-vs is reported here by cam-1; the request names no source:"
        " the unit you ranked may not be ours"
    )


def test_a_unit_the_configuration_owns_is_lent_by_the_shared_configuration() -> None:
    owners = OwnersConfig(responders={"cam-1": ["unit-*"]})
    cfg = Config(partitions={"north": NORTH, "south": SOUTH}, owners=owners)
    north, south, n1 = engines(cfg)
    south.handle_event(unit(NEAR, "Yeongdeungpo-gu"), DAY, source="cam-1")
    north.handle_event(unit(NEAR, "Yeongdeungpo-gu"), DAY, source="cam-1")
    lend = lend_of(north, n1)
    assert lend.disposition is None  # no first-come owner in either engine
    assert reply_of(south.handle_command(lend, DAY + 11, Role.OPERATOR)).ok
