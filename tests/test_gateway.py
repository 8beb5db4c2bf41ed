"""`ansim gateway` over real HTTP on 127.0.0.1, a real Mosquitto and a real `ansim core`."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from console import config as config_module
from console.config import GatewayConfig
from console.gateway import Gateway
from console.gateway_limits import RateLimiter, RateMeter, TokenTable, field_of
from console.journal import RecordKind, open_journal
from protocols import cap, codec, topics
from protocols.mqtt import MqttSettings, Transport
from protocols.schemas import IncidentKind, IncidentState, SosAlarm
from tests.brokers import free_port
from tests.processes import AnsimProcess, core_ready, retained_state, write_config

SOURCE = "app1"
OTHER = "app2"
TOKEN = "tok-app1-0123456789abcdef"
OTHER_TOKEN = "tok-app2-fedcba9876543210"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
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


def cap_xml(identifier: str = "SMPA-2024-0601-001", extra: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<alert xmlns="{cap.CAP_NS}">'
        f"<identifier>{identifier}</identifier><sender>alert@smpa.go.kr</sender>"
        "<sent>2024-06-01T22:10:00+09:00</sent><status>Actual</status>"
        "<msgType>Alert</msgType><scope>Public</scope>"
        "<info><language>ko-KR</language><category>Safety</category>"
        "<event>Assault suspect at large</event><urgency>Immediate</urgency>"
        "<severity>Severe</severity><certainty>Likely</certainty>"
        "<headline>Suspect seen near Jongno 3-ga station</headline>"
        "<area><areaDesc>Jongno-gu</areaDesc><circle>37.5945,126.9770 1.0</circle></area>"
        f"</info>{extra}</alert>"
    ).encode()


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


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


async def started(cfg: GatewayConfig, settings: MqttSettings) -> Gateway:
    gateway = Gateway(cfg, settings, client_id=f"gw-{time.monotonic_ns()}", port=0)
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


async def post_json(
    http: aiohttp.ClientSession, g: Gateway, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{g.url}/v1/sos", json=body, headers={**AUTH, **(headers or {})}) as r:
        return r.status, await r.json()


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
        assert health["status"] == "broker-unavailable"
        assert health["refusals"] == {"broker-unavailable": 1}
    finally:
        await g.__aexit__(None, None, None)


async def test_health_reports_connection_counts_and_rates(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    await post_json(http, gateway, sos_json(lat=200))
    async with http.get(f"{gateway.url}/v1/health") as r:
        health = await r.json()
        assert r.status == 200
    assert health["status"] == "ok" and health["broker"]["state"] == "connected"
    assert health["receipts_pending"] == 0
    assert health["refusals"] == {"invalid": 1}
    assert health["requests"]["/v1/sos"] == 1
    assert health["rates"]["requests_per_s"] > 0


# --- authentication, authorisation, validation -----------------------------------------


async def test_missing_or_unknown_token_is_401(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer not-a-token-of-anyone"},
        {"Authorization": TOKEN},
    ):
        async with http.post(f"{gateway.url}/v1/sos", json=sos_json(), headers=headers) as r:
            body = await r.json()
            assert r.status == 401, body
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert body["error"] == "unauthorized"
    assert gateway.stats.refusals["unauthorized"] == 3


async def test_token_of_one_source_cannot_raise_an_alarm_for_another(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    status, body = await post_json(http, gateway, sos_json(source=OTHER))
    assert status == 403
    assert body["error"] == "forbidden" and body["field"] == "source"
    assert SOURCE in body["reason"] and OTHER in body["reason"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (sos_json(lat=200), "lat", "<= 90.0"),
        (sos_json(trigger="scream"), "trigger", "Invalid enum value"),
        ({k: v for k, v in sos_json().items() if k != "device_id"}, "device_id", "missing"),
        (sos_json(alarm_id="a/b"), "alarm_id", "regex"),
    ],
)
async def test_bad_sos_is_422_naming_the_field(
    gateway: Gateway, http: aiohttp.ClientSession, body: Any, field: str, words: str
) -> None:
    status, answer = await post_json(http, gateway, body)
    assert status == 422, answer
    assert answer["error"] == "invalid" and answer["field"] == field
    assert words in answer["reason"]


async def test_malformed_json_and_wrong_content_type(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    sos = f"{gateway.url}/v1/sos"
    headers = {**AUTH, "Content-Type": "application/json"}
    async with http.post(sos, data=b'{"alarm_id": "a1", "lat": ', headers=headers) as r:
        assert r.status == 422
        assert "malformed" in (await r.json())["reason"]
    async with http.post(sos, data=b"[1, 2]", headers=headers) as r:
        assert r.status == 422
        assert "JSON object" in (await r.json())["reason"]
    async with http.post(sos, data=b"hello", headers={**AUTH, "Content-Type": "text/plain"}) as r:
        assert r.status == 415
        assert (await r.json())["error"] == "unsupported-media-type"
    async with http.get(sos, headers=AUTH) as r:
        assert r.status == 405
        assert (await r.json())["error"] == "method-not-allowed"
    async with http.get(f"{gateway.url}/nope") as r:
        assert r.status == 404
    assert gateway.stats.refusals["invalid"] == 2


# --- limits ----------------------------------------------------------------------------


async def _response_head(reader: asyncio.StreamReader, timeout_s: float) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)


async def test_ten_megabyte_body_is_413_before_it_is_read(gateway: Gateway) -> None:
    ten_mb = 10 * 1024 * 1024
    # Declared length: the answer comes after the headers and a first chunk of the body.
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        writer.write(
            b"POST /v1/sos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {ten_mb}\r\n\r\n".encode()
            + b"{" * 4096
        )
        await writer.drain()
        head = await _response_head(reader, 5.0)
        assert head.startswith(b"HTTP/1.1 413"), head
    finally:
        writer.close()

    # Chunked, no length: refused once past the limit, long before 10 MB were sent.
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    sent = 0
    head = b""
    try:
        writer.write(
            b"POST /v1/sos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b" " * 16384
        while sent < ten_mb:
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
            sent += len(chunk)
            try:
                head = await _response_head(reader, 0.01)
                break
            except TimeoutError:
                continue
    except ConnectionError:
        head = head or await _response_head(reader, 1.0)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 413"), head
    assert sent < 1024 * 1024, f"{sent} bytes sent before the refusal"
    assert gateway.stats.refusals["too-large"] == 2


async def test_rate_limit_per_source_is_429_with_retry_after(
    mqtt_settings: MqttSettings, http: aiohttp.ClientSession
) -> None:
    g = await started(gateway_config(rate_per_minute=6, rate_burst=3), mqtt_settings)
    try:
        statuses = []
        for _ in range(5):
            status, body = await post_json(http, g, sos_json(lat=200))
            statuses.append(status)
        assert statuses == [422, 422, 422, 429, 429]
        assert body["error"] == "rate-limited"
        # Another source has its own bucket.
        other = {"Authorization": f"Bearer {OTHER_TOKEN}"}
        status, body = await post_json(http, g, sos_json(source=OTHER, lat=200), other)
        assert status == 422
        async with http.post(f"{g.url}/v1/sos", json=sos_json(), headers=AUTH) as r:
            assert r.status == 429
            assert 1 <= int(r.headers["Retry-After"]) <= 10
        assert g.stats.refusals["rate-limited"] == 3
    finally:
        await g.__aexit__(None, None, None)


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


# --- the process ---------------------------------------------------------------------


async def test_ansim_gateway_process_serves_and_stops_on_sigterm(
    tmp_path: Path, broker: Any, mqtt_settings: MqttSettings, http: aiohttp.ClientSession
) -> None:
    port = free_port()
    path = write_config(tmp_path, broker.port, gateway={"port": port})
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


# --- the pure parts ------------------------------------------------------------------------


def test_token_table_matches_only_exact_bearer_tokens() -> None:
    table = TokenTable({SOURCE: TOKEN, OTHER: OTHER_TOKEN})
    assert table.source_for(f"Bearer {TOKEN}") == SOURCE
    assert table.source_for(f"bearer   {OTHER_TOKEN} ") == OTHER
    assert table.source_for(f"Bearer {TOKEN}x") is None
    assert table.source_for(f"Basic {TOKEN}") is None
    assert table.source_for("Bearer ") is None
    assert table.source_for(None) is None
    assert TokenTable({}).source_for(f"Bearer {TOKEN}") is None
    with pytest.raises(ValueError, match="share one token"):
        TokenTable({SOURCE: TOKEN, OTHER: TOKEN})


def test_rate_limiter_bucket_and_meter() -> None:
    limiter = RateLimiter(per_minute=60, burst=2)
    assert [limiter.check("a", 100.0) for _ in range(2)] == [0.0, 0.0]
    assert limiter.check("a", 100.0) == pytest.approx(1.0)
    assert limiter.check("b", 100.0) == 0.0
    assert limiter.check("a", 101.0) == 0.0  # one token back after a second
    meter = RateMeter(window_s=10)
    for second in range(20):
        meter.add(1000.0 + second, 2)
    assert meter.rate(1019.5) == pytest.approx(2.0)
    assert meter.rate(1100.0) == 0.0


def test_field_of_names_the_field() -> None:
    assert field_of("invalid: Expected `float` <= 90.0 - at `$.lat`") == "lat"
    assert field_of("invalid: Object missing required field `source`") == "source"
    assert field_of("malformed: Input data was truncated") is None


def test_config_rejects_short_tokens_and_bad_source_ids(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[gateway.tokens]\napp = "short"\n', encoding="utf-8")
    with pytest.raises(config_module.ConfigError, match="length >= 16"):
        config_module.load(path, environ={})
    path.write_text(f'[gateway.tokens]\n"a/b" = "{TOKEN}"\n', encoding="utf-8")
    with pytest.raises(config_module.ConfigError, match="gateway"):
        config_module.load(path, environ={})
    env = {"ANSIM_GATEWAY__TOKENS": f'{{ app = "{TOKEN}" }}'}
    path.write_text("", encoding="utf-8")
    assert config_module.load(path, environ=env).gateway.tokens == {"app": TOKEN}


def test_all_in_one_starts_the_gateway_only_when_enabled() -> None:
    from console import allinone

    args = argparse.Namespace(config=None)
    off = config_module.Config()
    on = msgspec.structs.replace(off, gateway=GatewayConfig(enabled=True))
    assert "gateway" not in [c.name for c in allinone.build(args, off).children]
    gateway = [c for c in allinone.build(args, on).children if c.name == "gateway"]
    assert len(gateway) == 1 and gateway[0].argv[-1] == "gateway"


async def test_slow_body_is_408(mqtt_settings: MqttSettings) -> None:
    g = await started(gateway_config(read_timeout_s=0.3), mqtt_settings)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", g.port)
        writer.write(
            b"POST /v1/sos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"alarm_id": '
        )
        await writer.drain()
        head = await _response_head(reader, 5.0)
        writer.close()
        assert head.startswith(b"HTTP/1.1 408"), head
        assert g.stats.refusals["timeout"] == 1
    finally:
        await g.__aexit__(None, None, None)
