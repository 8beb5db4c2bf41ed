"""Every message kind through a real broker and back; bad payloads do not stop the stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from protocols import codec, topics
from protocols.codec import WireError
from protocols.mqtt import Incoming, MqttSettings, Transport
from tests.brokers import until
from tests.protocols.test_codec import SAMPLES


@dataclass
class Consumer:
    """What a real subscriber does: decode each payload, keep the good, report the bad."""

    good: list[Any] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (topic, reason)

    async def run(self, transport: Transport) -> None:
        async for message in transport.messages():
            self.handle(message)

    def handle(self, message: Incoming) -> None:
        try:
            self.good.append(codec.decode_any(message.payload))
        except WireError as exc:
            self.rejected.append((message.topic, exc.reason))


@pytest.fixture
async def pair(mqtt_settings: MqttSettings) -> AsyncIterator[tuple[Transport, Consumer]]:
    consumer = Consumer()
    sub = Transport(mqtt_settings, "wire-sub", subscriptions=[f"{topics.ROOT}/#"])
    async with sub, Transport(mqtt_settings, "wire-pub") as pub:
        await sub.wait_connected(5)
        await pub.wait_connected(5)
        task = asyncio.create_task(consumer.run(sub))
        yield pub, consumer
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("as_json", [False, True], ids=["msgpack", "json"])
async def test_every_kind_round_trips_through_the_broker(
    pair: tuple[Transport, Consumer], as_json: bool
) -> None:
    pub, consumer = pair
    encode = codec.encode_json if as_json else codec.encode
    for message in SAMPLES:
        await pub.publish(topics.raw("wire-test", type(message).__name__.lower()), encode(message))
    await until(lambda: len(consumer.good) == len(SAMPLES), what="all samples")
    assert consumer.good == SAMPLES
    assert consumer.rejected == []


async def test_bad_payloads_are_reported_and_good_ones_keep_flowing(
    pair: tuple[Transport, Consumer],
) -> None:
    pub, consumer = pair
    sos = SAMPLES[0]
    wild = msgspec.to_builtins(sos) | {"lat": 200.0}
    bad = [
        codec.encode(wild),
        b"",
        b"\xde\xad\xbe\xef",
        b'{"type": "sos", "alarm_id": "a-1"',
        bytes(300 * 1024),
    ]
    topic = topics.raw("wire-test", topics.RAW_SOS)
    expected = []
    for i, junk in enumerate(bad):
        good = msgspec.structs.replace(sos, alarm_id=f"a-{i}")
        expected.append(good)
        await pub.publish(topic, codec.encode(good))
        await pub.publish(topic, junk)
    last = msgspec.structs.replace(sos, alarm_id="a-last")
    expected.append(last)
    await pub.publish(topic, codec.encode(last))

    await until(lambda: len(consumer.good) == len(expected), what="the good ones")
    assert consumer.good == expected  # in order, none lost around the bad ones
    assert len(consumer.rejected) == len(bad)
    assert all(t == topic for t, _ in consumer.rejected)
    reasons = [r for _, r in consumer.rejected]
    assert "$.lat" in reasons[0]
    assert reasons[1] == "empty payload"
    assert "exceeds" in reasons[4]
