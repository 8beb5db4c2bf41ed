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
  Confidence is ``top_score`` (the best so far), else ``score``. The event id
  is Frigate's id, so ``update`` and ``end`` messages speak of the same event.
- Updates are re-emitted only when they matter: the matched rule moves up the
  list (a person in the yard now loitering in the alley at night), or the
  confidence rises by at least ``min_confidence_step``. Otherwise ignored.
- ``false_positive: true`` on an event already reported → the same event with
  ``withdrawn=True``.
- ``reviews``: a review is Frigate's own judgement of what deserves attention
  (its ``review.alerts`` labels and required zones). Severity ``alert`` raises
  the confidence of every reported event it lists by ``alert_boost`` (once per
  event). When none of its detections matched a rule and ``alert_kind`` is set,
  the alert itself becomes an event (id ``review-<id>``, ``alert_confidence``).
  Severity ``detection`` is ignored: it is informational.
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

The adapter keeps a small bounded memory of reported events (``max_tracked``).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta, Struct, field

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
from protocols.schemas import (
    CameraHealth,
    CameraHealthStatus,
    CctvEvent,
    CctvKind,
    Ident,
    Lat,
    Lon,
)

FrigateMessage = CctvEvent | CameraHealth
Result = AdapterResult[FrigateMessage]

_IDENT: Final = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
_Score = Annotated[float, Meta(ge=0.0, le=1.0)]
_Epoch = Annotated[float, Meta(ge=0.0, le=1e11)]  # finite, and before the year 5138
_Step = Annotated[float, Meta(ge=0.0, le=1.0)]


# --- configuration -------------------------------------------------------------------


class FrigateRule(Struct, kw_only=True, forbid_unknown_fields=True):
    """Which Frigate detections mean which CCTV kind."""

    label: str  # Frigate's label: "person", "scream", "yell" (audio), ...
    kind: CctvKind
    zone: str = ""  # a substring of a zone name, case-insensitive; "" = anywhere
    night_only: bool = False
    min_score: _Score = 0.0


class FrigateCamera(Struct, kw_only=True, forbid_unknown_fields=True):
    """A mapped camera with its position (``lat`` and ``lon`` go together)."""

    id: Ident
    lat: Lat | None = None
    lon: Lon | None = None

    def __post_init__(self) -> None:
        if (self.lat is None) != (self.lon is None):
            raise ValueError(f"camera {self.id}: lat and lon go together")


class FrigateMapping(Struct, kw_only=True, forbid_unknown_fields=True):
    """The ``[frigate]`` configuration: how one Frigate server maps onto our cameras."""

    prefix: Annotated[str, Meta(min_length=1, max_length=200)] = "frigate"
    # Frigate's web address, e.g. "http://frigate.local:5000"; "" = no snapshot links.
    base_url: Annotated[str, Meta(max_length=500, pattern=r"^(https?://.+)?$")] = ""
    # Frigate name → camera id, or → { id = "...", lat = ..., lon = ... }
    cameras: dict[str, Ident | FrigateCamera] = field(default_factory=dict)
    rules: list[FrigateRule] = field(default_factory=list)
    min_confidence_step: _Step = 0.1
    alert_boost: _Step = 0.1
    alert_kind: CctvKind | None = None
    alert_confidence: _Score = 0.8
    # detect/state OFF: the analytics are blind on that camera. "ignore" to drop it.
    detect_off: Literal["offline", "video-loss", "tampered", "online", "ignore"] = "offline"
    max_tracked: Annotated[int, Meta(ge=1, le=1_000_000)] = 10_000


def subscriptions(mapping: FrigateMapping) -> list[str]:
    """The MQTT topic filters the adapter reads."""
    p = mapping.prefix
    return [
        f"{p}/events",
        f"{p}/reviews",
        f"{p}/available",
        f"{p}/+/detect/state",
        f"{p}/+/enabled/state",
    ]


# --- Frigate's payloads (only the fields we use; the rest is ignored) ----------------


class _Object(Struct):
    id: str
    camera: str
    label: str
    score: _Score | None = None
    top_score: _Score | None = None
    false_positive: bool = False
    start_time: _Epoch | None = None
    end_time: _Epoch | None = None
    frame_time: _Epoch | None = None
    current_zones: list[str] | None = None
    entered_zones: list[str] | None = None
    has_snapshot: bool = False


class _EventMessage(Struct):
    type: Literal["new", "update", "end"]
    after: _Object


class _ReviewData(Struct):
    detections: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    zones: list[str] = field(default_factory=list)


class _Review(Struct):
    id: str
    camera: str
    severity: Literal["alert", "detection"]
    start_time: _Epoch | None = None
    end_time: _Epoch | None = None
    data: _ReviewData = field(default_factory=_ReviewData)


class _ReviewMessage(Struct):
    type: Literal["new", "update", "end"]
    after: _Review


_event_decoder = msgspec.json.Decoder(_EventMessage)
_review_decoder = msgspec.json.Decoder(_ReviewMessage)


