"""From an MQTT message to a journal record and an engine input.

Pure bookkeeping, shared by the live core and the journal replay so that both
read a message exactly the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from console.journal import RecordKind
from protocols import codec, topics
from protocols.schemas import (
    CameraHealth,
    CctvEvent,
    Command,
    RawEvent,
    ResponderReport,
    SosAlarm,
)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A payload that decoded and validated: what to journal and what to feed the engine."""

    kind: RecordKind
    message: RawEvent | Command
    key: str  # dedupe key: resends of one SOS, one CCTV event or one command share it


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


def dedupe_key(message: RawEvent | Command) -> str:
    """Messages that must be journaled once however often they arrive."""
    match message:
        case SosAlarm():
            return f"sos:{message.source}:{message.alarm_id}"
        case CctvEvent():
            suffix = ":withdrawn" if message.withdrawn else ""
            return f"cctv:{message.camera_id}:{message.event_id}{suffix}"
        case Command():
            return f"cmd:{message.operator}:{message.cmd_id}"
        case CameraHealth() | ResponderReport():
            return ""  # state reports: a repeat is harmless and carries the newest position
    return ""


def read(topic: str, payload: bytes) -> Accepted | Refused:
    """Decode a message from a raw or command topic; say why when it cannot be accepted."""
    raw = topics.raw_kind(topic)
    try:
        if raw is not None:
            source, kind = raw
            schema = topics.RAW_KINDS.get(kind)
            if schema is None:
                return Refused(f"unknown raw kind '{kind}' in topic {topic}")
            event: RawEvent = codec.decode(payload, schema)
            if isinstance(event, SosAlarm) and event.source != source:
                return Refused(
                    f"SOS source '{event.source}' does not match the topic's source '{source}'"
                )
            return Accepted(RecordKind.EVENT, event, dedupe_key(event))
        if topic.startswith(f"{topics.ROOT}/cmd/"):
            operator = topics.last_level(topic)
            command: Command = codec.decode(payload, Command)
            if command.operator != operator:
                return Refused(
                    f"command operator '{command.operator}' does not match the topic's '{operator}'"
                )
            return Accepted(RecordKind.COMMAND, command, dedupe_key(command))
    except codec.WireError as exc:
        return Refused(exc.reason)
    return Refused(f"not a topic the core accepts: {topic}")
