"""Two partitions on real processes: a Mosquitto, a core for the north of the Han river
and one for the south, each with its own journal (docs/partitions.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from console import config as config_module
from console.journal.store import RecordKind, open_journal
from protocols import topics
from protocols.mqtt import MqttSettings
from protocols.schemas import Action, IncidentState, SosAlarm, SosTrigger, Summary
from tests.brokers import MosquittoBroker
from tests.fault_helpers import Source, poll
from tests.processes import AnsimProcess, retained_state, write_config

pytestmark = pytest.mark.slow

NORTH = [
    "Jongno-gu", "Jung-gu", "Yongsan-gu", "Seongdong-gu", "Gwangjin-gu", "Dongdaemun-gu",
    "Jungnang-gu", "Seongbuk-gu", "Gangbuk-gu", "Dobong-gu", "Nowon-gu", "Eunpyeong-gu",
    "Seodaemun-gu", "Mapo-gu",
]  # fmt: skip
SOUTH = [
    "Yangcheon-gu", "Gangseo-gu", "Guro-gu", "Geumcheon-gu", "Yeongdeungpo-gu", "Dongjak-gu",
    "Gwanak-gu", "Seocho-gu", "Gangnam-gu", "Songpa-gu", "Gangdong-gu",
]  # fmt: skip
MAPO = (37.5594, 126.9085)
GANGNAM = (37.5172, 127.0473)


def partitioned_config(tmp_path: Path, port: int) -> Path:
    return write_config(
        tmp_path,
        port,
        journal={"path": str(tmp_path / "journal-{partition}.db"), "batch_max": 200},
        partitions={"north": NORTH, "south": SOUTH},
        scopes={"op-mapo": ["Mapo-gu"]},
        roles={"op-mapo": "operator", "op-city": "supervisor"},
    )


def alarm(n: int, where: tuple[float, float]) -> SosAlarm:
    return SosAlarm(
        alarm_id=f"a{n}", source="app", device_id=f"phone-{n}", name=f"Person {n}",
        lat=where[0], lon=where[1], accuracy_m=10, trigger=SosTrigger.BUTTON, ts=time.time(),
    )  # fmt: skip


def incidents(state: dict[str, Any]) -> dict[str, tuple[str, IncidentState]]:
    """Incident id -> (its topic, its state), from a retained picture."""
    return {
        s.id: (t, s)
        for t, s in state.items()
        if t.startswith(topics.STATE_INCIDENT_PREFIX) and isinstance(s, IncidentState)
    }


async def summaries(settings: MqttSettings) -> dict[str, Summary]:
    state = await retained_state(settings)
    return {topics.last_level(t): s for t, s in state.items() if isinstance(s, Summary)}


@pytest.fixture
def cores(tmp_path: Path, mosquitto: MosquittoBroker) -> Any:
    cfg = partitioned_config(tmp_path, mosquitto.port)
    north = AnsimProcess(cfg, "core", "--partition", "north")
    north.log_path = tmp_path / "core-north.log"
    south = AnsimProcess(cfg, "core", "--partition", "south")
    south.log_path = tmp_path / "core-south.log"
    north.start()
    south.start()
    try:
        yield cfg, north, south
    finally:
        north.stop()
        south.stop()


async def both_ready(settings: MqttSettings) -> None:
    deadline = time.monotonic() + 30
    while set(await summaries(settings)) != {"north", "south"}:
        assert time.monotonic() < deadline, "both partitions' cores did not publish a summary"


async def test_each_sos_is_journaled_once_by_the_partition_of_its_district(
    cores: Any, mqtt_settings: MqttSettings
) -> None:
    cfg_path, north, south = cores
    await both_ready(mqtt_settings)
    async with Source(mqtt_settings, "app", resend_s=1.0) as app:
        await app.raise_sos(alarm(1, MAPO))
        await app.raise_sos(alarm(2, GANGNAM))
        await poll(lambda: {"a1", "a2"} <= set(app.receipts), 20, "both receipts")
        assert app.receipts["a1"].incident_id == "north-000001"
        assert app.receipts["a2"].incident_id == "south-000001"
    state: dict[str, Any] = {}
    deadline = time.monotonic() + 15
    while len(incidents(state)) < 2:
        assert time.monotonic() < deadline, f"not both incidents: {list(state)}"
        state = await retained_state(mqtt_settings)
    found = incidents(state)
    topic, mapo = found["north-000001"]
    assert topic == topics.state_incident("Mapo-gu", "north-000001")
    assert (mapo.partition, mapo.home) == ("north", "Mapo-gu")
    topic, gangnam = found["south-000001"]
    assert topic == topics.state_incident("Gangnam-gu", "south-000001")
    assert gangnam.partition == "south"
    north.stop()
    south.stop()
    cfg = config_module.load(cfg_path, environ={})
    for name, alarm_id in (("north", "app-a1"), ("south", "app-a2")):
        journal = open_journal(config_module.for_partition(cfg, name).journal)
        try:
            events = [r for r in journal.records(kinds={RecordKind.EVENT})]
            # Each SOS once, in its own partition's journal; the other core kept nothing.
            assert [r.key.split(":")[-1] for r in events if r.key] == [alarm_id.split("-")[-1]]
        finally:
            journal.close()


async def test_an_operator_is_refused_outside_their_districts(
    cores: Any, mqtt_settings: MqttSettings
) -> None:
    await both_ready(mqtt_settings)
    async with Source(mqtt_settings, "app", operators=("op-mapo",), resend_s=1.0) as app:
        await app.raise_sos(alarm(1, MAPO))
        await app.raise_sos(alarm(2, GANGNAM))
        await poll(lambda: {"a1", "a2"} <= set(app.receipts), 20, "both receipts")
        mine = app.receipts["a1"].incident_id
        theirs = app.receipts["a2"].incident_id
        ok = await app.command(
            "op-mapo", "c1", partition="north", action=Action.ACK, incident_id=mine
        )
        assert ok.ok, ok.reason
        refused = await app.command(
            "op-mapo", "c2", partition="south", action=Action.ACK, incident_id=theirs
        )
        assert not refused.ok
        assert refused.reason == (
            f"incident {theirs} is in Gangnam-gu; op-mapo acts in Mapo-gu only"
        )


async def test_failover_of_one_partition_leaves_the_other_untouched(
    cores: Any, mqtt_settings: MqttSettings
) -> None:
    _, north, south = cores
    await both_ready(mqtt_settings)
    async with Source(mqtt_settings, "app", resend_s=0.5) as app:
        north.kill()  # the north's core is gone: its SOS wait in its persistent session
        await app.raise_sos(alarm(1, GANGNAM))
        await app.raise_sos(alarm(2, MAPO))
        await poll(lambda: "a1" in app.receipts, 20, "the south's receipt")
        assert app.receipts["a1"].incident_id == "south-000001"
        assert "a2" not in app.receipts
        north.start()  # a restart (or its standby) takes over and catches up
        await poll(lambda: "a2" in app.receipts, 30, "the north's receipt after its restart")
        assert app.receipts["a2"].incident_id == "north-000001"
    assert south.process is not None and south.process.poll() is None


async def test_the_city_seat_sees_both_partitions_merged(
    cores: Any, mqtt_settings: MqttSettings
) -> None:
    from console.tui.link import state_filters
    from console.tui.state_store import StateStore

    await both_ready(mqtt_settings)
    async with Source(mqtt_settings, "app", resend_s=1.0) as app:
        await app.raise_sos(alarm(1, MAPO))
        await app.raise_sos(alarm(2, GANGNAM))
        await poll(lambda: {"a1", "a2"} <= set(app.receipts), 20, "both receipts")
    assert state_filters(None) == [topics.STATE_ALL]  # a city-wide seat: everything

    def seen(store: StateStore) -> bool:
        both = {"north-000001", "south-000001"} <= set(store.incidents)
        return both and store.summary is not None and store.summary.open_total == 2

    store = StateStore()
    deadline = time.monotonic() + 15
    while not seen(store):
        assert time.monotonic() < deadline, f"the city seat lacks one: {list(store.incidents)}"
        store = StateStore()
        for value in (await retained_state(mqtt_settings)).values():
            store.apply(value)
    assert store.incidents["north-000001"].partition == "north"
    assert store.incidents["south-000001"].partition == "south"
    assert store.summary is not None and store.summary.core_id == "2 cores"
