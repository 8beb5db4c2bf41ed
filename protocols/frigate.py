"""Frigate NVR over MQTT → :class:`CctvEvent` and :class:`CameraHealth`.

Frigate (open-source NVR with object and audio detection) publishes, under its
``topic_prefix`` (default ``frigate``):

``frigate/events``                 tracked objects: ``type`` new/update/end, ``before``/``after``
``frigate/reviews``                review items (0.14+): ``severity`` alert/detection
``frigate/available``              ``online`` / ``offline`` (its MQTT last will)
``frigate/<camera>/detect/state``  ``ON`` / ``OFF``: object detection on that camera
``frigate/<camera>/enabled/state`` ``ON`` / ``OFF``: the camera's processing (0.16+)

How they become our wire types (the mapping is :class:`FrigateMapping`):

- An ``events`` object becomes a CCTV event when a rule matches: its ``label``
  equals the rule's, one of its zones (``current_zones`` ∪ ``entered_zones``)
  contains the rule's ``zone`` (case-insensitive; ``""`` matches any zone or
  none), it is night if the rule says ``night_only``, and its score reaches
  ``min_score``. Rules are ordered most important first; the first match wins.
  Confidence is ``top_score`` (the best so far) when above 0, else ``score``
  (Frigate sends ``top_score`` 0 before it has one). The event id is Frigate's
  id, so ``update`` and ``end`` messages speak of the same event.
- Updates are re-emitted only when they matter: the matched rule moves up the
  list (a person in the yard now loitering in the alley at night), the object's
  ``label`` changed (the kind follows the new label's rule, up or down), or the
  confidence rises by at least ``min_confidence_step``. Otherwise ignored.
- ``end``: the event is over. A reported event is sent once more with
  ``ended=True`` (the engine records it on its incident); an ``end`` never
  reports an event that was not reported before, so it never opens an incident.
- ``false_positive: true`` on an event already reported → the same event with
  ``withdrawn=True``.
- ``reviews``: a review is Frigate's own judgement of what deserves attention
  (its ``review.alerts`` labels and required zones). Severity ``alert`` raises
  the confidence of every reported event it lists by ``alert_boost`` (once per
  event). Its ``data.audio`` labels (``scream``, ``yell``) go through the same
  rules as object labels (zones from ``data.zones``, night at its start), at
  either severity: the first matching rule makes the review a CCTV event (id
  ``review-<id>``, ``alert_confidence``, since a review has no score) unless a
  reported event it lists already has that kind. When nothing of an alert
  matched a rule and ``alert_kind`` is set, the alert itself becomes that event.
  A review's ``end`` ends its event. Otherwise severity ``detection`` is ignored.
- ``available`` speaks for every mapped camera (Frigate down → all offline).
  ``detect/state OFF`` means the analytics are blind on that camera: reported
  as ``detect_off`` (offline by default; ``"ignore"`` drops it). ``enabled/state
  OFF`` → offline. ``ON`` → online.
- A Frigate camera missing from ``cameras`` is refused with a reason naming it.
- ``cameras`` maps a Frigate name to our camera id, or to ``{ id, lat, lon }``: a
  camera with a position in the mapping carries it on every event and health report,
  so it is placed even when no other source reports it. One without is placed only
  by another source's report; until then the core drops its messages with a reason
  (it is never put at 0, 0).
- Every ignored message says why with a code from :data:`IGNORE_REASONS` first
  (``"below-threshold: event ..."``, see :func:`ignore_reason`): the core counts
  them per code, and a fixed vocabulary keeps that count bounded whatever arrives.

The adapter keeps a small bounded memory of reported events (``max_tracked``). Its
configuration, Frigate's payloads and the ignore codes are in :mod:`protocols.frigate_types`.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Final, Literal

import msgspec

from protocols.adapters import (
    MAX_JSON_PAYLOAD,
    AdapterResult,
    PrefixAdapter,
    emit,
    ignore,
    refuse,
    too_big,
    validation_reason,
)
from protocols.frigate_types import (
    IGNORE_REASONS,
    FrigateCamera,
    FrigateMapping,
    FrigateObject,
    FrigateRule,
    IgnoreReason,
    Reported,
    Review,
    confidence_of,
    event_decoder,
    ignore_reason,
    review_decoder,
    subscriptions,
)
from protocols.schemas import CameraHealth, CameraHealthStatus, CctvEvent, CctvKind

__all__ = [
    "IGNORE_REASONS",
    "FrigateAdapter",
    "FrigateCamera",
    "FrigateMapping",
    "FrigateRule",
    "Reported",
    "ignore_reason",
    "subscriptions",
]

FrigateMessage = CctvEvent | CameraHealth
Result = AdapterResult[FrigateMessage]

_IDENT: Final = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


def _skip(reason: IgnoreReason, detail: str) -> Result:
    return ignore(f"{reason}: {detail}")


def _joined(boosted: list[FrigateMessage], result: Result) -> Result:
    """An alert's boosts, with what else its review made (alone, a refusal stands)."""
    return emit(*boosted, *result.messages) if boosted else result


