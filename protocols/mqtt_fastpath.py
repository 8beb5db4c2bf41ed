"""A lean MQTT codec for the packets that make up a storm: PUBLISH (QoS 0 and 1) and PUBACK.

paho builds a ``Properties`` object, an ``MQTTMessage``, a topic-matcher walk and a log
call per packet, which was a third of ``ansim core``'s CPU (docs/performance.md). This
module decodes those two packet kinds straight from the receive buffer, for MQTT 3.1.1
and 5, and stops at the first packet it leaves to paho: anything else (CONNACK, SUBACK,
QoS 2, a Topic Alias, a PUBACK it was not told to take, anything malformed), whole.

Pure: no asyncio, no paho, no I/O, so every byte boundary can be tested.
"""

from __future__ import annotations

import struct
from collections.abc import Container
from typing import Final, NamedTuple

PUBLISH: Final = 0x30
PUBACK: Final = 0x40
# A packet whose header says it will not fit in this many bytes is left to paho even while
# incomplete: paho accumulates it, where keeping it here would copy it at every read.
MAX_KEPT: Final = 256 * 1024
# The size reported for a packet whose length cannot be decoded: paho reads its header,
# finds it malformed and drops the connection.
MALFORMED: Final = 1 << 30
# A PUBACK taken is reported as an int: its packet id, plus its MQTT 5 reason code shifted
# by REASON_SHIFT when that is not 0 (Success). An int, not a tuple, because a storm's
# receipts are mostly successes and the plain packet id costs nothing to build or test.
REASON_SHIFT: Final = 16
# Any PUBACK item at or above this carries a reason code >= 0x80: the broker refused it.
REFUSED: Final = 0x80 << REASON_SHIFT

# MQTT 5 properties allowed in a PUBLISH, by how their value is laid out. Topic Alias
# (0x23) is not here on purpose: a packet using one goes to paho.
_BYTE: Final = frozenset({0x01})  # Payload Format Indicator
_FOUR: Final = frozenset({0x02})  # Message Expiry Interval
_ONE_STRING: Final = frozenset({0x03, 0x08, 0x09})  # Content Type, Response Topic, Correl. Data
_TWO_STRINGS: Final = frozenset({0x26})  # User Property
_VARINT: Final = frozenset({0x0B})  # Subscription Identifier
_PUBACK_PACK: Final = struct.Struct("!BBH").pack


# A decoded PUBLISH: (topic, payload, qos, retain, packet id or 0 for QoS 0). A plain
# tuple: a NamedTuple costs more to build than the rest of the decoding.
Publish = tuple[str, bytes, int, bool, int]


class Scan(NamedTuple):
    """What :func:`scan` found.

    ``items`` are decoded PUBLISH packets and, as ints, the PUBACKs taken (see
    :func:`puback_parts`), in arrival order. ``pos`` is the first byte not decoded. If
    ``handoff`` is non-zero, the packet at ``pos`` belongs to paho and is that many bytes
    long (possibly more than the buffer holds yet); otherwise ``buf[pos:]`` is empty or
    the beginning of a packet still arriving.
    """

    items: list[Publish | int]
    pos: int
    handoff: int


def scan(buf: bytes, pos: int, v5: bool, take_pubacks: Container[int]) -> Scan:
    """Decode whole PUBLISH (QoS 0/1) and PUBACK packets from ``buf[pos:]``, in order.

    A PUBACK is taken only if its packet id is in ``take_pubacks``; any other goes to paho.
    """
    items: list[Publish | int] = []
    end_of_data = len(buf)
    while end_of_data - pos >= 2:
        header = buf[pos]
        length = buf[pos + 1]
        body = pos + 2
        if length > 0x7F and end_of_data - pos > 2 and buf[body] <= 0x7F:
            length = (length & 0x7F) | (buf[body] << 7)  # the usual 2-byte length, inline
            body += 1
        elif length > 0x7F:  # a longer Remaining Length, or one still arriving
            length, body = _varint(buf, pos + 1, end_of_data)
            if body < 0:
                if body == -1:
                    break  # the length itself is still arriving
                return Scan(items, pos, MALFORMED)
        end = body + length
        if end > end_of_data:
            if end - pos > MAX_KEPT:
                return Scan(items, pos, end - pos)
            break
        kind = header & 0xF0
        if kind == PUBLISH:
            message = _publish(buf, header, body, end, v5)
            if message is None:
                return Scan(items, pos, end - pos)
            items.append(message)
        elif header == PUBACK and (length == 2 or (v5 and length > 2)):
            mid = (buf[body] << 8) | buf[body + 1]
            if mid not in take_pubacks:
                return Scan(items, pos, end - pos)
            # MQTT 5: a third byte is the reason code (absent means Success).
            items.append(mid | (buf[body + 2] << REASON_SHIFT) if length > 2 else mid)
        else:
            return Scan(items, pos, end - pos)
        pos = end
    return Scan(items, pos, 0)


