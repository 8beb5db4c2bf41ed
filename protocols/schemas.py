"""Every message on the wire, as msgspec Structs.

One definition serves MessagePack (the default) and JSON (accepted on ingest).
Constraints live in the types, so a decode error names the offending field,
e.g. ``Expected `float` <= 90.0 - at `$.lat```.

Times are UNIX seconds (float). Distances are metres.
"""

from __future__ import annotations

from typing import Annotated, Final

from msgspec import Meta, Struct

from protocols.enums import (
    Action as Action,
)
from protocols.enums import (
    CameraHealthStatus as CameraHealthStatus,
)
from protocols.enums import (
    CameraStatus as CameraStatus,
)
from protocols.enums import (
    CctvKind as CctvKind,
)
from protocols.enums import (
    IncidentKind as IncidentKind,
)
from protocols.enums import (
    IncidentStatus as IncidentStatus,
)
from protocols.enums import (
    ResponderStatus as ResponderStatus,
)
from protocols.enums import (
    Role as Role,
)
from protocols.enums import (
    SosTrigger as SosTrigger,
)
from protocols.enums import (
    UnitKind as UnitKind,
)

# --- constrained scalars -------------------------------------------------------

Lat = Annotated[float, Meta(ge=-90.0, le=90.0, description="latitude, WGS84 degrees")]
Lon = Annotated[float, Meta(ge=-180.0, le=180.0, description="longitude, WGS84 degrees")]
Metres = Annotated[float, Meta(ge=0.0)]
Seconds = Annotated[float, Meta(ge=0.0)]
# 2100-01-01T00:00Z. Later is a broken clock or an attack, and a time that large (or
# inf) made every console's clock formatting raise on the retained state.
MAX_TIMESTAMP: Final = 4_102_444_800.0
Timestamp = Annotated[float, Meta(ge=0.0, le=MAX_TIMESTAMP, description="UNIX time, seconds")]
Confidence = Annotated[float, Meta(ge=0.0, le=1.0)]
Percent = Annotated[int, Meta(ge=0, le=100)]
Priority = Annotated[int, Meta(ge=1, le=4, description="1 is the most urgent")]
# Identifiers end up in MQTT topic levels, so no '/', '+', '#' or spaces.
Ident = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+\Z")]
# A district name is a topic level of the state it names (state/cameras/<district>/...).
DistrictName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+\Z")]
# A district or partition a console turns into a topic level (a command's partition);
# "" where a core did not say.
LevelName = Annotated[str, Meta(max_length=64, pattern=r"^[A-Za-z0-9_.-]*\Z")]
ShortText = Annotated[str, Meta(max_length=200)]
LongText = Annotated[str, Meta(max_length=4000)]
Url = Annotated[str, Meta(max_length=2000, pattern=r"^https?://")]


class _Wire(Struct, kw_only=True, frozen=True, omit_defaults=True, gc=False):
    """Base for wire messages: keyword-only, immutable, compact on the wire.

    ``gc=False``: never tracked by the cyclic GC. Frozen, holding only strings, numbers,
    enums and tuples of other wire structs, they cannot be part of a reference cycle, and
    a console holding 100,000 cameras and 10,000 incidents otherwise paid 60-130 ms full
    collections under a storm (and 8-13 ms young ones every ~2 s).
    """


# --- raw inputs (sources publish) ------------------------------------------------


class SosAlarm(_Wire, frozen=True, tag="sos"):
    """A phone's SOS. ``alarm_id`` is unique per source; resends carry the same id."""

    alarm_id: Ident
    source: Ident  # who publishes (app backend, gateway, simulator): receipts go back here
    device_id: Ident
    name: ShortText  # the person's display name
    lat: Lat
    lon: Lon
    accuracy_m: Metres
    trigger: SosTrigger
    ts: Timestamp
    battery: Percent | None = None
    phone: Annotated[str, Meta(max_length=32)] | None = None


class CctvEvent(_Wire, frozen=True, tag="cctv"):
    """An analytics event from a smart camera or a VMS."""

    event_id: Ident
    camera_id: Ident
    kind: CctvKind
    confidence: Confidence
    ts: Timestamp
    snapshot_url: Url | None = None
    # Optional: when absent the core uses the camera's registered position.
    lat: Lat | None = None
    lon: Lon | None = None
    withdrawn: bool = False  # the analytics took it back (false positive)
    # The analytics stopped tracking it (Frigate's "end"): recorded on its incident; an
    # ended event the engine never saw opens nothing.
    ended: bool = False
    # Its camera's district (from the topic when published into one): whose partition
    # owns the camera; another's is read across the border only (docs/partitions.md).
    district: DistrictName | None = None


class CameraHealth(_Wire, frozen=True, tag="camera"):
    """A camera's own health report; the descriptive fields register it."""

    camera_id: Ident
    status: CameraHealthStatus
    ts: Timestamp
    name: ShortText | None = None
    district: DistrictName | None = None
    lat: Lat | None = None
    lon: Lon | None = None


