"""What `ansim simulate` reads for its crew and publishes of it (no broker needed)."""

from __future__ import annotations

import msgspec

from console.config import SimulateConfig
from console.engine.settings import DispatchConfig
from console.sim import crew_wire
from console.sim.city import build_city
from console.sim.crew import Crew, Step
from console.sim.picture import Picture
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
        "ansim/v1/state/incident/+/+",
        "ansim/v1/state/responder/+/+",
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
    assert inbox.handle(topics.state_incident("Jung-gu", "I-000001"), codec.encode(inc), T0)
    assert inbox.handle(topics.state_responder(unit.district, unit.id), codec.encode(state), T0)
    assert "I-000001" in c.picture.incidents and c.units is not None and unit.id in c.units.trips
    assert inbox.handle(topics.state_incident("Jung-gu", "I-000001"), b"", T0)  # cleared: closed
    assert c.picture.incidents == {}
    assert inbox.handle(topics.reply("desk-1"), b"\xc1junk", T0)
    assert inbox.unreadable == 1
    reply = Reply(cmd_id="x", operator="desk-1", ok=True, ts=T0)
    assert inbox.handle(topics.reply("desk-1"), codec.encode(reply), T0)
    assert not inbox.handle(topics.receipt("sim", "a-1"), b"", T0)  # the simulator's own


def incident(iid: str, partition: str) -> IncidentState:
    return IncidentState(
        id=iid,
        kind=IncidentKind.SOS,
        priority=1,
        status=IncidentStatus.NEW,
        lat=37.5,
        lon=127.0,
        district="Mapo-gu",
        place="",
        source="phone-1",
        title="SOS",
        created=T0,
        updated=T0,
        home="Mapo-gu",
        partition=partition,
    )


def test_outgoing_commands_go_to_the_incidents_partition_and_reports_to_the_home() -> None:
    def ack(operator: str, incident_id: str) -> Command:
        return Command(
            cmd_id=f"{operator}-s-1",
            operator=operator,
            action=Action.ACK,
            ts=T0,
            incident_id=incident_id,
        )

    report = ResponderReport(
        responder_id="unit-police-01",
        kind=UnitKind.POLICE,
        status=ResponderStatus.EN_ROUTE,
        lat=37.5,
        lon=127.0,
        ts=T0,
        district="Mapo-gu",
    )
    picture = Picture()
    picture.incident(incident("north-000001", "north"))
    picture.incident(incident("I-1", ""))
    commands = [ack("desk-1", "north-000001"), ack("desk-2", "I-1"), ack("desk-3", "gone-1")]
    out = crew_wire.outgoing(Step(commands=commands, reports=[report]), "sim", picture)
    assert out == [
        ("ansim/v1/raw/sim/responder/Mapo-gu", codec.encode(report)),
        ("ansim/v1/cmd/desk-1/north", codec.encode(commands[0])),
        # A core that says no partition, or an incident the picture no longer holds:
        # the command names none (the default partition's core takes it).
        ("ansim/v1/cmd/desk-2", codec.encode(commands[1])),
        ("ansim/v1/cmd/desk-3", codec.encode(commands[2])),
    ]


def test_the_units_on_a_job_report_into_their_home_district() -> None:
    c = crew()
    unit = CITY.responders[0]
    picture_incident = incident("south-000001", "south")
    c.incident(msgspec.structs.replace(picture_incident, lat=unit.lat + 0.01, lon=unit.lon))
    state = ResponderState(
        id=unit.id,
        kind=unit.kind,
        status=ResponderStatus.DISPATCHED,
        lat=unit.lat,
        lon=unit.lon,
        last_seen=T0,
        status_since=T0,
        incident_id="south-000001",
        home=unit.district,
    )
    c.responder(state, T0)
    step = c.step(T0 + 3600.0)  # long after its turnout: it is on its way
    assert [r.district for r in step.reports] == [unit.district]
    [(topic, _)] = crew_wire.outgoing(Step(reports=step.reports), "sim", c.picture)
    assert topic == topics.raw("sim", topics.RAW_RESPONDER, unit.district)
