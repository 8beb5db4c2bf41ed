"""Frigate NVR adapter: payloads written field for field after Frigate's MQTT docs."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import codec
from protocols.frigate import FrigateAdapter, FrigateMapping, FrigateRule, subscriptions
from protocols.schemas import CameraHealth, CameraHealthStatus, CctvEvent, CctvKind

# 22:30 in Seoul (UTC+9) on 2024-06-01 is night; 14:30 is day.
NIGHT = datetime(2024, 6, 1, 13, 30, tzinfo=UTC).timestamp()
DAY = datetime(2024, 6, 1, 5, 30, tzinfo=UTC).timestamp()


def mapping(**overrides: Any) -> FrigateMapping:
    fields: dict[str, Any] = {
        "base_url": "http://frigate.local:5000",
        "cameras": {"front_door": "cam-jongno-0001", "front_cam": "cam-jongno-0002"},
        "rules": [
            {"label": "scream", "kind": "scream"},
            {"label": "person", "zone": "alley", "night_only": True, "kind": "loitering"},
            {"label": "person", "zone": "yard", "kind": "intrusion", "min_score": 0.5},
        ],
    }
    fields.update(overrides)
    return msgspec.convert(fields, FrigateMapping)


def tracked(**changes: Any) -> dict[str, Any]:
    """The 'after' object of Frigate's documented frigate/events example."""
    obj: dict[str, Any] = {
        "id": "1607123955.475377-mxklsc",
        "camera": "front_door",
        "frame_time": 1607123962.082975,
        "snapshot_time": 1607123961.837752,
        "label": "person",
        "sub_label": ["John Smith", 0.79],
        "top_score": 0.958984375,
        "false_positive": False,
        "start_time": 1607123955.475377,
        "end_time": None,
        "score": 0.87890625,
        "box": [432, 496, 544, 854],
        "area": 40096,
        "ratio": 1.251397,
        "region": [218, 440, 693, 915],
        "current_zones": ["yard", "driveway"],
        "entered_zones": ["yard", "driveway"],
        "thumbnail": None,
        "has_snapshot": False,
        "has_clip": False,
        "active": True,
        "stationary": False,
        "motionless_count": 0,
        "position_changes": 2,
        "attributes": {"face": 0.86},
        "current_attributes": [{"label": "face", "box": [442, 506, 534, 524], "score": 0.86}],
    }
    obj.update(changes)
    return obj


def event_msg(kind: str = "new", **changes: Any) -> bytes:
    after = tracked(**changes)
    before = copy.deepcopy(after)
    before.update(
        frame_time=1607123961.837752,
        score=0.7890625,
        current_zones=["driveway"],
        sub_label=None,
        attributes={"face": 0.64},
        current_attributes=[],
    )
    return json.dumps({"type": kind, "before": before, "after": after}).encode()


def review_msg(severity: str = "alert", kind: str = "update", **changes: Any) -> bytes:
    """Frigate's documented frigate/reviews example."""
    after: dict[str, Any] = {
        "id": "1718987129.308396-fqk5ka",
        "camera": "front_cam",
        "start_time": 1718987129.308396,
        "end_time": None,
        "severity": severity,
        "thumb_path": "/media/frigate/clips/review/thumb-front_cam-1718987129.308396-fqk5ka.webp",
        "data": {
            "detections": [
                "1718987128.947436-g92ztx",
                "1718987148.879516-d7oq7r",
                "1718987126.934663-q5ywpt",
            ],
            "objects": ["person", "car"],
            "sub_labels": ["Bob"],
            "zones": ["front_yard"],
            "audio": [],
        },
    }
    after.update(changes)
    before = copy.deepcopy(after)
    before.update(severity="detection", data={**after["data"], "sub_labels": [], "zones": []})
    return json.dumps({"type": kind, "before": before, "after": after}).encode()


def roundtrip(message: Any) -> Any:
    """Every emitted message is a valid wire message."""
    return codec.decode(codec.encode(message), type(message))