class ResponderReport(_Wire, frozen=True, tag="responder"):
    """A responder's own status and position (radio terminal, phone, OwnTracks)."""

    responder_id: Ident
    kind: UnitKind
    status: ResponderStatus
    lat: Lat
    lon: Lon
    ts: Timestamp
    name: ShortText | None = None
    # A bare position fix from a tracker that does not know the unit's status (OwnTracks):
    # the core keeps the status it has; ``status`` counts only for a responder it never saw.
    position_only: bool = False
    # Its home district, whose partition owns it (from the topic when published into one).
    district: DistrictName | None = None


RawEvent = SosAlarm | CctvEvent | CameraHealth | ResponderReport

# --- operators ---------------------------------------------------------------------


class Command(_Wire, frozen=True, tag="cmd"):
    """An operator's command. ``cmd_id`` is unique per operator, so resends fold."""

    cmd_id: Ident
    operator: Ident
    action: Action
    ts: Timestamp
    incident_id: Ident | None = None
    responder_id: Ident | None = None
    disposition: ShortText | None = None
    text: LongText | None = None


class Reply(_Wire, frozen=True, tag="reply"):
    """The core's answer to one command: done, or refused and why."""

    cmd_id: Ident
    operator: Ident
    ok: bool
    ts: Timestamp
    reason: LongText = ""
    incident_id: Ident | None = None


# A console announces its presence again this often, and presence not renewed for
# PRESENCE_TTL_S (three heartbeats) counts as offline: a seat can vanish without
# its last will reaching anyone (the broker restarted, the will was lost with it).
PRESENCE_HEARTBEAT_S: Final = 30.0
PRESENCE_TTL_S: Final = 90.0


class Presence(_Wire, frozen=True, tag="presence"):
    """Who is at a console. Also the last will, with ``online=False``."""

    operator: Ident
    online: bool
    ts: Timestamp
    role: Role = Role.OPERATOR
    host: ShortText | None = None
    # One console instance: seats signed in as the same operator share one topic.
    seat: ShortText = ""

    def is_current(self, now: float, ttl_s: float = PRESENCE_TTL_S) -> bool:
        """Online, and announced within ``ttl_s`` of ``now``.

        Either side of ``now``: a stamp further ahead than that is a broken clock, and
        trusting it would keep a seat "online" long after it is gone."""
        return self.online and abs(now - self.ts) <= ttl_s


class Receipt(_Wire, frozen=True, tag="receipt"):
    """The core has journaled this SOS; the source may stop resending it."""

    alarm_id: Ident
    source: Ident
    incident_id: Ident
    ts: Timestamp


# --- state (the core publishes, retained) -------------------------------------------


class HistoryEntry(_Wire, frozen=True):
    ts: Timestamp
    actor: ShortText  # operator id, or "core" for automatic changes
    action: ShortText
    detail: LongText = ""


class Note(_Wire, frozen=True):
    ts: Timestamp
    operator: ShortText
    text: LongText


class CorrelatedEvent(_Wire, frozen=True):
    """A raw event folded into an incident (a CCTV event near an SOS, a resend)."""

    ts: Timestamp
    kind: ShortText
    source: ShortText
    detail: ShortText = ""
    snapshot_url: Url | None = None


class NearbyCamera(_Wire, frozen=True):
    camera_id: Ident
    distance_m: Metres
    status: CameraStatus
    name: ShortText = ""
    snapshot_url: Url | None = None


class Recommendation(_Wire, frozen=True):
    """A responder the core suggests, lowest ETA first (available, recently heard from)."""

    responder_id: Ident
    kind: UnitKind
    distance_m: Metres
    eta_s: Seconds
    # A neighbour partition's unit (recommended across the border): its home district,
    # whose partition owns and dispatches it. None (not sent): this partition's own unit.
    home: DistrictName | None = None


class NearbyShelter(_Wire, frozen=True):
    shelter_id: Ident
    name: ShortText
    kind: ShortText
    distance_m: Metres
    lat: Lat
    lon: Lon


