"""From an MQTT message to a journal record and an engine input.

Pure bookkeeping, shared by the live core and the journal replay so that both
read a message exactly the same way.

- Our own topics (``ansim/v1/raw/...``, ``ansim/v1/cmd/...``): :func:`read`, stateless.
- Foreign topics (Frigate, OwnTracks, when enabled): a :class:`Reader` owns one set of
  adapters per core or per replay (``console.core.foreign``); the payload is journaled as
  received and what the adapter made of it goes to the engine.
- Trust: a :class:`Reader` bound to the engine (:meth:`Reader.bind`) asks it, before
  anything is journaled, whether the source may report this and whether it is plausible
  (``Engine.refusal``); a refusal is a dead letter with the engine's reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol

import msgspec

from console.config import Config
from console.core.foreign import NOT_PLAUSIBLE, ForeignAdapters, ForeignMessage
from console.core.placement_memory import Holdings, holdings_of
from console.engine.partitions import district_of_message
from console.journal.store import RecordKind
from protocols import codec, topics
from protocols.public_alert import PublicAlert
from protocols.schemas import (
    CameraHealth,
    CctvEvent,
    Command,
    RawEvent,
    Reply,
    ResponderReport,
    SosAlarm,
)
from protocols.text import printable_struct

replace_struct = msgspec.structs.replace

# Raw events that carry their district (a camera's, a unit's home), set from the topic.
DISTRICTED = (CameraHealth, CctvEvent, ResponderReport)

# In the engine's refusal of a CCTV event whose camera it cannot place (Trust).
UNPLACED_CAMERA = "has no known position"

# What the engine's handle_event takes.
EngineInput = RawEvent | PublicAlert | Reply


@dataclass(frozen=True, slots=True)
class Accepted:
    """A payload that decoded and validated: what to journal and what to feed the engine."""

    kind: RecordKind
    message: EngineInput | Command
    key: str  # dedupe key: resends of one SOS, one CCTV event or one command share it
    # The topic's <source> level (raw events; "" for commands): pass it to the engine,
    # handle_event(message, now, source=accepted.source or None).
    source: str = ""
    # The engine was asked (Engine.refusal) and took it, with nothing applied since:
    # handle_event(..., vetted=True) need not ask again (~2 us an event).
    vetted: bool = False
    # The topic's district level (raw events published into a district), else None.
    district: str | None = None


@dataclass(frozen=True, slots=True)
class Adapted:
    """A foreign payload its adapter read: journal it as received (EVENT, no key), then feed
    ``messages`` (possibly none) to the engine. ``ignored`` says why there are none."""

    messages: tuple[ForeignMessage, ...]
    ignored: str | None = None
    vetted: bool = False  # as Accepted.vetted, for every one of ``messages``
    # With ``ignored``: its code, one of console.core.foreign.IGNORED_REASONS (counted).
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """Published without a district, and placed in a district another partition owns:
    that partition's core takes it; this one acknowledges it and keeps nothing."""

    district: str | None


class Placer(Protocol):
    """Whether a message published without a district is this core's (None: it is).

    ``message=None``: one refused before it could be placed (the home partition's).
    ``source`` is the topic's, ``now`` the receive time, ``holdings`` what this core's
    journal holds (console.core.partition_wiring, console.core.placement_memory)."""

    def __call__(
        self,
        message: object,
        *,
        source: str = "",
        now: float = 0.0,
        holdings: Holdings | None = None,
    ) -> str | None: ...


class Judge(Protocol):
    """What the Reader asks the engine (``Engine.refusal``)."""

    def refusal(self, event: object, now: float, *, source: str | None = None) -> str | None: ...


def confidence_bucket(confidence: float) -> int:
    """Tenths: a resend folds, a rise to the next tenth is journaled as an update."""
    return min(10, max(0, math.floor(confidence * 10.0 + 1e-9)))


def dedupe_key(message: EngineInput | Command) -> str:
    """Messages that must be journaled once however often they arrive."""
    match message:
        case SosAlarm():
            return f"sos:{message.source}:{message.alarm_id}"
        case CctvEvent():
            base = f"cctv:{message.camera_id}:{message.event_id}"
            if message.withdrawn:
                return f"{base}:withdrawn"
            if message.ended:  # the end of an event is news even at an unchanged kind
                return f"{base}:ended"
            # An update of the same event (a new kind, a higher confidence) is a new record.
            return f"{base}:{message.kind.value}:c{confidence_bucket(message.confidence)}"
        case PublicAlert():
            return f"alert:{message.sender}:{message.identifier}"
        case Command():
            return f"cmd:{message.operator}:{message.cmd_id}"
        case CameraHealth() | ResponderReport():
            return ""  # state reports: a repeat is harmless and carries the newest position
    return ""


def _alert_problem(alert: PublicAlert) -> str | None:
    """What the engine cannot use in a public alert from the wire (parse() never makes these)."""
    if not math.isfinite(alert.sent):
        return "public alert: 'sent' is not a finite time"
    if (alert.lat is None) != (alert.lon is None):
        return "public alert: 'lat' and 'lon' go together"
    if alert.lat is not None and alert.lon is not None:
        if not (-90.0 <= alert.lat <= 90.0 and -180.0 <= alert.lon <= 180.0):
            return f"public alert: position {alert.lat}, {alert.lon} is off the globe"
    if alert.msg_type != "Alert" and not alert.references:
        return f"public alert: {alert.msg_type} {alert.identifier} has no references"
    return None


