"""Hypothesis plays the attacker: well-formed-but-hostile messages from one source account.

Each example is a few messages on the attacker's own raw topics, built from a valid
message of each kind with some fields swapped for what a hostile source would try:
deep nesting, huge strings, control characters, wildcards, extreme numbers, the
victim's ids. After each example the invariants of every attack hold (the core is up,
the victim's incident, unit and camera untouched, every refusal a dead letter with a
reason); at the end the core restarts on that journal and they still hold.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import topics
from tests.attack.city import (
    ATTACKER,
    CITY_HALL,
    LIVE_EXAMPLES,
    SENDER,
    VICTIM_CAMERA,
    VICTIM_DEVICE,
    VICTIM_UNIT,
    City,
    after_each,
    sos,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

IDS = [VICTIM_DEVICE, VICTIM_CAMERA, VICTIM_UNIT, "I-000001", "ansim-core", "#", "+", "a/b",
       "x" * 129, "", "cam-1", "\x1b[2J", "op1"]  # fmt: skip

hostile_text = st.one_of(
    st.text(max_size=50),
    st.text(alphabet=st.characters(max_codepoint=0x9F), max_size=50),  # C0, DEL, C1
    st.sampled_from(
        [
            "\x1b]0;owned\x07",
            "\x1b[2J",
            "[@click=app.quit]q",
            "\u202egnp.exe",
            "#",
            "+",
            "a/b/#",
            "강남구 여성안심지킴이집",
            "x" * 5_000,
        ]
    ),
    st.integers(1, 300_000).map(lambda n: "y" * n),
)
extreme_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1e17, 1.7e308, -1e308, 90.0000001, 180.5, 4_102_444_801]),
)
nested = st.integers(10, 20_000).map(lambda depth: _Nest(depth))
hostile_value = st.one_of(hostile_text, extreme_number, st.sampled_from(IDS), nested, st.none(),
                          st.booleans(), st.lists(st.integers(), max_size=5))  # fmt: skip


class _Nest:
    """A list nested ``depth`` deep, spliced into the encoded payload (msgspec would recurse)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth


def _valid(kind: str, n: int) -> dict[str, Any]:
    now = time.time()
    lat, lon = CITY_HALL
    return {
        "sos": sos(f"g-{n}", f"phone-g{n % 3}", ATTACKER),
        "camera": {"type": "camera", "camera_id": f"cam-g{n % 3}", "status": "online",
                   "ts": now, "name": "Gen", "lat": lat, "lon": lon},
        "responder": {"type": "responder", "responder_id": f"unit-g{n % 3}", "kind": "scout",
                      "status": "available", "lat": lat, "lon": lon, "ts": now},
        "cctv": {"type": "cctv", "event_id": f"ev-{n}", "camera_id": f"cam-g{n % 3}",
                 "kind": "scream", "confidence": 0.9, "ts": now},
        "alert": {"type": "alert", "identifier": f"al-{n}", "sender": "gen@example",
                  "sent": now, "msg_type": "Alert", "priority": 2, "districts": ["Jung-gu"]},
    }[kind]  # fmt: skip


@st.composite
def hostile_message(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["sos", "camera", "responder", "cctv", "alert", "bogus"]))
    message = _valid(kind if kind != "bogus" else "sos", draw(st.integers(0, 10**6)))
    for name in draw(st.lists(st.sampled_from([*message, "type", "junk", "sender"]), max_size=4)):
        value = draw(hostile_value)
        if name == "sender" and draw(st.booleans()):
            value = SENDER  # speak for the victim's CAP sender
        message[name] = value
    return kind, _encode(message, as_json=draw(st.booleans()))


def _encode(message: dict[str, Any], as_json: bool) -> bytes:
    splices = {}
    for name, value in list(message.items()):
        if isinstance(value, _Nest):
            splices[name] = value.depth
            message[name] = 0
    try:
        payload = msgspec.json.encode(message) if as_json else msgspec.msgpack.encode(message)
    except (OverflowError, msgspec.EncodeError):
        payload = msgspec.msgpack.encode({k: str(v) for k, v in message.items()})
    for name, depth in splices.items():
        marker = msgspec.json.encode({name: 0})[1:-1] if as_json else None
        if marker is not None and marker in payload:
            payload = payload.replace(marker, marker[:-1] + b"[" * depth + b"]" * depth, 1)
    return payload


@LIVE_EXAMPLES
@given(st.lists(hostile_message(), min_size=1, max_size=6))
def test_hostile_messages_change_nothing_of_anyone_else(
    city: City, victim: dict[str, Any], messages: list[tuple[str, bytes]]
) -> None:
    for kind, payload in messages:
        city.send(ATTACKER, topics.raw(ATTACKER, kind), payload)
    after_each(city, victim)


def test_after_the_storm_the_core_restarts_and_nothing_changed(
    city: City, victim: dict[str, Any]
) -> None:
    city.restart_core()
    after_each(city, victim)
    assert city.dead_letters(ATTACKER), "Hypothesis sent nothing the core refused?"
