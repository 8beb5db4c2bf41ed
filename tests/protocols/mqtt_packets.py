"""MQTT packets built by hand for the fast-path tests (cross-checked with paho's decoder
in test_mqtt_fastpath.py), never with the encoder under test."""

from __future__ import annotations

from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


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
    return _pack(Properties(PacketTypes.PUBLISH), values)


def properties_of_puback(**values: Any) -> bytes:
    return _pack(Properties(PacketTypes.PUBACK), values)


def _pack(props: Properties, values: dict[str, Any]) -> bytes:
    for name, value in values.items():
        setattr(props, name, value)
    return bytes(props.pack())


PINGRESP = b"\xd0\x00"
SUBACK = packet(0x90, b"\x00\x07\x01")
CONNACK = packet(0x20, b"\x00\x00")
