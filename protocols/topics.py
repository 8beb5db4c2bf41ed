"""The versioned topic scheme, in one place.

``ansim/v1/raw/<source>/<kind>[/<district>]``
                                    sources publish (the source id first, so a broker
                                    ACL can say "a source writes only under its own id");
                                    a source that knows its district names it, so only
                                    that district's core reads it (docs/partitions.md)
``ansim/v1/state/...``              the core publishes, retained; whatever belongs to a
                                    district has the district as a level, so a broker ACL
                                    can give a seat its districts and no others
``ansim/v1/cmd/<operator>[/<partition>]``
                                    an operator's commands (to the core of a partition;
                                    without one, to the default partition's)
``ansim/v1/reply/<operator>``       the core's answers
``ansim/v1/receipt/<source>/<id>``  the core has journaled this SOS
``ansim/v1/presence/<operator>``    who is at a console (retained; last will)

Every value that becomes a topic level is an identifier by construction: the functions
below refuse (``ValueError``) a value that is not a ``schemas.Ident`` (letters, digits,
``_ . : @ -``, 1 to 128 characters), so no value can add a level (``/``), become a
wildcard (``+``, ``#``), hide a control character, or name a ``$SYS`` topic.
"""

from __future__ import annotations

import re
from typing import Final, get_args

from msgspec import Meta

from protocols.public_alert import PublicAlert
from protocols.schemas import CameraHealth, CctvEvent, Ident, ResponderReport, SosAlarm

ROOT: Final = "ansim/v1"

# The very constraint of schemas.Ident, so a topic level and a validated field agree.
_IDENT_META: Final[Meta] = get_args(Ident)[1]
_IDENT: Final = re.compile(_IDENT_META.pattern or "")
_IDENT_MAX: Final = _IDENT_META.max_length or 0


