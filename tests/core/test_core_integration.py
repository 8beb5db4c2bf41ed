"""`ansim core` against a real Mosquitto: state, commands from two operators, receipts, SIGKILL."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from console import config as config_module
from console.core.rebuild import rebuild
from console.journal.store import RecordKind, open_journal
from protocols import codec, topics
from protocols.mqtt import MqttSettings, Transport
from protocols.schemas import (
    Action,
    CameraHealth,
    CameraHealthStatus,
    Command,
    IncidentState,
    IncidentStatus,
    Receipt,
    Reply,
    ResponderReport,
    ResponderState,
    ResponderStatus,
    SosAlarm,
    SosTrigger,
    Summary,
    UnitKind,
)
from tests.processes import AnsimProcess, core_ready, retained_state, until, write_config
from tests.state_lookup import find, must

SOURCE = "tst"
CITY_HALL = (37.5663, 126.9779)


def sos(n: int, lat: float = CITY_HALL[0], lon: float = CITY_HALL[1]) -> SosAlarm:
    return SosAlarm(
        alarm_id=f"a{n}",
        source=SOURCE,
        device_id=f"phone-{n}",
        name=f"Person {n}",
        lat=lat,
        lon=lon,
        accuracy_m=10,
        trigger=SosTrigger.BUTTON,
        ts=time.time(),
    )


class Peer:
    """A test client: a source that collects receipts and two operators that collect replies."""

    def __init__(self, settings: MqttSettings) -> None:
        self.transport = Transport(
            settings,
            f"peer-{time.monotonic_ns()}",
            subscriptions=[
                (topics.receipts_for(SOURCE), 1),
                (topics.reply("op1"), 1),
                (topics.reply("op2"), 1),
            ],
        )
        self.receipts: dict[str, Receipt] = {}
        self.replies: dict[str, Reply] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Peer:
        await self.transport.__aenter__()
        await self.transport.wait_connected(10)
        self._task = asyncio.create_task(self._listen())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
        await self.transport.__aexit__(None, None, None)

    async def _listen(self) -> None:
        async for msg in self.transport.messages():
            decoded = codec.decode_any(msg.payload)
            if isinstance(decoded, Receipt):
                self.receipts[decoded.alarm_id] = decoded
            elif isinstance(decoded, Reply):
                self.replies[decoded.cmd_id] = decoded

    async def send(self, message: Any, topic: str) -> None:
        await self.transport.publish(topic, codec.encode(message))

    async def command(self, operator: str, cmd_id: str, action: Action, **fields: Any) -> Reply:
        cmd = Command(cmd_id=cmd_id, operator=operator, action=action, ts=time.time(), **fields)
        await self.send(cmd, topics.cmd(operator))
        await until(lambda: cmd_id in self.replies, what=f"reply to {cmd_id}")
        return self.replies[cmd_id]


@pytest.fixture
def core_config(tmp_path: Path, broker: Any) -> Path:
    return write_config(tmp_path, broker.port, roles={"op1": "operator", "op2": "operator"})


async def test_core_applies_commands_from_two_operators_and_publishes_retained_state(
    core_config: Path, mqtt_settings: MqttSettings
) -> None:
    core = AnsimProcess(core_config, "core").start()
    try:
        await core_ready(mqtt_settings)
        async with Peer(mqtt_settings) as peer:
            for n, (dlat, kind) in enumerate([(0.001, UnitKind.POLICE), (0.02, UnitKind.SCOUT)]):
                report = ResponderReport(
                    responder_id=f"r{n}",
                    kind=kind,
                    status=ResponderStatus.AVAILABLE,
                    lat=CITY_HALL[0] + dlat,
                    lon=CITY_HALL[1],
                    ts=time.time(),
                )
                await peer.send(report, topics.raw(SOURCE, topics.RAW_RESPONDER))
            camera = CameraHealth(
                camera_id="cam-1",
                status=CameraHealthStatus.ONLINE,
                ts=time.time(),
                name="City Hall plaza",
                district="Jung-gu",
                lat=CITY_HALL[0],
                lon=CITY_HALL[1] + 0.0005,
            )
            await peer.send(camera, topics.raw(SOURCE, topics.RAW_CAMERA))
            await peer.send(b"\x93junk", topics.raw(SOURCE, topics.RAW_SOS))  # a dead letter
            await peer.send(sos(1), topics.raw(SOURCE, topics.RAW_SOS))
            await peer.send(sos(2, lat=CITY_HALL[0] + 0.01), topics.raw(SOURCE, topics.RAW_SOS))
            await until(lambda: {"a1", "a2"} <= peer.receipts.keys(), what="receipts")
            first = peer.receipts["a1"].incident_id
            second = peer.receipts["a2"].incident_id
            assert first != second

            assert (await peer.command("op1", "c1", Action.ACK, incident_id=first)).ok
            assert (await peer.command("op2", "c2", Action.ACK, incident_id=second)).ok
            won = await peer.command(
                "op1", "c3", Action.DISPATCH, incident_id=first, responder_id="r0"
            )
            lost = await peer.command(
                "op2", "c4", Action.DISPATCH, incident_id=second, responder_id="r0"
            )
            assert won.ok, won.reason
            assert not lost.ok
            assert "op1" in lost.reason or first in lost.reason, lost.reason
            not_yours = await peer.command(
                "op2", "c5", Action.RESOLVE, incident_id=first, disposition="x"
            )
            assert not not_yours.ok and "op1" in not_yours.reason, not_yours.reason

        def settled(state: dict[str, Any]) -> bool:
            incident = find(state, "incident", first)
            summary = state.get(topics.STATE_SUMMARY)
            return (
                isinstance(incident, IncidentState)
                and incident.status is IncidentStatus.DISPATCHED
                and isinstance(summary, Summary)
                and summary.rejected_total >= 1
            )

        state: dict[str, Any] = {}
        deadline = time.monotonic() + 10
        while not settled(state) and time.monotonic() < deadline:
            state = await retained_state(mqtt_settings)
        incident = must(state, "incident", first)
        assert isinstance(incident, IncidentState)
        assert incident.responders == ("r0",)
        assert incident.owner == "op1"
        assert [h.actor for h in incident.history if h.actor != "core"][:2] == ["op1", "op1"]
        responder = must(state, "responder", "r0")
        assert isinstance(responder, ResponderState)
        assert responder.status is ResponderStatus.DISPATCHED
        assert responder.incident_id == first
        other = must(state, "incident", second)
        assert isinstance(other, IncidentState) and other.status is IncidentStatus.ACKNOWLEDGED
        summary = state[topics.STATE_SUMMARY]
        assert isinstance(summary, Summary) and summary.rejected_total >= 1
    finally:
        assert core.stop() == 0, core.log()


@pytest.mark.slow
async def test_sigkill_mid_burst_loses_no_sos_and_folds_resends(
    core_config: Path, mqtt_settings: MqttSettings
) -> None:
    total = 300
    alarms = {f"a{n}": sos(n, lat=37.50 + n * 0.0005) for n in range(total)}
    core = AnsimProcess(core_config, "core").start()
    try:
        await core_ready(mqtt_settings)
        async with Peer(mqtt_settings) as peer:
            sent = 0
            killed = False
            # A source that speaks our protocol: send, then resend until the receipt is back.
            deadline = time.monotonic() + 60
            while len(peer.receipts) < total:
                assert time.monotonic() < deadline, f"{len(peer.receipts)}/{total} receipts"
                if sent < total:
                    for alarm in list(alarms.values())[sent : sent + 50]:
                        await peer.send(alarm, topics.raw(SOURCE, topics.RAW_SOS))
                    sent += 50
                if not killed and len(peer.receipts) >= total // 3:
                    core.kill()
                    killed = True
                    core = AnsimProcess(core_config, "core").start()
                await asyncio.sleep(0.3)
                for alarm_id, alarm in alarms.items():
                    if alarm_id not in peer.receipts and int(alarm_id[1:]) < sent:
                        await peer.send(alarm, topics.raw(SOURCE, topics.RAW_SOS))
            assert killed
    finally:
        assert core.stop() == 0, core.log()

    cfg = config_module.load(core_config, environ={})
    journal = open_journal(cfg.journal)
    try:
        keys = Counter(
            r.key for r in journal.records(kinds=[RecordKind.EVENT]) if r.key.startswith("sos:")
        )
        assert len(keys) == total
        assert max(keys.values()) == 1, "an SOS was journaled twice"
        engine, _ = rebuild(cfg, journal)
        sources = {engine.incident_state(i, time.time()).source for i in engine.open_incident_ids()}
        assert {f"phone-{n}" for n in range(total)} <= sources
    finally:
        journal.close()


async def test_core_with_the_simulator_and_two_operators(
    core_config: Path, mqtt_settings: MqttSettings
) -> None:
    """The training city drives the core; two operators work its incidents; a newcomer sees it all."""
    core = AnsimProcess(core_config, "core").start()
    sim = None
    try:
        await core_ready(mqtt_settings)
        sim = AnsimProcess(
            core_config, "simulate", "--duration", "4", "--rate", "40", "--scenario", "storm"
        ).start()

        def sos_incidents(state: dict[str, Any]) -> list[IncidentState]:
            found = [v for v in state.values() if isinstance(v, IncidentState)]
            return sorted((i for i in found if i.kind == "sos"), key=lambda i: i.id)

        state: dict[str, Any] = {}
        deadline = time.monotonic() + 20
        while len(sos_incidents(state)) < 2:
            assert time.monotonic() < deadline, "the simulator raised fewer than 2 SOS"
            state = await retained_state(mqtt_settings)
        first, second = sos_incidents(state)[:2]
        async with Peer(mqtt_settings) as peer:
            assert (await peer.command("op1", "s1", Action.ACK, incident_id=first.id)).ok
            assert (await peer.command("op2", "s2", Action.CLAIM, incident_id=second.id)).ok
            taken = await peer.command("op2", "s3", Action.ACK, incident_id=first.id)
            assert not taken.ok and "op1" in taken.reason, taken.reason
            done = await peer.command(
                "op2", "s4", Action.FALSE_ALARM, incident_id=second.id, disposition="test"
            )
            assert done.ok, done.reason
        assert sim.process is not None
        sim.process.wait(30)
        assert sim.process.returncode == 0, sim.log()

        def settled(seen: dict[str, Any]) -> bool:
            mine = find(seen, "incident", first.id)
            return (
                isinstance(mine, IncidentState)
                and mine.status is IncidentStatus.ACKNOWLEDGED
                and find(seen, "incident", second.id) is None
            )

        deadline = time.monotonic() + 10
        state = await retained_state(mqtt_settings)
        while not settled(state):
            assert time.monotonic() < deadline, "the newcomer never saw the operators' work"
            state = await retained_state(mqtt_settings)
        assert must(state, "incident", first.id).owner == "op1"
        summary = state[topics.STATE_SUMMARY]
        assert isinstance(summary, Summary) and summary.events_total > 0
        assert "op1" not in summary.operators  # commands alone do not make a presence
    finally:
        if sim is not None:
            sim.stop()
        assert core.stop() == 0, core.log()


async def test_a_dying_loop_stops_the_core_loudly(tmp_path: Path) -> None:
    """A bug in one loop must end the core (exit 1 for its supervisor), not leave a zombie."""
    from console.core.service import Core

    journal = open_journal(config_module.JournalConfig(path=str(tmp_path / "j.db")))
    core = Core(config_module.Config(), journal)

    async def broken() -> None:
        raise RuntimeError("a bug")

    task = asyncio.create_task(broken(), name="publish")
    task.add_done_callback(core._task_ended)
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)
    assert core.failed == "publish"
    assert core._stopping.is_set()
    journal.close()


@pytest.mark.parametrize("protocol", [4, 5])
def test_every_core_subscription_is_its_own(tmp_path: Path, protocol: int) -> None:
    """Raw events, commands and presence all reach the one core: nothing is shared."""
    from console.core.service import Core

    cfg = config_module.Config(broker=config_module.BrokerConfig(protocol=protocol))
    journal = open_journal(config_module.JournalConfig(path=str(tmp_path / "j.db")))
    try:
        filters = [f for f, _ in Core(cfg, journal).make_transport().subscriptions]
    finally:
        journal.close()
    assert filters[:5] == [
        topics.RAW_ALL,
        topics.RAW_ALL_DISTRICTS,
        topics.CMD_ALL,
        topics.cmds_for(topics.DEFAULT_PARTITION),
        topics.PRESENCE_ALL,
    ]
    assert not any(f.startswith("$share/") for f in filters)
