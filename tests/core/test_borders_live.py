"""Across the border on real processes: a camera and a unit of the south bank of the Han
(Yeongdeungpo-gu, the south's) near an SOS on the north bank (Mapo-gu, the north's).

The north's core subscribes to its border districts' cameras, CCTV and units
(``[correlation] border_m``): the CCTV event joins its SOS, the unit is recommended for
it. The south's core, the camera's owner, has no SOS near it (that SOS is the north's)
and opens its own CCTV incident, as it always did (docs/partitions.md, "Borders").
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from console import config as config_module
from console.engine.partitions import Partitions
from console.journal.store import RecordKind, open_journal
from protocols import codec, topics
from protocols.mqtt import MqttSettings, Transport
from protocols.schemas import (
    CameraHealth,
    CameraHealthStatus,
    CctvEvent,
    CctvKind,
    DistrictCameras,
    IncidentKind,
    IncidentState,
    ResponderReport,
    ResponderStatus,
    UnitKind,
)
from tests.fault_helpers import Source, poll
from tests.partitioned import NORTH, SOUTH, alarm, both_ready, cores, incidents
from tests.processes import retained_state

pytestmark = pytest.mark.slow
__all__ = ["cores"]  # the fixture, used by name

NORTH_BANK = (37.5418, 126.9120)  # Mapo-gu (the north's)
SOUTH_BANK = (37.5398, 126.9120)  # Yeongdeungpo-gu (the south's), 222 m from it
UNIT_AT = (37.5385, 126.9140)  # Yeongdeungpo-gu
SOUTH_DISTRICT = "Yeongdeungpo-gu"
CAMERA, UNIT = "ydp-cam-7", "police-y7"


def test_the_points_are_on_either_side_of_the_border() -> None:
    cfg = config_module.Config()
    districts = cfg.city.district_map()
    assert districts.district_of(*NORTH_BANK) == "Mapo-gu"
    assert districts.district_of(*SOUTH_BANK) == SOUTH_DISTRICT
    assert districts.district_of(*UNIT_AT) == SOUTH_DISTRICT
    partitions = Partitions({"north": NORTH, "south": SOUTH}, districts.names)
    near = partitions.border_districts("north", districts, cfg.correlation.border_m)
    assert SOUTH_DISTRICT in near


async def publish_into_the_south(settings: MqttSettings, cctv: CctvEvent | None = None) -> None:
    """The camera's registration and the unit's report, or one CCTV event, published into
    their district as the south's sources do."""
    now = time.time()
    items: list[tuple[str, bytes]]
    if cctv is not None:
        items = [(topics.raw("vms", topics.RAW_CCTV, SOUTH_DISTRICT), codec.encode(cctv))]
    else:
        cam = CameraHealth(
            camera_id=CAMERA, status=CameraHealthStatus.ONLINE, ts=now, name="Yanghwa bridge south",
            lat=SOUTH_BANK[0], lon=SOUTH_BANK[1],
        )  # fmt: skip
        unit = ResponderReport(
            responder_id=UNIT, kind=UnitKind.POLICE, status=ResponderStatus.AVAILABLE,
            lat=UNIT_AT[0], lon=UNIT_AT[1], ts=now,
        )  # fmt: skip
        items = [
            (topics.raw("vms", topics.RAW_CAMERA, SOUTH_DISTRICT), codec.encode(cam)),
            (topics.raw("tracker", topics.RAW_RESPONDER, SOUTH_DISTRICT), codec.encode(unit)),
        ]
    async with Transport(settings, f"south-sources-{time.monotonic_ns()}") as t:
        await t.wait_connected(10)
        for topic, payload in items:
            await t.publish(topic, payload, qos=1)


async def settled(settings: MqttSettings, done: Any, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        state = await retained_state(settings)
        if done(state):
            return state
        assert time.monotonic() < deadline, f"{what}: {sorted(state)}"


async def test_an_sos_on_the_north_bank_takes_in_the_south_banks_camera_and_unit(
    cores: Any, mqtt_settings: MqttSettings
) -> None:
    cfg_path, north, south = cores
    await both_ready(mqtt_settings)
    await publish_into_the_south(mqtt_settings)
    page = topics.state_camera_page(SOUTH_DISTRICT, 0)
    await settled(
        mqtt_settings,
        lambda s: (
            isinstance(s.get(page), DistrictCameras) and CAMERA in [c.id for c in s[page].cameras]
        ),
        "the south's core did not publish its camera",
    )
    async with Source(mqtt_settings, "app", resend_s=1.0) as app:
        await app.raise_sos(alarm(1, NORTH_BANK))
        await poll(lambda: "a1" in app.receipts, 20, "the receipt")
        assert app.receipts["a1"].incident_id == "north-000001"
    scream = CctvEvent(
        event_id="ev-1", camera_id=CAMERA, kind=CctvKind.SCREAM, confidence=0.9, ts=time.time()
    )
    await publish_into_the_south(mqtt_settings, scream)

    def both_incidents(state: dict[str, Any]) -> bool:
        found = {i: s for i, (_, s) in incidents(state).items()}
        sos = found.get("north-000001")
        return (
            sos is not None
            and CAMERA in [e.source for e in sos.events]
            and UNIT in [r.responder_id for r in sos.recommended]
            and "south-000001" in found
        )

    state = await settled(mqtt_settings, both_incidents, "not both incidents")
    found = incidents(state)
    topic, sos = found["north-000001"]
    assert topic == topics.state_incident("Mapo-gu", "north-000001")
    assert [(e.kind, e.source) for e in sos.events] == [("sos", "phone-1"), ("scream", CAMERA)]
    unit = next(r for r in sos.recommended if r.responder_id == UNIT)
    assert unit.home == SOUTH_DISTRICT  # the console can tell whose unit it is
    assert CAMERA in [c.camera_id for c in sos.cameras]
    # The south, the camera's owner, has no SOS near it (that SOS is the north's): its
    # CCTV incident, under its own district, as without partitions.
    topic, cctv = found["south-000001"]
    assert topic == topics.state_incident(SOUTH_DISTRICT, "south-000001")
    assert (cctv.kind, cctv.source) == (IncidentKind.CCTV, CAMERA)
    assert all(isinstance(s, IncidentState) for _, s in found.values())
    assert set(found) == {"north-000001", "south-000001"}  # the north opened nothing else
    north.stop()
    south.stop()
    # The border's messages are in the north's journal like any event (its replay
    # rebuilds the same state), and the north's summary counted none of them.
    cfg = config_module.load(cfg_path, environ={})
    journal = open_journal(config_module.for_partition(cfg, "north").journal)
    try:
        border = [
            topics.raw_parts(r.topic)
            for r in journal.records(kinds={RecordKind.EVENT})
            if (topics.raw_parts(r.topic) or ("", "", None))[2] == SOUTH_DISTRICT
        ]
    finally:
        journal.close()
    kinds = sorted(kind for _, kind, _ in border if kind)
    assert kinds == [topics.RAW_CAMERA, topics.RAW_CCTV, topics.RAW_RESPONDER]
