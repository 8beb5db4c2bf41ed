"""The engine's internal state: mutable msgspec structs, one ``State`` root.

Everything that decides a future result lives in ``State`` so that
``msgspec.msgpack.encode(state)`` is an exact snapshot; the spatial indexes are
derived from it and rebuilt on restore. Dicts keep insertion order, which the
engine uses as a FIFO (recent replies, alarm ids, unacknowledged incidents).
"""

from __future__ import annotations

from typing import Final

from msgspec import Struct, field

from protocols.schemas import (
    CameraHealthStatus,
    CorrelatedEvent,
    HistoryEntry,
    IncidentKind,
    IncidentStatus,
    Note,
    Reply,
    ResponderStatus,
    Shelter,
    UnitKind,
)

# An incident's moments for the shift figures: id, priority, created, acknowledged, first
# dispatched, owner, closed (console.engine.shift.Times).
TimesRow = tuple[str, int, float, float | None, float | None, str | None, float | None]

# 2: SOS devices are namespaced by source (``device_open`` keys are "source/device"), and
# the owners of cameras, responders and CAP senders are kept. ``migrate`` reads version 1.
SNAPSHOT_VERSION = 2

# Part keys in Incident.parts (the contributions whose minimum is the priority).
PART_SOS = "sos"
PART_FAULT = "fault"
PART_ALERT = "alert"

# Heap entry kinds.
DEADLINE_ACK = 0
DEADLINE_DISPATCH = 1


class Incident(Struct, kw_only=True):
    id: str
    kind: IncidentKind
    priority: int
    status: IncidentStatus
    lat: float
    lon: float
    district: str
    place: str
    source: str
    title: str
    created: float
    updated: float
    escalated: bool = False
    owner: str | None = None
    responders: list[str] = field(default_factory=list)
    person: str | None = None
    phone: str | None = None
    sos_count: int = 0
    events: list[CorrelatedEvent] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    ack_deadline: float | None = None
    dispatch_deadline: float | None = None
    acknowledged_at: float | None = None
    closed_at: float | None = None
    disposition: str | None = None
    # --- internal ---
    # Live contributions and their priority: PART_SOS, PART_FAULT or "cctv:<camera>/<event>".
    parts: dict[str, int] = field(default_factory=dict)
    # Camera id -> number of live CCTV events from it in this incident (camera "alarm").
    cam_live: dict[str, int] = field(default_factory=dict)
    # Camera id -> latest snapshot URL seen in this incident.
    snapshots: dict[str, str] = field(default_factory=dict)
    # Arrival time of the latest raw event that folded in (fold and flap windows).
    last_event: float = 0.0
    # Arrival time of the latest SOS (CCTV-to-SOS correlation window).
    last_sos: float = 0.0
    device_id: str | None = None
    camera_id: str | None = None
    cctv_kind: str | None = None
    events_dropped: int = 0
    # Added in version 2: the source an SOS incident's device reports through, and the
    # (source's) time of the fix its position is, for the jump check.
    origin: str | None = None
    fix_ts: float = 0.0
    # What the console must show its owner: a unit left it ("police-07 left: reported
    # available"); cleared by the next dispatch or by closing it.
    alert: str = ""
    alert_ts: float | None = None
    # The district it was raised in, kept when its position moves: the district whose
    # seats see it and whose operators may act on it (docs/partitions.md).
    home: str = ""


class Camera(Struct, kw_only=True):
    id: str
    name: str = ""
    district: str = "unknown"
    lat: float | None = None
    lon: float | None = None
    health: CameraHealthStatus = CameraHealthStatus.ONLINE
    last_seen: float = 0.0
    # Open incidents holding a live CCTV event of this camera: status "alarm".
    alarms: list[str] = field(default_factory=list)


# ``Responder.assigned_by`` of a unit across a partition border: an operator id with this
# prefix is a core's (the owner lent the unit to that core's incident), and BORROWED marks
# a neighbour's unit lent to this core's incident (console.engine.lending).
CORE_PREFIX: Final = "ansim-core"
BORROWED: Final = "borrowed"


class Responder(Struct, kw_only=True):
    id: str
    kind: UnitKind
    status: ResponderStatus
    lat: float
    lon: float
    last_seen: float
    status_since: float
    name: str = ""
    incident_id: str | None = None
    assigned_by: str | None = None
    fix_ts: float = 0.0  # the report time of its position (version 2), for the jump check
    # Its home district (where it was first reported): whose seats see it.
    home: str = ""


