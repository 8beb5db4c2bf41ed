"""What a token may do: the endpoints it is scoped to, the CAP senders it may speak for.

The attack these close: the SOS app's token posted a CAP Cancel that closed the police's
P1 alert, and the CAP feed's token raised an SOS.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from console import config as config_module
from console.config import GatewayConfig
from console.gateway.grants import Grants
from console.gateway.service import Gateway
from protocols import cap, topics
from protocols.mqtt import Incoming, MqttSettings, Transport
from protocols.schemas import IncidentKind, IncidentState
from tests.gateway import gateway_helpers
from tests.gateway.gateway_helpers import (
    CAP_SOURCE,
    CAP_TOKEN,
    OTHER,
    OTHER_TOKEN,
    POLICE,
    SMPA,
    SOURCE,
    TOKEN,
    bearer,
    cap_xml,
    gateway_config,
    sos_json,
    started,
)
from tests.processes import AnsimProcess, core_ready, retained_state, write_config

http = gateway_helpers.http

XML = "application/cap+xml"
SENT = "2024-06-01T22:10:00+09:00"
TOKENS = {SOURCE: TOKEN, OTHER: OTHER_TOKEN, CAP_SOURCE: CAP_TOKEN}


def trust_config(**overrides: Any) -> GatewayConfig:
    """app1 the SOS app (sos), police-cap the police feed (cap), app2 an SMPA feed (cap)."""
    values: dict[str, Any] = {
        "tokens": TOKENS,
        "scopes": {SOURCE: ["sos"], CAP_SOURCE: ["cap"], OTHER: ["cap"]},
        "cap_senders": {POLICE: [CAP_SOURCE], SMPA: [OTHER]},
    }
    values.update(overrides)
    return gateway_config(**values)


async def post_cap(
    http: aiohttp.ClientSession, g: Gateway, token: str, xml: bytes
) -> tuple[int, dict[str, Any]]:
    headers = {**bearer(token), "Content-Type": XML}
    async with http.post(f"{g.url}/v1/cap", data=xml, headers=headers) as r:
        return r.status, await r.json()


async def post_sos(
    http: aiohttp.ClientSession, g: Gateway, token: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{g.url}/v1/sos", json=body, headers=bearer(token)) as r:
        return r.status, await r.json()


async def first_raw(messages: Any) -> Incoming:
    message: Incoming = await asyncio.wait_for(anext(messages), 5)
    return message


# --- with a broker, no core: refusals publish nothing -----------------------------------


async def test_a_token_outside_its_scope_is_403_counted_and_publishes_nothing(
    mqtt_settings: MqttSettings, http: aiohttp.ClientSession
) -> None:
    unscoped = {**TOKENS, "app3": "tok-app3-unscoped-000000"}
    g = await started(trust_config(tokens=unscoped), mqtt_settings)
    async with Transport(mqtt_settings, "raw-spy", subscriptions=[("ansim/v1/raw/#", 1)]) as spy:
        try:
            await spy.wait_connected(10)
            await g.transport.wait_connected(10)
            # The SOS app's token posts a CAP Cancel of the police's alert.
            cancel = cap_xml(
                "ATTACK-1", sender=POLICE, msg_type="Cancel", references=f"{POLICE},P-1,{SENT}"
            )
            status, body = await post_cap(http, g, TOKEN, cancel)
            assert status == 403, body
            assert body["error"] == "out-of-scope" and body["endpoint"] == "cap"
            assert "'app1' is scoped to sos, not 'cap'" in body["reason"]
            # The police feed's token raises an SOS (for its own source).
            status, body = await post_sos(http, g, CAP_TOKEN, sos_json(source=CAP_SOURCE))
            assert status == 403, body
            assert body["error"] == "out-of-scope" and body["endpoint"] == "sos"
            # A token with no scope entry, once scopes are in use, may use nothing.
            status, body = await post_sos(
                http, g, "tok-app3-unscoped-000000", sos_json(source="app3")
            )
            assert status == 403, body
            assert "no [gateway.scopes] entry" in body["reason"]
            # Refused before the body is even looked at: no 415 for a wrong type.
            headers = {**bearer(TOKEN), "Content-Type": "text/plain"}
            async with http.post(f"{g.url}/v1/cap", data=b"x", headers=headers) as r:
                assert r.status == 403
            assert g.stats.refusals == {"out-of-scope": 4}
            assert g.stats.accepted == {}

            # The first thing on any raw topic is the allowed alert that follows.
            status, body = await post_cap(http, g, CAP_TOKEN, cap_xml("P-1", sender=POLICE))
            assert status == 202, body
            message = await first_raw(spy.messages())
            assert message.topic == topics.raw(CAP_SOURCE, topics.RAW_ALERT)
            alert = msgspec.msgpack.decode(message.payload, type=cap.PublicAlert)
            assert alert.key == (POLICE, "P-1")
        finally:
            await g.__aexit__(None, None, None)


async def test_cap_for_a_sender_the_token_is_not_bound_to_is_403(
    mqtt_settings: MqttSettings, http: aiohttp.ClientSession
) -> None:
    g = await started(trust_config(), mqtt_settings)
    async with Transport(mqtt_settings, "raw-spy", subscriptions=[("ansim/v1/raw/#", 1)]) as spy:
        try:
            await spy.wait_connected(10)
            await g.transport.wait_connected(10)
            # The SMPA feed speaks as the police: Alert, Update and Cancel alike.
            for msg_type in ("Alert", "Update", "Cancel"):
                refs = f"{POLICE},P-1,{SENT}" if msg_type != "Alert" else ""
                xml = cap_xml(f"X-{msg_type}", sender=POLICE, msg_type=msg_type, references=refs)
                status, body = await post_cap(http, g, OTHER_TOKEN, xml)
                assert status == 403, body
                assert body["error"] == "sender-forbidden" and body["field"] == "sender"
                assert f"'{OTHER}' may not speak for CAP sender '{POLICE}'" in body["reason"]
            # In its own name, but cancelling the police's alert through <references>.
            xml = cap_xml("X-2", sender=SMPA, msg_type="Cancel", references=f"{POLICE},P-1,{SENT}")
            status, body = await post_cap(http, g, OTHER_TOKEN, xml)
            assert status == 403, body
            assert body["field"] == "references" and POLICE in body["reason"]
            # A sender nobody is bound to, once senders are bound: nobody may use it.
            status, body = await post_cap(http, g, OTHER_TOKEN, cap_xml("X-3", sender="me@x.kr"))
            assert status == 403, body
            assert "not in [gateway.cap_senders]" in body["reason"]
            assert g.stats.refusals == {"sender-forbidden": 5}

            status, body = await post_cap(http, g, OTHER_TOKEN, cap_xml("S-1", sender=SMPA))
            assert status == 202, body
            message = await first_raw(spy.messages())
            assert msgspec.msgpack.decode(message.payload, type=cap.PublicAlert).key == (
                SMPA,
                "S-1",
            )
        finally:
            await g.__aexit__(None, None, None)


# --- end to end, with a real core -----------------------------------------------------


async def test_only_the_bound_token_can_cancel_the_police_alert(
    tmp_path: Path, broker: Any, mqtt_settings: MqttSettings, http: aiohttp.ClientSession
) -> None:
    core = AnsimProcess(write_config(tmp_path, broker.port), "core").start()
    g: Gateway | None = None

    async def police_alerts() -> list[IncidentState]:
        state = await retained_state(mqtt_settings, quiet_s=0.2)
        return [
            s
            for s in state.values()
            if isinstance(s, IncidentState)
            and s.kind is IncidentKind.PUBLIC_ALERT
            and any(e.source == POLICE for e in s.events)
        ]

    async def until_alerts(count: int) -> list[IncidentState]:
        deadline = time.monotonic() + 10
        while len(found := await police_alerts()) != count:
            assert time.monotonic() < deadline, core.log()
        return found

    try:
        await core_ready(mqtt_settings)
        g = await started(trust_config(), mqtt_settings)
        await g.transport.wait_connected(10)
        status, body = await post_cap(http, g, CAP_TOKEN, cap_xml("P-1", sender=POLICE))
        assert status == 202, body
        opened = await until_alerts(1)
        assert opened[0].priority == 1

        cancel = cap_xml("P-2", sender=POLICE, msg_type="Cancel", references=f"{POLICE},P-1,{SENT}")
        for token in (TOKEN, OTHER_TOKEN):  # the SOS app's token, the SMPA feed's token
            status, body = await post_cap(http, g, token, cancel)
            assert status == 403, body
        smpa_cancel = cap_xml(
            "S-9", sender=SMPA, msg_type="Cancel", references=f"{POLICE},P-1,{SENT}"
        )
        status, body = await post_cap(http, g, OTHER_TOKEN, smpa_cancel)
        assert (status, body["field"]) == (403, "references"), body
        assert g.stats.refusals == {"out-of-scope": 1, "sender-forbidden": 2}
        assert [a.id for a in await police_alerts()] == [opened[0].id]  # still open

        status, body = await post_cap(http, g, CAP_TOKEN, cancel)
        assert status == 202, body
        assert body["msg_type"] == "Cancel"
        await until_alerts(0)  # closed: gone from the queue
    finally:
        if g is not None:
            await g.__aexit__(None, None, None)
        assert core.stop() == 0, core.log()


# --- the pure part, and the configuration ---------------------------------------------


def test_grants_scopes_and_senders() -> None:
    legacy = Grants({}, {})
    assert legacy.endpoints_of("anyone") == ("sos", "cap")
    assert legacy.may_use("anyone", "cap") is None
    assert legacy.check_alert("anyone", POLICE, [SMPA]) is None

    grants = Grants(
        {SOURCE: ["sos"], CAP_SOURCE: ["cap", "sos"], "off": []}, {POLICE: [CAP_SOURCE]}
    )
    assert grants.endpoints_of(CAP_SOURCE) == ("sos", "cap")
    assert grants.may_use(SOURCE, "sos") is None
    assert "scoped to sos, not 'cap'" in (grants.may_use(SOURCE, "cap") or "")
    assert "scoped to no endpoint" in (grants.may_use("off", "sos") or "")
    assert "no [gateway.scopes] entry" in (grants.may_use("stranger", "sos") or "")
    assert grants.check_alert(CAP_SOURCE, POLICE, [POLICE, POLICE]) is None
    assert (grants.check_alert(SOURCE, POLICE, []) or ("", ""))[0] == "sender"
    denied = grants.check_alert(CAP_SOURCE, POLICE, [POLICE, SMPA])
    assert denied is not None and denied[0] == "references" and SMPA in denied[1]
    long = "x" * 500 + "\x07"
    reason = grants.check_alert(CAP_SOURCE, long, [])
    assert reason is not None and len(reason[1]) < 200 and "\x07" not in reason[1]
    with pytest.raises(ValueError, match="unknown endpoints"):
        Grants({SOURCE: ["health"]}, {})


def test_grants_warn_about_open_or_stray_entries() -> None:
    assert len(Grants({}, {}).warnings([SOURCE])) == 2  # every endpoint, any sender
    assert Grants({}, {}).warnings([]) == []
    warnings = Grants({SOURCE: ["sos"], "gone": ["cap"]}, {POLICE: ["nobody"]}).warnings(
        [SOURCE, OTHER]
    )
    assert any("no endpoint: app2" in w for w in warnings)
    assert any("without a token: gone" in w for w in warnings)
    assert any("[gateway.cap_senders] names sources without a token: nobody" in w for w in warnings)
    assert Grants({SOURCE: ["sos"]}, {}).warnings([SOURCE]) == []  # no cap: senders moot


def test_config_reads_scopes_and_senders(tmp_path: Path) -> None:
    shipped = config_module.load(config_module.DEFAULT_PATH, environ={}).gateway
    assert (shipped.scopes, shipped.cap_senders, shipped.summary_stale_s) == ({}, {}, 15.0)
    path = tmp_path / "c.toml"
    path.write_text(
        f'[gateway.tokens]\npolice-cap = "{CAP_TOKEN}"\n'
        '[gateway.scopes]\npolice-cap = ["cap"]\n'
        '[gateway.cap_senders]\n"police@seoul.go.kr" = ["police-cap"]\n',
        encoding="utf-8",
    )
    cfg = config_module.load(path, environ={}).gateway
    assert cfg.scopes == {CAP_SOURCE: ["cap"]} and cfg.cap_senders == {POLICE: [CAP_SOURCE]}
    env = {"ANSIM_GATEWAY__SCOPES": '{ police-cap = ["sos", "cap"] }'}
    assert config_module.load(path, environ=env).gateway.scopes == {CAP_SOURCE: ["sos", "cap"]}
    path.write_text('[gateway.scopes]\napp = ["health"]\n', encoding="utf-8")
    with pytest.raises(config_module.ConfigError, match="scopes"):
        config_module.load(path, environ={})
    path.write_text('[gateway.cap_senders]\n"a, b" = ["app"]\n', encoding="utf-8")
    with pytest.raises(config_module.ConfigError, match="cap_senders"):
        config_module.load(path, environ={})
