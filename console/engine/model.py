"""The engine's internal state: mutable msgspec structs, one ``State`` root.

Everything that decides a future result lives in ``State`` so that
``msgspec.msgpack.encode(state)`` is an exact snapshot; the spatial indexes are
derived from it and rebuilt on restore. Dicts keep insertion order, which the
engine uses as a FIFO (recent replies, alarm ids, unacknowledged incidents).
"""

from __future__ import annotations

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

SNAPSHOT_VERSION = 1

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
    device_open: dict[str, str] = field(default_factory=dict)  # device -> open SOS incident
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
