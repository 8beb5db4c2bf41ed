"""An ordered list of brokers: the order of attempts, the backoff between rounds, the return.

The ring is pure and tested on its own; the transport is then run against two real
Mosquittos: the first one down at start, killed under a connection, and back again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.config import ConfigError, load, mqtt_settings
from protocols.mqtt import MqttSettings, Transport
from protocols.mqtt_brokers import BrokerRing, format_address, parse_address
from tests.brokers import MosquittoBroker, find_mosquitto, free_port, receive, until

A, B, C = ("10.0.0.1", 1883), ("10.0.0.2", 1883), ("10.0.0.3", 1884)


# --- the ring, pure ------------------------------------------------------------------


def test_one_broker_backs_off_after_every_attempt_as_before() -> None:
    ring = BrokerRing([A])
    assert [ring.ended(lasted=False) for _ in range(3)] == [True, True, True]
    assert ring.ended(lasted=True) is True
    assert ring.current == A and ring.preferred == ()


def test_a_failed_broker_moves_on_at_once_and_a_full_round_backs_off() -> None:
    ring = BrokerRing([A, B, C])
    order, pauses = [ring.current], []
    for _ in range(6):
        pauses.append(ring.ended(lasted=False))
        order.append(ring.current)
    assert order == [A, B, C, A, B, C, A]
    assert pauses == [False, False, True, False, False, True]


def test_a_lost_connection_that_lasted_starts_a_new_round_at_the_next_broker() -> None:
    ring = BrokerRing([A, B])
    assert ring.ended(lasted=False) is False  # A refused: B at once
    assert ring.ended(lasted=True) is False  # B lasted, then lost: A at once, new round
    assert ring.current == A
    assert ring.ended(lasted=False) is True  # A refused too: both failed, pause


def test_connections_dropped_at_once_do_not_spin_between_brokers() -> None:
    ring = BrokerRing([A, B])
    pauses = [ring.ended(lasted=False) for _ in range(4)]  # kicked out at once, each time
    assert pauses == [False, True, False, True]


def test_a_party_on_a_fallback_returns_to_the_earlier_broker_that_answers() -> None:
    ring = BrokerRing([A, B, C])
    ring.ended(lasted=False)
    ring.ended(lasted=False)
    assert ring.current == C and ring.preferred == (A, B)
    ring.return_to(1, lasted=True)  # B answered first
    assert ring.current == B and ring.preferred == (A,)
    with pytest.raises(ValueError, match="not before"):
        ring.return_to(1, lasted=True)


def test_returns_that_keep_failing_check_less_often() -> None:
    ring = BrokerRing([A, B])
    ring.ended(lasted=False)
    assert ring.return_check_s(30) == 30
    for expected in (60, 120, 240, 480, 480):
        ring.return_to(0, lasted=True)
        ring.ended(lasted=False)  # A took TCP but refused the MQTT connect: back on B
        assert ring.current == B
        assert ring.return_check_s(30) == expected
    ring.return_to(0, lasted=True)
    ring.ended(lasted=True)  # that return held: the checks are frequent again
    assert ring.return_check_s(30) == 30


def test_settings_name_the_broker_in_use_and_the_rest_in_the_order_they_are_tried() -> None:
    configured = MqttSettings(host=A[0], port=A[1], fallbacks=(B, C))
    ring = BrokerRing(configured.brokers)
    assert ring.settings(configured) == configured
    ring.ended(lasted=False)
    in_use = ring.settings(configured)
    assert in_use.address == "10.0.0.2:1883"
    assert in_use.brokers == (B, C, A)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10.0.0.2:1883", ("10.0.0.2", 1883)), ("broker-2.local:8883", ("broker-2.local", 8883)),
     ("[::1]:1883", ("::1", 1883)), (" h:1 ", ("h", 1))],
)  # fmt: skip
def test_addresses_parse(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected
    assert parse_address(format_address(expected)) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [("broker", "not host:port"), (":1883", "not host:port"), ("h:0", "1 to 65535"),
     ("h:70000", "1 to 65535"), ("h:x", "1 to 65535"), ("::1:1883", "brackets"),
     ("a b:1883", "not a host")],
)  # fmt: skip
def test_bad_addresses_are_refused_with_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_address(text)


# --- the configuration ---------------------------------------------------------------


def write(tmp_path: Path, broker: str) -> Path:
    path = tmp_path / "ansim.toml"
    path.write_text(f'[broker]\nmode = "external"\nport = 1883\n{broker}\n', encoding="utf-8")
    return path


def test_old_configs_keep_one_broker(tmp_path: Path) -> None:
    settings = mqtt_settings(load(write(tmp_path, 'host = "10.0.0.1"')))
    assert settings.brokers == (A,)
    assert settings.address == "10.0.0.1:1883"


def test_fallbacks_are_read_in_order(tmp_path: Path) -> None:
    config = write(tmp_path, 'host = "10.0.0.1"\nfallbacks = ["10.0.0.2:1883", "10.0.0.3:1884"]')
    settings = mqtt_settings(load(config))
    assert settings.brokers == (A, B, C)


def test_a_bad_fallback_is_refused_at_load_with_file_key_and_why(tmp_path: Path) -> None:
    config = write(tmp_path, 'fallbacks = ["10.0.0.2:1883", "10.0.0.3"]')
    with pytest.raises(ConfigError) as refused:
        load(config)
    text = str(refused.value)
    assert str(config) in text and "[broker]" in text
    assert "fallbacks, entry 2" in text and "not host:port" in text


def test_fallbacks_from_the_environment(tmp_path: Path) -> None:
    env = {"ANSIM_BROKER__FALLBACKS": '["10.0.0.2:1883"]'}
    settings = mqtt_settings(load(write(tmp_path, ""), env))
    assert settings.fallbacks == (B,)


# --- the transport against two real brokers -----------------------------------------

needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto")


@pytest.fixture
def two_brokers(tmp_path: Path) -> Iterator[tuple[MosquittoBroker, MosquittoBroker]]:
    first, second = MosquittoBroker(tmp_path / "b1"), MosquittoBroker(tmp_path / "b2")
    try:
        yield first, second
    finally:
        first.kill()
        second.kill()


def settings_for(*brokers: MosquittoBroker | int) -> MqttSettings:
    ports = [b if isinstance(b, int) else b.port for b in brokers]
    return MqttSettings(
        host="127.0.0.1",
        port=ports[0],
        fallbacks=tuple(("127.0.0.1", p) for p in ports[1:]),
        keepalive=5,
        reconnect_min_s=0.05,
        reconnect_max_s=0.5,
        return_check_s=0.1,
    )


@needs_mosquitto
async def test_a_dead_first_broker_costs_one_refused_connect(
    two_brokers: tuple[MosquittoBroker, MosquittoBroker],
) -> None:
    _, second = two_brokers
    second.start()
    async with Transport(settings_for(free_port(), second), "t1", subscriptions=["x/#"]) as t:
        await t.wait_connected(5)
        assert t.settings.address == f"127.0.0.1:{second.port}"


@needs_mosquitto
async def test_a_persistent_transport_moves_to_the_second_broker_and_back(
    two_brokers: tuple[MosquittoBroker, MosquittoBroker],
) -> None:
    first, second = two_brokers
    first.start()
    second.start()
    settings = settings_for(first, second)
    async with Transport(settings, "core", subscriptions=["x/#"], persistent=True) as t:
        await t.wait_connected(5)
        assert t.settings.address == f"127.0.0.1:{first.port}"
        first.stop()  # SIGTERM: it saves its sessions, so the return below resumes one
        await until(lambda: t.connected and t.settings.port == second.port, 10, "on broker 2")
        assert not t.session_present  # a session lives on one broker: a fresh one here
        async with Transport(dataclasses.replace(settings, port=second.port), "pub") as pub:
            await pub.wait_connected(5)
            await pub.publish("x/1", b"via broker 2")  # the subscription was made anew
        assert [m.payload for m in await receive(t.messages(), 1)] == [b"via broker 2"]
        first.start()  # back: everyone converges on the first broker again
        await until(lambda: t.connected and t.settings.port == first.port, 10, "back on 1")
        assert t.session_present  # its session there survived (persistence on)
        assert t.stats.reconnects == 2