# --- events -------------------------------------------------------------------------


def test_documented_event_in_the_yard_is_an_intrusion() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    result = adapter.handle("frigate/events", event_msg("new"), DAY)
    assert result.error is None and result.ignored is None
    [ev] = result.messages
    assert ev == CctvEvent(
        event_id="1607123955.475377-mxklsc",
        camera_id="cam-jongno-0001",
        kind=CctvKind.INTRUSION,
        confidence=0.959,  # top_score, rounded to 4 places
        ts=1607123955.475377,
    )
    assert roundtrip(ev) == ev


def test_confidence_is_top_score_else_score() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    [ev] = adapter.handle("frigate/events", event_msg(top_score=None), DAY).messages
    assert isinstance(ev, CctvEvent)
    assert ev.confidence == round(0.87890625, 4)


def test_snapshot_url_only_when_frigate_has_one() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    [ev] = adapter.handle("frigate/events", event_msg(has_snapshot=True), DAY).messages
    assert isinstance(ev, CctvEvent)
    assert ev.snapshot_url == (
        "http://frigate.local:5000/api/events/1607123955.475377-mxklsc/snapshot.jpg"
    )
    no_base = FrigateAdapter(mapping(base_url=""), 9.0)
    [ev] = no_base.handle("frigate/events", event_msg(has_snapshot=True), DAY).messages
    assert isinstance(ev, CctvEvent) and ev.snapshot_url is None


def test_alley_at_night_is_loitering_but_not_by_day() -> None:
    zones: dict[str, Any] = {"current_zones": ["Back_Alley"], "entered_zones": ["Back_Alley"]}
    night = FrigateAdapter(mapping(), 9.0)
    [ev] = night.handle("frigate/events", event_msg(frame_time=NIGHT, **zones), NIGHT).messages
    assert isinstance(ev, CctvEvent) and ev.kind is CctvKind.LOITERING
    day = FrigateAdapter(mapping(), 9.0)
    result = day.handle("frigate/events", event_msg(frame_time=DAY, **zones), DAY)
    assert result.messages == [] and result.error is None
    assert result.ignored is not None and "no rule for label 'person'" in result.ignored


def test_night_uses_the_configured_offset_and_hours() -> None:
    adapter = FrigateAdapter(mapping(), 9.0, night_start_hour=21, night_end_hour=6)
    assert adapter.is_night(NIGHT) and not adapter.is_night(DAY)
    utc = FrigateAdapter(mapping(), 0.0)
    assert not utc.is_night(NIGHT)  # 13:30 UTC
    assert FrigateAdapter(mapping(), 9.0, night_start_hour=1, night_end_hour=5).is_night(
        datetime(2024, 6, 1, 18, 0, tzinfo=UTC).timestamp()  # 03:00 in Seoul
    )


def test_min_score_and_unmatched_labels_are_ignored() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    low = adapter.handle("frigate/events", event_msg(top_score=0.4, score=0.4), DAY)
    assert low.messages == [] and low.ignored
    car = adapter.handle("frigate/events", event_msg(label="car"), DAY)
    assert car.messages == [] and car.ignored and "'car'" in car.ignored


def test_updates_keep_the_event_id_and_emit_only_meaningful_changes() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    first = adapter.handle("frigate/events", event_msg("new", top_score=0.6, score=0.6), DAY)
    [ev1] = first.messages
    same = adapter.handle("frigate/events", event_msg("update", top_score=0.65, score=0.6), DAY)
    assert same.messages == [] and same.ignored and "without a meaningful change" in same.ignored
    rose = adapter.handle("frigate/events", event_msg("update", top_score=0.75, score=0.7), DAY)
    [ev2] = rose.messages
    assert isinstance(ev1, CctvEvent) and isinstance(ev2, CctvEvent)
    assert ev2.event_id == ev1.event_id and ev2.ts == ev1.ts
    assert ev2.confidence == 0.75 and ev2.kind is CctvKind.INTRUSION
    # Walking into the alley at night moves the match up the rule list: a new kind.
    moved = adapter.handle(
        "frigate/events",
        event_msg("update", top_score=0.75, current_zones=["alley"], frame_time=NIGHT),
        NIGHT,
    )
    [ev3] = moved.messages
    assert isinstance(ev3, CctvEvent)
    assert ev3.kind is CctvKind.LOITERING and ev3.event_id == ev1.event_id
    # Back in the yard: no downgrade, nothing emitted.
    back = adapter.handle(
        "frigate/events", event_msg("update", top_score=0.75, current_zones=["yard"]), NIGHT
    )
    assert back.messages == [] and back.ignored and back.ignored.startswith("no-change:")


