"""The crew for real: Mosquitto, `ansim core` and `ansim simulate` as processes.

A colleague (desk-1) takes an SOS, dispatches a simulated unit, the unit drives there
and reports on scene, and the colleague resolves it: every step a real command or a
real report through the broker, checked and journaled by the core. Times are shrunk by
the configuration (a unit at 20,000 km/h, a colleague who thinks for 0.4 s).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from protocols import codec, topics
from protocols.mqtt import MqttSettings, Transport
from protocols.schemas import IncidentState, Reply
from tests.brokers import MosquittoBroker
from tests.processes import AnsimProcess, core_ready, until, write_config

FAST = 20_000.0  # km/h: any unit anywhere in the city within a couple of seconds


class Watch:
    """Every incident state the core publishes, and the replies to desk-1."""

    def __init__(self, settings: MqttSettings) -> None:
        self.transport = Transport(
            settings,
            f"watch-{time.monotonic_ns()}",
            subscriptions=[(topics.STATE_INCIDENTS, 1), (topics.reply("desk-1"), 1)],
        )
        self.on_scene_by_unit: set[str] = set()  # incidents a unit reported on scene at
        self.resolved_by_desk: set[str] = set()
        self.refused: list[str] = []

    async def listen(self) -> None:
        async for msg in self.transport.messages():
            if not msg.payload:
                continue
            if msg.topic.startswith(topics.STATE_INCIDENT_PREFIX):
                state: IncidentState = codec.decode(
                    msg.payload, IncidentState, max_bytes=codec.MAX_STATE_PAYLOAD
                )
                if any(
                    h.action == "on-scene" and h.actor.startswith("unit-") for h in state.history
                ):
                    self.on_scene_by_unit.add(state.id)
            elif msg.topic == topics.reply("desk-1"):
                reply: Reply = codec.decode(msg.payload, Reply)
                if not reply.ok:
                    self.refused.append(reply.reason)
                elif reply.reason.startswith("resolved") and reply.incident_id:
                    self.resolved_by_desk.add(reply.incident_id)

    def done(self) -> bool:
        return bool(self.on_scene_by_unit & self.resolved_by_desk)


async def test_a_colleague_dispatches_a_simulated_unit_it_arrives_and_is_resolved(
    tmp_path: Path, mosquitto: MosquittoBroker, mqtt_settings: MqttSettings
) -> None:
    config = write_config(
        tmp_path,
        mosquitto.port,
        simulate={
            "desk": 1,
            "units": True,
            "desk_pick_s": 1.0,
            "desk_pick_p1_s": 0.5,
            "desk_think_s": 0.4,
            "desk_on_scene_s": 1.0,
            "desk_max_each": 3,
            "units_turnout_s": 0.2,
            "units_report_s": 0.3,
        },
        dispatch={"speed_police_kmh": FAST, "speed_scout_kmh": FAST, "speed_guard_kmh": FAST},
        plausibility={
            "max_police_kmh": FAST * 3,
            "max_scout_kmh": FAST * 3,
            "max_guard_kmh": FAST * 3,
        },
    )
    core = AnsimProcess(config, "core").start()
    sim: AnsimProcess | None = None
    watch = Watch(mqtt_settings)
    try:
        await core_ready(mqtt_settings)
        async with watch.transport:
            await watch.transport.wait_connected(10)
            listening = asyncio.create_task(watch.listen())
            sim = AnsimProcess(
                config, "simulate", "--scenario", "storm", "--rate", "2", "--duration", "60",
                "--quiet",
            ).start()  # fmt: skip
            try:
                await until(watch.done, 45, "a unit on scene and desk-1 resolving its incident")
            finally:
                listening.cancel()
        assert sim.stop() == 0, sim.log()
        assert "Traceback" not in sim.log(), sim.log()
    finally:
        if sim is not None:
            sim.stop()
        assert core.stop() == 0, core.log()
