"""What `ansim simulate` reads for its crew and publishes of it (no broker needed)."""

from __future__ import annotations

import msgspec

from console.config import SimulateConfig
from console.engine.settings import DispatchConfig
from console.sim import crew_wire
from console.sim.city import build_city
from console.sim.crew import Crew, Step
from protocols import codec, topics
from protocols.schemas import (
    Action,
    Command,
    IncidentKind,
    IncidentState,
    IncidentStatus,
    Reply,
    ResponderReport,
    ResponderState,
    ResponderStatus,
    UnitKind,
)

T0 = 1_800_000_000.0
CITY = build_city(7, 50, 6, 0)


def crew(**settings: object) -> Crew:
    s = msgspec.structs.replace(SimulateConfig(), **settings)
    return Crew(CITY, s, DispatchConfig(), session="s")


def test_it_listens_only_when_someone_reacts() -> None:
    assert crew_wire.subscriptions(crew(desk=0, units=False)) == []
    subs = [topic for topic, _ in crew_wire.subscriptions(crew(desk=2))]
    assert subs == [
        topics.STATE_INCIDENTS,
        "ansim/v1/state/responder/+",
        topics.reply("desk-1"),
        topics.reply("desk-2"),
    ]


def test_the_inbox_feeds_the_picture_and_skips_what_it_cannot_read() -> None:
    c = crew()
    inbox = crew_wire.CrewInbox(c)
    inc = IncidentState(
        id="I-000001",
        kind=IncidentKind.SOS,
        priority=1,
        status=IncidentStatus.NEW,
        lat=37.5,
        lon=127.0,
        district="Jung-gu",
        place="",
        source="phone-1",
        title="SOS",
        created=T0,
        updated=T0,
    )
    unit = CITY.responders[0]
    state = ResponderState(
        id=unit.id,
        kind=unit.kind,
        status=ResponderStatus.DISPATCHED,
        lat=unit.lat,
        lon=unit.lon,
        last_seen=T0,
        status_since=T0,
        incident_id="I-000001",
    )
    assert inbox.handle(topics.state_incident("I-000001"), codec.encode(inc), T0)
    assert inbox.handle(topics.state_responder(unit.id), codec.encode(state), T0)
    assert "I-000001" in c.picture.incidents and c.units is not None and unit.id in c.units.trips
    assert inbox.handle(topics.state_incident("I-000001"), b"", T0)  # cleared: closed
    assert c.picture.incidents == {}
    assert inbox.handle(topics.reply("desk-1"), b"\xc1junk", T0)
    assert inbox.unreadable == 1
    reply = Reply(cmd_id="x", operator="desk-1", ok=True, ts=T0)
    assert inbox.handle(topics.reply("desk-1"), codec.encode(reply), T0)
    assert not inbox.handle(topics.receipt("sim", "a-1"), b"", T0)  # the simulator's own


def test_outgoing_commands_go_to_their_operators_topic_and_reports_to_the_source() -> None:
    command = Command(
        cmd_id="desk-2-s-1", operator="desk-2", action=Action.ACK, ts=T0, incident_id="I-1"
    )
    report = ResponderReport(
        responder_id="unit-police-01",
        kind=UnitKind.POLICE,
        status=ResponderStatus.EN_ROUTE,
        lat=37.5,
        lon=127.0,
        ts=T0,
    )
    out = crew_wire.outgoing(Step(commands=[command], reports=[report]), "sim")
    assert out == [
        (topics.raw("sim", topics.RAW_RESPONDER), codec.encode(report)),
        (topics.cmd("desk-2"), codec.encode(command)),
    ]