class IncidentState(_Wire, frozen=True, tag="incident"):
    id: Ident
    kind: IncidentKind
    priority: Priority
    status: IncidentStatus
    lat: Lat
    lon: Lon
    district: ShortText
    place: ShortText
    source: ShortText  # device or camera id
    title: ShortText
    created: Timestamp
    updated: Timestamp
    escalated: bool = False
    owner: ShortText | None = None
    responders: tuple[str, ...] = ()
    person: ShortText | None = None  # personal data: shown in the detail only
    phone: ShortText | None = None
    sos_count: int = 0
    events: tuple[CorrelatedEvent, ...] = ()
    notes: tuple[Note, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    ack_deadline: Timestamp | None = None  # SLA: escalates if not acknowledged by then
    dispatch_deadline: Timestamp | None = None
    acknowledged_at: Timestamp | None = None
    closed_at: Timestamp | None = None
    disposition: ShortText | None = None
    cameras: tuple[NearbyCamera, ...] = ()
    recommended: tuple[Recommendation, ...] = ()
    shelters: tuple[NearbyShelter, ...] = ()
    # Set by the core when a unit left the incident ("police-07 left: reported available");
    # cleared by the next dispatch or when it closes.
    alert: ShortText = ""
    alert_ts: Timestamp | None = None
    # The district it was raised in (its state topic's) and the partition whose core owns
    # it; "" from a core that did not say (docs/partitions.md).
    home: LevelName = ""
    partition: LevelName = ""


# A console holds 100,000 of these: the reason _Wire is not tracked by the cyclic GC.
class CameraCell(_Wire, frozen=True):
    id: Ident
    status: CameraStatus
    lat: Lat
    lon: Lon
    name: ShortText = ""
    last_seen: Timestamp = 0.0


PageIndex = Annotated[int, Meta(ge=0, le=100_000)]


class DistrictCameras(_Wire, frozen=True, tag="cameras"):
    """One page of a district's cameras (sorted by id), retained under
    ``topics.state_camera_page(district, page)``.

    A district is published as ``pages`` pages of a few hundred cameras, so a camera
    that changes costs one page, not the whole district. The counts are this page's.
    Defaults (page 0 of 1) make a message that holds a whole district.
    """

    district: ShortText
    ts: Timestamp
    cameras: tuple[CameraCell, ...] = ()
    online: int = 0
    offline: int = 0
    tampered: int = 0
    alarm: int = 0
    page: PageIndex = 0
    pages: Annotated[int, Meta(ge=1, le=100_001)] = 1


class ResponderState(_Wire, frozen=True, tag="responder-state"):
    id: Ident
    kind: UnitKind
    status: ResponderStatus
    lat: Lat
    lon: Lon
    last_seen: Timestamp
    status_since: Timestamp
    name: ShortText = ""
    incident_id: Ident | None = None
    # Of its position, by the core's district map ("" from a core that did not say).
    district: ShortText = ""
    home: LevelName = ""  # its home district (its state topic's), whose partition owns it


class Shelter(_Wire, frozen=True):
    id: Ident
    name: ShortText
    kind: ShortText  # "24h-store", "police-box", ...
    lat: Lat
    lon: Lon
    district: ShortText = ""


MAX_IGNORED_REASONS: Final = 48  # Summary.ignored_by_reason: a few dozen codes at most


class Summary(_Wire, frozen=True, tag="summary"):
    ts: Timestamp
    open_by_priority: tuple[int, int, int, int] = (0, 0, 0, 0)
    open_total: int = 0
    oldest_unacked: Timestamp | None = None
    events_total: int = 0
    events_per_s: float = 0.0
    rate_history: tuple[float, ...] = ()  # recent events/s, oldest first, for a sparkline
    rejected_total: int = 0
    # Foreign payloads (Frigate, OwnTracks) read but of no use: counted, not dead letters.
    ignored_total: int = 0
    # ignored_total by reason, most frequent first: (code, count). The codes are a fixed
    # vocabulary of the core (console.core.foreign.IGNORED_REASONS), never payload text.
    ignored_by_reason: Annotated[
        tuple[tuple[Annotated[str, Meta(max_length=40)], int], ...],
        Meta(max_length=MAX_IGNORED_REASONS),
    ] = ()
    operators: tuple[str, ...] = ()
    alarms: tuple[str, ...] = ()  # system alarms every console must show (journal, broker)
    core_id: ShortText = ""
    # The active core's lease (console/journal/lease.py): its fencing term, 0 for a lone
    # core without one, and the holder id, so a console can show which core is active.
    term: int = 0
    lease_holder: ShortText = ""
    partition: LevelName = ""  # the partition this core is the authority of


class ShelterList(_Wire, frozen=True, tag="shelters"):
    ts: Timestamp
    shelters: tuple[Shelter, ...] = ()


class ClosedIncident(_Wire, frozen=True):
    """A closed incident as the closed list shows it: what happened, where, how it ended.

    Compact, and without personal data (no person, phone or device id: ``docs/privacy.md``).
    """

    id: Ident
    kind: IncidentKind
    priority: Priority
    status: IncidentStatus  # resolved or false-alarm
    district: ShortText
    place: ShortText
    title: ShortText
    created: Timestamp
    closed_at: Timestamp
    disposition: ShortText | None = None
    owner: ShortText | None = None
    responders: tuple[Ident, ...] = ()  # the units that were on it (the first few)
    closed_by: ShortText | None = None  # the operator who closed it, or "core"


class ClosedList(_Wire, frozen=True, tag="closed"):
    """The recently closed incidents, newest first, retained per home district under
    ``topics.state_closed(district)``.

    ``total`` counts every incident closed in the last ``window_s`` the core remembers;
    ``incidents`` holds the newest of them (the list is bounded in count and bytes).
    """

    ts: Timestamp
    incidents: tuple[ClosedIncident, ...] = ()
    total: Annotated[int, Meta(ge=0)] = 0
    window_s: Seconds = 86400.0


StateMessage = IncidentState | DistrictCameras | ResponderState | Summary | ShelterList | ClosedList

# Every tagged message, for a generic decoder (journal replay, debugging tools).
AnyMessage = RawEvent | Command | Reply | Presence | Receipt | StateMessage
