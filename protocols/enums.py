"""The enumerations of the wire: kinds, statuses, actions, roles (StrEnum: their values
are the wire's strings). ``protocols.schemas`` re-exports them."""

from __future__ import annotations

import enum


class SosTrigger(enum.StrEnum):
    BUTTON = "button"
    SHAKE = "shake"
    VOICE = "voice"
    TIMER_EXPIRED = "timer-expired"  # a "walking home" check-in that went silent


class CctvKind(enum.StrEnum):
    SCREAM = "scream"
    FALL = "fall"
    FIGHT = "fight"
    LOITERING = "loitering"
    INTRUSION = "intrusion"
    PERSON_DOWN = "person-down"
    CROWDING = "crowding"


class CameraHealthStatus(enum.StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    TAMPERED = "tampered"
    VIDEO_LOSS = "video-loss"


class CameraStatus(enum.StrEnum):
    """A camera as the console shows it: health plus 'alarm' while an event is open."""

    ONLINE = "online"
    OFFLINE = "offline"
    TAMPERED = "tampered"
    VIDEO_LOSS = "video-loss"
    ALARM = "alarm"


class UnitKind(enum.StrEnum):
    POLICE = "police"  # patrol car
    SCOUT = "scout"  # safe-return-home scout, on foot
    GUARD = "guard"  # security guard


class ResponderStatus(enum.StrEnum):
    AVAILABLE = "available"
    DISPATCHED = "dispatched"
    EN_ROUTE = "en-route"
    ON_SCENE = "on-scene"
    OFF_DUTY = "off-duty"


class IncidentKind(enum.StrEnum):
    SOS = "sos"
    CCTV = "cctv"
    CAMERA_FAULT = "camera-fault"
    PUBLIC_ALERT = "public-alert"


class IncidentStatus(enum.StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    ON_SCENE = "on-scene"
    RESOLVED = "resolved"
    FALSE_ALARM = "false-alarm"

    @property
    def is_closed(self) -> bool:
        return self in (IncidentStatus.RESOLVED, IncidentStatus.FALSE_ALARM)


class Action(enum.StrEnum):
    ACK = "ack"
    DISPATCH = "dispatch"
    ON_SCENE = "on-scene"
    RESOLVE = "resolve"
    FALSE_ALARM = "false-alarm"
    ESCALATE = "escalate"
    CANCEL_ESCALATION = "cancel-escalation"
    NOTE = "note"
    CLAIM = "claim"
    RELEASE = "release"
    # Between the cores of two partitions (docs/partitions.md, "Borders"): lend one of
    # your units to my incident, and take it back. Only a core's account may send them.
    LEND = "lend"
    RETURN = "return"
    # The shift supervisor's: give an open incident to another
    # operator (``text`` names it), and a note for the next shift (no incident).
    REASSIGN = "reassign"
    HANDOVER = "handover"


class Role(enum.StrEnum):
    OBSERVER = "observer"
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