def read(topic: str, payload: bytes) -> Accepted | Refused:
    """Decode a message from a raw or command topic; say why when it cannot be accepted."""
    raw = topics.raw_parts(topic)
    try:
        if raw is not None:
            source, kind, district = raw
            schema = topics.RAW_KINDS.get(kind)
            if schema is None:
                return Refused(f"unknown raw kind '{kind}' in topic {topic}")
            event: EngineInput = printable_struct(codec.decode(payload, schema))
            if isinstance(event, SosAlarm) and event.source != source:
                return Refused(
                    f"SOS source '{event.source}' does not match the topic's source '{source}'"
                )
            if isinstance(event, PublicAlert):
                problem = _alert_problem(event)
                if problem is not None:
                    return Refused(problem)
            if district is not None and isinstance(event, DISTRICTED):
                # The topic's district is the one the broker's ACL and the partition vouch
                # for; a payload may repeat it, never contradict it.
                if event.district is not None and event.district != district:
                    return Refused(
                        f"district '{event.district}' does not match the topic's '{district}'"
                    )
                event = replace_struct(event, district=district)
            return Accepted(RecordKind.EVENT, event, dedupe_key(event), source, district=district)
        if topic.startswith(f"{topics.ROOT}/reply/"):  # a partition core's answer to a LEND
            answer: Reply = printable_struct(codec.decode(payload, Reply))
            key = f"answer:{answer.operator}:{answer.cmd_id}"
            return Accepted(RecordKind.EVENT, answer, key, "")
        parts = topics.cmd_parts(topic)
        if parts is not None:
            operator = parts[0]
            command: Command = printable_struct(codec.decode(payload, Command))
            if command.operator != operator:
                return Refused(
                    f"command operator '{command.operator}' does not match the topic's '{operator}'"
                )
            return Accepted(RecordKind.COMMAND, command, dedupe_key(command))
    except codec.WireError as exc:
        return Refused(exc.reason)
    return Refused(f"not a topic the core accepts: {topic}")


