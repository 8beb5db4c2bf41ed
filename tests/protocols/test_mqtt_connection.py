"""``_Connection`` on a socketpair, the test playing the broker: the fast path hands paho
whole packets in order, writes acknowledgements and batch publishes as few sends, and keeps
paho's bookkeeping empty."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import aiomqtt
import pytest

from protocols.mqtt_connection import _Connection
from protocols.mqtt_fastpath import (
    Publish,
    encode_puback,
    scan,
)
from protocols.mqtt_types import Incoming
from tests.protocols.mqtt_packets import (
    PINGRESP,
    packet,
    properties,
    properties_of_puback,
    puback,
    publish,
)


class Wire:
    """A ``_Connection`` whose paho client reads one end of a socketpair; the test is the broker."""

    def __init__(self, v5: bool, manual_ack: bool) -> None:
        self.got: list[Incoming] = []
        protocol = aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311
        self.conn = _Connection(
            self.got.append, manual_ack, hostname="127.0.0.1", port=1, protocol=protocol
        )
        ours, self.broker = socket.socketpair()
        ours.setblocking(False)
        self.broker.settimeout(2)
        self.client = self.conn._client
        self.client._sock = ours

    def feed(self, data: bytes) -> None:
        """``data`` arrives; one wake-up of the reader."""
        if data:
            self.broker.sendall(data)
        self.conn._may_recv = True
        self.conn._drain()
        self.conn._may_recv = False
        if not self.conn._paho_left:  # paho is only ever handed whole packets
            assert self.client._in_packet["command"] == 0

    async def written(self, size: int) -> bytes:
        """What the connection wrote, once its writer has run."""
        for _ in range(50):
            if not self.client._out_packet:
                break
            await asyncio.sleep(0)
        out = b""
        while len(out) < size:
            out += await asyncio.to_thread(self.broker.recv, 65536)
        return out

    def close(self) -> None:
        self.client._sock_close()
        self.broker.close()
        for future in (self.conn._connected, self.conn._disconnected):
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: no "never retrieved" warning


@pytest.fixture
def wires() -> Iterator[list[Wire]]:
    made: list[Wire] = []
    yield made
    for wire in made:
        wire.close()


def message_tuples(got: list[Incoming]) -> list[tuple[str, bytes, int, bool, int]]:
    return [(m.topic, m.payload, m.qos, m.retain, m.mid) for m in got]


@pytest.mark.parametrize("v5", [False, True], ids=["3.1.1", "5"])
async def test_connection_split_at_every_byte(wires: list[Wire], v5: bool) -> None:
    wire = Wire(v5, manual_ack=True)
    wires.append(wire)
    alias = properties(TopicAlias=1) if v5 else b"\x00"
    stream = b"".join(
        [
            publish("a/1", b"one", v5=v5, mid=1),
            PINGRESP,  # paho: no longer waiting for a PINGRESP
            publish("a/2", b"two" * 50, qos=0, v5=v5),
            publish("a/3", b"three", qos=2, v5=v5, mid=3),  # paho: PUBREC now, delivery at PUBREL
            packet(0x62, b"\x00\x03"),  # PUBREL
            publish("a/4", b"four", v5=v5, mid=4, props=alias),  # v5: paho (a Topic Alias)
            publish("a/5", b"five", v5=v5, mid=5),
        ]
    )
    expected = [
        ("a/1", b"one", 1, False, 1),
        ("a/2", b"two" * 50, 0, False, 0),
        ("a/3", b"three", 2, False, 3),
        ("a/4", b"four", 1, False, 4),
        ("a/5", b"five", 1, False, 5),
    ]
    # paho's loop_read reads one packet per message it holds: it must still stop at the end
    # of the one packet it was handed.
    for _ in range(3):
        wire.client.publish("held/by/paho", b"", qos=1)
    for cut in range(len(stream) + 1):
        wire.got.clear()
        wire.client._ping_t = 1.0
        wire.feed(stream[:cut])
        wire.feed(stream[cut:])
        assert message_tuples(wire.got) == expected, cut
        assert wire.client._ping_t == 0
        assert (wire.conn._rpos, wire.conn._paho_left) == (len(wire.conn._rbuf), 0)
        assert not wire.client._in_messages  # QoS 2 completed by paho
        assert [m._acker is not None for m in wire.got] == [True, False, True, True, True]
    assert wire.client._last_bytes_received > 0


async def test_big_packet_goes_through_paho_across_reads(wires: list[Wire]) -> None:
    wire = Wire(v5=True, manual_ack=True)
    wires.append(wire)
    big = publish("big", bytes(range(256)) * 1100, v5=True, mid=2)  # > MAX_KEPT
    stream = publish("small", b"s", v5=True) + big + publish("after", b"a", v5=True, mid=3)
    for start in range(0, len(stream), 100_000):
        wire.feed(stream[start : start + 100_000])
    assert [m.topic for m in wire.got] == ["small", "big", "after"]
    assert wire.got[1].payload == bytes(range(256)) * 1100


async def test_end_of_stream_goes_to_paho(wires: list[Wire]) -> None:
    wire = Wire(v5=False, manual_ack=True)
    wires.append(wire)
    whole = publish("w", b"whole")
    wire.feed(whole + publish("p", b"partial")[:5])
    wire.broker.shutdown(socket.SHUT_WR)
    wire.feed(b"")
    assert [m.topic for m in wire.got] == ["w"]
    assert wire.client._sock is None  # paho saw the end and closed


async def test_manual_acks_go_out_as_one_write(wires: list[Wire]) -> None:
    wire = Wire(v5=True, manual_ack=True)
    wires.append(wire)
    wire.feed(b"".join(publish("m", b"%d" % i, mid=i, v5=True) for i in range(1, 201)))
    assert len(wire.got) == 200 and not wire.client._out_packet
    for message in wire.got[:100]:
        message.ack()
        message.ack()  # idempotent
    assert len(wire.client._out_packet) == 1
    expected = b"".join(encode_puback(i) for i in range(1, 101))
    assert await wire.written(len(expected)) == expected

    # From another thread: handed to the loop, still one write.
    def ack_from_a_thread() -> None:
        for message in wire.got[100:150]:
            message.ack()

    await asyncio.to_thread(ack_from_a_thread)
    expected = b"".join(encode_puback(i) for i in range(101, 151))
    assert await wire.written(len(expected)) == expected

    # Never appended to a packet paho has started writing, nor past one paho queued later.
    wire.got[150].ack()
    assert wire.conn._tail is not None
    wire.conn._tail["pos"] = 1  # as if partly written
    wire.got[151].ack()
    wire.client._send_pingreq()
    wire.got[152].ack()
    assert len(wire.client._out_packet) == 4

    # A closed connection sends nothing: the next one must not see an old packet id.
    wire.client._out_packet.clear()
    wire.conn.close()
    wire.got[160].ack()
    assert not wire.client._out_packet


async def test_auto_ack_pubacks_after_delivery(wires: list[Wire]) -> None:
    wire = Wire(v5=False, manual_ack=False)
    wires.append(wire)
    wire.feed(b"".join(publish("a", b"x", mid=i, qos=i % 2) for i in range(1, 11)))
    assert all(m._acker is None for m in wire.got)
    expected = b"".join(encode_puback(i) for i in range(1, 11, 2))
    assert await wire.written(len(expected)) == expected


@pytest.mark.parametrize("v5", [False, True], ids=["3.1.1", "5"])
async def test_batch_publishes_and_their_pubacks(wires: list[Wire], v5: bool) -> None:
    wire = Wire(v5, manual_ack=True)
    wires.append(wire)
    wire.conn._window = 3
    items = [(f"out/{i}", b"p%d" % i, i == 4) for i in range(8)]
    done = wire.conn.publish_batch(items, 1)
    sent: list[Publish | int] = []
    while len(sent) < len(items):
        data = await wire.written(1)
        found = scan(data, 0, v5, set())
        assert found.pos == len(data)  # whole packets, in one write
        assert len(found.items) <= 3  # the window
        sent += found.items
        assert not done.done()
        wire.feed(b"".join(puback(item[4]) for item in found.items if isinstance(item, tuple)))
    await asyncio.sleep(0)
    assert done.done() and done.result() == []  # nothing refused
    assert [(m[0], m[1], m[3]) for m in sent if isinstance(m, tuple)] == items
    assert len({m[4] for m in sent if isinstance(m, tuple)}) == len(items)  # distinct ids
    assert not wire.conn._inflight
    # paho's bookkeeping never saw them: nothing to resend, nothing held.
    assert not wire.client._out_messages and wire.client._inflight_messages == 0
    with pytest.raises(ValueError, match="wildcards"):
        wire.conn.publish_batch([("ok", b"", False), ("a/#", b"", False)], 1)
    with pytest.raises(ValueError, match="QoS"):
        wire.conn.publish_batch([("ok", b"", False)], 2)
    assert not wire.conn._outq  # nothing of a refused batch was queued

    # QoS 0: done once queued; nothing waits for a PUBACK.
    done = wire.conn.publish_batch([("q0/a", b"x", False), ("q0/b", b"y", True)], 0)
    assert done.done() and not wire.conn._inflight
    data = await wire.written(1)
    assert scan(data, 0, v5, set()).items == [
        ("q0/a", b"x", 0, False, 0),
        ("q0/b", b"y", 0, True, 0),
    ]

    # The socket gone: the batch fails at once (the transport turns it into NotConnected).
    wire.client._sock_close()
    done = wire.conn.publish_batch([("late", b"", False)], 1)
    assert isinstance(done.exception(), aiomqtt.MqttCodeError)


async def test_refused_pubacks_fail_only_their_messages(wires: list[Wire]) -> None:
    wire = Wire(v5=True, manual_ack=True)
    wires.append(wire)
    items = [(f"out/{i}", b"p", False) for i in range(5)]
    done = wire.conn.publish_batch(items, 1)
    data = await wire.written(1)
    sent = [item for item in scan(data, 0, True, set()).items if isinstance(item, tuple)]
    assert len(sent) == len(items)
    reasons = {"out/1": b"\x87", "out/3": b"\x97\x00", "out/4": b"\x10"}  # 0x10 is a success
    # Out of order, and a 0x87 with a Reason String: neither matters.
    pubacks = [puback(m[4], reasons.get(m[0], b"")) for m in reversed(sent)]
    pubacks[0] = puback(sent[-1][4], b"\x87" + properties_of_puback(ReasonString="no"))
    wire.feed(b"".join(pubacks))
    await asyncio.sleep(0)
    refused = done.result()
    assert [(r.index, r.topic, r.reason_code, r.reason_name) for r in refused] == [
        (1, "out/1", 0x87, "Not authorized"),
        (3, "out/3", 0x97, "Quota exceeded"),
        (4, "out/4", 0x87, "Not authorized"),
    ]
    assert "out/1" in str(refused[0]) and "0x87" in str(refused[0])
    assert not wire.conn._inflight


@pytest.mark.parametrize("v5", [False, True], ids=["3.1.1", "5"])
async def test_single_publish_reads_the_puback_reason(wires: list[Wire], v5: bool) -> None:
    # paho's own publish path: aiomqtt's on_publish gets the reason code and drops it.
    wire = Wire(v5, manual_ack=True)
    wires.append(wire)
    refused = wire.conn.publish_acked("no/entry", b"x", 1, False)
    accepted = wire.conn.publish_acked("fine", b"y", 1, False)
    data = await wire.written(1)
    mids = [m[4] for m in scan(data, 0, v5, set()).items if isinstance(m, tuple)]
    assert len(mids) == 2
    wire.feed(puback(mids[0], b"\x87" if v5 else b"") + puback(mids[1]))
    first, second = refused.result(), accepted.result()
    assert first is not None and second is not None
    assert (first.value, first.is_failure) == ((0x87, True) if v5 else (0, False))
    assert (second.value, second.is_failure) == (0, False)
    assert not wire.conn._acks and not wire.client._out_messages