def level(value: str) -> str:
    """``value`` as one topic level; ValueError if it is not an identifier (``schemas.Ident``)."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= _IDENT_MAX
        or _IDENT.fullmatch(value) is None
    ):
        shown = repr(value)
        raise ValueError(f"not an identifier, refused as a topic level: {shown[:80]}")
    return value


# raw kinds, as the last topic level
RAW_SOS: Final = "sos"
RAW_CCTV: Final = "cctv"
RAW_CAMERA: Final = "camera"
RAW_RESPONDER: Final = "responder"
# A public warning (protocols.cap.PublicAlert, MessagePack or JSON), e.g. from the HTTP
# gateway's POST /v1/cap; the core keys it by (sender, identifier).
RAW_ALERT: Final = "alert"

RAW_KINDS: Final[dict[str, type]] = {
    RAW_SOS: SosAlarm,
    RAW_CCTV: CctvEvent,
    RAW_CAMERA: CameraHealth,
    RAW_RESPONDER: ResponderReport,
    RAW_ALERT: PublicAlert,
}

SHARED_GROUP: Final = "ansim-core"
# The partition of an unpartitioned city: every district, one core (docs/partitions.md).
DEFAULT_PARTITION: Final = "city"


def raw(source: str, kind: str, district: str | None = None) -> str:
    """A source's topic for ``kind``; with ``district``, only that district's core reads it."""
    if district is None:
        return f"{ROOT}/raw/{level(source)}/{level(kind)}"
    return f"{ROOT}/raw/{level(source)}/{level(kind)}/{level(district)}"


RAW_ALL: Final = f"{ROOT}/raw/+/+"  # what sources publish without a district
RAW_ALL_DISTRICTS: Final = f"{ROOT}/raw/+/+/+"  # what sources publish into a district


def raws_in(district: str) -> str:
    """Everything published into one district (the filter a partition's core takes)."""
    return f"{ROOT}/raw/+/+/{level(district)}"


def raws_from(source: str) -> str:
    """The filter for every kind one source publishes (``raw(source, kind)`` takes no ``+``)."""
    return f"{ROOT}/raw/{level(source)}/#"


def raw_parts(topic: str) -> tuple[str, str, str | None] | None:
    """(source, kind, district or None) of a raw topic, or None if it is not one."""
    parts = topic.split("/")
    if 5 <= len(parts) <= 6 and parts[0] == "ansim" and parts[1] == "v1" and parts[2] == "raw":
        return parts[3], parts[4], (parts[5] if len(parts) == 6 else None)
    return None


def raw_kind(topic: str) -> tuple[str, str] | None:
    """(source, kind) of a raw topic, with or without a district, or None if it is not one."""
    found = raw_parts(topic)
    return None if found is None else (found[0], found[1])


def shared(topic_filter: str, group: str = SHARED_GROUP) -> str:
    """An MQTT 5 shared subscription, so several cores can split the load."""
    return f"$share/{group}/{topic_filter}"


# state, retained
def state_incident(district: str, incident_id: str) -> str:
    return f"{ROOT}/state/incident/{level(district)}/{level(incident_id)}"


def state_incidents_in(district: str) -> str:
    return f"{ROOT}/state/incident/{level(district)}/+"


def state_cameras(district: str) -> str:
    return f"{ROOT}/state/cameras/{level(district)}"


def state_cameras_in(district: str) -> str:
    """A district's camera pages (and the old whole-district topic)."""
    return f"{ROOT}/state/cameras/{level(district)}/#"


def state_camera_page(district: str, page: int) -> str:
    """One page of a district's cameras (``schemas.DistrictCameras`` with ``page``)."""
    if type(page) is not int or page < 0:
        raise ValueError(f"not a page number, refused as a topic level: {page!r:.80}")
    return f"{ROOT}/state/cameras/{level(district)}/{page}"


def state_responder(district: str, responder_id: str) -> str:
    """A unit's state, under its home district (the district its partition owns)."""
    return f"{ROOT}/state/responder/{level(district)}/{level(responder_id)}"


def state_responders_in(district: str) -> str:
    return f"{ROOT}/state/responder/{level(district)}/+"


def state_summary(partition: str) -> str:
    """One partition's core: counts, rates, its lease term (``schemas.Summary``)."""
    return f"{ROOT}/state/summary/{level(partition)}"


def state_closed(district: str) -> str:
    """A district's recently closed incidents, one retained ``schemas.ClosedList``."""
    return f"{ROOT}/state/closed/{level(district)}"


def state_shift(partition: str) -> str:
    """One partition's shift figures for the supervisor (``protocols.shift.ShiftReport``)."""
    return f"{ROOT}/state/shift/{level(partition)}"


STATE_SUMMARY: Final = f"{ROOT}/state/summary/{DEFAULT_PARTITION}"
STATE_SUMMARIES: Final = f"{ROOT}/state/summary/+"
STATE_SHIFTS: Final = f"{ROOT}/state/shift/+"  # every partition's supervisor figures
STATE_SHELTERS: Final = f"{ROOT}/state/shelters"  # city-wide: public safe places
STATE_CLOSED_ALL: Final = f"{ROOT}/state/closed/+"
STATE_ALL: Final = f"{ROOT}/state/#"
STATE_INCIDENTS: Final = f"{ROOT}/state/incident/+/+"
STATE_RESPONDERS: Final = f"{ROOT}/state/responder/+/+"
STATE_INCIDENT_PREFIX: Final = f"{ROOT}/state/incident/"  # what every incident's topic starts with


def district_state(district: str) -> list[str]:
    """Every state filter of one district: what a seat scoped to it subscribes to."""
    return [
        state_incidents_in(district),
        state_responders_in(district),
        state_cameras_in(district),
        state_closed(district),
    ]


def state_district(topic: str) -> str | None:
    """The district level of a district's state topic (incident, responder, cameras, closed)."""
    parts = topic.split("/")
    if len(parts) >= 5 and parts[:3] == ["ansim", "v1", "state"]:
        if parts[3] in ("incident", "responder", "cameras", "closed"):
            return parts[4]
    return None


def cmd(operator: str, partition: str | None = None) -> str:
    """An operator's command topic; with ``partition``, to that partition's core."""
    if partition is None:
        return f"{ROOT}/cmd/{level(operator)}"
    return f"{ROOT}/cmd/{level(operator)}/{level(partition)}"


CMD_ALL: Final = f"{ROOT}/cmd/+"  # commands that name no partition (the default's)


def cmds_for(partition: str) -> str:
    return f"{ROOT}/cmd/+/{level(partition)}"


def cmd_parts(topic: str) -> tuple[str, str | None] | None:
    """(operator, partition or None) of a command topic, or None if it is not one."""
    parts = topic.split("/")
    if 4 <= len(parts) <= 5 and parts[:3] == ["ansim", "v1", "cmd"]:
        return parts[3], (parts[4] if len(parts) == 5 else None)
    return None


def reply(operator: str) -> str:
    return f"{ROOT}/reply/{level(operator)}"


def receipt(source: str, alarm_id: str) -> str:
    return f"{ROOT}/receipt/{level(source)}/{level(alarm_id)}"


def receipts_for(source: str) -> str:
    return f"{ROOT}/receipt/{level(source)}/+"


def presence(operator: str) -> str:
    return f"{ROOT}/presence/{level(operator)}"


PRESENCE_ALL: Final = f"{ROOT}/presence/+"

SYS_DROPPED: Final = "$SYS/broker/publish/messages/dropped"


def last_level(topic: str) -> str:
    return topic.rsplit("/", 1)[-1]
