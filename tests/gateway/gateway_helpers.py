"""Shared by the gateway tests: tokens, configs, request bodies, clocks, a started gateway."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from console.config import GatewayConfig
from console.gateway.service import Gateway
from protocols import cap, codec, topics
from protocols.mqtt import MqttSettings, Transport
from protocols.schemas import Summary

SOURCE = "app1"
OTHER = "app2"
TOKEN = "tok-app1-0123456789abcdef"
OTHER_TOKEN = "tok-app2-fedcba9876543210"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# A police CAP feed, and the sender it speaks for.
CAP_SOURCE = "police-cap"
CAP_TOKEN = "tok-police-cap-00112233445566"
POLICE = "police@seoul.go.kr"
SMPA = "alert@smpa.go.kr"
CITY_HALL = (37.5663, 126.9779)


def gateway_config(**overrides: Any) -> GatewayConfig:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "tokens": {SOURCE: TOKEN, OTHER: OTHER_TOKEN},
        "receipt_timeout_s": 8.0,
        "resend_s": 0.5,
    }
    values.update(overrides)
    return msgspec.convert(values, GatewayConfig)


def sos_json(alarm_id: str = "a1", source: str = SOURCE, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "alarm_id": alarm_id,
        "source": source,
        "device_id": f"phone-{alarm_id}",
        "name": "Kim Ji-young",
        "lat": CITY_HALL[0],
        "lon": CITY_HALL[1],
        "accuracy_m": 12.0,
        "trigger": "button",
        "ts": time.time(),
        "phone": "+82-10-1234-5678",
    }
    body.update(fields)
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cap_xml(
    identifier: str = "SMPA-2024-0601-001",
    extra: str = "",
    *,
    sender: str = SMPA,
    msg_type: str = "Alert",
    references: str = "",
) -> bytes:
    """A CAP 1.2 alert; ``references`` is ``sender,identifier,sent`` triples, space-separated."""
    refs = f"<references>{references}</references>" if references else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<alert xmlns="{cap.CAP_NS}">'
        f"<identifier>{identifier}</identifier><sender>{sender}</sender>"
        "<sent>2024-06-01T22:10:00+09:00</sent><status>Actual</status>"
        f"<msgType>{msg_type}</msgType><scope>Public</scope>{refs}"
        "<info><language>ko-KR</language><category>Safety</category>"
        "<event>Assault suspect at large</event><urgency>Immediate</urgency>"
        "<severity>Severe</severity><certainty>Likely</certainty>"
        "<headline>Suspect seen near Jongno 3-ga station</headline>"
        "<area><areaDesc>Jongno-gu</areaDesc><circle>37.5945,126.9770 1.0</circle></area>"
        f"</info>{extra}</alert>"
    ).encode()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


class FakeClock:
    """A clock the test moves by hand: ``clock()`` reads it, ``clock.now += s`` moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def started(cfg: GatewayConfig, settings: MqttSettings, **kwargs: Any) -> Gateway:
    """A started gateway on a free port; ``kwargs`` go to :class:`Gateway` (clock, wall)."""
    gateway = Gateway(cfg, settings, client_id=f"gw-{time.monotonic_ns()}", port=0, **kwargs)
    await gateway.__aenter__()
    return gateway


@pytest.fixture
async def gateway(mqtt_settings: MqttSettings) -> AsyncIterator[Gateway]:
    g = await started(gateway_config(receipt_timeout_s=1.5, resend_s=0.3), mqtt_settings)
    try:
        await g.transport.wait_connected(10)
        yield g
    finally:
        await g.__aexit__(None, None, None)


async def publish_summary(
    settings: MqttSettings,
    ts: float,
    *,
    alarms: tuple[str, ...] = (),
    retain: bool = True,
    partition: str = topics.DEFAULT_PARTITION,
) -> None:
    """What the core does several times a second: its summary, retained, stamped ``ts``."""
    async with Transport(settings, f"fake-core-{time.monotonic_ns()}") as core:
        await core.wait_connected(10)
        summary = Summary(ts=ts, alarms=alarms, core_id=f"core-{partition}", partition=partition)
        topic = topics.state_summary(partition)
        await core.publish(topic, codec.encode(summary), qos=1, retain=retain)


async def post_json(
    http: aiohttp.ClientSession, g: Gateway, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{g.url}/v1/sos", json=body, headers={**AUTH, **(headers or {})}) as r:
        return r.status, await r.json()
