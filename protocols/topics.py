"""The versioned topic scheme, in one place.

``ansim/v1/raw/<source>/<kind>``   sources publish (the source id first, so a broker
                                    ACL can say "a source writes only under its own id")
``ansim/v1/state/...``              the core publishes, retained
``ansim/v1/cmd/<operator>``         an operator's commands
``ansim/v1/reply/<operator>``       the core's answers
``ansim/v1/receipt/<source>/<id>``  the core has journaled this SOS
``ansim/v1/presence/<operator>``    who is at a console (retained; last will)
"""

from __future__ import annotations

from typing import Final

from protocols.public_alert import PublicAlert
from protocols.schemas import CameraHealth, CctvEvent, ResponderReport, SosAlarm

ROOT: Final = "ansim/v1"

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
    return f"{ROOT}/raw/{source}/{kind}"


RAW_ALL: Final = f"{ROOT}/raw/+/+"


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
    return f"{ROOT}/state/incident/{incident_id}"


def state_cameras(district: str) -> str:
    return f"{ROOT}/state/cameras/{district}"


def state_camera_page(district: str, page: int) -> str:
    """One page of a district's cameras (``schemas.DistrictCameras`` with ``page``)."""
    return f"{ROOT}/state/cameras/{district}/{page}"


def state_responder(responder_id: str) -> str:
    return f"{ROOT}/state/responder/{responder_id}"


STATE_SUMMARY: Final = f"{ROOT}/state/summary"
STATE_SHELTERS: Final = f"{ROOT}/state/shelters"
STATE_ALL: Final = f"{ROOT}/state/#"
STATE_INCIDENTS: Final = f"{ROOT}/state/incident/+"


def cmd(operator: str) -> str:
    return f"{ROOT}/cmd/{operator}"


CMD_ALL: Final = f"{ROOT}/cmd/+"


def reply(operator: str) -> str:
    return f"{ROOT}/reply/{operator}"


def receipt(source: str, alarm_id: str) -> str:
    return f"{ROOT}/receipt/{source}/{alarm_id}"


def receipts_for(source: str) -> str:
    return f"{ROOT}/receipt/{source}/+"


def presence(operator: str) -> str:
    return f"{ROOT}/presence/{operator}"


PRESENCE_ALL: Final = f"{ROOT}/presence/+"

SYS_DROPPED: Final = "$SYS/broker/publish/messages/dropped"


def last_level(topic: str) -> str:
    return topic.rsplit("/", 1)[-1]
