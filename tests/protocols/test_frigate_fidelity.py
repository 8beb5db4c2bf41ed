"""Frigate fidelity (issue 18, point 11): confidence, `end`, label changes, review audio,
and a fixed code for every ignored message.

Payloads come from tests.protocols.test_frigate, written after Frigate's MQTT docs.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.frigate import IGNORE_REASONS, FrigateAdapter, ignore_reason
from protocols.schemas import CctvEvent, CctvKind
from tests.protocols.test_frigate import (
    DAY,
    FUZZ,
    NIGHT,
    event_msg,
    mapping,
    objects,
    review_msg,
    roundtrip,
    topics,
    tracked,
)

EVENT_ID = "1607123955.475377-mxklsc"
REVIEW_KEY = "review-1718987129.308396-fqk5ka"


def only_event(result: Any) -> CctvEvent:
    assert result.error is None and result.ignored is None, (result.error, result.ignored)
    [ev] = result.messages
    assert isinstance(ev, CctvEvent)
    assert roundtrip(ev) == ev
    return ev


def code(result: Any) -> str | None:
    """The ignore code of a result that must be ignored (no messages, no error)."""
    assert result.messages == [] and result.error is None, result
    assert result.ignored is not None
    return ignore_reason(result.ignored)


# --- confidence ----------------------------------------------------------------------


def test_top_score_zero_falls_back_to_score() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    ev = only_event(adapter.handle("frigate/events", event_msg(top_score=0.0, score=0.7), DAY))
    assert ev.confidence == 0.7 and ev.kind is CctvKind.INTRUSION


def test_top_score_zero_without_score_is_zero_and_below_a_threshold() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    payload = event_msg(top_score=0.0, score=None)
    assert code(adapter.handle("frigate/events", payload, DAY)) == "below-threshold"
    anywhere = FrigateAdapter(mapping(rules=[{"label": "person", "kind": "intrusion"}]), 9.0)
    assert only_event(anywhere.handle("frigate/events", payload, DAY)).confidence == 0.0


def test_a_positive_top_score_still_wins_over_score() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    ev = only_event(adapter.handle("frigate/events", event_msg(top_score=0.9, score=0.6), DAY))
    assert ev.confidence == 0.9


# --- end -----------------------------------------------------------------------------


def test_end_of_a_reported_event_is_sent_as_ended_once() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    first = only_event(adapter.handle("frigate/events", event_msg("new", has_snapshot=True), DAY))
    end = only_event(adapter.handle("frigate/events", event_msg("end", end_time=DAY + 9), DAY))
    assert end.ended and not first.ended
    assert (end.event_id, end.kind, end.confidence, end.ts) == (
        first.event_id,
        first.kind,
        first.confidence,
        first.ts,
    )
    assert end.snapshot_url == first.snapshot_url  # kept from the earlier message
    again = adapter.handle("frigate/events", event_msg("end"), DAY + 1)
    assert code(again) == "after-end"
    late = adapter.handle("frigate/events", event_msg("update", top_score=0.99), DAY + 2)
    assert code(late) == "after-end"


def test_end_of_an_event_never_reported_opens_nothing() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    # It matches a rule, but an end never reports an event for the first time.
    assert code(adapter.handle("frigate/events", event_msg("end"), DAY)) == "end-unreported"
    assert adapter._reported == {}


def test_end_carries_a_last_change() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    only_event(adapter.handle("frigate/events", event_msg("new", top_score=0.6), DAY))
    alley = {"current_zones": ["alley"], "frame_time": NIGHT}
    end = only_event(adapter.handle("frigate/events", event_msg("end", **alley), NIGHT))
    assert end.ended and end.kind is CctvKind.LOITERING and end.confidence == 0.959


def test_false_positive_at_the_end_withdraws() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    only_event(adapter.handle("frigate/events", event_msg("new"), DAY))
    gone = only_event(adapter.handle("frigate/events", event_msg("end", false_positive=True), DAY))
    assert gone.withdrawn and not gone.ended


# --- label changes -------------------------------------------------------------------


def test_a_new_label_takes_its_rules_kind_even_a_lower_one() -> None:
    rules = [
        {"label": "scream", "kind": "scream"},
        {"label": "person", "kind": "fight"},
        {"label": "dog", "kind": "intrusion"},
    ]
    adapter = FrigateAdapter(mapping(rules=rules), 9.0)
    first = only_event(adapter.handle("frigate/events", event_msg("new"), DAY))
    assert first.kind is CctvKind.FIGHT
    relabelled = adapter.handle("frigate/events", event_msg("update", label="dog"), DAY)
    assert only_event(relabelled).kind is CctvKind.INTRUSION  # down the list: followed
    same = adapter.handle("frigate/events", event_msg("update", label="dog"), DAY)
    assert code(same) == "no-change"
    back = adapter.handle("frigate/events", event_msg("update", label="person"), DAY)
    assert only_event(back).kind is CctvKind.FIGHT


def test_a_new_label_without_a_rule_changes_nothing() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    first = only_event(adapter.handle("frigate/events", event_msg("new", top_score=0.6), DAY))
    car = adapter.handle("frigate/events", event_msg("update", label="car", top_score=0.99), DAY)
    assert code(car) == "label-not-mapped"
    end = only_event(adapter.handle("frigate/events", event_msg("end", label="car"), DAY))
    assert end.ended and end.kind is first.kind and end.confidence == first.confidence


def test_memory_from_before_labels_is_read_and_upgraded() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    only_event(adapter.handle("frigate/events", event_msg("new"), DAY))
    adapter._reported[EVENT_ID].label = ""  # as restored from an older journal snapshot
    same = adapter.handle("frigate/events", event_msg("update"), DAY)
    assert code(same) == "no-change" and adapter._reported[EVENT_ID].label == "person"


# --- reviews: audio ------------------------------------------------------------------


def audio_review(
    *audio: str,
    severity: str = "detection",
    kind: str = "new",
    zones: list[str] | None = None,
    start_time: float | None = None,
) -> bytes:
    """Frigate's documented review, with audio labels, listing none of our events."""
    review = json.loads(review_msg(severity, kind))["after"]
    review["data"].update(objects=[], audio=list(audio), zones=zones or [])
    if start_time is not None:
        review["start_time"] = start_time
    return json.dumps({"type": kind, "before": review, "after": review}).encode()