class Reader:
    """:func:`read` plus the foreign adapters of one core or one replay (they have memory).

    The live core and the replay must use one Reader each, from the first record on (or
    from a snapshot restored with :meth:`restore`), and pass the journaled time as ``now``.
    """

    def __init__(self, cfg: Config, judge: Judge | None = None) -> None:
        self.foreign = ForeignAdapters(cfg)
        self.judge = judge
        self.placer: Placer | None = None
        self.holdings: Holdings | None = None
        self.districts = frozenset(d.name for d in cfg.city.districts)
        self.district_map = cfg.city.district_map()

    def bind(self, judge: Judge | None, placer: Placer | None = None) -> None:
        """Ask ``judge`` (the engine this Reader feeds) about every event before it is
        journaled, and ``placer`` whether an event published without a district is this
        core's (the live core of a partitioned city; never a replay: what was journaled
        was this partition's when it came)."""
        self.judge = judge
        self.placer = placer
        self.holdings = holdings_of(judge)

    def subscriptions(self) -> list[str]:
        """The foreign topic filters the core must subscribe to (empty: none enabled)."""
        return self.foreign.subscriptions()

    def read(
        self, topic: str, payload: bytes, now: float
    ) -> Accepted | Adapted | Refused | Elsewhere:
        """Never raises: whatever goes wrong reading a message makes it a dead letter.

        The reading comes before the journal, so a refusal here is journaled as a dead
        letter, acknowledged, and replayed the same way; an exception would have stopped
        the core on every restart with the poison message still queued.
        """
        placed = False
        try:
            result = self._read(topic, payload, now)
            if not isinstance(result, Refused):
                if (
                    self.placer is not None
                    and isinstance(result, Accepted)
                    and result.kind is RecordKind.EVENT
                    and result.district is None
                    and not isinstance(result.message, Reply)
                ):
                    elsewhere = self.placer(
                        result.message, source=result.source, now=now, holdings=self.holdings
                    )
                    if elsewhere is not None:
                        return Elsewhere(elsewhere)
                placed = True
                return self._hinted(result, self._judged(result, now))
        except Exception as exc:
            result = Refused(f"unreadable: {type(exc).__name__}: {exc}"[:500])
        if placed or not isinstance(result, Refused):
            return result
        return self._unplaced(topic, result)

    def _unplaced(self, topic: str, refusal: Refused) -> Refused | Elsewhere:
        """A refusal made before placement, on a topic every partition's core reads (raw,
        without a district): each core would refuse it alike, so only the home
        partition's records it, as it would take a message no district places."""
        if self.placer is None:
            return refusal
        parts = topics.raw_parts(topic)
        if parts is None or parts[2] is not None:
            return refusal  # read by the cores of one district (and its neighbours): theirs
        try:
            elsewhere = self.placer(None)
        except Exception:  # a pure function of the configuration: every core alike
            return refusal
        return refusal if elsewhere is None else Elsewhere(elsewhere)

    def _hinted(
        self, accepted: Accepted | Adapted, result: Accepted | Adapted | Refused
    ) -> Accepted | Adapted | Refused:
        """What the source must do about a CCTV event the home partition could not place.

        An event with neither district nor position goes where its camera's named owner
        placed it by a report without a district, as every core remembers since it started
        (console.core.placement_memory); else it is the home partition's, whose core may
        never have heard of the camera (docs/partitions.md, "Placement"): only the source
        can fix that for good."""
        if (
            self.placer is None
            or not isinstance(result, Refused)
            or not isinstance(accepted, Accepted)
            or accepted.district is not None
            or not isinstance(accepted.message, CctvEvent)
            or accepted.message.district is not None
            or accepted.message.lat is not None
            or UNPLACED_CAMERA not in result.reason
        ):
            return result
        hint = (
            "; an event with neither district nor position goes to the partition its camera"
            " was placed in by a report without a district from its [owners] source, when"
            " the cores remember one, else to the home partition: publish the camera into"
            " its district (and its events with it), or give each event lat and lon"
        )
        return Refused((result.reason + hint)[:500])

    def _read(self, topic: str, payload: bytes, now: float) -> Accepted | Adapted | Refused:
        if topic.startswith(f"{topics.ROOT}/"):
            ours = read(topic, payload)
            # The topic's district decides whose a camera or unit is, and becomes a state
            # topic's level: a district the city does not have would make a district of
            # its own, seen by no scoped seat (any source may publish into any level).
            if isinstance(ours, Accepted):
                # The topic's, or a unit's or a CCTV event's own (CameraHealth.district,
                # older than partitions, places a camera and is left as it was).
                named = ours.district
                if named is None and isinstance(ours.message, ResponderReport | CctvEvent):
                    named = ours.message.district
                if named is not None and named not in self.districts:
                    return Refused(f"no district '{named}' in the city (topic {topic})")
                # Live only (bound), like the judge's checks: what was journaled before
                # this rule came replays as it was taken, never lost on a restart.
                problem = self._misplaced(ours) if self.judge is not None else None
                if problem is not None:
                    return Refused(problem)
            return ours
        result = self.foreign.handle(topic, payload, now)
        if result is None:
            return Refused(f"not a topic the core accepts: {topic}")
        if result.error is not None:
            return Refused(result.error)
        messages = tuple(printable_struct(m) for m in result.messages)
        return Adapted(messages, result.ignored, reason=result.reason)

    def _misplaced(self, accepted: Accepted) -> str | None:
        """Why an SOS or a public alert published into a district is not that district's.

        Their place is their position, or an alert's first district (docs/partitions.md,
        ``district_of_message``, where the engine homes them): a topic's district would put
        them in another partition's core, which opens an incident homed in a district it
        does not own, while the core that owns it never reads that topic. So refused, by
        the core that got it, in every configuration alike (one partition or many)."""
        topic_district, message = accepted.district, accepted.message
        if topic_district is None or not isinstance(message, SosAlarm | PublicAlert):
            return None
        placed = district_of_message(message, self.district_map)
        if placed == topic_district:
            return None
        what = (
            "an SOS is placed by its position"
            if isinstance(message, SosAlarm)
            else "a public alert is placed by its districts or its position"
        )
        if placed is not None:
            where = f"in {placed}"
        elif getattr(message, "lat", None) is None:
            where = "it has none"
        else:
            where = "outside the service area"
        return (
            f"{what} ({where}), not by the topic's district"
            f" '{topic_district}': publish it without a district"
        )

    def _judged(
        self, result: Accepted | Adapted | Refused, now: float
    ) -> Accepted | Adapted | Refused:
        """The engine's refusal of an event (a dead letter); an adapted payload keeps what
        the engine accepts, and says why it dropped the rest."""
        judge = self.judge
        if judge is None or isinstance(result, Refused):
            return result
        if isinstance(result, Accepted):
            if isinstance(result.message, Command):
                return result
            problem = judge.refusal(result.message, now, source=result.source or None)
            return replace(result, vetted=True) if problem is None else Refused(problem)
        # Adapter output: bounded by its configured mapping, so only plausibility is asked.
        kept: list[ForeignMessage] = []
        problems: list[str] = []
        for message in result.messages:
            problem = judge.refusal(message, now, source=None)
            if problem is None:
                kept.append(message)
            else:
                problems.append(problem)
        if not problems:
            return replace(result, vetted=True)
        # Still journaled (as ignored, counted, with the reasons), never a dead letter: the
        # adapter's memory has moved, and the replay must run the adapter on it again.
        ignored = "; ".join(([result.ignored] if result.ignored else []) + problems)[:500]
        return replace(
            result, messages=tuple(kept), ignored=ignored, vetted=True, reason=NOT_PLAUSIBLE
        )

    def memory(self) -> bytes:
        return self.foreign.memory()

    def restore(self, memory: bytes) -> None:
        self.foreign.restore(memory)
