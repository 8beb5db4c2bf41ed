"""`GET /v1/health`: "ok" only while the broker link is up and every core's summary is fresh.

Time comes from clocks the tests move by hand (the gateway's ``clock`` for how long ago
the core was heard, ``wall`` for the age of a retained summary's ``ts``): nothing sleeps.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from console.gateway.service import Gateway
from protocols.mqtt import MqttSettings
from tests.brokers import until
from tests.gateway import gateway_helpers
from tests.gateway.gateway_helpers import FakeClock, gateway_config, publish_summary, started

http = gateway_helpers.http

WALL = 1_717_247_400.0  # UNIX time of the tests' wall clock


async def health_of(http: aiohttp.ClientSession, g: Gateway) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{g.url}/v1/health") as r:
        return r.status, await r.json()


async def test_degraded_until_the_core_is_heard_and_again_once_it_goes_quiet(
    mqtt_settings: MqttSettings, http: aiohttp.ClientSession
) -> None:
    clock, wall = FakeClock(1000.0), FakeClock(WALL)
    g = await started(gateway_config(summary_stale_s=30.0), mqtt_settings, clock=clock, wall=wall)
    try:
        await g.transport.wait_connected(10)
        status, health = await health_of(http, g)
        assert status == 503, health
        assert health["status"] == "degraded" and health["reason"] == "no core summary yet"
        assert health["core"]["summary_age_s"] is None
        assert health["broker"]["state"] == "connected"

        # The core speaks (live, while the gateway is subscribed): ok.
        await publish_summary(mqtt_settings, wall.now)
        await until(lambda: g.summary is not None, 5, "the summary")
        status, health = await health_of(http, g)
        assert (status, health["status"]) == (200, "ok"), health
        assert health["core"] == {
            "summary_age_s": 0.0,
            "stale_after_s": 30.0,
            "alarms": [],
            "core_id": "core-city",
        }

        clock.now += 29.0  # within the threshold
        status, health = await health_of(http, g)
        assert (status, health["status"]) == (200, "ok"), health

        clock.now += 13.0  # the core has been silent for 42 s
        status, health = await health_of(http, g)
        assert status == 503, health
        assert health["status"] == "degraded"
        assert health["reason"] == "core summary stale for 42 s"
        assert health["core"]["summary_age_s"] == 42.0

        # It speaks again: ok again.
        wall.now += 42.0
        seen = g.summary_seen
        await publish_summary(mqtt_settings, wall.now)
        await until(lambda: g.summary_seen != seen, 5, "the next summary")
        status, health = await health_of(http, g)
        assert (status, health["status"]) == (200, "ok"), health
        assert g.stats.refusals == {}  # a degraded health is not a refusal
    finally:
        await g.__aexit__(None, None, None)


async def test_a_retained_summary_is_as_old_as_its_ts(
    mqtt_settings: MqttSettings, http: aiohttp.ClientSession
) -> None:
    """The broker replays a dead core's last summary to a new subscriber: not a sign of life."""
    wall = FakeClock(WALL)
    await publish_summary(mqtt_settings, WALL - 3600.0)  # the core died an hour ago
    g = await started(gateway_config(), mqtt_settings, clock=FakeClock(50.0), wall=wall)
    try:
        await until(lambda: g.summary is not None, 10, "the retained summary")
        status, health = await health_of(http, g)
        assert status == 503, health
        assert health["reason"] == "core summary stale for 3600 s"
    finally:
        await g.__aexit__(None, None, None)

    await publish_summary(mqtt_settings, WALL - 2.0)  # a running core's latest
    g = await started(gateway_config(), mqtt_settings, clock=FakeClock(50.0), wall=wall)
    try:
        await until(lambda: g.summary is not None, 10, "the retained summary")
        status, health = await health_of(http, g)
        assert (status, health["status"]) == (200, "ok"), health
        assert health["core"]["summary_age_s"] == 2.0
    finally:
        await g.__aexit__(None, None, None)


async def test_link_down_is_degraded_even_with_a_fresh_summary(
    broker: Any, mqtt_settings: MqttSettings, http: aiohttp.ClientSession
) -> None:
    clock, wall = FakeClock(1000.0), FakeClock(WALL)
    g = await started(gateway_config(), mqtt_settings, clock=clock, wall=wall)
    try:
        await g.transport.wait_connected(10)
        await publish_summary(mqtt_settings, wall.now)
        await until(lambda: g.summary is not None, 5, "the summary")
        assert (await health_of(http, g))[0] == 200

        broker.kill()
        await until(lambda: not g.transport.connected, 10, "the link to drop")
        status, health = await health_of(http, g)
        assert status == 503, health
        assert health["status"] == "degraded"
        assert health["reason"].startswith("broker link ")
        assert mqtt_settings.address in health["reason"] and "stale" not in health["reason"]
        assert health["core"]["summary_age_s"] == 0.0  # what it last heard, still shown

        clock.now += 100.0  # and the core's silence shows too, once it is long enough
        status, health = await health_of(http, g)
        assert "broker link" in health["reason"]
        assert "core summary stale for 100 s" in health["reason"]
    finally:
        await g.__aexit__(None, None, None)


async def test_with_two_partitions_one_silent_core_is_enough_to_be_degraded(
    mqtt_settings: MqttSettings, http: aiohttp.ClientSession
) -> None:
    """The SOS of a silent partition's districts go unanswered whatever the other says."""
    clock, wall = FakeClock(1000.0), FakeClock(WALL)
    g = await started(gateway_config(summary_stale_s=30.0), mqtt_settings, clock=clock,
                      wall=wall, partitions=("north", "south"))  # fmt: skip
    try:
        await g.transport.wait_connected(10)
        await publish_summary(mqtt_settings, wall.now, partition="north")
        await until(lambda: "north" in g.heard, 5, "north's summary")
        status, health = await health_of(http, g)
        assert status == 503, health
        assert health["reason"] == "core of south: no summary yet"
        assert health["core"]["partitions"]["south"] == {"summary_age_s": None, "alarms": []}

        await publish_summary(mqtt_settings, wall.now, partition="south", alarms=("disk",))
        await until(lambda: "south" in g.heard, 5, "south's summary")
        status, health = await health_of(http, g)
        assert (status, health["status"]) == (200, "ok"), health
        assert health["core"]["partitions"]["south"]["alarms"] == ["disk"]

        clock.now += 42.0  # both silent; then only north speaks again
        wall.now += 42.0
        seen = g.heard["north"][1]
        await publish_summary(mqtt_settings, wall.now, partition="north")
        await until(lambda: g.heard["north"][1] != seen, 5, "north's next summary")
        status, health = await health_of(http, g)
        assert status == 503, health
        assert health["reason"] == "core of south: summary stale for 42 s"
        assert health["core"]["summary_age_s"] == 42.0  # the stalest core's
        assert health["core"]["partitions"]["north"]["summary_age_s"] == 0.0

        await publish_summary(mqtt_settings, wall.now, partition="east")  # not ours: no vote
        await publish_summary(mqtt_settings, wall.now, partition="south")
        await until(lambda: g.heard["south"][1] == clock.now, 5, "south's next summary")
        status, health = await health_of(http, g)
        assert (status, health["status"]) == (200, "ok"), health
        assert set(health["core"]["partitions"]) == {"north", "south"}
    finally:
        await g.__aexit__(None, None, None)