def test_a_scream_heard_in_a_detection_review_is_a_scream_event() -> None:
    adapter = FrigateAdapter(mapping(alert_confidence=0.75), 9.0)
    ev = only_event(adapter.handle("frigate/reviews", audio_review("speech", "scream"), DAY))
    assert ev.event_id == REVIEW_KEY and ev.camera_id == "cam-jongno-0002"
    assert ev.kind is CctvKind.SCREAM and ev.confidence == 0.75
    assert ev.ts == 1718987129.308396 and not ev.ended
    again = adapter.handle("frigate/reviews", audio_review("scream", kind="update"), DAY)
    assert code(again) == "duplicate"
    end = only_event(adapter.handle("frigate/reviews", audio_review("scream", kind="end"), DAY))
    assert end.ended and end.event_id == REVIEW_KEY
    assert code(adapter.handle("frigate/reviews", audio_review("scream", kind="end"), DAY)) == (
        "after-end"
    )


def test_audio_of_an_alert_review_also_counts_and_the_alert_still_boosts() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    person = event_msg("new", id="1718987128.947436-g92ztx", camera="front_cam", top_score=0.6)
    only_event(adapter.handle("frigate/events", person, DAY))
    result = adapter.handle("frigate/reviews", audio_review("scream", severity="alert"), DAY)
    boosted, scream = result.messages
    assert isinstance(boosted, CctvEvent) and isinstance(scream, CctvEvent)
    assert boosted.event_id == "1718987128.947436-g92ztx" and boosted.confidence == 0.7
    assert scream.event_id == REVIEW_KEY and scream.kind is CctvKind.SCREAM


def test_a_higher_audio_rule_later_in_the_review_upgrades_its_event() -> None:
    rules = [{"label": "scream", "kind": "scream"}, {"label": "yell", "kind": "fight"}]
    adapter = FrigateAdapter(mapping(rules=rules), 9.0)
    yell = only_event(adapter.handle("frigate/reviews", audio_review("yell"), DAY))
    assert yell.kind is CctvKind.FIGHT
    both = audio_review("yell", "scream", kind="update")
    scream = only_event(adapter.handle("frigate/reviews", both, DAY))
    assert scream.event_id == yell.event_id and scream.kind is CctvKind.SCREAM
    lower = adapter.handle("frigate/reviews", audio_review("yell", kind="update"), DAY)
    assert code(lower) == "duplicate"


def test_an_alert_kind_event_is_upgraded_by_mapped_audio() -> None:
    adapter = FrigateAdapter(mapping(alert_kind="intrusion"), 9.0)
    alert = only_event(adapter.handle("frigate/reviews", audio_review(severity="alert"), DAY))
    assert alert.kind is CctvKind.INTRUSION
    heard = audio_review("scream", severity="alert", kind="update")
    assert only_event(adapter.handle("frigate/reviews", heard, DAY)).kind is CctvKind.SCREAM


def test_audio_already_reported_as_an_event_is_not_reported_twice() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    scream = event_msg(
        "new", id="1718987128.947436-g92ztx", camera="front_cam", label="scream", top_score=0.8
    )
    only_event(adapter.handle("frigate/events", scream, DAY))
    assert code(adapter.handle("frigate/reviews", audio_review("scream"), DAY)) == "duplicate"


