"""Two partitions on real processes: a Mosquitto, a core for the north of the Han river
and one for the south, each with its own journal (docs/partitions.md)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from console import config as config_module
from console.journal.store import RecordKind, open_journal
from protocols import topics
from protocols.mqtt import MqttSettings
from protocols.schemas import Action
from tests.fault_helpers import Source, poll
from tests.partitioned import GANGNAM, MAPO, alarm, both_ready, cores, incidents
from tests.processes import retained_state

pytestmark = pytest.mark.slow
__all__ = ["cores"]  # the fixture, used by name


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
