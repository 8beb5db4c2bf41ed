"""`ansim gateway` SOS flow over real HTTP on 127.0.0.1, a real Mosquitto and a real `ansim core`."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from console import config as config_module
from console.config import GatewayConfig
from console.gateway.service import Gateway
from console.journal.store import RecordKind, open_journal
from protocols import codec, topics
from protocols.mqtt import MqttSettings, Transport
from protocols.schemas import IncidentKind, IncidentState, SosAlarm
from tests.brokers import free_port, until
from tests.gateway import gateway_helpers
from tests.gateway.gateway_helpers import (
    AUTH,
    SOURCE,
    TOKEN,
    cap_xml,
    gateway_config,
    post_json,
    publish_summary,
    sos_json,
    started,
)
from tests.processes import AnsimProcess, core_ready, retained_state, write_config

http = gateway_helpers.http
gateway = gateway_helpers.gateway


# --- with a real core ------------------------------------------------------------------


async def test_sos_is_answered_with_the_incident_only_after_the_core_journaled_it(
    tmp_path: Path, broker: Any, mqtt_settings: MqttSettings, http: aiohttp.ClientSession
) -> None:
    config_path = write_config(tmp_path, broker.port)
    core = AnsimProcess(config_path, "core").start()
    first = second = None
    try:
        await core_ready(mqtt_settings)
        first = await started(gateway_config(), mqtt_settings)
        await first.transport.wait_connected(10)
        # The real core's summary makes the gateway healthy.
        await until(lambda: first is not None and first.summary is not None, 10, "a summary")
        async with http.get(f"{first.url}/v1/health") as r:
            health = await r.json()
            assert r.status == 200, health
        assert health["status"] == "ok" and health["core"]["summary_age_s"] < 5
        status, body = await post_json(http, first, sos_json("a1"))
        assert status == 202, body
        assert body["alarm_id"] == "a1" and body["incident_id"]
        incident = body["incident_id"]
        assert first.stats.receipts >= 1  # the answer came from the core's receipt

        # The same alarm again: the same incident (from the gateway's memory) ...
        status, again = await post_json(http, first, sos_json("a1"))
        assert (status, again["incident_id"]) == (202, incident)
        # ... and through a gateway that never saw it: the core folds the resend.
        second = await started(gateway_config(), mqtt_settings)
        await second.transport.wait_connected(10)
        status, fresh = await post_json(http, second, sos_json("a1"))
        assert (status, fresh["incident_id"]) == (202, incident)
        assert second.stats.receipts >= 1

        # Concurrent posts of one new alarm share one wait and get one incident.
        answers = await asyncio.gather(*(post_json(http, first, sos_json("a2")) for _ in range(3)))
        assert {a[0] for a in answers} == {202}
        assert len({a[1]["incident_id"] for a in answers}) == 1
        assert answers[0][1]["incident_id"] != incident

        # A CAP alert through the gateway becomes a public-alert incident in the core.
        headers = {**AUTH, "Content-Type": "application/cap+xml"}
        async with http.post(f"{first.url}/v1/cap", data=cap_xml(), headers=headers) as r:
            assert r.status == 202, await r.text()
        alerts: list[IncidentState] = []

        async def public_alerts() -> bool:
            state = await retained_state(mqtt_settings, quiet_s=0.2)
            alerts[:] = [
                s
                for s in state.values()
                if isinstance(s, IncidentState) and s.kind is IncidentKind.PUBLIC_ALERT
            ]
            return bool(alerts)

        deadline = time.monotonic() + 10
        while not await public_alerts():
            assert time.monotonic() < deadline, core.log()
        assert alerts[0].priority == 1 and alerts[0].district == "Jongno-gu"
    finally:
        for g in (first, second):
            if g is not None:
                await g.__aexit__(None, None, None)
        assert core.stop() == 0, core.log()
    cfg = config_module.load(config_path, environ={})
    journal = open_journal(cfg.journal)
    try:
        keys = [r.key for r in journal.records(kinds=[RecordKind.EVENT])]
    finally:
        journal.close()
    assert keys.count(f"sos:{SOURCE}:a1") == 1, keys
    assert keys.count(f"sos:{SOURCE}:a2") == 1, keys


# --- without a core, or without a broker ----------------------------------------------


async def test_no_core_gives_504_within_the_timeout_and_says_to_retry(
    gateway: Gateway, http: aiohttp.ClientSession, mqtt_settings: MqttSettings
) -> None:
    seen: list[str] = []
    async with Transport(
        mqtt_settings, "spy", subscriptions=[(topics.raw(SOURCE, topics.RAW_SOS), 1)]
    ) as spy:
        await spy.wait_connected(10)

        async def collect() -> None:
            async for msg in spy.messages():
                seen.append(codec.decode(msg.payload, SosAlarm).alarm_id)

        task = asyncio.create_task(collect())
        t0 = time.monotonic()
        async with http.post(f"{gateway.url}/v1/sos", json=sos_json("lost-1"), headers=AUTH) as r:
            body = await r.json()
            assert r.status == 504, body
            assert r.headers["Retry-After"] == "1"
        elapsed = time.monotonic() - t0
        task.cancel()
    assert 1.4 <= elapsed < 3.0
    assert body["error"] == "no-receipt" and body["alarm_id"] == "lost-1"
    assert "may still arrive" in body["reason"] and "same alarm_id" in body["reason"]
    assert seen.count("lost-1") >= 2, "the gateway resends while it waits"
    assert gateway.stats.refusals["no-receipt"] == 1
    assert len(gateway.receipts) == 0


async def test_no_broker_gives_503_and_health_says_so(http: aiohttp.ClientSession) -> None:
    nowhere = MqttSettings(port=free_port(), reconnect_min_s=0.05, reconnect_max_s=0.2)
    g = await started(gateway_config(receipt_timeout_s=0.8), nowhere)
    try:
        async with http.post(f"{g.url}/v1/sos", json=sos_json(), headers=AUTH) as r:
            body = await r.json()
            assert r.status == 503, body
        assert body["error"] == "broker-unavailable" and "same alarm_id" in body["reason"]
        async with http.get(f"{g.url}/v1/health") as r:
            health = await r.json()
            assert r.status == 503
        assert health["status"] == "degraded"
        assert "broker link" in health["reason"] and "no core summary yet" in health["reason"]
        assert health["refusals"] == {"broker-unavailable": 1}
    finally:
        await g.__aexit__(None, None, None)


async def test_health_reports_connection_counts_and_rates(
    gateway: Gateway, http: aiohttp.ClientSession, mqtt_settings: MqttSettings
) -> None:
    await publish_summary(mqtt_settings, time.time(), alarms=("journal read-only",))
    await until(lambda: gateway.summary is not None, 5, "the summary")
    await post_json(http, gateway, sos_json(lat=200))
    async with http.get(f"{gateway.url}/v1/health") as r:
        health = await r.json()
        assert r.status == 200
    assert health["status"] == "ok" and health["broker"]["state"] == "connected"
    assert "reason" not in health
    assert health["core"]["alarms"] == ["journal read-only"]
    assert health["receipts_pending"] == 0
    assert health["refusals"] == {"invalid": 1}
    assert health["requests"]["/v1/sos"] == 1
    assert health["rates"]["requests_per_s"] > 0


# --- the process ---------------------------------------------------------------------


async def test_ansim_gateway_process_serves_and_stops_on_sigterm(
    tmp_path: Path, broker: Any, mqtt_settings: MqttSettings, http: aiohttp.ClientSession
) -> None:
    port = free_port()
    path = write_config(tmp_path, broker.port, gateway={"port": port, "summary_stale_s": 600.0})
    await publish_summary(mqtt_settings, time.time())  # a core, as far as health can tell
    with path.open("a", encoding="utf-8") as f:
        f.write(f'\n[gateway.tokens]\n{SOURCE} = "{TOKEN}"\n')
    process = AnsimProcess(path, "gateway").start()
    try:
        health: dict[str, Any] = {}

        async def healthy() -> bool:
            try:
                async with http.get(f"http://127.0.0.1:{port}/v1/health") as r:
                    health.update(await r.json())
                    return r.status == 200
            except aiohttp.ClientConnectionError:
                return False

        deadline = time.monotonic() + 15
        while not await healthy():
            assert time.monotonic() < deadline, process.log()
            await asyncio.sleep(0.1)
        assert health["sources"] == 1
    finally:
        assert process.stop() == 0, process.log()
    assert "gateway stopped cleanly" in process.log()


def test_all_in_one_starts_the_gateway_only_when_enabled() -> None:
    from console.local import allinone

    args = argparse.Namespace(config=None)
    off = config_module.Config()
    on = msgspec.structs.replace(off, gateway=GatewayConfig(enabled=True))
    assert "gateway" not in [c.name for c in allinone.build(args, off).children]
    gateway = [c for c in allinone.build(args, on).children if c.name == "gateway"]
    assert len(gateway) == 1 and gateway[0].argv[-1] == "gateway"
