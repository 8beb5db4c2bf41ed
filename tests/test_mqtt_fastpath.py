"""The receive/send fast path: the pure codec byte by byte, then ``_Connection`` on a socketpair.

Packets are built here by hand (and cross-checked with paho's own decoder and property
encoder), not with the encoder under test.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator, Sequence
from typing import Any

import aiomqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt import _packet as paho_packet
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from protocols.mqtt_connection import _Connection
from protocols.mqtt_fastpath import (
    MALFORMED,
    MAX_KEPT,
    Publish,
    encode_puback,
    encode_publish,
    scan,
)
from protocols.mqtt_types import Incoming

# --- building packets by hand -------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + varint(len(body)) + body


def publish(
    topic: str | bytes,
    payload: bytes,
    *,
    qos: int = 1,
    retain: bool = False,
    mid: int = 1,
    v5: bool = False,
    props: bytes = b"\x00",  # v5 only: length and properties, as paho's Properties.pack()
) -> bytes:
    t = topic.encode() if isinstance(topic, str) else topic
    body = len(t).to_bytes(2, "big") + t
    if qos:
        body += mid.to_bytes(2, "big")
    if v5:
        body += props
    return packet(0x30 | qos << 1 | int(retain), body + payload)


def puback(mid: int, extra: bytes = b"") -> bytes:
    return packet(0x40, mid.to_bytes(2, "big") + extra)


def properties(**values: Any) -> bytes:
    props = Properties(PacketTypes.PUBLISH)
    for name, value in values.items():
        setattr(props, name, value)
    return bytes(props.pack())


PINGRESP = b"\xd0\x00"
SUBACK = packet(0x90, b"\x00\x07\x01")
CONNACK = packet(0x20, b"\x00\x00")


def consume(
    chunks: Sequence[bytes], v5: bool, ours: set[int]
) -> tuple[list[tuple[str, Any]], bytes, int]:
    """Feed ``chunks`` the way ``_Connection`` does: (events, unread remainder, paho's share).

    Events are ("item", decoded) and ("paho", the whole packet paho was handed).
    """
    events: list[tuple[str, Any]] = []
    buf, pos, paho_left, paho_bytes = b"", 0, 0, bytearray()
    for chunk in chunks:
        buf, pos = buf[pos:] + chunk, 0
        while True:
            if paho_left:
                take = min(paho_left, len(buf) - pos)
                paho_bytes += buf[pos : pos + take]
                pos, paho_left = pos + take, paho_left - take
                if paho_left:
                    break
                events.append(("paho", bytes(paho_bytes)))
                paho_bytes.clear()
                continue
            found = scan(buf, pos, v5, ours)
            events += [("item", item) for item in found.items]
            pos, paho_left = found.pos, found.handoff
            if not paho_left:
                break
    return events, buf[pos:], paho_left


def splits_in_two(stream: bytes) -> Iterator[list[bytes]]:
    for cut in range(len(stream) + 1):
        yield [stream[:cut], stream[cut:]]


# --- the decoder ---------------------------------------------------------------------


@pytest.mark.parametrize("v5", [False, True], ids=["3.1.1", "5"])
def test_publish_fields_qos_0_and_1(v5: bool) -> None:
    stream = (
        publish("a/b", b"hello", qos=1, mid=513, v5=v5)
        + publish("a/c", b"", qos=0, retain=True, v5=v5)
        + publish("é/ü", bytes(range(256)) * 3, qos=1, mid=65535, v5=v5)  # 2-byte length
        + publish("x", b"z" * 20_000, qos=0, v5=v5)  # 3-byte length
    )
    found = scan(stream, 0, v5, set())
    assert found.items == [
        ("a/b", b"hello", 1, False, 513),
        ("a/c", b"", 0, True, 0),
        ("é/ü", bytes(range(256)) * 3, 1, False, 65535),
        ("x", b"z" * 20_000, 0, False, 0),
    ]
    assert (found.pos, found.handoff) == (len(stream), 0)


def test_v5_properties_are_skipped() -> None:
    props = properties(
        PayloadFormatIndicator=1,
        MessageExpiryInterval=60,
        ContentType="application/json",
        ResponseTopic="reply/here",
        CorrelationData=b"\x00\xff",
        SubscriptionIdentifier=300,  # a 2-byte varint
        UserProperty=[("k", "v"), ("k2", "v2")],
    )
    stream = publish("t/1", b"payload", v5=True, props=props, mid=9)
    assert scan(stream, 0, True, set()).items == [("t/1", b"payload", 1, False, 9)]


def test_hand_built_packets_agree_with_paho() -> None:
    props = properties(UserProperty=[("a", "b")], MessageExpiryInterval=5)
    for v5, pkt in [
        (False, publish("s/t", b"body", mid=77)),
        (True, publish("s/t", b"body", mid=77, v5=True, props=props)),
    ]:
        ours = scan(pkt, 0, v5, set()).items[0]
        assert isinstance(ours, tuple)
        protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
        theirs = paho_packet.decode_publish(pkt[0], pkt[2:], protocol)
        assert ours == (theirs.topic.decode(), theirs.payload, theirs.qos, theirs.retain, 77)


@pytest.mark.parametrize(
    ("v5", "odd"),
    [
        (True, publish("t", b"aliased", v5=True, props=properties(TopicAlias=3))),
        (False, publish("t", b"qos2", qos=2)),
        (True, publish("t", b"qos2", qos=2, v5=True)),
        (False, publish(b"\xff\xfe", b"not utf-8")),
        (False, publish("", b"empty topic")),
        (True, publish("t", b"bad props", v5=True, props=b"\x02\x99\x00")),
        (False, puback(8)),  # not one of ours
        (False, PINGRESP),
        (False, SUBACK),
        (False, CONNACK),
    ],
    ids=[
        "topic-alias",
        "qos2-v3",
        "qos2-v5",
        "invalid-utf8",
        "empty-topic",
        "unknown-property",
        "foreign-puback",
        "pingresp",
        "suback",
        "connack",
    ],
)
def test_what_paho_gets_whole_and_in_order(v5: bool, odd: bytes) -> None:
    before = publish("first", b"1", v5=v5)
    after = publish("after", b"2", v5=v5)
    found = scan(before + odd + after, 0, v5, {7})
    assert found.items == [("first", b"1", 1, False, 1)]
    assert (found.pos, found.handoff) == (len(before), len(odd))
    rest = scan(before + odd + after, len(before) + len(odd), v5, {7})
    assert rest.items == [("after", b"2", 1, False, 1)]


@pytest.mark.parametrize("v5", [False, True], ids=["3.1.1", "5"])
def test_pubacks_of_ours_are_taken(v5: bool) -> None:
    stream = puback(7) + puback(8)
    if v5:
        stream += puback(9, b"\x10") + puback(10, b"\x80\x00")  # reason code, properties
    ours = {7, 8, 9, 10}
    assert scan(stream, 0, v5, ours).items == ([7, 8, 9, 10] if v5 else [7, 8])
    assert scan(puback(7, b"\x00"), 0, False, ours).handoff == 5  # not a 3.1.1 PUBACK


def test_incomplete_packets_wait_big_ones_go_to_paho() -> None:
    whole = publish("t", b"x" * 1000)
    for cut in range(len(whole)):
        assert scan(whole[:cut], 0, False, set()) == ([], 0, 0)
    huge = publish("t", b"x" * MAX_KEPT)
    assert scan(huge[:100], 0, False, set()) == ([], 0, len(huge))
    assert scan(b"\x30\xff\xff\xff\xff\x01", 0, False, set()) == ([], 0, MALFORMED)


@pytest.mark.parametrize("v5", [False, True], ids=["3.1.1", "5"])
def test_stream_split_at_every_byte(v5: bool) -> None:
    ours = {40, 41}
    packets = [
        publish("s/1", b"a", v5=v5, mid=1),
        publish("s/2", b"b" * 200, qos=0, v5=v5),
        puback(40),
        PINGRESP,
        publish("s/3", b"c" * 130, v5=v5, mid=2),
        publish("s/4", b"q2", qos=2, v5=v5, mid=3),
        puback(99),
        puback(41),
        SUBACK,
        publish("s/5", b"", retain=True, v5=v5, mid=4),
    ]
    stream = b"".join(packets)
    expected, _, _ = consume([stream], v5, ours)
    assert [kind for kind, _ in expected] == [
        "item",
        "item",
        "item",
        "paho",
        "item",
        "paho",
        "paho",
        "item",
        "paho",
        "item",
    ]
    for chunks in splits_in_two(stream):
        assert consume(chunks, v5, ours) == (expected, b"", 0), len(chunks[0])


# Any mix of packets, cut anywhere: the same events, in the same order.
_topics = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=12,
)
_payloads = st.one_of(st.binary(max_size=300), st.binary(min_size=16_400, max_size=16_500))
ODD_MIDS = set(range(1, 65536, 2))  # "ours": their PUBACKs are taken, the even ones go to paho


@st.composite
def _packet(draw: st.DrawFn, v5: bool) -> tuple[bytes, tuple[str, Any]]:
    kind = draw(st.sampled_from(["pub", "pub", "pub", "props", "puback", "other", "qos2"]))
    mid = draw(st.integers(1, 65535))
    if kind in ("pub", "props"):
        topic, payload = draw(_topics), draw(_payloads)
        qos, retain = draw(st.integers(0, 1)), draw(st.booleans())
        props = b"\x00"
        if kind == "props" and v5:
            props = properties(UserProperty=[("u", draw(_topics))], MessageExpiryInterval=mid)
        pkt = publish(topic, payload, qos=qos, retain=retain, mid=mid, v5=v5, props=props)
        return pkt, ("item", (topic, payload, qos, retain, mid if qos else 0))
    if kind == "puback":
        return puback(mid), ("item", mid) if mid % 2 else ("paho", puback(mid))
    pkt = draw(st.sampled_from([PINGRESP, SUBACK, CONNACK]))
    if kind == "qos2":
        pkt = publish("q", b"2", qos=2, mid=mid, v5=v5)
    return pkt, ("paho", pkt)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), v5=st.booleans())
def test_any_stream_any_cuts(data: st.DataObject, v5: bool) -> None:
    made = data.draw(st.lists(_packet(v5), max_size=25))
    stream = b"".join(pkt for pkt, _ in made)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    events, rest, paho_left = consume(chunks, v5, ODD_MIDS)
    assert (events, rest, paho_left) == ([event for _, event in made], b"", 0)
    # Without its last byte, the last packet (whoever's) waits in the buffer.
    if made:
        short = consume([stream[:-1]], v5, ODD_MIDS)
        assert short == ([event for _, event in made[:-1]], made[-1][0][:-1], 0)


def test_encoders_round_trip() -> None:
    assert encode_puback(0x1234) == b"\x40\x02\x12\x34"
    for v5 in (False, True):
        for qos, payload in [(1, b"p"), (0, b""), (1, b"y" * 20_000)]:
            pkt = encode_publish(b"r/t", payload, qos, True, 300, v5)
            item: Publish | int = ("r/t", payload, qos, True, 300 if qos else 0)
            assert scan(pkt, 0, v5, set()) == ([item], len(pkt), 0)
            protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
            length = len(varint(len(pkt) - 1 - len(varint(len(pkt)))))
            theirs = paho_packet.decode_publish(pkt[0], pkt[1 + length :], protocol)
            assert (theirs.topic, theirs.payload, theirs.qos, theirs.retain) == (
                b"r/t",
                payload,
                qos,
                True,
            )


# --- _Connection on a socketpair: paho for the rest, acks, batch publishes -------------


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
    await asyncio.to_thread(lambda: [m.ack() for m in wire.got[100:150]])
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
    assert done.done() and done.result() is None
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
