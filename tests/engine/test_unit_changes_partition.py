"""A unit whose reports move into another partition's district changes hands (F9).

The north's engine (the Han split of ``tests.partitioned``) owns a unit reported into
Jongno-gu; the same unit then reports into Gangnam-gu, a south district the north reads
across the border. It is the south's now: the north asks for its old state topic to be
cleared (``ResponderGone``), stops publishing it, and recommends it as the south's
(``Recommendation.home``), so a dispatch asks the south for it. Reported into a north
district again, it is the north's again, under its new home.
"""

from __future__ import annotations

import msgspec

from console.config import Config
from console.engine.effects import (
    AskPartition,
    Effect,
    IncidentChanged,
    ResponderChanged,
    ResponderGone,
)
from console.engine.engine import Engine
from protocols.schemas import Action, ResponderStatus
from tests.engine.test_engine_support import DAY, cmd, do, reply_of, responder, sos
from tests.partitioned import GANGNAM, NORTH, SOUTH

JUNG = (37.5601, 126.9960)  # Jung-gu, the north's
NEAR_JUNG = (JUNG[0] + 0.002, JUNG[1])  # 220 m north: still Jung-gu
FIRST = "north-000001"


def make(partitioned: bool = True) -> Engine:
    cfg = Config(partitions={"north": NORTH, "south": SOUTH}) if partitioned else Config()
    return Engine(cfg.engine_settings("north" if partitioned else None), cfg.city.district_map())


def report(
    e: Engine,
    district: str | None,
    at: tuple[float, float] = NEAR_JUNG,
    now: float = DAY,
    status: ResponderStatus = ResponderStatus.AVAILABLE,
) -> list[Effect]:
    """unit-vm's report, published into ``district`` (its topic's), read by the north."""
    ev = responder("unit-vm", status, lat=at[0], lon=at[1], ts=now)
    ev = msgspec.structs.replace(ev, district=district)
    return e.handle_event(ev, now, source="radio")


def recommended(e: Engine, now: float) -> list[tuple[str, str | None]]:
    """What the SOS incident is published with (the read side records it as published)."""
    return [(r.responder_id, r.home) for r in e.incident_state(FIRST, now).recommended]


def sos_in_jung(e: Engine) -> None:
    e.handle_event(sos("a1", lat=JUNG[0], lon=JUNG[1]), DAY)
    assert e.incident_state(FIRST, DAY).district == "Jung-gu"


def test_a_unit_reported_into_another_partitions_district_is_cleared_here() -> None:
    e = make()
    assert ResponderChanged("unit-vm") in report(e, "Jongno-gu")
    sos_in_jung(e)
    assert recommended(e, DAY) == [("unit-vm", None)]
    assert e.responder_home("unit-vm") == "Jongno-gu"
    effects = report(e, "Gangnam-gu", now=DAY + 5)
    assert ResponderGone("unit-vm", "Jongno-gu") in effects
    assert not any(isinstance(x, ResponderChanged) for x in effects)
    # The list showing it as the north's own goes out again, marked with its new owner.
    assert IncidentChanged(FIRST) in effects
    assert e.responder_ids() == []
    assert e.st.responders["unit-vm"].home == "Gangnam-gu"
    assert recommended(e, DAY + 5) == [("unit-vm", "Gangnam-gu")]
    # Its next report (the south's unit now) changes nothing of the north's state topics.
    later = report(e, "Gangnam-gu", now=DAY + 10)
    assert not any(isinstance(x, ResponderChanged | ResponderGone) for x in later)


def test_a_dispatch_of_it_then_asks_its_new_owner() -> None:
    e = make()
    report(e, "Jongno-gu")
    sos_in_jung(e)
    report(e, "Gangnam-gu", now=DAY + 5)
    effects = e.handle_command(cmd(Action.DISPATCH, FIRST, responder_id="unit-vm"), DAY + 6)
    assert reply_of(effects).ok, reply_of(effects).reason
    (ask,) = [x for x in effects if isinstance(x, AskPartition)]
    assert (ask.command.responder_id, ask.district) == ("unit-vm", "Gangnam-gu")  # the south
    assert e.st.responders["unit-vm"].incident_id is None  # the south decides


def test_reported_into_an_own_district_again_it_is_own_again_under_that_home() -> None:
    e = make()
    report(e, "Jongno-gu")
    sos_in_jung(e)
    report(e, "Gangnam-gu", now=DAY + 5)
    recommended(e, DAY + 5)
    effects = report(e, "Jung-gu", now=DAY + 10)
    assert ResponderChanged("unit-vm") in effects
    assert not any(isinstance(x, ResponderGone) for x in effects)
    assert IncidentChanged(FIRST) in effects
    assert e.responder_ids() == ["unit-vm"]
    assert e.responder_home("unit-vm") == "Jung-gu"
    assert recommended(e, DAY + 10) == [("unit-vm", None)]


def test_an_assigned_unit_that_leaves_says_so_on_its_incident() -> None:
    e = make()
    report(e, "Jongno-gu")
    sos_in_jung(e)
    assert do(e, Action.DISPATCH, FIRST, now=DAY + 1, responder_id="unit-vm").ok
    effects = report(e, "Gangnam-gu", now=DAY + 5, status=ResponderStatus.EN_ROUTE)
    assert ResponderGone("unit-vm", "Jongno-gu") in effects
    assert IncidentChanged(FIRST) in effects
    state = e.incident_state(FIRST, DAY + 5)
    assert state.responders == ("unit-vm",)  # its owner, now the south, decides for it
    assert [h.action for h in state.history][-1] == "unit transferred"


def test_a_unit_first_placed_by_its_position_is_cleared_under_that_district() -> None:
    """Without a district (OwnTracks), its home is its position's district."""
    e = make()
    report(e, None)
    assert e.responder_home("unit-vm") == "Jung-gu"
    assert ResponderGone("unit-vm", "Jung-gu") in report(e, "Gangnam-gu", GANGNAM, DAY + 600)


def test_a_neighbours_unit_first_seen_across_is_never_cleared_here() -> None:
    e = make()
    effects = report(e, "Gangnam-gu", GANGNAM)
    assert not any(isinstance(x, ResponderChanged | ResponderGone) for x in effects)
    assert e.st.responders["unit-vm"].home == "Gangnam-gu"


def test_a_restored_engine_has_the_unit_where_it_went() -> None:
    e = make()
    report(e, "Jongno-gu")
    report(e, "Gangnam-gu", now=DAY + 5)
    cfg = Config(partitions={"north": NORTH, "south": SOUTH})
    again = Engine.restore(cfg.engine_settings("north"), cfg.city.district_map(), e.snapshot())
    assert again.snapshot() == e.snapshot()
    assert again.responder_ids() == [] and again.st.responders["unit-vm"].home == "Gangnam-gu"


def test_unpartitioned_a_unit_keeps_its_home_whatever_it_is_reported_into() -> None:
    e = make(partitioned=False)
    report(e, "Jongno-gu")
    effects = report(e, "Gangnam-gu", now=DAY + 5)
    assert ResponderChanged("unit-vm") in effects
    assert not any(isinstance(x, ResponderGone) for x in effects)
    assert e.responder_home("unit-vm") == "Jongno-gu"