def test_false_positive_withdraws_a_reported_event() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    [ev] = adapter.handle("frigate/events", event_msg("new"), DAY).messages
    result = adapter.handle("frigate/events", event_msg("update", false_positive=True), DAY)
    [gone] = result.messages
    assert isinstance(ev, CctvEvent) and isinstance(gone, CctvEvent)
    assert gone.withdrawn and gone.event_id == ev.event_id and gone.kind is ev.kind
    assert roundtrip(gone) == gone
    again = adapter.handle("frigate/events", event_msg("end", false_positive=True), DAY)
    assert again.messages == [] and again.ignored
    revived = adapter.handle("frigate/events", event_msg("update"), DAY)
    assert revived.messages == [] and revived.ignored


def test_false_positive_never_reported_is_ignored() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    result = adapter.handle("frigate/events", event_msg("new", false_positive=True), DAY)
    assert result.messages == [] and result.ignored and result.error is None


def test_unknown_camera_is_refused_with_its_name() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    result = adapter.handle("frigate/events", event_msg(camera="garage"), DAY)
    assert result.messages == [] and result.error is not None
    assert "'garage'" in result.error and "not mapped" in result.error


def test_audio_label_maps_to_scream() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    payload = event_msg(label="scream", current_zones=[], entered_zones=[], top_score=0.81)
    [ev] = adapter.handle("frigate/events", payload, DAY).messages
    assert isinstance(ev, CctvEvent) and ev.kind is CctvKind.SCREAM and ev.confidence == 0.81


def test_memory_is_bounded() -> None:
    adapter = FrigateAdapter(mapping(max_tracked=3), 9.0)
    for i in range(10):
        adapter.handle("frigate/events", event_msg(id=f"1700000000.{i}-abc"), DAY)
    assert len(adapter._reported) == 3


# --- reviews ------------------------------------------------------------------------


def test_alert_review_raises_confidence_of_its_reported_events() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    ev_id = "1718987128.947436-g92ztx"
    new = event_msg("new", id=ev_id, camera="front_cam", top_score=0.6, score=0.6)
    [ev] = adapter.handle("frigate/events", new, DAY).messages
    result = adapter.handle("frigate/reviews", review_msg("alert"), DAY)
    [boosted] = result.messages
    assert isinstance(ev, CctvEvent) and isinstance(boosted, CctvEvent)
    assert boosted.event_id == ev_id and boosted.confidence == 0.7
    twice = adapter.handle("frigate/reviews", review_msg("alert", kind="end"), DAY)
    assert twice.messages == [] and twice.ignored


def test_detection_review_is_informational() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    result = adapter.handle("frigate/reviews", review_msg("detection"), DAY)
    assert result.messages == [] and result.ignored and "informational" in result.ignored


def test_alert_review_without_mapped_events_uses_alert_kind() -> None:
    plain = FrigateAdapter(mapping(), 9.0)
    result = plain.handle("frigate/reviews", review_msg("alert"), DAY)
    assert result.messages == [] and result.ignored
    adapter = FrigateAdapter(mapping(alert_kind="intrusion", alert_confidence=0.8), 9.0)
    [ev] = adapter.handle("frigate/reviews", review_msg("alert", kind="new"), DAY).messages
    assert isinstance(ev, CctvEvent)
    assert ev.event_id == "review-1718987129.308396-fqk5ka"
    assert ev.camera_id == "cam-jongno-0002" and ev.kind is CctvKind.INTRUSION
    assert ev.confidence == 0.8 and ev.ts == 1718987129.308396
    again = adapter.handle("frigate/reviews", review_msg("alert"), DAY)
    assert again.messages == [] and again.ignored


