"""The versioned topic scheme, in one place.

``ansim/v1/raw/<source>/<kind>``   sources publish (the source id first, so a broker
                                    ACL can say "a source writes only under its own id")
``ansim/v1/state/...``              the core publishes, retained
``ansim/v1/cmd/<operator>``         an operator's commands
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


def raw(source: str, kind: str) -> str:
    return f"{ROOT}/raw/{level(source)}/{level(kind)}"


RAW_ALL: Final = f"{ROOT}/raw/+/+"


def raws_from(source: str) -> str:
    """The filter for every kind one source publishes (``raw(source, kind)`` takes no ``+``)."""
    return f"{ROOT}/raw/{level(source)}/+"


def raw_kind(topic: str) -> tuple[str, str] | None:
    """(source, kind) of a raw topic, or None if it is not one."""
    parts = topic.split("/")
    if len(parts) == 5 and parts[0] == "ansim" and parts[1] == "v1" and parts[2] == "raw":
        return parts[3], parts[4]
    return None


def shared(topic_filter: str, group: str = SHARED_GROUP) -> str:
    """An MQTT 5 shared subscription, so several cores can split the load."""
    return f"$share/{group}/{topic_filter}"


# state, retained
def state_incident(incident_id: str) -> str:
    return f"{ROOT}/state/incident/{level(incident_id)}"


def state_cameras(district: str) -> str:
    return f"{ROOT}/state/cameras/{level(district)}"


def state_camera_page(district: str, page: int) -> str:
    """One page of a district's cameras (``schemas.DistrictCameras`` with ``page``)."""
    if type(page) is not int or page < 0:
        raise ValueError(f"not a page number, refused as a topic level: {page!r:.80}")
    return f"{ROOT}/state/cameras/{level(district)}/{page}"


def state_responder(responder_id: str) -> str:
    return f"{ROOT}/state/responder/{level(responder_id)}"


STATE_SUMMARY: Final = f"{ROOT}/state/summary"
STATE_SHELTERS: Final = f"{ROOT}/state/shelters"
# The recently closed incidents, one retained ``schemas.ClosedList``.
STATE_CLOSED: Final = f"{ROOT}/state/closed"
STATE_ALL: Final = f"{ROOT}/state/#"
STATE_INCIDENTS: Final = f"{ROOT}/state/incident/+"
STATE_INCIDENT_PREFIX: Final = f"{ROOT}/state/incident/"  # what every incident's topic starts with


def cmd(operator: str) -> str:
    return f"{ROOT}/cmd/{level(operator)}"


CMD_ALL: Final = f"{ROOT}/cmd/+"


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
