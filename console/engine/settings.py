"""What the engine is told: priorities, correlation, SLAs, dispatch, privacy, trust.

These are the configuration sections the engine reads, as plain validated
structs. ``console.config`` reads them from a file; the engine never does, so
it needs no file, no environment and no TOML parser (tests build them in place).
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct, field

Positive = Annotated[float, Meta(gt=0)]
NonNegative = Annotated[float, Meta(ge=0)]
PriorityLevel = Annotated[int, Meta(ge=1, le=4)]
Hour = Annotated[int, Meta(ge=0, le=23)]


class Section(Struct, kw_only=True, forbid_unknown_fields=True):
    """A configuration section: every key named, an unknown key a clear error."""


class PriorityConfig(Section):
    sos: PriorityLevel = 1
    scream: PriorityLevel = 2
    fight: PriorityLevel = 2
    person_down: PriorityLevel = field(default=2, name="person-down")
    fall: PriorityLevel = 2
    loitering: PriorityLevel = 4
    intrusion: PriorityLevel = 4
    crowding: PriorityLevel = 3
    camera_fault: PriorityLevel = field(default=4, name="camera-fault")
    public_alert: PriorityLevel = field(default=3, name="public-alert")
    night_priority: PriorityLevel = 3
    night_start_hour: Hour = 21
    night_end_hour: Hour = 6
    utc_offset_hours: Annotated[float, Meta(ge=-14, le=14)] = 9

    def for_kind(self, kind: str) -> int:
        """Base priority of an incident or CCTV kind, by its wire name."""
        value = getattr(self, kind.replace("-", "_"), None)
        return int(value) if isinstance(value, int) else 4


class CorrelationConfig(Section):
    radius_m: Positive = 300.0
    window_s: Positive = 600.0
    border_m: NonNegative = 1000.0  # how far a partition's core looks across its border
    sos_fold_s: Positive = 1800.0
    flap_window_s: Positive = 900.0
    cctv_fold_s: Positive = 120.0


class SlaConfig(Section):
    ack_p1_s: Positive = 30.0
    dispatch_p1_s: Positive = 120.0


class DispatchConfig(Section):
    responders: Annotated[int, Meta(ge=1, le=50)] = 5
    cameras: Annotated[int, Meta(ge=0, le=50)] = 8
    shelters: Annotated[int, Meta(ge=0, le=20)] = 3
    camera_radius_m: Positive = 300.0
    speed_police_kmh: Positive = 30.0
    speed_scout_kmh: Positive = 5.0
    speed_guard_kmh: Positive = 6.0
    # A unit whose last report is older than this is not recommended (a silent radio,
    # a phone gone flat): it may be anywhere by now.
    stale_after_s: Positive = 600.0
    # Published recommendations are republished when their units or order change, or
    # when a listed unit's ETA drifted further than this from the one shown.
    eta_tolerance_s: NonNegative = 30.0


class SupervisorConfig(Section):
    """The shift's targets and hours (console.engine.shift)."""

    # Alarm to acknowledge, alarm to the first unit dispatched (NFPA 1225: 90 % within
    # 10 s answered, 60 s processed).
    ack_target_s: Positive = 10.0
    dispatch_target_s: Positive = 60.0
    # Local hours at which a shift starts (the city's [priority] utc_offset_hours).
    shift_start_hours: list[Annotated[int, Meta(ge=0, le=23)]] = field(
        default_factory=lambda: [7, 19]
    )
    # How long the core remembers closed incidents' times for the figures (a shift and
    # the one before it); `ansim report` rebuilds any period from the journal.
    keep_s: Positive = 90000.0


class PrivacyConfig(Section):
    retention_days: Annotated[int, Meta(ge=1)] = 30


class PlausibilityConfig(Section):
    """What a source's times and positions may claim (``docs/engine.md``, "Trust")."""

    # A time further than this ahead of the receive time is not believed.
    max_ahead_s: Positive = 300.0
    # Older than this: an SOS takes the receive time (never refused); a responder report
    # is refused; the time of a CCTV event, camera report or public alert is replaced.
    max_age_sos_s: Positive = 86400.0
    max_age_responder_s: Positive = 86400.0
    max_age_s: Positive = 86400.0
    # A fix further from the last one than this slack plus the kind's top speed times the
    # time between them is an impossible jump: recorded, never applied.
    jump_slack_m: NonNegative = 1000.0
    max_police_kmh: Positive = 300.0
    max_scout_kmh: Positive = 120.0
    max_guard_kmh: Positive = 120.0
    max_phone_kmh: Positive = 200.0  # SOS devices: a person may be driven away


SourceId = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")]
IdPattern = Annotated[str, Meta(min_length=1, max_length=500)]
OwnerTable = dict[SourceId, list[IdPattern]]


class OwnersConfig(Section):
    """Which sources may report which ids: source -> glob patterns (``fnmatch``, case-sensitive).

    An id that a pattern matches may be reported only by the sources whose patterns match
    it. Any other id belongs to the first source that reports it (kept in the engine's
    state), or, with ``first_come = false``, to nobody: every report of it is refused.
    """

    first_come: bool = True
    cameras: OwnerTable = field(default_factory=dict)
    responders: OwnerTable = field(default_factory=dict)
    senders: OwnerTable = field(default_factory=dict)  # CAP senders (public alerts)


class EngineSettings(Struct, kw_only=True, frozen=True):
    """The engine's whole configuration, one section per concern."""

    priority: PriorityConfig = field(default_factory=PriorityConfig)
    correlation: CorrelationConfig = field(default_factory=CorrelationConfig)
    sla: SlaConfig = field(default_factory=SlaConfig)
    dispatch: DispatchConfig = field(default_factory=DispatchConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    plausibility: PlausibilityConfig = field(default_factory=PlausibilityConfig)
    owners: OwnersConfig = field(default_factory=OwnersConfig)
    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)
    # The partition this engine is the authority of, and the prefix of its incident ids
    # ("I" for an unpartitioned city), so ids are unique city-wide (docs/partitions.md).
    partition: str = "city"
    id_prefix: str = "I"
    # Operator id -> the districts whose incidents it may act on; absent: city-wide.
    scopes: dict[str, frozenset[str]] = field(default_factory=dict)
    # The partition's own districts; empty: every district (an unpartitioned city). A
    # camera or unit of another district is a neighbour's, read as context only.
    districts: frozenset[str] = frozenset()
