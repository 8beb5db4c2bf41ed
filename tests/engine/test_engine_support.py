"""Builders shared by the engine tests."""

from __future__ import annotations

import itertools

from console.config import Config
from console.engine.effects import Effect, SendReply
from console.engine.engine import Engine
from protocols.schemas import (
    Action,
    CameraHealth,
    CameraHealthStatus,
    CctvEvent,
    CctvKind,
    Command,
    Reply,
    ResponderReport,
    ResponderStatus,
    Role,
    SosAlarm,
    SosTrigger,
    UnitKind,
)

# Around Seoul City Hall. 0.001° of latitude is ~111 m.
LAT, LON = 37.5665, 126.9780
# 2024-01-01 12:00 in Seoul (03:00 UTC): day. NIGHT is 23:00 in Seoul.
DAY = 1_704_078_000.0
NIGHT = DAY + 11 * 3600.0

_ids = itertools.count(1)


def engine(config: Config | None = None, **kw: object) -> Engine:
    config = config or Config()
    return Engine(config.engine_settings(), config.city.district_map(), **kw)  # type: ignore[arg-type]


def restore(config: Config, data: bytes) -> Engine:
    return Engine.restore(config.engine_settings(), config.city.district_map(), data)


def sos(
    alarm_id: str = "a1",
    device: str = "dev1",
    lat: float = LAT,
    lon: float = LON,
    source: str = "app",
    ts: float = DAY,
) -> SosAlarm:
    return SosAlarm(
        alarm_id=alarm_id,
        source=source,
        device_id=device,
        name="Kim Minji",
        phone="010-0000-0000",
        lat=lat,
        lon=lon,
        accuracy_m=8.0,
        trigger=SosTrigger.BUTTON,
        ts=ts,
        battery=50,
    )


def cctv(
    event_id: str = "e1",
    camera: str = "cam1",
    kind: CctvKind = CctvKind.SCREAM,
    withdrawn: bool = False,
    lat: float | None = None,
    lon: float | None = None,
    url: str | None = None,
    ts: float = DAY,
) -> CctvEvent:
    return CctvEvent(
        event_id=event_id,
        camera_id=camera,
        kind=kind,
        confidence=0.9,
        ts=ts,
        withdrawn=withdrawn,
        lat=lat,
        lon=lon,
        snapshot_url=url,
    )


def camera(
    camera_id: str = "cam1",
    status: CameraHealthStatus = CameraHealthStatus.ONLINE,
    lat: float | None = LAT,
    lon: float | None = LON,
    district: str | None = "Jung-gu",
    name: str | None = None,
    ts: float = DAY,
) -> CameraHealth:
    return CameraHealth(
        camera_id=camera_id,
        status=status,
        ts=ts,
        lat=lat,
        lon=lon,
        district=district,
        name=name or f"Camera {camera_id}",
    )


def responder(
    responder_id: str = "P-1",
    status: ResponderStatus = ResponderStatus.AVAILABLE,
    lat: float = LAT + 0.005,
    lon: float = LON,
    kind: UnitKind = UnitKind.POLICE,
    ts: float = DAY,
) -> ResponderReport:
    return ResponderReport(
        responder_id=responder_id, kind=kind, status=status, lat=lat, lon=lon, ts=ts
    )


def cmd(
    action: Action,
    incident_id: str | None = "I-000001",
    operator: str = "op1",
    cmd_id: str | None = None,
    responder_id: str | None = None,
    disposition: str | None = None,
    text: str | None = None,
) -> Command:
    return Command(
        cmd_id=cmd_id or f"c{next(_ids)}",
        operator=operator,
        action=action,
        ts=DAY,
        incident_id=incident_id,
        responder_id=responder_id,
        disposition=disposition,
        text=text,
    )


def reply_of(effects: list[Effect]) -> Reply:
    replies = [e.reply for e in effects if isinstance(e, SendReply)]
    assert len(replies) == 1, effects
    return replies[0]


def do(
    eng: Engine,
    action: Action,
    incident_id: str | None = "I-000001",
    now: float = DAY + 10,
    role: Role = Role.OPERATOR,
    **kw: object,
) -> Reply:
    return reply_of(eng.handle_command(cmd(action, incident_id, **kw), now, role))  # type: ignore[arg-type]