def test_an_audio_review_end_opens_nothing() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    result = adapter.handle("frigate/reviews", audio_review("scream", kind="end"), DAY)
    assert code(result) == "end-unreported"


def test_audio_rules_use_the_reviews_zones_and_time() -> None:
    rules = [{"label": "scream", "zone": "alley", "night_only": True, "kind": "scream"}]
    adapter = FrigateAdapter(mapping(rules=rules), 9.0)
    day = audio_review("scream", zones=["back_alley"], start_time=DAY)
    assert code(adapter.handle("frigate/reviews", day, DAY)) == "not-night"
    yard = audio_review("scream", zones=["yard"], start_time=NIGHT)
    assert code(adapter.handle("frigate/reviews", yard, NIGHT)) == "zone-not-matched"
    alley = audio_review("scream", zones=["back_alley"], start_time=NIGHT)
    assert only_event(adapter.handle("frigate/reviews", alley, NIGHT)).kind is CctvKind.SCREAM


def test_audio_rule_above_the_review_confidence_is_below_threshold() -> None:
    rules = [{"label": "scream", "kind": "scream", "min_score": 0.9}]
    adapter = FrigateAdapter(mapping(rules=rules, alert_confidence=0.8), 9.0)
    assert code(adapter.handle("frigate/reviews", audio_review("scream"), DAY)) == (
        "below-threshold"
    )


# --- every ignore has a code ---------------------------------------------------------


def test_each_ignore_path_names_its_code() -> None:
    adapter = FrigateAdapter(mapping(), 9.0)
    handle = adapter.handle
    cases: list[tuple[str, Any]] = [
        ("label-not-mapped", handle("frigate/events", event_msg(label="car"), DAY)),
        ("below-threshold", handle("frigate/events", event_msg(top_score=0.3, score=0.3), DAY)),
        ("zone-not-matched", handle("frigate/events", event_msg(current_zones=["road"],
                                                                entered_zones=[]), DAY)),
        ("not-night", handle("frigate/events", event_msg(current_zones=["alley"],
                                                         entered_zones=[]), DAY)),
        ("false-positive", handle("frigate/events", event_msg(false_positive=True), DAY)),
        ("end-unreported", handle("frigate/events", event_msg("end"), DAY)),
        ("detection-severity", handle("frigate/reviews", review_msg("detection"), DAY)),
        ("alert-not-mapped", handle("frigate/reviews", review_msg("alert"), DAY)),
        ("topic-not-read", handle("frigate/front_door/person", b"1", DAY)),
    ]  # fmt: skip
    handle("frigate/events", event_msg("new"), DAY)
    cases.append(("no-change", handle("frigate/events", event_msg("update"), DAY)))
    handle("frigate/events", event_msg("update", false_positive=True), DAY)
    cases.append(("withdrawn", handle("frigate/events", event_msg("update"), DAY)))
    person = event_msg("new", id="1718987128.947436-g92ztx", camera="front_cam")
    handle("frigate/events", person, DAY)
    handle("frigate/reviews", review_msg("alert"), DAY)
    cases.append(("duplicate", handle("frigate/reviews", review_msg("alert"), DAY)))
    lenient = FrigateAdapter(mapping(detect_off="ignore"), 9.0)
    off = lenient.handle("frigate/front_door/detect/state", b"OFF", DAY)
    cases.append(("detect-off-ignored", off))
    empty = FrigateAdapter(mapping(cameras={}), 9.0)
    cases.append(("no-cameras", empty.handle("frigate/available", b"online", DAY)))
    assert [(want, code(result)) for want, result in cases] == [(w, w) for w, _ in cases]
    assert {w for w, _ in cases} | {"after-end"} == IGNORE_REASONS


def test_ignore_reason_reads_only_the_vocabulary() -> None:
    assert ignore_reason("no-change: event x: update without a meaningful change") == "no-change"
    assert ignore_reason("event x: free text: with colons") is None
    assert ignore_reason("") is None


@settings(max_examples=150, **FUZZ)
@given(
    topic=topics,
    kind=st.sampled_from(["new", "update", "end"]),
    after=objects,
    base=st.booleans(),
)
def test_fuzz_every_ignored_message_has_a_code(
    topic: str, kind: str, after: dict[str, Any], base: bool
) -> None:
    obj = {**tracked(), **after} if base else after
    payload = json.dumps({"type": kind, "after": obj}).encode()
    adapter = FrigateAdapter(mapping(alert_kind="fight"), 9.0)
    for _ in range(2):
        result = adapter.handle(topic, payload, DAY)
        if result.ignored is not None:
            assert ignore_reason(result.ignored) in IGNORE_REASONS, result.ignored
