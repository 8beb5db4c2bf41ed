"""`ansim simulate` drives a city split in two partitions: Mosquitto, two cores, processes.

Seoul's 25 districts north and south of the Han river (docs/deploy.md, "Two hosts, 25
districts"), a core for each (`ansim core --partition`), and one simulator with no
partition option. Its cameras and units publish into their districts and its SOS into
none; each core takes its own. Incidents open in both partitions, each under its home
district with its partition's id, and a simulated colleague (desk-1) resolves incidents
of both: its commands reach the core of the incident's partition.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.config import load
from console.sim.seoul import HAN_NORTH, HAN_SOUTH
from protocols import codec, topics
from protocols.mqtt import MqttSettings, Transport
from protocols.schemas import IncidentState, Reply, ResponderState
from tests.brokers import MosquittoBroker
from tests.partitioned import owners
from tests.processes import AnsimProcess, until, write_config

FAST = 20_000.0  # km/h: any unit anywhere in its partition within a couple of seconds
NORTH = list(HAN_NORTH)
SOUTH = list(HAN_SOUTH)
PARTITIONS = {"north": NORTH, "south": SOUTH}
OWNER = {district: name for name, districts in PARTITIONS.items() for district in districts}


class Watch:
    """Every incident and unit state, by topic, the summaries and desk-1's replies."""

    def __init__(self, settings: MqttSettings) -> None:
        self.transport = Transport(
            settings,
            f"watch-{time.monotonic_ns()}",
            subscriptions=[
                (topics.STATE_INCIDENTS, 1),
                (topics.STATE_RESPONDERS, 1),
                (topics.STATE_SUMMARIES, 1),
                (topics.reply("desk-1"), 1),
            ],
        )
        self.incidents: dict[str, tuple[str, IncidentState]] = {}  # id: (topic district, state)
        self.units: dict[str, tuple[str, ResponderState]] = {}
        self.live_summaries: set[str] = set()  # partitions whose core has published (live)
        self.resolved_by_desk: set[str] = set()
        self.problems: list[str] = []

    async def listen(self) -> None:
        async for msg in self.transport.messages():
            if not msg.payload:
                continue
            district = topics.state_district(msg.topic)
            if msg.topic.startswith(topics.STATE_INCIDENT_PREFIX) and district is not None:
                inc: IncidentState = codec.decode(
                    msg.payload, IncidentState, max_bytes=codec.MAX_STATE_PAYLOAD
                )
                self.incidents[inc.id] = (district, inc)
            elif district is not None:
                self.units[topics.last_level(msg.topic)] = (
                    district,
                    codec.decode(msg.payload, ResponderState),
                )
            elif msg.topic.startswith(topics.STATE_SUMMARIES.removesuffix("+")):
                if not msg.retain:
                    self.live_summaries.add(topics.last_level(msg.topic))
            elif msg.topic == topics.reply("desk-1"):
                reply: Reply = codec.decode(msg.payload, Reply)
                if not reply.ok:
                    self.problems.append(reply.reason)
                elif reply.reason.startswith("resolved") and reply.incident_id:
                    self.resolved_by_desk.add(reply.incident_id)

    def resolved_in(self, partition: str) -> bool:
        return any(i.startswith(f"{partition}-") for i in self.resolved_by_desk)


@pytest.fixture
def city(tmp_path: Path, mosquitto: MosquittoBroker) -> Iterator[Path]:
    config = write_config(
        tmp_path,
        mosquitto.port,
        journal={"path": str(tmp_path / "journal-{partition}.db")},
        partitions=PARTITIONS,
        simulate={
            "cameras": 400,
            "responders": 40,
            "desk": 1,
            "units": True,
            "desk_pick_s": 0.5,
            "desk_pick_p1_s": 0.3,
            "desk_think_s": 0.3,
            "desk_on_scene_s": 0.5,
            "desk_max_each": 6,
            "units_turnout_s": 0.2,
            "units_report_s": 0.3,
        },
        dispatch={"speed_police_kmh": FAST, "speed_scout_kmh": FAST, "speed_guard_kmh": FAST},
        plausibility={
            "max_police_kmh": FAST * 3,
            "max_scout_kmh": FAST * 3,
            "max_guard_kmh": FAST * 3,
        },
        roles={"desk-1": "supervisor"},
        # The simulator's ids, named: first come is refused with several partitions.
        **owners(cameras={"sim": ["cam-*"]}, responders={"sim": ["unit-*"]}),
    )
    assert load(config).partition_map().names == ("north", "south")  # the file says so
    yield config


async def test_one_simulator_drives_two_partitions(city: Path, mqtt_settings: MqttSettings) -> None:
    cores = [AnsimProcess(city, "core", "--partition", name) for name in PARTITIONS]
    for core in cores:
        core.log_path = city.parent / f"core-{core.args[-1]}.log"
        core.start()
    sim: AnsimProcess | None = None
    watch = Watch(mqtt_settings)
    try:
        async with watch.transport:
            await watch.transport.wait_connected(10)
            listening = asyncio.create_task(watch.listen())
            try:
                await until(
                    lambda: watch.live_summaries >= set(PARTITIONS), 30, "both cores running"
                )
                sim = AnsimProcess(
                    city, "simulate", "--scenario", "storm", "--rate", "4", "--duration", "90",
                    "--quiet",
                ).start()  # fmt: skip
                await until(
                    lambda: all(watch.resolved_in(p) for p in PARTITIONS),
                    60,
                    "desk-1 resolving an incident of each partition",
                )
            finally:
                listening.cancel()
        assert sim.stop() == 0, sim.log()
        assert "Traceback" not in sim.log(), sim.log()
    finally:
        if sim is not None:
            sim.stop()
        for core in cores:
            assert core.stop() == 0, core.log()
            assert "Traceback" not in core.log(), core.log()
    # Each incident under its home district, owned by that district's partition, with
    # that partition's id; each unit under its home district, and in it.
    assert {inc.partition for _, inc in watch.incidents.values()} == set(PARTITIONS)
    for incident_id, (district, inc) in watch.incidents.items():
        assert district == inc.home, (incident_id, district, inc.home)
        assert inc.partition == OWNER[inc.home], (incident_id, inc.home, inc.partition)
        assert incident_id.startswith(f"{inc.partition}-")
    assert watch.units and {OWNER[d] for d, _ in watch.units.values()} == set(PARTITIONS)
    for unit_id, (district, unit) in watch.units.items():
        assert district == unit.home, (unit_id, district, unit.home)
