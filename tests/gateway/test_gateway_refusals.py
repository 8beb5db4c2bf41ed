"""`ansim gateway` refusals: authentication, validation, size, read-time and rate limits."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from console import config as config_module
from console.gateway.limits import RateLimiter, RateMeter, TokenTable, field_of
from console.gateway.service import Gateway
from protocols.mqtt import MqttSettings
from tests.gateway import gateway_helpers
from tests.gateway.gateway_helpers import (
    AUTH,
    OTHER,
    OTHER_TOKEN,
    SOURCE,
    TOKEN,
    gateway_config,
    post_json,
    sos_json,
    started,
)

http = gateway_helpers.http
gateway = gateway_helpers.gateway


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
