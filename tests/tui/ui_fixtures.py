"""Deterministic console fixtures: a small city at a frozen instant, and a demo.

``python -m tests.tui.ui_fixtures [--observer] [--many N]`` runs the console on this
data with no broker; a toy core applies commands to the store so the
a / d / enter path can be tried by hand.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable

import msgspec

from console.tui.state_store import StateStore
from protocols.schemas import (
    Action,
    CameraCell,
    CameraStatus,
    Command,
    CorrelatedEvent,
    DistrictCameras,
    HistoryEntry,
    IncidentKind,
    IncidentState,
    IncidentStatus,
    NearbyCamera,
    NearbyShelter,
    Note,
    Presence,
    Recommendation,
    Reply,
    ResponderState,
    ResponderStatus,
    Summary,
    UnitKind,
)

NOW = 1_750_000_000.0  # the frozen clock of every UI test
DISTRICTS = {
    "Gangnam": (37.4979, 127.0276),
    "Jongno": (37.5735, 126.9790),
    "Mapo": (37.5663, 126.9019),
}


def clock() -> float:
    return NOW


def cameras() -> list[DistrictCameras]:
    out = []
    cycle = [CameraStatus.ONLINE] * 17 + [
        CameraStatus.OFFLINE,
        CameraStatus.TAMPERED,
        CameraStatus.ALARM,
    ]
    for d, (name, (lat, lon)) in enumerate(sorted(DISTRICTS.items())):
        cells = tuple(
            CameraCell(
                id=f"cam-{name[:3].lower()}-{i:03d}",
                status=cycle[(i * 7 + d) % len(cycle)],
                lat=lat + (i % 10 - 5) * 0.0008,
                lon=lon + (i // 10 - 5) * 0.0010,
                name=f"{name} pole {i}",
                last_seen=NOW - 5 - i,
            )
            for i in range(90 + 20 * d)
        )
        counts = {s: sum(1 for c in cells if c.status == s) for s in CameraStatus}
        out.append(
            DistrictCameras(
                district=name,
                ts=NOW,
                cameras=cells,
                online=counts[CameraStatus.ONLINE],
                offline=counts[CameraStatus.OFFLINE],
                tampered=counts[CameraStatus.TAMPERED],
                alarm=counts[CameraStatus.ALARM],
            )
        )
    return out


def responders() -> list[ResponderState]:
    lat, lon = DISTRICTS["Gangnam"]
    spec = [
        ("police-07", UnitKind.POLICE, ResponderStatus.AVAILABLE, None),
        ("scout-03", UnitKind.SCOUT, ResponderStatus.AVAILABLE, None),
        ("police-02", UnitKind.POLICE, ResponderStatus.DISPATCHED, "I-000005"),
        ("guard-11", UnitKind.GUARD, ResponderStatus.ON_SCENE, "I-000004"),
        ("police-09", UnitKind.POLICE, ResponderStatus.EN_ROUTE, "I-000006"),
        ("scout-05", UnitKind.SCOUT, ResponderStatus.OFF_DUTY, None),
    ]
    return [
        ResponderState(
            id=rid,
            kind=kind,
            status=status,
            lat=lat + 0.002 * i,
            lon=lon - 0.0015 * i,
            last_seen=NOW - 10 * i,
            status_since=NOW - 60 * (i + 1),
            name=f"Unit {rid}",
            incident_id=inc,
        )
        for i, (rid, kind, status, inc) in enumerate(spec)
    ]


def incident(n: int, **over: object) -> IncidentState:
    lat, lon = DISTRICTS["Gangnam"]
    base = IncidentState(
        id=f"I-{n:06d}",
        kind=IncidentKind.SOS,
        priority=1,
        status=IncidentStatus.NEW,
        lat=lat,
        lon=lon,
        district="Gangnam",
        place="Yeoksam-ro 12",
        source=f"dev-{n:04d}",
        title="SOS (button)",
        created=NOW - 60 * n,
        updated=NOW - 30 * n,
    )
    return msgspec.structs.replace(base, **over)


def incidents() -> list[IncidentState]:
    lat, lon = DISTRICTS["Gangnam"]
    return [
        incident(
            1,
            person="Kim Ji-woo",
            phone="010-1234-5678",
            sos_count=2,
            ack_deadline=NOW - 30,
            events=(
                CorrelatedEvent(
                    ts=NOW - 50,
                    kind="scream",
                    source="cam-gan-004",
                    detail="confidence 0.91",
                    snapshot_url="http://vms.local/snap/cam-gan-004/1.jpg",
                ),
            ),
            cameras=(
                NearbyCamera(
                    camera_id="cam-gan-004",
                    distance_m=40,
                    status=CameraStatus.ALARM,
                    name="Gangnam pole 4",
                ),
                NearbyCamera(
                    camera_id="cam-gan-014",
                    distance_m=120,
                    status=CameraStatus.ONLINE,
                    name="Gangnam pole 14",
                ),
            ),
            recommended=(
                Recommendation(
                    responder_id="police-02", kind=UnitKind.POLICE, distance_m=250, eta_s=40
                ),
                Recommendation(
                    responder_id="police-07", kind=UnitKind.POLICE, distance_m=420, eta_s=75
                ),
                Recommendation(
                    responder_id="scout-03", kind=UnitKind.SCOUT, distance_m=600, eta_s=430
                ),
            ),
            shelters=(
                NearbyShelter(
                    shelter_id="sh-1",
                    name="GS25 Yeoksam",
                    kind="24h-store",
                    distance_m=80,
                    lat=lat + 0.0006,
                    lon=lon + 0.0004,
                ),
            ),
            history=(
                HistoryEntry(ts=NOW - 60, actor="core", action="created", detail="SOS button"),
            ),
        ),
        incident(
            3,
            escalated=True,
            title="SOS (timer expired)",
            place="Teheran-ro 5",
            recommended=(
                Recommendation(
                    responder_id="scout-03", kind=UnitKind.SCOUT, distance_m=300, eta_s=216
                ),
            ),
        ),
        incident(
            2,
            kind=IncidentKind.CCTV,
            priority=2,
            status=IncidentStatus.ACKNOWLEDGED,
            title="scream at cam-jon-007",
            district="Jongno",
            place="Insadong-gil 3",
            source="cam-jon-007",
            owner="op1",
        ),
        incident(
            5,
            kind=IncidentKind.CCTV,
            priority=2,
            status=IncidentStatus.DISPATCHED,
            title="fight at cam-map-011",
            district="Mapo",
            place="Hongik-ro 20",
            source="cam-map-011",
            owner="op2",
            responders=("police-02",),
        ),
        incident(
            6,
            priority=1,
            status=IncidentStatus.DISPATCHED,
            owner="op2",
            responders=("police-09", "scout-05"),
            place="Gangnam-daero 100",
        ),
        incident(
            7,
            kind=IncidentKind.PUBLIC_ALERT,
            priority=3,
            title="heavy rain warning",
            district="Mapo",
            place="Mapo-gu",
            source="cap-kma",
        ),
        incident(
            4,
            kind=IncidentKind.CAMERA_FAULT,
            priority=4,
            status=IncidentStatus.ON_SCENE,
            title="cam-gan-018 tampered",
            source="cam-gan-018",
            place="Nonhyeon-ro 8",
            responders=("guard-11",),
        ),
        incident(
            40,
            priority=4,
            kind=IncidentKind.CCTV,
            title="loitering",
            district="Jongno",
            place="Jong-ro 1",
            created=NOW - 7300,
        ),
    ]


def summary() -> Summary:
    return Summary(
        ts=NOW,
        open_by_priority=(3, 2, 1, 2),
        open_total=8,
        oldest_unacked=NOW - 7300,
        events_total=1234,
        events_per_s=3.5,
        rate_history=(1, 2, 3, 5, 8, 5, 3, 3.5),
        operators=("op1", "op2"),
    )


def make_store(many: int = 0) -> StateStore:
    """The fixture city; ``many`` adds that many extra low-priority incidents."""
    store = StateStore()
    for message in [*cameras(), *responders(), *incidents(), summary()]:
        store.apply(message)
    store.apply(Presence(operator="op2", online=True, ts=NOW))
    for n in range(1000, 1000 + many):
        store.apply(
            incident(
                n,
                priority=3 + n % 2,
                kind=IncidentKind.CCTV,
                title="loitering",
                created=NOW - n,
                place=f"Street {n}",
            )
        )
    return store


class Recorder:
    """A ``send_command`` that keeps what the app sent."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    async def __call__(self, command: Command) -> None:
        self.commands.append(command)