# --- the adapter -----------------------------------------------------------------------


class FrigateAdapter(PrefixAdapter[CctvEvent | CameraHealth]):
    """Turns Frigate's MQTT messages into wire messages. Pure apart from its small memory."""

    format_name = "Frigate"

    def __init__(
        self,
        mapping: FrigateMapping,
        utc_offset_hours: float = 9.0,
        *,
        night_start_hour: int = 21,
        night_end_hour: int = 6,
    ) -> None:
        super().__init__(mapping.prefix)
        self.mapping = mapping
        self.utc_offset_s = utc_offset_hours * 3600.0
        self.night_start = night_start_hour
        self.night_end = night_end_hour
        self._reported: OrderedDict[str, Reported] = OrderedDict()
        # Frigate name → camera id, and camera id → its mapped position (if any).
        self._ids: dict[str, str] = {}
        self._where: dict[str, tuple[float, float]] = {}
        for name, cam in mapping.cameras.items():
            if isinstance(cam, str):
                self._ids[name] = cam
                continue
            self._ids[name] = cam.id
            if cam.lat is not None and cam.lon is not None:
                self._where[cam.id] = (cam.lat, cam.lon)

    def subscriptions(self) -> list[str]:
        return subscriptions(self.mapping)

    # --- dispatch ----------------------------------------------------------------------

    def _handle(self, topic: str, rest: str, payload: bytes, now: float) -> Result:
        limit = too_big(payload, MAX_JSON_PAYLOAD)
        if limit is not None:
            return refuse(f"{topic}: {limit}")
        if rest == "events":
            return self._on_event(topic, payload, now)
        if rest == "reviews":
            return self._on_review(topic, payload, now)
        if rest == "available":
            return self._on_available(topic, payload, now)
        parts = rest.split("/")
        if len(parts) == 3 and parts[2] == "state" and parts[1] in ("detect", "enabled"):
            return self._on_switch(topic, parts[0], parts[1], payload, now)
        return _skip("topic-not-read", f"{topic}: not a Frigate topic the adapter reads")

    def _camera_id(self, topic: str, name: str) -> str | Result:
        camera_id = self._ids.get(name)
        if camera_id is None:
            return refuse(
                f"{topic}: Frigate camera '{name[:100]}' is not mapped to a camera id"
                " (add it to the Frigate mapping's cameras)"
            )
        return camera_id

    # --- events ------------------------------------------------------------------------

    def _on_event(self, topic: str, payload: bytes, now: float) -> Result:
        try:
            msg = event_decoder.decode(payload)
        except msgspec.DecodeError as exc:
            return refuse(f"{topic}: not a Frigate event: {validation_reason(exc)}")
        obj = msg.after
        camera_id = self._camera_id(topic, obj.camera)
        if isinstance(camera_id, AdapterResult):
            return camera_id
        if not _IDENT.match(obj.id):
            return refuse(f"{topic}: Frigate event id {obj.id[:140]!r} is not a valid identifier")
        confidence = confidence_of(obj.top_score, obj.score)
        if confidence is None:
            return refuse(f"{topic}: event {obj.id} has neither top_score nor score")
        seen = self._reported.get(obj.id)
        if seen is not None:
            self._reported.move_to_end(obj.id)
        if obj.false_positive:
            if seen is None or seen.withdrawn:
                return _skip("false-positive", f"event {obj.id}: false positive, not reported")
            seen.withdrawn = True
            return self._emit_event(obj.id, seen, withdrawn=True)
        if seen is not None and seen.withdrawn:
            return _skip("withdrawn", f"event {obj.id}: withdrawn earlier as a false positive")
        if seen is not None and seen.ended:
            return _skip("after-end", f"event {obj.id}: {msg.type} after its end")
        if seen is None and msg.type == "end":
            return _skip("end-unreported", f"event {obj.id}: ended, never reported")
        when = obj.frame_time if obj.frame_time is not None else now
        night = self.is_night(when)
        zones = [*(obj.current_zones or ()), *(obj.entered_zones or ())]
        match = self._match(obj.label, zones, confidence, night)
        if seen is None:
            if match is None:
                return self._unmatched(f"event {obj.id}", obj.label, zones, confidence, night)
            index, rule = match
            ts = obj.start_time if obj.start_time is not None else now
            snapshot = self._snapshot_url(obj)
            reported = Reported(
                camera_id, rule.kind, index, confidence, ts, snapshot, label=obj.label
            )
            self._remember(obj.id, reported)
            return self._emit_event(obj.id, reported)
        changed = self._apply_update(seen, obj.label, match, confidence)
        seen.snapshot_url = self._snapshot_url(obj) or seen.snapshot_url
        if msg.type == "end":
            seen.ended = True
            return self._emit_event(obj.id, seen, ended=True)
        if changed:
            return self._emit_event(obj.id, seen)
        if match is None:
            return self._unmatched(f"event {obj.id}", obj.label, zones, confidence, night)
        return _skip("no-change", f"event {obj.id}: {msg.type} without a meaningful change")

    def _apply_update(
        self,
        seen: Reported,
        label: str,
        match: tuple[int, FrigateRule] | None,
        confidence: float,
    ) -> bool:
        """Fold an update into what was reported; whether it is worth telling the core."""
        if match is None:
            return False  # out of every rule now: what was reported stands
        index, rule = match
        # A new label is a new judgement of what the object is, so its kind follows, up or
        # down; the same label only moves up the rule list (leaving a zone is no downgrade).
        relabelled = bool(seen.label) and label != seen.label
        changed = False
        if rule.kind is not seen.kind and (relabelled or index < seen.rule_index):
            seen.kind, changed = rule.kind, True
        if relabelled or index < seen.rule_index:
            seen.label, seen.rule_index = label, index
        seen.label = seen.label or label  # memory from before labels were kept
        if confidence >= seen.confidence + self.mapping.min_confidence_step:
            changed = True
        seen.confidence = max(seen.confidence, confidence)
        return changed

    def _match(
        self, label: str, zones: list[str], confidence: float, night: bool
    ) -> tuple[int, FrigateRule] | None:
        lowered = [z.lower() for z in zones]
        for index, rule in enumerate(self.mapping.rules):
            if rule.label != label or confidence < rule.min_score:
                continue
            if rule.night_only and not night:
                continue
            if rule.zone and not any(rule.zone.lower() in z for z in lowered):
                continue
            return index, rule
        return None

    def _unmatched(
        self, what: str, label: str, zones: list[str], confidence: float, night: bool
    ) -> Result:
        """Why no rule matched: the one condition that alone kept a rule of the label out."""
        rules = [r for r in self.mapping.rules if r.label == label]
        where = sorted(set(zones))
        detail = f"{what}: no rule for label '{label[:60]}' in zones {where}"[:300]
        if not rules:
            return _skip("label-not-mapped", detail)
        lowered = [z.lower() for z in zones]
        in_zone = [r for r in rules if not r.zone or any(r.zone.lower() in z for z in lowered)]
        if any(night or not r.night_only for r in in_zone):  # only the score kept it out
            return _skip("below-threshold", f"{detail}, score {confidence:.2f}")
        if in_zone:
            return _skip("not-night", detail)
        return _skip("zone-not-matched", detail)

    def _snapshot_url(self, obj: FrigateObject) -> str | None:
        if not (obj.has_snapshot and self.mapping.base_url):
            return None
        return f"{self.mapping.base_url.rstrip('/')}/api/events/{obj.id}/snapshot.jpg"

    def _remember(self, key: str, reported: Reported) -> None:
        self._reported[key] = reported
        while len(self._reported) > self.mapping.max_tracked:
            self._reported.popitem(last=False)

    def _emit_event(
        self, event_id: str, r: Reported, *, withdrawn: bool = False, ended: bool = False
    ) -> Result:
        fields: dict[str, object] = {
            "event_id": event_id,
            "camera_id": r.camera_id,
            "kind": r.kind.value,
            "confidence": round(min(1.0, r.confidence), 4),
            "ts": r.ts,
        }
        if r.snapshot_url is not None:
            fields["snapshot_url"] = r.snapshot_url
        if withdrawn:
            fields["withdrawn"] = True
        elif r.camera_id in self._where:
            fields["lat"], fields["lon"] = self._where[r.camera_id]
        if ended:
            fields["ended"] = True
        try:
            return emit(msgspec.convert(fields, CctvEvent))
        except msgspec.ValidationError as exc:
            return refuse(f"event {event_id}: cannot be expressed as a CCTV event: {exc}")

    # --- reviews -----------------------------------------------------------------------

    def _on_review(self, topic: str, payload: bytes, now: float) -> Result:
        try:
            msg = review_decoder.decode(payload)
        except msgspec.DecodeError as exc:
            return refuse(f"{topic}: not a Frigate review: {validation_reason(exc)}")
        review = msg.after
        camera_id = self._camera_id(topic, review.camera)
        if isinstance(camera_id, AdapterResult):
            return camera_id
        key = f"review-{review.id}"
        if not _IDENT.match(key):
            return refuse(f"{topic}: review id {review.id[:140]!r} is not a valid identifier")
        what = f"review {review.id}"
        boosted = self._boost(review.data.detections) if review.severity == "alert" else []
        own = self._reported.get(key)
        if own is not None:
            self._reported.move_to_end(key)
            again = self._review_again(key, own, msg.type, self._audio_match(review, now))
            return _joined(boosted, again)
        candidate = self._review_candidate(review, now, boosted)
        if candidate is not None and msg.type != "end":
            index, kind, label, confidence = candidate
            ts = review.start_time if review.start_time is not None else now
            reported = Reported(camera_id, kind, index, confidence, ts, None, label=label)
            reported.alerted = True
            self._remember(key, reported)
            return _joined(boosted, self._emit_event(key, reported))
        if boosted:
            return emit(*boosted)
        if candidate is not None:
            return _skip("end-unreported", f"{what}: ended, never reported")
        return self._review_ignored(review, now)

    def _boost(self, detections: list[str]) -> list[FrigateMessage]:
        """An alert raises the confidence of each reported event it lists, once."""
        out: list[FrigateMessage] = []
        for event_id in detections:
            seen = self._reported.get(event_id)
            if seen is None or seen.withdrawn or seen.alerted:
                continue
            seen.alerted = True
            boosted = min(1.0, seen.confidence + self.mapping.alert_boost)
            if boosted > seen.confidence:
                seen.confidence = boosted
                out.extend(self._emit_event(event_id, seen).messages)
        return out

    def _audio_match(self, review: Review, now: float) -> tuple[int, FrigateRule] | None:
        """The most important rule one of the review's audio labels matches."""
        night = self.is_night(review.start_time if review.start_time is not None else now)
        confidence = self.mapping.alert_confidence
        found: tuple[int, FrigateRule] | None = None
        for label in review.data.audio:
            match = self._match(label, review.data.zones, confidence, night)
            if match is not None and (found is None or match[0] < found[0]):
                found = match
        return found

    def _review_candidate(
        self, review: Review, now: float, boosted: list[FrigateMessage]
    ) -> tuple[int, CctvKind, str, float] | None:
        """What a review not reported before would be reported as, if anything."""
        listed = [self._reported.get(e) for e in review.data.detections]
        audio = self._audio_match(review, now)
        if audio is not None:
            index, rule = audio
            # A reported event of the review already says it (Frigate's own audio event).
            if not any(r is not None and r.kind is rule.kind and not r.withdrawn for r in listed):
                return index, rule.kind, rule.label, self.mapping.alert_confidence
            return None
        kind = self.mapping.alert_kind
        if review.severity != "alert" or kind is None or boosted or any(listed):
            return None
        return len(self.mapping.rules), kind, "", self.mapping.alert_confidence

    def _review_again(
        self,
        key: str,
        own: Reported,
        kind: Literal["new", "update", "end"],
        audio: tuple[int, FrigateRule] | None,
    ) -> Result:
        """A review already reported as an event: a higher audio rule, or its end."""
        if own.withdrawn or own.ended:
            return _skip("after-end", f"review {key[7:]}: {kind} after its end")
        upgraded = audio is not None and audio[0] < own.rule_index
        if audio is not None and upgraded:
            own.rule_index, own.label = audio[0], audio[1].label
            upgraded = audio[1].kind is not own.kind
            own.kind = audio[1].kind
        if kind == "end":
            own.ended = True
            return self._emit_event(key, own, ended=True)
        if upgraded:
            return self._emit_event(key, own)
        return _skip("duplicate", f"review {key[7:]}: already reported")

    def _review_ignored(self, review: Review, now: float) -> Result:
        """Why a review made nothing: its audio's rule failed, or it was nothing we map."""
        what = f"review {review.id}"
        audio = self._audio_match(review, now)
        if audio is not None:
            return _skip("duplicate", f"{what}: its {audio[1].label} is reported by its event")
        night = self.is_night(review.start_time if review.start_time is not None else now)
        for label in review.data.audio:
            if any(r.label == label for r in self.mapping.rules):
                confidence = self.mapping.alert_confidence
                return self._unmatched(what, label, review.data.zones, confidence, night)
        if review.severity == "detection":
            return _skip("detection-severity", f"{what}: severity 'detection' is informational")
        if any(self._reported.get(e) is not None for e in review.data.detections):
            return _skip("duplicate", f"{what}: alert already applied to its events")
        return _skip("alert-not-mapped", f"{what}: alert with no mapped detection")

    # --- health ------------------------------------------------------------------------

    def _on_available(self, topic: str, payload: bytes, now: float) -> Result:
        word = payload.strip().lower()
        if word == b"online":
            status = CameraHealthStatus.ONLINE
        elif word == b"offline":
            status = CameraHealthStatus.OFFLINE
        else:
            return refuse(f"{topic}: expected 'online' or 'offline', got {payload[:40]!r}")
        ids = sorted(set(self._ids.values()))
        if not ids:
            return _skip("no-cameras", f"{topic}: Frigate {word.decode()}, but no camera is mapped")
        return emit(*(self._health(c, status, now) for c in ids))

    def _health(self, camera_id: str, status: CameraHealthStatus, now: float) -> CameraHealth:
        """A health report, with the camera's mapped position when it has one."""
        lat, lon = self._where.get(camera_id, (None, None))
        return CameraHealth(camera_id=camera_id, status=status, ts=now, lat=lat, lon=lon)

    def _on_switch(self, topic: str, name: str, what: str, payload: bytes, now: float) -> Result:
        camera_id = self._camera_id(topic, name)
        if isinstance(camera_id, AdapterResult):
            return camera_id
        word = payload.strip().upper()
        if word == b"ON":
            status: CameraHealthStatus | None = CameraHealthStatus.ONLINE
        elif word == b"OFF":
            if what == "detect":
                off = self.mapping.detect_off
                status = None if off == "ignore" else CameraHealthStatus(off)
            else:
                status = CameraHealthStatus.OFFLINE
        else:
            return refuse(f"{topic}: expected 'ON' or 'OFF', got {payload[:40]!r}")
        if status is None:
            return _skip("detect-off-ignored", f"{topic}: detection off, ignored by the mapping")
        return emit(self._health(camera_id, status, now))

    # --- time --------------------------------------------------------------------------

    def is_night(self, ts: float) -> bool:
        """Whether UNIX time ``ts`` falls in the city's night (local hours, start to end)."""
        hour = ((ts + self.utc_offset_s) % 86400.0) / 3600.0
        start, end = self.night_start, self.night_end
        if start == end:
            return False
        if start > end:
            return hour >= start or hour < end
        return start <= hour < end
