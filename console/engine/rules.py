"""Small pure rules: priorities, night, ETA, titles."""

from __future__ import annotations

from console.engine.settings import DispatchConfig, PriorityConfig
from protocols.schemas import CameraHealthStatus, CctvKind, SosTrigger, UnitKind

NIGHT_RAISED = frozenset({CctvKind.LOITERING, CctvKind.INTRUSION})
FAULTS = frozenset(
    {CameraHealthStatus.OFFLINE, CameraHealthStatus.TAMPERED, CameraHealthStatus.VIDEO_LOSS}
)


def local_hour(now: float, utc_offset_hours: float) -> int:
    """The city's local hour (0-23) at UNIX time ``now``."""
    return int(((now + utc_offset_hours * 3600.0) // 3600.0) % 24)


def is_night(cfg: PriorityConfig, now: float) -> bool:
    hour = local_hour(now, cfg.utc_offset_hours)
    start, end = cfg.night_start_hour, cfg.night_end_hour
    if start == end:
        return False
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end


def cctv_priority(cfg: PriorityConfig, kind: CctvKind, now: float) -> int:
    """Base priority of the kind; loitering and intrusion rise to night_priority at night."""
    base = cfg.for_kind(kind.value)
    if kind in NIGHT_RAISED and is_night(cfg, now):
        return min(base, cfg.night_priority)
    return base


def speed_mps(cfg: DispatchConfig, kind: UnitKind) -> float:
    kmh = {
        UnitKind.POLICE: cfg.speed_police_kmh,
        UnitKind.SCOUT: cfg.speed_scout_kmh,
        UnitKind.GUARD: cfg.speed_guard_kmh,
    }.get(kind, cfg.speed_scout_kmh)
    return kmh / 3.6


def eta_s(cfg: DispatchConfig, kind: UnitKind, distance_m: float) -> float:
    """Straight-line travel time at the unit kind's configured speed, whole seconds."""
    return float(round(distance_m / speed_mps(cfg, kind)))


_TRIGGER_TITLE = {
    SosTrigger.BUTTON: "SOS: panic button",
    SosTrigger.SHAKE: "SOS: phone shaken",
    SosTrigger.VOICE: "SOS: voice trigger",
    SosTrigger.TIMER_EXPIRED: "SOS: walk-home check-in missed",
}


def sos_title(trigger: SosTrigger) -> str:
    return _TRIGGER_TITLE.get(trigger, f"SOS: {trigger.value}")


def cctv_title(kind: CctvKind, camera_name: str) -> str:
    return f"{kind.value.replace('-', ' ').capitalize()} at {camera_name}"[:200]


def fault_title(status: CameraHealthStatus, camera_name: str) -> str:
    return f"Camera {camera_name} {status.value}"[:200]


def alert_title(headline: str, event: str, fallback: str = "Public alert") -> str:
    """A public alert's title: its headline, else its event, else ``fallback``."""
    return (headline.strip() or event.strip() or fallback)[:200]


def coords(lat: float, lon: float) -> str:
    return f"{lat:.5f}, {lon:.5f}"
