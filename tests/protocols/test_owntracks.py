"""OwnTracks adapter: payloads written field for field after the OwnTracks JSON booklet."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import codec
from protocols.owntracks import OwnTracksAdapter, OwnTracksMapping, subscriptions
from protocols.schemas import ResponderReport, ResponderStatus, UnitKind

TOPIC = "owntracks/jane/phone"


def mapping(**overrides: Any) -> OwnTracksMapping:
    fields: dict[str, Any] = {
        "users": {"jane": "scout-jongno-01", "kim": "police-mapo-07"},
        "kinds": {"police-mapo-07": "police"},
        "default_kind": "scout",
    }
    fields.update(overrides)
    return msgspec.convert(fields, OwnTracksMapping)


NOW = 1717238600.0  # shortly after the fixes below


def location(**changes: Any) -> bytes:
    """A _type=location as the booklet documents it (numbers as real numbers)."""
    msg: dict[str, Any] = {
        "_type": "location",
        "acc": 12,
        "alt": 41,
        "batt": 76,
        "bs": 1,
        "cog": 270,
        "conn": "m",
        "created_at": 1717238400,
        "lat": 37.5729,
        "lon": 126.9794,
        "m": 1,
        "t": "u",
        "tid": "JP",
        "tst": 1717238400,
        "vac": 10,
        "vel": 4,
    }
    msg.update(changes)
    return json.dumps({k: v for k, v in msg.items() if v is not ...}).encode()


def lwt(tst: int = 1717230000) -> bytes:
    return json.dumps({"_type": "lwt", "tst": tst}).encode()


def roundtrip(message: ResponderReport) -> ResponderReport:
    return codec.decode(codec.encode(message), ResponderReport)


def test_location_becomes_a_position_only_report() -> None:
    adapter = OwnTracksAdapter(mapping())
    result = adapter.handle(TOPIC, location(), 1717238405.0)
    assert result.error is None and result.ignored is None
    [rep] = result.messages
    assert rep == ResponderReport(
        responder_id="scout-jongno-01",
        kind=UnitKind.SCOUT,
        status=ResponderStatus.AVAILABLE,
        lat=37.5729,
        lon=126.9794,
        ts=1717238400.0,
        position_only=True,
    )
    assert roundtrip(rep) == rep


def test_kind_comes_from_the_mapping() -> None:
    adapter = OwnTracksAdapter(mapping())
    [rep] = adapter.handle("owntracks/kim/car", location(), NOW).messages
    assert rep.kind is UnitKind.POLICE and rep.responder_id == "police-mapo-07"


def test_minimal_and_legacy_string_payloads() -> None:
    adapter = OwnTracksAdapter(mapping())
    minimal = b'{"_type":"location","lat":37.5,"lon":127.0,"tst":1717238400}'
    [rep] = adapter.handle(TOPIC, minimal, NOW).messages
    assert rep.lat == 37.5 and rep.lon == 127.0
    # Android before 0.5.11 and iOS before 8.0 sent numbers as strings.
    legacy = location(lat="37.5731", lon="126.9790", tst="1717238500", acc="20")
    [rep] = adapter.handle(TOPIC, legacy, NOW).messages
    assert rep.lat == 37.5731 and rep.ts == 1717238500.0


def test_inaccurate_and_out_of_order_fixes_are_ignored() -> None:
    adapter = OwnTracksAdapter(mapping(max_accuracy_m=500))
    coarse = adapter.handle(TOPIC, location(acc=2500), NOW)
    assert coarse.messages == [] and coarse.ignored and "2500 m" in coarse.ignored
    assert adapter.handle(TOPIC, location(tst=1717238400), NOW).messages
    old = adapter.handle(TOPIC, location(tst=1717238300), NOW)
    assert old.messages == [] and old.ignored and "older" in old.ignored
    assert adapter.handle(TOPIC, location(tst=1717238400), NOW).messages  # same time: fine


def test_lwt_marks_the_device_lost_and_the_next_fix_brings_it_back() -> None:
    adapter = OwnTracksAdapter(mapping())
    adapter.handle(TOPIC, location(), 1717238400.0)
    result = adapter.handle(TOPIC, lwt(), 1717239000.0)
    [lost] = result.messages
    assert lost == ResponderReport(
        responder_id="scout-jongno-01",
        kind=UnitKind.SCOUT,
        status=ResponderStatus.OFF_DUTY,
        lat=37.5729,
        lon=126.9794,
        ts=1717239000.0,  # the lwt's tst is when the app connected, not when it was lost
    )
    assert adapter.handle(TOPIC, lwt(), 1717239001.0).ignored  # once is enough
    [back] = adapter.handle(TOPIC, location(tst=1717239100), 1717239100.0).messages
    assert back.status is ResponderStatus.AVAILABLE and not back.position_only
    [then] = adapter.handle(TOPIC, location(tst=1717239200), 1717239200.0).messages
    assert then.position_only


def test_lwt_without_position_or_when_disabled_is_ignored() -> None:
    adapter = OwnTracksAdapter(mapping())
    first = adapter.handle(TOPIC, lwt(), 5.0)
    assert first.messages == [] and first.ignored and first.error is None
    off = OwnTracksAdapter(mapping(lwt_off_duty=False))
    off.handle(TOPIC, location(), 5.0)
    result = off.handle(TOPIC, lwt(), 6.0)
    assert result.messages == [] and result.ignored


def test_other_types_and_subtopics_are_ignored_not_errors() -> None:
    adapter = OwnTracksAdapter(mapping())
    transition = {
        "_type": "transition",
        "wtst": 1425042603,
        "lat": 12.34,
        "lon": 44.5,
        "tst": 1427634603,
        "acc": 130,
        "tid": "JP",
        "event": "enter",
        "desc": "my Indian restaurant",
        "t": "b",
    }
    waypoint = {"_type": "waypoint", "desc": "Home", "lat": 37.5, "lon": 127.0, "rad": 50,
                "tst": 1425042603}  # fmt: skip
    for payload in (
        transition,
        waypoint,
        {"_type": "card", "name": "Jane", "face": "iVBOR"},
        {"_type": "cmd", "action": "reportLocation"},
        {"_type": "encrypted", "data": "abc"},
        {"_type": "status", "iOS": {}},
    ):
        result = adapter.handle(TOPIC, json.dumps(payload).encode(), 0.0)
        assert result.messages == [] and result.error is None and result.ignored, payload
    event = adapter.handle(TOPIC + "/event", json.dumps(transition).encode(), 0.0)
    assert event.ignored and event.error is None
    # Unknown types are ignored even for users that are not mapped.
    assert adapter.handle("owntracks/nobody/x", json.dumps(waypoint).encode(), 0.0).ignored


def test_unmapped_user_is_refused_with_its_name() -> None:
    adapter = OwnTracksAdapter(mapping())
    result = adapter.handle("owntracks/stranger/phone", location(), 0.0)
    assert result.messages == [] and result.error and "'stranger'" in result.error


def test_topics() -> None:
    assert subscriptions(mapping()) == ["owntracks/+/+"]
    assert subscriptions(mapping(prefix="ot/seoul")) == ["ot/seoul/+/+"]
    adapter = OwnTracksAdapter(mapping(prefix="ot/seoul"))
    assert adapter.handle("ot/seoul/jane/phone", location(), 0.0).messages
    assert adapter.handle("owntracks/jane/phone", location(), 0.0).error
    assert adapter.handle("ot/seoul/jane", location(), 0.0).error
    assert adapter.handle("ot/seoul/jane/", location(), 0.0).error


def test_garbage_is_refused_with_a_reason() -> None:
    adapter = OwnTracksAdapter(mapping())
    cases = {
        b"": "not an OwnTracks message",
        b"not json": "not an OwnTracks message",
        b"[1, 2]": "not an OwnTracks message",
        b'{"lat": 1}': "_type",
        b'{"_type": 5}': "_type",
        location(lat=95.0): "lat",
        location(lon="east"): "lon",
        location(lat=...): "lat",
        location(tst=...): "tst",
        location(tst=-1): "tst",
        location(acc=-3): "acc",
        location(lat="nan"): "lat",
        location(lat=True): "lat",
    }
    for payload, words in cases.items():
        result = adapter.handle(TOPIC, payload, 0.0)
        assert result.messages == [], payload
        assert result.error is not None and words in result.error, (payload, result.error)


def test_oversized_payload_is_refused_unread() -> None:
    result = OwnTracksAdapter(mapping()).handle(TOPIC, b"{" + b" " * (10 << 20) + b"}", 0.0)
    assert result.error and "exceeds" in result.error


def test_memory_is_bounded() -> None:
    users = {f"u{i}": f"r{i}" for i in range(20)}
    adapter = OwnTracksAdapter(mapping(users=users, max_tracked=5))
    for i in range(20):
        adapter.handle(f"owntracks/u{i}/d", location(), 0.0)
    assert len(adapter._last) == 5


# --- fuzzing ------------------------------------------------------------------------

# Deterministic (same examples every run) and quick; no example database on disk.
FUZZ: dict[str, Any] = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow],
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)
keys = st.sampled_from(["_type", "lat", "lon", "tst", "acc", "batt", "vel", "tid", "t"])
types = st.sampled_from(["location", "lwt", "transition", "waypoint", "card"]) | st.text(max_size=8)
topics = st.sampled_from(
    ["owntracks/jane/phone", "owntracks/kim/car", "owntracks/x/y", "owntracks/jane/phone/event",
     "owntracks/jane", "elsewhere/jane/phone"]
)  # fmt: skip


def _check(result: Any) -> None:
    assert (result.error is None) or (not result.messages)
    assert result.error is None or "internal error" not in result.error, result.error
    for message in result.messages:
        roundtrip(message)


@settings(max_examples=100, **FUZZ)
@given(topic=topics, payload=st.binary(max_size=200))
def test_fuzz_random_bytes_never_raise(topic: str, payload: bytes) -> None:
    _check(OwnTracksAdapter(mapping()).handle(topic, payload, 0.0))


@settings(max_examples=150, **FUZZ)
@given(topic=topics, kind=types, fields=st.dictionaries(keys, json_values, max_size=8))
def test_fuzz_json_structures_never_raise(topic: str, kind: str, fields: dict[str, Any]) -> None:
    adapter = OwnTracksAdapter(mapping())
    adapter.handle(topic, location(), 0.0)
    _check(adapter.handle(topic, json.dumps({**fields, "_type": kind}).encode(), 1.0))
    _check(adapter.handle(topic, json.dumps(fields).encode(), 2.0))


def test_a_stale_fix_is_ignored_and_a_clock_ahead_is_taken_as_now() -> None:
    adapter = OwnTracksAdapter(mapping())
    year_old = adapter.handle(TOPIC, location(tst=1717238400), 1717238400.0 + 365 * 86400)
    assert year_old.messages == [] and year_old.ignored and "s old" in year_old.ignored
    ahead = adapter.handle(TOPIC, location(tst=4_000_000_000), NOW)
    assert [m.ts for m in ahead.messages] == [NOW]
    # The fix that was dated in the future does not make the next real one look old.
    [rep] = adapter.handle(TOPIC, location(tst=NOW + 10), NOW + 10).messages
    assert rep.ts == NOW + 10
    within = adapter.handle(TOPIC, location(tst=NOW + 100), NOW + 20)
    assert [m.ts for m in within.messages] == [NOW + 100]  # within max_ahead_s: as sent