@dataclass(slots=True)
class _Reported:
    """What we last told the core about one Frigate event."""

    camera_id: str
    kind: CctvKind
    rule_index: int
    confidence: float
    ts: float
    snapshot_url: str | None
    withdrawn: bool = False
    alerted: bool = False


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
        self._reported: OrderedDict[str, _Reported] = OrderedDict()
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
        return ignore(f"{topic}: not a Frigate topic the adapter reads")

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
            msg = _event_decoder.decode(payload)
        except msgspec.DecodeError as exc:
            return refuse(f"{topic}: not a Frigate event: {validation_reason(exc)}")
        obj = msg.after
        camera_id = self._camera_id(topic, obj.camera)
        if isinstance(camera_id, AdapterResult):
            return camera_id
        if not _IDENT.match(obj.id):
            return refuse(f"{topic}: Frigate event id {obj.id[:140]!r} is not a valid identifier")
        confidence = obj.top_score if obj.top_score is not None else obj.score
        if confidence is None:
            return refuse(f"{topic}: event {obj.id} has neither top_score nor score")
        seen = self._reported.get(obj.id)
        if seen is not None:
            self._reported.move_to_end(obj.id)
        if obj.false_positive:
            if seen is None or seen.withdrawn:
                return ignore(f"event {obj.id}: false positive, not reported")
            seen.withdrawn = True
            return self._emit_event(obj.id, seen, withdrawn=True)
        if seen is not None and seen.withdrawn:
            return ignore(f"event {obj.id}: withdrawn earlier as a false positive")
        when = obj.frame_time if obj.frame_time is not None else now
        match = self._match(obj, confidence, self.is_night(when))
        if match is None:
            zones = sorted(set(obj.current_zones or ()) | set(obj.entered_zones or ()))
            return ignore(
                f"event {obj.id}: no rule for label '{obj.label[:60]}' in zones {zones}"[:300]
            )
        index, rule = match
        snapshot = self._snapshot_url(obj)
        if seen is None:
            ts = obj.start_time if obj.start_time is not None else now
            reported = _Reported(camera_id, rule.kind, index, confidence, ts, snapshot)
            self._remember(obj.id, reported)
            return self._emit_event(obj.id, reported)
        upgraded = index < seen.rule_index and rule.kind is not seen.kind
        rose = confidence >= seen.confidence + self.mapping.min_confidence_step
        if not (upgraded or rose):
            return ignore(f"event {obj.id}: {msg.type} without a meaningful change")
        if upgraded:
            seen.kind, seen.rule_index = rule.kind, index
        seen.confidence = max(seen.confidence, confidence)
        seen.snapshot_url = snapshot or seen.snapshot_url
        return self._emit_event(obj.id, seen)

    def _match(
        self, obj: _Object, confidence: float, night: bool
    ) -> tuple[int, FrigateRule] | None:
        zones = [z.lower() for z in (*(obj.current_zones or ()), *(obj.entered_zones or ()))]
        for index, rule in enumerate(self.mapping.rules):
            if rule.label != obj.label or confidence < rule.min_score:
                continue
            if rule.night_only and not night:
                continue
            if rule.zone and not any(rule.zone.lower() in z for z in zones):
                continue
            return index, rule
        return None

    def _snapshot_url(self, obj: _Object) -> str | None:
        if not (obj.has_snapshot and self.mapping.base_url):
            return None
        return f"{self.mapping.base_url.rstrip('/')}/api/events/{obj.id}/snapshot.jpg"

    def _remember(self, key: str, reported: _Reported) -> None:
        self._reported[key] = reported
        while len(self._reported) > self.mapping.max_tracked:
            self._reported.popitem(last=False)

    def _emit_event(self, event_id: str, r: _Reported, *, withdrawn: bool = False) -> Result:
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
        try:
            return emit(msgspec.convert(fields, CctvEvent))
        except msgspec.ValidationError as exc:
            return refuse(f"event {event_id}: cannot be expressed as a CCTV event: {exc}")

    # --- reviews -----------------------------------------------------------------------

    def _on_review(self, topic: str, payload: bytes, now: float) -> Result:
        try:
            msg = _review_decoder.decode(payload)
        except msgspec.DecodeError as exc:
            return refuse(f"{topic}: not a Frigate review: {validation_reason(exc)}")
        review = msg.after
        camera_id = self._camera_id(topic, review.camera)
        if isinstance(camera_id, AdapterResult):
            return camera_id
        if review.severity == "detection":
            return ignore(f"review {review.id[:140]}: severity 'detection' is informational")
        out: list[FrigateMessage] = []
        for event_id in review.data.detections:
            seen = self._reported.get(event_id)
            if seen is None or seen.withdrawn or seen.alerted:
                continue
            seen.alerted = True
            boosted = min(1.0, seen.confidence + self.mapping.alert_boost)
            if boosted > seen.confidence:
                seen.confidence = boosted
                result = self._emit_event(event_id, seen)
                out.extend(result.messages)
        if out:
            return emit(*out)
        if any(self._reported.get(e) is not None for e in review.data.detections):
            return ignore(f"review {review.id[:140]}: alert already applied to its events")
        if self.mapping.alert_kind is None:
            return ignore(f"review {review.id[:140]}: alert with no mapped detection")
        key = f"review-{review.id}"
        if not _IDENT.match(key):
            return refuse(f"{topic}: review id {review.id[:140]!r} is not a valid identifier")
        if key in self._reported:
            return ignore(f"review {review.id}: alert already reported")
        ts = review.start_time if review.start_time is not None else now
        reported = _Reported(
            camera_id, self.mapping.alert_kind, -1, self.mapping.alert_confidence, ts, None
        )
        reported.alerted = True
        self._remember(key, reported)
        return self._emit_event(key, reported)

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
            return ignore(f"{topic}: Frigate {word.decode()}, but no cameras are mapped")
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
            return ignore(f"{topic}: detection off, ignored by the mapping")
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