def _publish(buf: bytes, header: int, body: int, end: int, v5: bool) -> Publish | None:
    """One PUBLISH's fields, or None if paho must handle it."""
    qos = (header >> 1) & 0x03
    if qos > 1 or end - body < 2:
        return None
    topic_end = body + 2 + ((buf[body] << 8) | buf[body + 1])
    if topic_end == body + 2 or topic_end > end:
        return None  # an empty topic (a Topic Alias, or malformed) or one that overruns
    p = topic_end
    mid = 0
    if qos:
        if p + 2 > end:
            return None
        mid = (buf[p] << 8) | buf[p + 1]
        p += 2
    if v5:
        if p >= end:
            return None
        if buf[p] == 0:  # the usual case: no properties
            p += 1
        else:
            p = _skip_properties(buf, p, end)
            if p < 0:
                return None
    try:
        topic = buf[body + 2 : topic_end].decode()
    except UnicodeDecodeError:
        return None  # paho's own handling of a non-UTF-8 topic applies
    return (topic, buf[p:end], qos, bool(header & 0x01), mid)


def _skip_properties(buf: bytes, p: int, end: int) -> int:
    """The position after a PUBLISH's properties, or -1 for a Topic Alias or anything odd."""
    size, p = _varint(buf, p, end)
    if p < 0:
        return -1
    stop = p + size
    if stop > end:
        return -1
    while p < stop:
        prop = buf[p]
        p += 1
        if prop in _BYTE:
            p += 1
        elif prop in _FOUR:
            p += 4
        elif prop in _ONE_STRING or prop in _TWO_STRINGS:
            for _ in range(2 if prop in _TWO_STRINGS else 1):
                if p + 2 > stop:
                    return -1
                p += 2 + ((buf[p] << 8) | buf[p + 1])
        elif prop in _VARINT:
            _, p = _varint(buf, p, stop)
            if p < 0:
                return -1
        else:
            return -1
    return p if p == stop else -1


def _varint(buf: bytes, p: int, end: int) -> tuple[int, int]:
    """(value, position after it) of a Variable Byte Integer at ``p``.

    The position is -1 if the integer runs past ``end`` and -2 if it is longer than the
    four bytes MQTT allows.
    """
    value = 0
    for shift in (0, 7, 14, 21):
        if p >= end:
            return 0, -1
        byte = buf[p]
        p += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, p
    return 0, -2


def puback_parts(item: int) -> tuple[int, int]:
    """(packet id, reason code) of a PUBACK item from :func:`scan`."""
    return item & 0xFFFF, item >> REASON_SHIFT


def topic_bytes(topic: str) -> bytes:
    """A topic to publish on, encoded, with paho's checks (ValueError)."""
    encoded = topic.encode()
    if b"+" in encoded or b"#" in encoded:
        raise ValueError("Publish topic cannot contain wildcards.")
    if not encoded or len(encoded) > 65535:
        raise ValueError("Publish topic must be 1 to 65535 bytes long.")
    return encoded


def encode_puback(mid: int) -> bytes:
    """A PUBACK (success, no properties: the same 4 bytes in MQTT 3.1.1 and 5)."""
    return _PUBACK_PACK(PUBACK, 2, mid)


def encode_publish(
    topic: bytes, payload: bytes, qos: int, retain: bool, mid: int, v5: bool
) -> bytes:
    """A PUBLISH packet (QoS 0 or 1, no properties)."""
    variable = len(topic).to_bytes(2, "big") + topic
    if qos:
        variable += mid.to_bytes(2, "big")
    if v5:
        variable += b"\x00"  # property length: none
    return _fixed_header(PUBLISH | (qos << 1) | int(retain), len(variable) + len(payload)) + (
        variable + payload
    )


def _fixed_header(first: int, remaining: int) -> bytes:
    if remaining > 268_435_455:
        raise ValueError("MQTT packet too large")
    out = bytearray((first,))
    while True:
        byte, remaining = remaining & 0x7F, remaining >> 7
        out.append(byte | (0x80 if remaining else 0))
        if not remaining:
            return bytes(out)