def test_review_for_unknown_camera_is_refused() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    result = adapter.handle("frigate/reviews", review_msg(camera="garage"), DAY)
    assert result.error and "'garage'" in result.error


# --- health -------------------------------------------------------------------------


def test_available_speaks_for_every_mapped_camera() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    down = adapter.handle("frigate/available", b"offline", 1000.0)
    assert down.messages == [
        CameraHealth(camera_id="cam-jongno-0001", status=CameraHealthStatus.OFFLINE, ts=1000.0),
        CameraHealth(camera_id="cam-jongno-0002", status=CameraHealthStatus.OFFLINE, ts=1000.0),
    ]
    up = adapter.handle("frigate/available", b"online", 1001.0)
    assert [getattr(m, "status", None) for m in up.messages] == [CameraHealthStatus.ONLINE] * 2
    bad = adapter.handle("frigate/available", b"maybe", 1001.0)
    assert bad.error and "online" in bad.error


def test_detect_and_enabled_state_drive_camera_health() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    [off] = adapter.handle("frigate/front_door/detect/state", b"OFF", 5.0).messages
    assert off == CameraHealth(
        camera_id="cam-jongno-0001", status=CameraHealthStatus.OFFLINE, ts=5.0
    )
    [on] = adapter.handle("frigate/front_door/detect/state", b"ON", 6.0).messages
    assert isinstance(on, CameraHealth) and on.status is CameraHealthStatus.ONLINE
    [dis] = adapter.handle("frigate/front_cam/enabled/state", b"OFF", 7.0).messages
    assert isinstance(dis, CameraHealth) and dis.status is CameraHealthStatus.OFFLINE
    lenient = FrigateAdapter(mapping(detect_off="ignore"), 9.0)
    assert lenient.handle("frigate/front_door/detect/state", b"OFF", 5.0).ignored
    unknown = adapter.handle("frigate/garage/detect/state", b"OFF", 5.0)
    assert unknown.error and "'garage'" in unknown.error
    junk = adapter.handle("frigate/front_door/detect/state", b"maybe", 5.0)
    assert junk.error


def test_topics_and_prefix() -> None:
    m = mapping(prefix="nvr1")
    assert subscriptions(m) == [
        "nvr1/events",
        "nvr1/reviews",
        "nvr1/available",
        "nvr1/+/detect/state",
        "nvr1/+/enabled/state",
    ]
    adapter = FrigateAdapter(m, 9.0)
    assert adapter.handle("nvr1/events", event_msg(), DAY).messages
    assert adapter.handle("frigate/events", event_msg(), DAY).error
    other = adapter.handle("nvr1/front_door/person", b"1", DAY)
    assert other.ignored and not other.error


def test_a_camera_mapped_with_a_position_carries_it() -> None:
    cameras = {
        "front_door": {"id": "cam-jongno-0001", "lat": 37.5729, "lon": 126.9794},
        "front_cam": "cam-jongno-0002",
    }
    adapter = FrigateAdapter(mapping(cameras=cameras), 9.0)
    [ev] = adapter.handle("frigate/events", event_msg(), DAY).messages
    assert isinstance(ev, CctvEvent) and (ev.lat, ev.lon) == (37.5729, 126.9794)
    placed, unplaced = adapter.handle("frigate/available", b"offline", 1000.0).messages
    assert isinstance(placed, CameraHealth) and (placed.lat, placed.lon) == (37.5729, 126.9794)
    assert isinstance(unplaced, CameraHealth) and unplaced.lat is None and unplaced.lon is None
    [off] = adapter.handle("frigate/front_door/enabled/state", b"OFF", 5.0).messages
    assert isinstance(off, CameraHealth) and off.lat == 37.5729
    # A withdrawal speaks of an event already placed: no position.
    gone = adapter.handle("frigate/events", event_msg("update", false_positive=True), DAY + 1)
    assert [(m.withdrawn, m.lat) for m in gone.messages if isinstance(m, CctvEvent)] == [
        (True, None)
    ]


