"""A contested unit on real processes: the north's and the south's operators dispatch the
same south unit at once; its owner, the south's core, decides (docs/partitions.md)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from protocols import codec, topics
from protocols.mqtt import MqttSettings, Transport
from protocols.schemas import (
    Action,
    IncidentState,
    IncidentStatus,
    ResponderReport,
    ResponderStatus,
    UnitKind,
)
from tests.fault_helpers import Source, poll
from tests.partitioned import MAPO, alarm, both_ready, cores, incidents
from tests.processes import retained_state
from tests.state_lookup import must

pytestmark = pytest.mark.slow
__all__ = ["cores"]  # the fixture, used by name

YEONGDEUNGPO = (37.5222, 126.9103)
UNIT = "police-y1"


async def report_unit(
    settings: MqttSettings, status: ResponderStatus = ResponderStatus.AVAILABLE
) -> None:
    """A south police car on the south bank of the Han, published into its district."""
    report = ResponderReport(
        responder_id=UNIT, kind=UnitKind.POLICE, status=status,
        lat=37.528, lon=126.912, ts=time.time(),
    )  # fmt: skip
    async with Transport(settings, f"unit-{time.monotonic_ns()}") as t:
        await t.wait_connected(10)
        topic = topics.raw("tracker", topics.RAW_RESPONDER, "Yeongdeungpo-gu")
        await t.publish(topic, codec.encode(report), qos=1)


async def picture(settings: MqttSettings, done: Any) -> dict[str, IncidentState]:
    deadline = time.monotonic() + 20
    while True:
        found = {i: s for i, (_, s) in incidents(await retained_state(settings)).items()}
        if done(found):
            return found
        assert time.monotonic() < deadline, f"not settled: {found}"


async def test_two_partitions_dispatching_one_unit_get_one_success_and_one_refusal(
    cores: Any, mqtt_settings: MqttSettings
) -> None:
    await both_ready(mqtt_settings)
    await report_unit(mqtt_settings)
    async with Source(mqtt_settings, "app", operators=("op-n", "op-s"), resend_s=1.0) as app:
        await app.raise_sos(alarm(1, MAPO))
        await app.raise_sos(alarm(2, YEONGDEUNGPO))
        await poll(lambda: {"a1", "a2"} <= set(app.receipts), 20, "both receipts")
        north, south = app.receipts["a1"].incident_id, app.receipts["a2"].incident_id
        assert (north, south) == ("north-000001", "south-000001")

        def recommended(found: dict[str, IncidentState]) -> bool:
            return north in found and UNIT in [r.responder_id for r in found[north].recommended]

        await picture(mqtt_settings, recommended)  # the north's core knows the south's unit
        n_reply, s_reply = await asyncio.gather(
            app.command("op-n", "c1", partition="north", action=Action.DISPATCH,
                        incident_id=north, responder_id=UNIT),
            app.command("op-s", "c2", partition="south", action=Action.DISPATCH,
                        incident_id=south, responder_id=UNIT),
        )  # fmt: skip
    assert n_reply.ok, n_reply.reason  # asked: the owner's answer follows
    assert "asked the partition of Yeongdeungpo-gu" in n_reply.reason

    def settled(found: dict[str, IncidentState]) -> bool:
        n = found.get(north)
        return n is not None and (UNIT in n.responders or bool(n.alert))

    found = await picture(mqtt_settings, settled)
    n_state, s_state = found[north], found[south]
    if s_reply.ok:  # the south's operator came first: the north is refused, by name
        assert s_state.responders == (UNIT,) and n_state.responders == ()
        assert n_state.alert == (
            f"{UNIT} not lent: responder {UNIT} is already assigned to {south} (dispatched by op-s)"
        )
    else:  # the north's request came first: the south's own operator is refused, by name
        assert n_state.responders == (UNIT,) and s_state.responders == ()
        assert s_reply.reason == (
            f"responder {UNIT} is already assigned to {north} (dispatched by ansim-core-north)"
        )


async def test_a_lent_units_report_on_scene_moves_the_borrowing_incident(
    cores: Any, mqtt_settings: MqttSettings
) -> None:
    """Its tracker publishes into its home district, which the north reads across the
    border: the north's incident follows it, the south keeps it lent."""
    await both_ready(mqtt_settings)
    await report_unit(mqtt_settings)
    async with Source(mqtt_settings, "app", operators=("op-n",), resend_s=1.0) as app:
        await app.raise_sos(alarm(1, MAPO))
        await poll(lambda: "a1" in app.receipts, 20, "the receipt")
        north = app.receipts["a1"].incident_id

        def recommended(found: dict[str, IncidentState]) -> bool:
            return north in found and UNIT in [r.responder_id for r in found[north].recommended]

        await picture(mqtt_settings, recommended)
        reply = await app.command("op-n", "c1", partition="north", action=Action.DISPATCH,
                                  incident_id=north, responder_id=UNIT)  # fmt: skip
        assert reply.ok, reply.reason
    await picture(mqtt_settings, lambda found: UNIT in found[north].responders)
    await report_unit(mqtt_settings, ResponderStatus.ON_SCENE)
    found = await picture(
        mqtt_settings, lambda found: found[north].status is IncidentStatus.ON_SCENE
    )
    assert found[north].responders == (UNIT,)
    unit = must(await retained_state(mqtt_settings), "responder", UNIT)
    assert (unit.status, unit.incident_id) == (ResponderStatus.ON_SCENE, north)
