"""Two partitions of Seoul on real processes, for the tests of partitions: the north of
the Han river and the south, a core each (`ansim core --partition`), one Mosquitto."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.sim.seoul import HAN_NORTH, HAN_SOUTH
from protocols import topics
from protocols.mqtt import MqttSettings
from protocols.schemas import IncidentState, SosAlarm, SosTrigger, Summary
from tests.brokers import MosquittoBroker
from tests.processes import AnsimProcess, retained_state, write_config

NORTH = list(HAN_NORTH)
SOUTH = list(HAN_SOUTH)
MAPO = (37.5594, 126.9085)
GANGNAM = (37.5172, 127.0473)


def owners(
    cameras: dict[str, list[str]] | None = None,
    responders: dict[str, list[str]] | None = None,
    senders: dict[str, list[str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """``[owners]`` for ``write_config(**owners(...))``: each id's sources named, first come
    off, as a city of several partitions must (docs/partitions.md, "Owners"). Source =
    [id patterns]; the sources are bare TOML keys (letters, digits, ``-``, ``_``)."""
    return {
        "owners": {"first_come": False},
        "owners.cameras": cameras or {},
        "owners.responders": responders or {},
        "owners.senders": senders or {},
    }


# The sources of the partitions' tests: the south's VMS and units' tracker (SOS from
# "app" are never owned), and the simulator's cameras and units.
OWNERS = owners(
    cameras={"vms": ["*-cam-*"], "sim": ["cam-*"]},
    responders={"tracker": ["police-*"], "sim": ["unit-*"]},
)


def partitioned_config(tmp_path: Path, port: int) -> Path:
    return write_config(
        tmp_path,
        port,
        journal={"path": str(tmp_path / "journal-{partition}.db"), "batch_max": 200},
        partitions={"north": NORTH, "south": SOUTH},
        scopes={"op-mapo": ["Mapo-gu"]},
        roles={"op-mapo": "operator", "op-city": "supervisor"},
        **OWNERS,
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
def cores(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> Iterator[tuple[Path, AnsimProcess, AnsimProcess]]:
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