def toy_core(
    store: StateStore, reply: Callable[[Reply], None]
) -> Callable[[Command], Awaitable[None]]:
    """A stand-in for the core, for the demo only: applies commands to the store."""

    async def send(c: Command) -> None:
        inc = store.incidents.get(c.incident_id or "")
        if inc is None:
            return
        now = inc.updated + 1
        change: dict[str, object] = {"updated": now}
        if c.action == Action.ACK:
            change.update(status=IncidentStatus.ACKNOWLEDGED, owner=c.operator, acknowledged_at=now)
        elif c.action == Action.DISPATCH:
            unit = store.responders.get(c.responder_id or "")
            if unit is not None and unit.status != ResponderStatus.AVAILABLE:
                reply(
                    Reply(
                        cmd_id=c.cmd_id,
                        operator=c.operator,
                        ok=False,
                        ts=now,
                        incident_id=inc.id,
                        reason=f"{unit.id} already dispatched to {unit.incident_id}",
                    )
                )
                return
            change.update(status=IncidentStatus.DISPATCHED, responders=(c.responder_id,))
        elif c.action in (Action.RESOLVE, Action.FALSE_ALARM):
            closed = (
                IncidentStatus.RESOLVED
                if c.action == Action.RESOLVE
                else IncidentStatus.FALSE_ALARM
            )
            change.update(status=closed, closed_at=now, disposition=c.disposition)
        elif c.action == Action.ESCALATE:
            change.update(escalated=True)
        elif c.action == Action.CLAIM:
            change.update(owner=c.operator)
        elif c.action == Action.NOTE:
            change.update(notes=(*inc.notes, Note(ts=now, operator=c.operator, text=c.text or "")))
        store.apply(msgspec.structs.replace(inc, **change))

    return send


def main(argv: list[str] | None = None) -> int:
    from console.tui.app import AnsimApp
    from console.tui.messages import ReplyReceived

    parser = argparse.ArgumentParser(description="the console on fixture data, no broker")
    parser.add_argument("--observer", action="store_true")
    parser.add_argument("--many", type=int, default=0, help="extra incidents (try 100000)")
    args = parser.parse_args(argv)
    store = make_store(args.many)
    holder: list[AnsimApp] = []
    send = toy_core(store, lambda r: holder[0].post_message(ReplyReceived(r)))
    app = AnsimApp(
        store=store,
        operator="op1",
        role="observer" if args.observer else "operator",
        send_command=send,
        clock=clock,
    )
    holder.append(app)
    return int(app.run() or 0)


if __name__ == "__main__":
    sys.exit(main())
