"""A publish the broker refuses is reported as refused, never counted as delivered.

A real Mosquitto runs the shipped deploy/mosquitto.conf with the ACL and password file
that deploy/make-passwords.sh makes (tests/secure_broker.py): the source ``cam-1`` may
write ``ansim/v1/raw/cam-1/#`` only. Under MQTT 5, Mosquitto 2.0 answers an ACL denial
with a PUBACK whose reason code is 0x87 "Not authorized" and drops the message.

What reached the broker is proven by what the core (which reads every raw topic)
receives: one publisher's messages keep their order, so when the allowed messages sent
after a refused one arrive with nothing in between, the refused one was dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator

import pytest

from protocols import topics
from protocols.mqtt import MqttSettings, PublishRefused, Transport, TransportError
from tests.brokers import find_mosquitto, receive
from tests.secure_broker import CORE, NOT_AUTHORIZED, DeployBroker

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto")

ALLOWED = topics.raw("cam-1", topics.RAW_SOS)
DENIED = topics.raw("cam-2", topics.RAW_SOS)  # another source's topic: a spoof


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployBroker]:
    broker = DeployBroker(tmp_path_factory.mktemp("acl-broker"))
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


def settings(broker: DeployBroker, user: str, protocol: int = 5) -> MqttSettings:
    return MqttSettings(
        host=broker.host,
        port=broker.port,
        protocol=protocol,
        username=user,
        password=broker.passwords[user],
        reconnect_min_s=0.05,
        reconnect_max_s=0.5,
    )


@pytest.fixture
async def core(deployed: DeployBroker, request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    """The core's view of the raw topics: what really got through."""
    name = f"{CORE}-{request.node.name[-30:]}"
    transport = Transport(settings(deployed, CORE), name, subscriptions=[topics.RAW_ALL])
    async with transport:
        await transport.wait_connected(5)
        yield transport


async def arrived(core: Transport, count: int) -> list[tuple[str, bytes]]:
    return [(m.topic, m.payload) for m in await receive(core.messages(), count)]


@pytest.mark.parametrize("fast", [False, True], ids=["publish", "publish_many"])
async def test_a_refused_publish_raises_or_is_reported_and_is_not_counted(
    deployed: DeployBroker, core: Transport, fast: bool
) -> None:
    async with Transport(settings(deployed, "cam-1"), f"cam-1-{fast}") as cam:
        await cam.wait_connected(5)
        if fast:  # the batch path: our own PUBLISH encoding and PUBACK decoding
            refused = await cam.publish_many(
                [(ALLOWED, b"1", False), (DENIED, b"spoof", False), (ALLOWED, b"2", False)]
            )
            assert [(r.index, r.topic, r.reason_code) for r in refused] == [
                (1, DENIED, NOT_AUTHORIZED)
            ]
        else:  # paho's publish and on_publish
            await cam.publish(ALLOWED, b"1")
            with pytest.raises(PublishRefused) as caught:
                await cam.publish(DENIED, b"spoof")
            refusal = caught.value
            assert (refusal.topic, refusal.reason_code) == (DENIED, NOT_AUTHORIZED)
            assert refusal.reason_name == "Not authorized" and refusal.index is None
            assert isinstance(refusal, TransportError)
            assert "not authorized" in str(refusal).lower() and DENIED in str(refusal)
            await cam.publish(ALLOWED, b"2")  # the connection is fine: it was only refused
        assert (cam.stats.published, cam.stats.refused) == (2, 1)
        assert cam.connected and cam.stats.reconnects == 0
    assert await arrived(core, 2) == [(ALLOWED, b"1"), (ALLOWED, b"2")]


async def test_every_refusal_in_a_big_batch_is_reported(
    deployed: DeployBroker, core: Transport
) -> None:
    # More than one in-flight window (1000), refusals spread through it.
    items = [(DENIED if i % 7 == 3 else ALLOWED, b"%d" % i, False) for i in range(2500)]
    async with Transport(settings(deployed, "cam-1"), "cam-1-big") as cam:
        await cam.wait_connected(5)
        refused = await cam.publish_many(items)
        expected = [i for i, (topic, _, _) in enumerate(items) if topic == DENIED]
        assert [r.index for r in refused] == expected
        assert {r.reason_code for r in refused} == {NOT_AUTHORIZED}
        assert cam.stats.published == len(items) - len(expected)
        assert cam.stats.refused == len(expected)
    allowed = [(t, p) for t, p, _ in items if t == ALLOWED]
    assert await arrived(core, len(allowed)) == allowed


async def test_a_refused_connect_publish_does_not_stop_the_connection(
    deployed: DeployBroker, core: Transport
) -> None:
    denied_presence = topics.presence("someone-else")
    transport = Transport(
        settings(deployed, "cam-1"),
        "cam-1-hello",
        on_connect_publish=[(denied_presence, b"online", True)],
    )
    async with transport:
        await transport.wait_connected(5)
        assert transport.stats.refused == 1
        await transport.publish(ALLOWED, b"after")
    assert await arrived(core, 1) == [(ALLOWED, b"after")]


async def test_mqtt311_cannot_tell_a_refusal(deployed: DeployBroker, core: Transport) -> None:
    # 3.1.1 has no PUBACK reason codes: Mosquitto acknowledges and drops. This is why the
    # deployed clients speak MQTT 5 (docs/transport.md).
    v311 = dataclasses.replace(settings(deployed, "cam-1"), protocol=4)
    async with Transport(v311, "cam-1-311") as cam:
        await cam.wait_connected(5)
        await cam.publish(DENIED, b"spoof")
        assert await cam.publish_many([(DENIED, b"spoof", False)]) == []
        await cam.publish(ALLOWED, b"3.1.1")
        assert cam.stats.refused == 0
    assert await arrived(core, 1) == [(ALLOWED, b"3.1.1")]


def test_the_acl_is_the_shipped_one(deployed: DeployBroker) -> None:
    acl = (deployed.security_dir / "acl").read_text()
    assert "user cam-1\ntopic write ansim/v1/raw/cam-1/#" in acl
    assert deployed.config_path.read_text().count("acl_file ") == 1
