"""Wire decoding: protocols.codec.decode into a validated SosAlarm, against hand validation."""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Callable
from typing import Any

import msgspec

from bench import Row, Settings, median, quiet_gc, register
from protocols import codec
from protocols.schemas import SosAlarm, SosTrigger

try:  # The reference MessagePack library, when present; msgspec's untyped decoder otherwise.
    import msgpack as _msgpack

    def _unpack(payload: bytes) -> Any:
        return _msgpack.unpackb(payload, raw=False)

    UNPACK_NAME = "msgpack.unpackb + hand validation"
except ImportError:  # pragma: no cover - depends on the environment
    _untyped = msgspec.msgpack.Decoder()

    def _unpack(payload: bytes) -> Any:
        return _untyped.decode(payload)

    UNPACK_NAME = "msgspec untyped + hand validation (msgpack not installed)"

# Ratios recorded at tuning time (bench/RESULTS.md); smoke fails at half of these.
REFERENCE = {
    "codec.msgpack.SosAlarm": 1.7,
    "codec.json.SosAlarm": 3.0,
    "codec.msgpack-vs-json.SosAlarm": 1.0,
}

_IDENT = re.compile(r"[A-Za-z0-9_.:@-]+")
_TRIGGERS = {t.value: t for t in SosTrigger}


class Invalid(ValueError):
    pass


def _ident(d: dict[str, Any], key: str) -> str:
    v = d[key]
    if not isinstance(v, str) or not 1 <= len(v) <= 128 or not _IDENT.fullmatch(v):
        raise Invalid(key)
    return v


def _number(d: dict[str, Any], key: str, lo: float, hi: float) -> float:
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise Invalid(key)
    v = float(v)
    if not lo <= v <= hi:  # also refuses NaN
        raise Invalid(key)
    return v


def validate_sos(d: Any) -> SosAlarm:
    """What the schema says, written out by hand: the baseline a codec must beat."""
    if not isinstance(d, dict) or d.get("type") != "sos":
        raise Invalid("type")
    try:
        name = d["name"]
        if not isinstance(name, str) or len(name) > 200:
            raise Invalid("name")
        trigger = _TRIGGERS.get(d["trigger"])
        if trigger is None:
            raise Invalid("trigger")
        battery = d.get("battery")
        if battery is not None and (
            isinstance(battery, bool) or not isinstance(battery, int) or not 0 <= battery <= 100
        ):
            raise Invalid("battery")
        phone = d.get("phone")
        if phone is not None and (not isinstance(phone, str) or len(phone) > 32):
            raise Invalid("phone")
        return SosAlarm(
            alarm_id=_ident(d, "alarm_id"),
            source=_ident(d, "source"),
            device_id=_ident(d, "device_id"),
            name=name,
            lat=_number(d, "lat", -90.0, 90.0),
            lon=_number(d, "lon", -180.0, 180.0),
            accuracy_m=_number(d, "accuracy_m", 0.0, math.inf),
            trigger=trigger,
            ts=_number(d, "ts", 0.0, math.inf),
            battery=battery,
            phone=phone,
        )
    except KeyError as exc:
        raise Invalid(str(exc)) from None


def _messages(rng: random.Random, n: int) -> list[SosAlarm]:
    names = ["김지은", "이서연", "박민지", "Choi Yuna", "정하은", "Kang Soo-ah"]
    out = []
    for i in range(n):
        out.append(
            SosAlarm(
                alarm_id=f"app-{rng.getrandbits(48):012x}",
                source="safe-app",
                device_id=f"dev-{rng.randrange(10**6):06d}",
                name=rng.choice(names),
                lat=rng.uniform(37.45, 37.70),
                lon=rng.uniform(126.80, 127.18),
                accuracy_m=rng.uniform(3.0, 60.0),
                trigger=rng.choice(list(SosTrigger)),
                ts=1_764_000_000.0 + i * 0.37,
                battery=rng.randrange(101) if rng.random() < 0.8 else None,
                phone=f"010-{rng.randrange(10**4):04d}-{rng.randrange(10**4):04d}"
                if rng.random() < 0.5
                else None,
            )
        )
    return out


Decoder = Callable[[bytes], SosAlarm]


def _round(decode: Decoder, payloads: list[bytes]) -> float:
    start = time.perf_counter_ns()
    for p in payloads:
        decode(p)
    return (time.perf_counter_ns() - start) / 1e9


@register("codec")
def bench_codec(settings: Settings) -> list[Row]:
    rng = random.Random(settings.seed)
    n, rounds = (5_000, 5) if settings.smoke else (20_000, 9)
    messages = _messages(rng, n)
    mp = [codec.encode(m) for m in messages]
    js = [codec.encode_json(m) for m in messages]

    variants: dict[str, tuple[Decoder, list[bytes]]] = {
        "ours_mp": (lambda p: codec.decode(p, SosAlarm), mp),
        "hand_mp": (lambda p: validate_sos(_unpack(p)), mp),
        "ours_js": (lambda p: codec.decode(p, SosAlarm), js),
        "hand_js": (lambda p: validate_sos(json.loads(p)), js),
    }
    for label, (decode, payloads) in variants.items():  # right answers before fast ones
        if [decode(p) for p in payloads] != messages:
            raise AssertionError(f"{label} decodes to something else")
        _round(decode, payloads[: n // 10])  # warm-up

    times: dict[str, list[float]] = {label: [] for label in variants}
    order = list(variants)
    with quiet_gc():
        for r in range(rounds):
            # Rotate the order so a burst of load does not always hit the same variant.
            for label in order[r % len(order) :] + order[: r % len(order)]:
                decode, payloads = variants[label]
                times[label].append(_round(decode, payloads))
    rate = {label: n / median(t) for label, t in times.items()}

    mp_size = sum(map(len, mp)) / n
    js_size = sum(map(len, js)) / n
    return [
        Row.of(
            "codec.msgpack.SosAlarm",
            rate["ours_mp"],
            "msg/s",
            rate["hand_mp"],
            UNPACK_NAME,
            lower_is_better=False,
            goal="≥ 1× baseline",
            met=rate["ours_mp"] >= rate["hand_mp"],
            reference=REFERENCE["codec.msgpack.SosAlarm"],
            note=f"protocols.codec.decode(payload, SosAlarm), MessagePack, {mp_size:.0f} B mean; "
            f"{n} messages × {rounds} rounds, median round",
        ),
        Row.of(
            "codec.json.SosAlarm",
            rate["ours_js"],
            "msg/s",
            rate["hand_js"],
            "json.loads + hand validation",
            lower_is_better=False,
            goal="≥ 1× baseline",
            met=rate["ours_js"] >= rate["hand_js"],
            reference=REFERENCE["codec.json.SosAlarm"],
            note=f"protocols.codec.decode of JSON bytes, {js_size:.0f} B mean",
        ),
        Row.of(
            "codec.msgpack-vs-json.SosAlarm",
            rate["ours_mp"],
            "msg/s",
            rate["ours_js"],
            "codec.decode of JSON",
            lower_is_better=False,
            reference=REFERENCE["codec.msgpack-vs-json.SosAlarm"],
            note="decoding costs about the same in both formats (this ratio swings ±30 % with load); "
            f"MessagePack is {100 * (1 - mp_size / js_size):.0f} % smaller on the wire",
        ),
    ]
