"""`ansim gateway` CAP 1.2 alerts: published on the raw alert topic, or refused."""

from __future__ import annotations

import asyncio

import aiohttp
import msgspec
import pytest

from console.gateway.service import Gateway
from protocols import cap, topics
from protocols.mqtt import MqttSettings, Transport
from tests.gateway import gateway_helpers
from tests.gateway.gateway_helpers import AUTH, SOURCE, cap_xml, gateway_config, started

http = gateway_helpers.http
gateway = gateway_helpers.gateway


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE alert [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol9;</identifier></alert>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""


# --- CAP ---------------------------------------------------------------------------------


async def test_valid_cap_alert_is_published_on_the_raw_alert_topic(
    gateway: Gateway, http: aiohttp.ClientSession, mqtt_settings: MqttSettings
) -> None:
    async with Transport(
        mqtt_settings, "alert-spy", subscriptions=[(topics.raw(SOURCE, topics.RAW_ALERT), 1)]
    ) as spy:
        await spy.wait_connected(10)
        headers = {**AUTH, "Content-Type": "application/cap+xml"}
        async with http.post(f"{gateway.url}/v1/cap", data=cap_xml(), headers=headers) as r:
            body = await r.json()
            assert r.status == 202, body
        assert body["key"] == {"sender": "alert@smpa.go.kr", "identifier": "SMPA-2024-0601-001"}
        assert body["priority"] == 1 and "Jongno-gu" in body["districts"]
        msg = await asyncio.wait_for(anext(spy.messages()), 5)
    alert = msgspec.msgpack.decode(msg.payload, type=cap.PublicAlert)
    assert alert.key == ("alert@smpa.go.kr", "SMPA-2024-0601-001")
    assert alert.msg_type == "Alert" and "Jongno-gu" in alert.districts
    assert gateway.stats.accepted["cap"] == 1


@pytest.mark.parametrize(
    ("payload", "words"),
    [(BOMB, "DTD"), (XXE, "DTD"), (b"<alert>", "not well-formed"), (cap_xml("has space"), "")],
)
async def test_hostile_or_wrong_cap_is_400(
    gateway: Gateway, http: aiohttp.ClientSession, payload: bytes, words: str
) -> None:
    headers = {**AUTH, "Content-Type": "application/xml"}
    async with http.post(f"{gateway.url}/v1/cap", data=payload, headers=headers) as r:
        body = await r.json()
        assert r.status == 400, body
    assert body["error"] == "cap-refused" and words in body["reason"]


async def test_cap_limits_type_and_test_messages(
    mqtt_settings: MqttSettings, http: aiohttp.ClientSession
) -> None:
    g = await started(gateway_config(max_cap_bytes=4096), mqtt_settings)
    try:
        await g.transport.wait_connected(10)
        url, xml = f"{g.url}/v1/cap", {**AUTH, "Content-Type": "text/xml"}
        async with http.post(url, data=cap_xml(extra=" " * 5000), headers=xml) as r:
            assert r.status == 413
        async with http.post(
            url, data=cap_xml(), headers={**AUTH, "Content-Type": "text/csv"}
        ) as r:
            assert r.status == 415
        exercise = cap_xml().replace(b"<status>Actual", b"<status>Exercise")
        async with http.post(url, data=exercise, headers=xml) as r:
            assert r.status == 200
            assert "ignored" in await r.json()
        async with http.post(url, data=cap_xml(), headers={"Content-Type": "text/xml"}) as r:
            assert r.status == 401
    finally:
        await g.__aexit__(None, None, None)
