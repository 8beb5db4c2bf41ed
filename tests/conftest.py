"""Shared fixtures: a real broker per test, and transport settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protocols.mqtt import MqttSettings
from tests.brokers import AmqttBroker, MosquittoBroker, make_broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker | AmqttBroker]:
    """A started broker on its own loopback port; killed after the test whatever happens."""
    instance = make_broker(tmp_path / "broker")
    instance.start()
    try:
        yield instance
    finally:
        instance.kill()


@pytest.fixture
def mosquitto(broker: MosquittoBroker | AmqttBroker) -> MosquittoBroker:
    """The broker, for tests that need Mosquitto itself (MQTT 5, persistence across restarts)."""
    if not isinstance(broker, MosquittoBroker):
        pytest.skip("needs mosquitto (the amqtt fallback speaks MQTT 3.1.1 and keeps nothing)")
    return broker


@pytest.fixture
def mqtt_settings(broker: MosquittoBroker | AmqttBroker) -> MqttSettings:
    """Settings for the test broker, with quick reconnects so fault tests stay fast."""
    protocol = 5 if isinstance(broker, MosquittoBroker) else 4
    return MqttSettings(
        host=broker.host,
        port=broker.port,
        protocol=protocol,
        keepalive=5,
        reconnect_min_s=0.05,
        reconnect_max_s=0.5,
    )
