"""Frigate's configuration, payloads and ignore codes: what :mod:`protocols.frigate` reads.

Split from the adapter so that each stays small. ``FrigateMapping`` is the
``[frigate]`` configuration; the payload structs decode only the fields the
adapter uses; :class:`Reported` is the adapter's memory of one event, which the
core also keeps in its journal snapshots (``console.core.foreign``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final, Literal, get_args

import msgspec
from msgspec import Meta, Struct, field

from protocols.schemas import CctvKind, Ident, Lat, Lon

_Score = Annotated[float, Meta(ge=0.0, le=1.0)]
_Epoch = Annotated[float, Meta(ge=0.0, le=1e11)]  # finite, and before the year 5138
_Step = Annotated[float, Meta(ge=0.0, le=1.0)]

# Why a message was ignored. The core counts ignored messages per code in its summary,
# so the codes are a fixed set: nothing a Frigate server sends can add one.
IgnoreReason = Literal[
    "label-not-mapped",  # no rule for the object's (or audio) label
    "below-threshold",  # a rule for the label, but the score is under its min_score
    "not-night",  # a night-only rule for the label, by day
    "zone-not-matched",  # rules for the label, none for its zones
    "no-change",  # an update that changes nothing reported
    "end-unreported",  # the end of an event never reported: it opens nothing
    "after-end",  # a message about an event already ended
    "false-positive",  # a false positive never reported
    "withdrawn",  # an event withdrawn earlier as a false positive
    "detection-severity",  # a review of severity detection with no mapped audio
    "alert-not-mapped",  # an alert none of whose detections matched, no alert_kind
    "duplicate",  # a review already applied or already reported
    "detect-off-ignored",  # detect/state OFF, dropped by the mapping
    "no-cameras",  # available, with no camera mapped
    "topic-not-read",  # a Frigate topic the adapter has no use for
]
IGNORE_REASONS: Final[frozenset[str]] = frozenset(get_args(IgnoreReason))


def ignore_reason(ignored: str) -> str | None:
    """The code an ignored message's text starts with, or None when it has none."""
    code = ignored.partition(":")[0]
    return code if code in IGNORE_REASONS else None


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
    # The confidence of an event made from a review (an alert, audio): reviews carry no score.
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


class FrigateObject(Struct):
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


class EventMessage(Struct):
    type: Literal["new", "update", "end"]
    after: FrigateObject


class ReviewData(Struct):
    detections: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    zones: list[str] = field(default_factory=list)
    audio: list[str] = field(default_factory=list)


class Review(Struct):
    id: str
    camera: str
    severity: Literal["alert", "detection"]
    start_time: _Epoch | None = None
    end_time: _Epoch | None = None
    data: ReviewData = field(default_factory=ReviewData)


class ReviewMessage(Struct):
    type: Literal["new", "update", "end"]
    after: Review


event_decoder = msgspec.json.Decoder(EventMessage)
review_decoder = msgspec.json.Decoder(ReviewMessage)


@dataclass(slots=True)
class Reported:
    """What we last told the core about one Frigate event (or review)."""

    camera_id: str
    kind: CctvKind
    rule_index: int
    confidence: float
    ts: float
    snapshot_url: str | None
    withdrawn: bool = False
    alerted: bool = False
    label: str = ""  # the label its rule matched ("" in memory written before labels)
    ended: bool = False


def confidence_of(top_score: float | None, score: float | None) -> float | None:
    """``top_score`` when Frigate has one (above 0), else ``score``."""
    if top_score is not None and top_score > 0.0:
        return top_score
    if score is not None:
        return score
    return top_score
