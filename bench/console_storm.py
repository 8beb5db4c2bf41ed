"""The storm and the probes for ``bench.console``: a city's state as wire payloads.

Everything is encoded up front (the same bytes for our console and for the
naive baseline), so a run measures decoding + applying + drawing, not
building test data. Open incidents are only ever updated (status, owner,
``updated``), never closed, so the queue keeps its size through a storm.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from protocols import codec, topics
from protocols.camera_pages import split_pages
from protocols.schemas import (
    CameraCell,
    CameraStatus,
    DistrictCameras,
    IncidentKind,
    IncidentState,
    IncidentStatus,
    Summary,
)

SOUTH, NORTH, WEST, EAST = 37.45, 37.70, 126.80, 127.18
DISTRICTS = [f"District-{i:02d}" for i in range(25)]
PROBE_ID = "I-000000"
_KINDS = (IncidentKind.SOS, IncidentKind.CCTV, IncidentKind.CAMERA_FAULT, IncidentKind.PUBLIC_ALERT)
_UPDATE_STATUS = (IncidentStatus.NEW, IncidentStatus.ACKNOWLEDGED, IncidentStatus.DISPATCHED)

Message = tuple[str, bytes]


@dataclass
class City:
    """The retained picture (what a console receives on connect) and the storm's updates."""

    initial: list[Message]
    updates: list[Message]  # incident updates, cycled through by the storm
    camera_updates: list[Message]  # one page of a district's cameras re-published, cycled


def _incident(rng: random.Random, n: int, now: float) -> IncidentState:
    lat, lon = rng.uniform(SOUTH, NORTH), rng.uniform(WEST, EAST)
    kind = rng.choice(_KINDS)
    return IncidentState(
        id=f"I-{n:06d}",
        kind=kind,
        # P1 rows would all be escalated-free and newer than the probe, which stays on top.
        priority=rng.choice((1, 2, 2, 3, 3, 3, 4, 4)),
        status=IncidentStatus.NEW,
        lat=lat,
        lon=lon,
        district=rng.choice(DISTRICTS),
        place=f"Street {rng.randrange(1, 999)}-{n}",
        source=f"dev-{n}",
        title=f"{kind} {n}",
        created=now - rng.uniform(10, 7200),
        updated=now,
    )


def _cameras(rng: random.Random, district: str, count: int, now: float) -> DistrictCameras:
    statuses = [CameraStatus.ONLINE] * 46 + [
        CameraStatus.OFFLINE,
        CameraStatus.TAMPERED,
        CameraStatus.ALARM,
        CameraStatus.OFFLINE,
    ]
    cells = tuple(
        CameraCell(
            id=f"cam-{district[-2:]}-{i:05d}",
            status=rng.choice(statuses),
            lat=rng.uniform(SOUTH, NORTH),
            lon=rng.uniform(WEST, EAST),
            name=f"{district} pole {i}",
            last_seen=now - rng.uniform(0, 60),
        )
        for i in range(count)
    )
    return DistrictCameras(
        district=district,
        ts=now,
        cameras=cells,
        online=sum(1 for c in cells if c.status == CameraStatus.ONLINE),
        offline=sum(1 for c in cells if c.status == CameraStatus.OFFLINE),
        tampered=sum(1 for c in cells if c.status == CameraStatus.TAMPERED),
        alarm=sum(1 for c in cells if c.status == CameraStatus.ALARM),
    )


def build_city(seed: int, incidents: int, cameras: int, updates: int, now: float) -> City:
    rng = random.Random(seed)
    initial: list[Message] = []
    per_district = max(1, cameras // len(DISTRICTS))
    by_district = [
        camera_pages(_cameras(rng, district, per_district, now)) for district in DISTRICTS
    ]
    for pages in by_district:
        initial += pages
    # What a camera changing costs a console: its page comes again (page k of district k).
    camera_msgs = [pages[k % len(pages)] for k, pages in enumerate(by_district)]
    states = [_incident(rng, n, now) for n in range(1, incidents + 1)]
    initial += [(topics.state_incident(s.district, s.id), codec.encode(s)) for s in states]
    initial.append(probe(0, now))
    initial.append((topics.STATE_SUMMARY, codec.encode(summary(incidents, now))))
    upd: list[Message] = []
    for k in range(updates):
        s = states[rng.randrange(len(states))]
        changed = IncidentState(
            **{
                f: getattr(s, f)
                for f in s.__struct_fields__
                if f not in ("status", "updated", "owner")
            },
            status=rng.choice(_UPDATE_STATUS),
            updated=now + k * 1e-3,
            owner=rng.choice((None, "op2", "op3")),
        )
        upd.append((topics.state_incident(s.district, s.id), codec.encode(changed)))
    return City(initial, upd, camera_msgs)


def camera_pages(whole: DistrictCameras) -> list[Message]:
    """A district's cameras as the core publishes them: retained pages."""
    return [
        (topics.state_camera_page(page.district, page.page), codec.encode(page))
        for page in split_pages(whole)
    ]


def probe(serial: int, now: float) -> Message:
    """The top row of the queue (P1, escalated, oldest) with a new, unique place text."""
    state = IncidentState(
        id=PROBE_ID,
        kind=IncidentKind.SOS,
        priority=1,
        status=IncidentStatus.NEW,
        lat=37.5,
        lon=127.0,
        district="Probe",
        place=probe_text(serial),
        source="probe",
        title="probe",
        created=1.0,
        updated=now,
        escalated=True,
    )
    return topics.state_incident(state.district, PROBE_ID), codec.encode(state)


def probe_text(serial: int) -> str:
    return f"PROBE{serial:06d}"


def summary(open_total: int, now: float) -> Summary:
    return Summary(
        ts=now,
        open_by_priority=(open_total // 8, open_total // 4, open_total // 4, open_total // 4),
        open_total=open_total,
        events_per_s=0.0,
    )
