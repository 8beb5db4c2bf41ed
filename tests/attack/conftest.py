"""The city under attack, shared by the tests of one module (they run in order)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.attack.city import (
    CITY_HALL,
    SENDER,
    VICTIM,
    VICTIM_CAMERA,
    VICTIM_DEVICE,
    VICTIM_UNIT,
    City,
    sos,
    victim_now,
    wait,
)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    city = City(tmp_path_factory.mktemp("attack"))
    try:
        city.start_core()
        now = time.time()
        city.send_as(VICTIM, "camera", {
            "type": "camera", "camera_id": VICTIM_CAMERA, "status": "online", "ts": now,
            "name": "City hall plaza 1", "lat": CITY_HALL[0] + 0.001, "lon": CITY_HALL[1],
        })  # fmt: skip
        city.send_as(VICTIM, "responder", {
            "type": "responder", "responder_id": VICTIM_UNIT, "kind": "police",
            "status": "available", "lat": CITY_HALL[0] + 0.01, "lon": CITY_HALL[1], "ts": now,
        })  # fmt: skip
        city.send_as(VICTIM, "sos", sos("v-1", VICTIM_DEVICE, VICTIM))
        city.send_as(VICTIM, "alert", {
            "type": "alert", "identifier": "flood-1", "sender": SENDER, "sent": now,
            "msg_type": "Alert", "priority": 1, "headline": "Flash flood",
            "districts": ["Jung-gu"], "lat": CITY_HALL[0], "lon": CITY_HALL[1],
        })  # fmt: skip
        wait(lambda: bool(city.incidents_of(VICTIM_DEVICE)), "the victim's SOS incident")
        yield city
    finally:
        city.close()


@pytest.fixture(scope="module")
def victim(city: City) -> dict[str, Any]:
    """What must not change: the victim's incident, unit and camera, as first published."""
    (incident,) = city.incidents_of(VICTIM_DEVICE)
    return victim_now(city, incident.id)