def test_mapping_from_config_refuses_bad_values() -> None:
    for bad in (
        {"cameras": {"x": "has space"}},
        {"cameras": {"x": {"id": "cam-1", "lat": 37.5}}},
        {"cameras": {"x": {"id": "cam-1", "lat": 137.5, "lon": 127.0}}},
        {"cameras": {"x": {"id": "cam-1", "where": "here"}}},
        {"rules": [{"label": "person", "kind": "dancing"}]},
        {"base_url": "ftp://x"},
        {"detect_off": "broken"},
        {"unknown_key": 1},
    ):
        try:
            msgspec.convert(bad, FrigateMapping)
        except msgspec.ValidationError:
            continue
        raise AssertionError(f"accepted {bad}")
    assert FrigateMapping().prefix == "frigate"
    assert FrigateRule(label="person", kind=CctvKind.FIGHT).zone == ""


# --- garbage ------------------------------------------------------------------------


def test_garbage_is_refused_with_a_reason() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    cases = {
        b"": "not a Frigate event",
        b"not json": "not a Frigate event",
        b"[]": "not a Frigate event",
        b'{"type": "new"}': "after",
        b'{"type": "weird", "after": {}}': "type",
        event_msg(top_score="high"): "top_score",
        event_msg(top_score=1.5): "top_score",
        event_msg(score=None, top_score=None): "neither top_score nor score",
        event_msg(id="has space/slash"): "not a valid identifier",
        event_msg(start_time=-5): "start_time",
        event_msg(current_zones="yard"): "current_zones",
        json.dumps({"type": "new", "after": None}).encode(): "after",
    }
    for payload, words in cases.items():
        result = adapter.handle("frigate/events", payload, DAY)
        assert result.messages == [], payload
        assert result.error is not None and words in result.error, (payload, result.error)


def test_oversized_payload_is_refused_unread() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    result = adapter.handle("frigate/events", b"{" + b" " * (10 * 1024 * 1024) + b"}", DAY)
    assert result.error and "exceeds" in result.error


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
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)
field_names = st.sampled_from(
    ["id", "camera", "label", "score", "top_score", "false_positive", "start_time",
     "frame_time", "current_zones", "entered_zones", "has_snapshot", "severity", "data"]
)  # fmt: skip
objects = st.dictionaries(field_names, json_values, max_size=10)
topics = st.sampled_from(
    ["frigate/events", "frigate/reviews", "frigate/available", "frigate/front_door/detect/state",
     "frigate/garage/enabled/state", "frigate/x", "other/events", "frigate/"]
)  # fmt: skip


def _check(result: Any) -> None:
    assert (result.error is None) or (not result.messages)
    assert result.error is None or "internal error" not in result.error, result.error
    for message in result.messages:
        roundtrip(message)


@settings(max_examples=100, **FUZZ)
@given(topic=topics, payload=st.binary(max_size=300))
def test_fuzz_random_bytes_never_raise(topic: str, payload: bytes) -> None:
    _check(FrigateAdapter(mapping(), 9.0).handle(topic, payload, DAY))


@settings(max_examples=120, **FUZZ)
@given(
    topic=topics,
    kind=st.sampled_from(["new", "update", "end", "x"]),
    after=objects,
    base=st.booleans(),
)
def test_fuzz_json_structures_never_raise(
    topic: str, kind: str, after: dict[str, Any], base: bool
) -> None:
    obj = {**tracked(), **after} if base else after
    payload = json.dumps({"type": kind, "after": obj}).encode()
    adapter = FrigateAdapter(mapping(alert_kind="fight"), 9.0)
    _check(adapter.handle(topic, payload, DAY))
    _check(adapter.handle(topic, payload, DAY))