class State(Struct, kw_only=True):
    version: int = SNAPSHOT_VERSION
    seq: int = 0
    incidents: dict[str, Incident] = field(default_factory=dict)  # open ones
    closed: dict[str, Incident] = field(default_factory=dict)  # the most recent closed ones
    cameras: dict[str, Camera] = field(default_factory=dict)
    responders: dict[str, Responder] = field(default_factory=dict)
    shelters: list[Shelter] = field(default_factory=list)
    # "source/alarm_id" -> (incident id, first seen): resends fold and get the same receipt.
    alarms: dict[str, tuple[str, float]] = field(default_factory=dict)
    # "camera/event_id" -> (incident id, first seen): duplicates and withdrawals.
    cctv_events: dict[str, tuple[str, float]] = field(default_factory=dict)
    # "operator/cmd_id" -> (reply, first seen): idempotent commands.
    replies: dict[str, tuple[Reply, float]] = field(default_factory=dict)
    # Units asked of another partition and not answered yet: request id -> (incident id,
    # responder id, operator who dispatched). console.engine.lending.
    lends: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    lend_seq: int = 0
    # Closed incidents' moments for the shift figures (console.engine.shift.Times rows),
    # with the closing time, in closing order; kept [supervisor] keep_s.
    finished: dict[str, tuple[TimesRow, float]] = field(default_factory=dict)
    # Notes for the next shift (a supervisor's HANDOVER), the newest last.
    handover: list[Note] = field(default_factory=list)
    # "source/device" -> its open SOS incident (version 1: "device").
    device_open: dict[str, str] = field(default_factory=dict)
    cctv_open: dict[str, str] = field(default_factory=dict)  # "camera/kind" -> open incident
    fault_open: dict[str, str] = field(default_factory=dict)  # camera -> open fault incident
    unacked: dict[str, float] = field(default_factory=dict)  # NEW incidents -> created
    open_by_priority: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    # SLA heap: (deadline, seq, incident id, DEADLINE_ACK | DEADLINE_DISPATCH).
    deadlines: list[tuple[float, int, str, int]] = field(default_factory=list)
    deadline_seq: int = 0
    events_total: int = 0
    rejected_total: int = 0
    # Added after version 1 (defaults keep older snapshots readable):
    # "camera/event_id" -> (kind, first seen, best confidence): what an update is compared with.
    cctv_latest: dict[str, tuple[str, float, float]] = field(default_factory=dict)
    # "sender/identifier" of every CAP message (alert, update, cancel) -> (incident id, first
    # seen): duplicates, and the incident a later Update or Cancel refers to.
    alerts: dict[str, tuple[str, float]] = field(default_factory=dict)
    # Version 2: id -> the source that owns it (the first to report it, when the
    # configuration names no owner), and the count of positions not believed.
    camera_owner: dict[str, str] = field(default_factory=dict)
    responder_owner: dict[str, str] = field(default_factory=dict)
    sender_owner: dict[str, str] = field(default_factory=dict)
    implausible_total: int = 0
    # A partitioned city (docs/partitions.md, "Borders"): the cameras and units last
    # reported into another partition's district, read across the border as context
    # only, and the count of their CCTV events with no open SOS here to join (their
    # owner's core opens those incidents).
    border_cameras: dict[str, None] = field(default_factory=dict)
    border_units: dict[str, None] = field(default_factory=dict)
    border_events_ignored: int = 0


def device_key(source: str | None, device_id: str) -> str:
    """The key of an SOS device: namespaced by the source that reports it."""
    return f"{source}/{device_id}" if source else device_id


def migrate(state: State) -> State:
    """A version-1 state as version 2, in place: ``device_open`` keyed by source and device.

    An open SOS incident's source is found through the alarm ids that reached it (kept 7
    days), else in its "opened" history entry. One whose source is unknown can no longer
    fold (a new SOS from its device opens a new incident). Owners start empty: the first
    source to report a camera, a responder or a sender from now on owns it.
    """
    if state.version != 1:
        return state
    origins: dict[str, str] = {}
    for key, (incident_id, _) in state.alarms.items():
        origins.setdefault(incident_id, key.split("/", 1)[0])
    device_open: dict[str, str] = {}
    for device, incident_id in state.device_open.items():
        inc = state.incidents.get(incident_id)
        if inc is None:
            continue
        origin = origins.get(incident_id) or _opened_by(inc)
        if origin:
            inc.origin = origin
            device_open[device_key(origin, device)] = incident_id
    state.device_open = device_open
    state.version = SNAPSHOT_VERSION
    return state


def _opened_by(inc: Incident) -> str | None:
    """The source in an SOS incident's first history entry ("SOS <alarm> from <source>")."""
    if inc.history and inc.history[0].action == "opened" and " from " in inc.history[0].detail:
        return inc.history[0].detail.rsplit(" from ", 1)[1] or None
    return None
