"""The receive/send fast path's pure codec, byte by byte (``_Connection`` on a socketpair
is in test_mqtt_connection.py).

Packets are built by hand in tests/protocols/mqtt_packets.py (and cross-checked here with paho's own
decoder and property encoder), not with the encoder under test.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt import _packet as paho_packet
from paho.mqtt.enums import MQTTProtocolVersion

from protocols.mqtt_fastpath import (
    MALFORMED,
    MAX_KEPT,
    REFUSED,
    Publish,
    encode_puback,
    encode_publish,
    puback_parts,
    scan,
)
from tests.protocols.mqtt_packets import (
    CONNACK,
    PINGRESP,
    SUBACK,
    properties,
    properties_of_puback,
    puback,
    publish,
    varint,
)


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
    found = scan(stream, 0, v5, ours).items
    assert all(isinstance(item, int) for item in found)
    parts = [puback_parts(item) for item in found if isinstance(item, int)]
    assert parts == ([(7, 0), (8, 0), (9, 0x10), (10, 0x80)] if v5 else [(7, 0), (8, 0)])
    assert scan(puback(7, b"\x00"), 0, False, ours).handoff == 5  # not a 3.1.1 PUBACK


# MQTT 5 PUBACK reason codes: success, "no matching subscribers" (also a success), and the
# refusals a broker may send: not authorized, quota exceeded, topic name invalid, ...
REASONS = [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]


@pytest.mark.parametrize("code", REASONS, ids=[f"0x{c:02X}" for c in REASONS])
def test_puback_reason_codes_agree_with_paho(code: int) -> None:
    reason_string = properties_of_puback(ReasonString="refused by the test")
    for extra in (bytes([code]), bytes([code]) + b"\x00", bytes([code]) + reason_string):
        pkt = puback(0xBEEF, extra)
        [item] = scan(pkt, 0, True, {0xBEEF}).items
        assert isinstance(item, int)
        assert puback_parts(item) == (0xBEEF, code)
        assert (item >= REFUSED) == (code >= 0x80)  # the one test _Connection makes
        theirs = paho_packet.decode_puback(pkt[0], pkt[2:], MQTTProtocolVersion.MQTTv5)
        assert (theirs.mid, theirs.reason.value, theirs.reason.is_failure) == (
            0xBEEF,
            code,
            code >= 0x80,
        )
    assert scan(puback(0xBEEF), 0, True, {0xBEEF}).items == [0xBEEF]  # no reason: Success


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
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
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
