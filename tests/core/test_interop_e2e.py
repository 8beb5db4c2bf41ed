"""Foreign formats through a real Mosquitto and the real `ansim core`: Frigate, OwnTracks, CAP.

Payloads are written field for field after the formats' public documentation
(Frigate's MQTT page, the OwnTracks JSON booklet, CAP 1.2). After each run the
journal is replayed (console.core.rebuild) and must give the state the live core had.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from console import config as config_module
from console.core.rebuild import rebuild
from console.journal.store import RecordKind, open_journal
from protocols import codec, topics
from protocols.mqtt import MqttSettings, Transport
from protocols.public_alert import CapReference, PublicAlert
from protocols.schemas import (
    Action,
    CameraHealth,
    CameraHealthStatus,
    Command,
    IncidentKind,
    IncidentState,
    IncidentStatus,
    Reply,
    ResponderReport,
    ResponderState,
    ResponderStatus,
    SosAlarm,
    SosTrigger,
    Summary,
    UnitKind,
)
from tests.processes import AnsimProcess, core_ready, until, write_config
from tests.state_lookup import find

SOURCE = "interop"
CITY_HALL = (37.5663, 126.9779)

FOREIGN = """
[frigate]
enabled = true
prefix = "frigate"
base_url = "http://frigate.test:5000"

[frigate.cameras]
back_lane_3 = "cam-f1"
front_door = "cam-f2"

[[frigate.rules]]
label = "scream"
kind = "scream"

[[frigate.rules]]
label = "person"
zone = "alley"
kind = "fight"

[[frigate.rules]]
label = "person"
kind = "loitering"

[owntracks]
enabled = true
prefix = "owntracks"

[owntracks.users]
jane = "scout-j1"
"""


@pytest.fixture
def interop_config(tmp_path: Path, mosquitto: Any) -> Path:
    path = write_config(tmp_path, mosquitto.port)
    with path.open("a", encoding="utf-8") as f:
        f.write(FOREIGN)
    return path


class Watcher:
    """The state a console sees (retained and live), plus replies to op1's commands."""

    def __init__(self, settings: MqttSettings) -> None:
        self.transport = Transport(
            settings,
            f"watch-{time.monotonic_ns()}",
            subscriptions=[(topics.STATE_ALL, 1), (topics.reply("op1"), 1)],
        )
        self.state: dict[str, Any] = {}
        self.replies: dict[str, Reply] = {}
        self._task: asyncio.Task[None] | None = None

    async def _listen(self) -> None:
        async for msg in self.transport.messages():
            if not msg.payload:
                self.state.pop(msg.topic, None)
                continue
            decoded = codec.decode_any(msg.payload)
            if isinstance(decoded, Reply):
                self.replies[decoded.cmd_id] = decoded
            else:
                self.state[msg.topic] = decoded

    def incidents(self, kind: IncidentKind | None = None) -> list[IncidentState]:
        found = [v for v in self.state.values() if isinstance(v, IncidentState)]
        return [i for i in found if kind is None or i.kind is kind]

    def summary(self) -> Summary | None:
        s = self.state.get(topics.STATE_SUMMARY)
        return s if isinstance(s, Summary) else None

    async def publish(self, topic: str, payload: bytes) -> None:
        await self.transport.publish(topic, payload)

    async def command(self, cmd_id: str, action: Action, **fields: Any) -> Reply:
        cmd = Command(cmd_id=cmd_id, operator="op1", action=action, ts=time.time(), **fields)
        await self.publish(topics.cmd("op1"), codec.encode(cmd))
        await until(lambda: cmd_id in self.replies, what=f"reply to {cmd_id}")
        return self.replies[cmd_id]


@contextlib.asynccontextmanager
async def running_core(config: Path, settings: MqttSettings) -> AsyncIterator[Watcher]:
    core = AnsimProcess(config, "core").start()
    try:
        await core_ready(settings)
        watcher = Watcher(settings)
        async with watcher.transport:
            await watcher.transport.wait_connected(10)
            watcher._task = asyncio.create_task(watcher._listen())
            try:
                yield watcher
            finally:
                watcher._task.cancel()
        assert core.process is not None and core.process.poll() is None, core.log()
    finally:
        assert core.stop() == 0, core.log()


def register_camera(camera_id: str, dlon: float) -> bytes:
    return codec.encode(
        CameraHealth(
            camera_id=camera_id,
            status=CameraHealthStatus.ONLINE,
            ts=time.time(),
            name=f"Back lane {camera_id}",
            district="Jung-gu",
            lat=CITY_HALL[0],
            lon=CITY_HALL[1] + dlon,
        )
    )


def frigate_event(
    kind: str, score: float, zones: list[str], *, false_positive: bool = False
) -> bytes:
    """A `frigate/events` message as Frigate 0.14 sends it (before/after tracked objects)."""
    now = time.time()
    obj = {
        "id": "1718000000.123456-ab12cd",
        "camera": "back_lane_3",
        "frame_time": now,
        "snapshot": {"frame_time": now, "box": [415, 489, 528, 700], "area": 12728},
        "label": "person",
        "sub_label": None,
        "top_score": score,
        "false_positive": false_positive,
        "start_time": now - 3.0,
        "end_time": None,
        "score": score,
        "box": [415, 489, 528, 700],
        "area": 12728,
        "ratio": 0.53,
        "region": [260, 446, 660, 846],
        "current_zones": zones,
        "entered_zones": zones,
        "thumbnail": None,
        "has_snapshot": True,
        "has_clip": True,
        "active": True,
        "stationary": False,
        "motionless_count": 0,
        "position_changes": 2,
        "attributes": {},
        "current_attributes": [],
    }
    before = dict(obj, top_score=max(0.0, score - 0.2), score=max(0.0, score - 0.2))
    return json.dumps({"type": kind, "before": before, "after": obj}).encode()


def owntracks_location(lat: float, lon: float) -> bytes:
    """An OwnTracks `_type: location` as the Android app publishes it (JSON booklet)."""
    return json.dumps(
        {
            "_type": "location",
            "acc": 12,
            "alt": 38,
            "batt": 81,
            "bs": 1,
            "conn": "m",
            "created_at": int(time.time()),
            "lat": lat,
            "lon": lon,
            "m": 1,
            "t": "u",
            "tid": "jn",
            "tst": int(time.time()),
            "vac": 3,
            "vel": 4,
        }
    ).encode()


def dead_letters(config: Path) -> list[tuple[str, str]]:
    cfg = config_module.load(config, environ={})
    journal = open_journal(cfg.journal)
    try:
        return [(r.topic, r.reason) for r in journal.records(kinds=[RecordKind.DEAD])]
    finally:
        journal.close()


def replayed(config: Path) -> dict[str, IncidentState]:
    """Every incident, open or closed, as a replay of the journal sees it."""
    cfg = config_module.load(config, environ={})
    journal = open_journal(cfg.journal)
    try:
        engine, _ = rebuild(cfg, journal)
        ids = list(engine.st.incidents) + list(engine.st.closed)
        return {i: engine.incident_state(i, time.time()) for i in ids}
    finally:
        journal.close()


async def test_frigate_events_update_withdraw_and_availability(
    interop_config: Path, mqtt_settings: MqttSettings
) -> None:
    async with running_core(interop_config, mqtt_settings) as w:
        await w.publish(topics.raw(SOURCE, topics.RAW_CAMERA), register_camera("cam-f1", 0.0005))
        await w.publish("frigate/events", frigate_event("new", 0.55, ["yard"]))
        await until(lambda: len(w.incidents(IncidentKind.CCTV)) == 1, what="the CCTV incident")
        first = w.incidents(IncidentKind.CCTV)[0]
        assert first.source == "cam-f1" and first.title.startswith("Loitering")
        assert first.priority in (3, 4)  # loitering: P4 by day, P3 at night
        assert first.events[0].snapshot_url == (
            "http://frigate.test:5000/api/events/1718000000.123456-ab12cd/snapshot.jpg"
        )
        # Updates: a higher score (recorded), then the person in the alley (a higher rule).
        await w.publish("frigate/events", frigate_event("update", 0.7, ["yard"]))
        await w.publish("frigate/events", frigate_event("update", 0.72, ["yard"]))  # no change
        await w.publish("frigate/events", frigate_event("update", 0.8, ["yard", "back_alley"]))

        def upgraded() -> bool:
            found = w.incidents(IncidentKind.CCTV)
            return len(found) == 1 and found[0].priority == 2

        await until(upgraded, what="the update to P2")
        inc = w.incidents(IncidentKind.CCTV)[0]
        assert inc.id == first.id and inc.title.startswith("Fight")
        details = [e.detail for e in inc.events]
        assert any("confidence 0.55 → 0.70" in d for d in details), details
        assert any("loitering → fight" in d for d in details), details
        assert len(inc.events) == 3, details  # the unchanged update was not recorded
        # Ignored, and counted by reason in the retained summary.
        await until(
            lambda: ("no-change", 1) in (w.summary() or Summary(ts=0)).ignored_by_reason,
            what="the unchanged update counted as no-change",
        )
        # Frigate's end: recorded on the incident, which stays open for the operator.
        await w.publish("frigate/events", frigate_event("end", 0.8, ["back_alley"]))
        await until(
            lambda: any(
                e.kind == "ended" for i in w.incidents(IncidentKind.CCTV) for e in i.events
            ),
            what="the end recorded",
        )
        # False positive: withdrawn, and the incident closes as a false alarm.
        await w.publish(
            "frigate/events", frigate_event("update", 0.8, ["back_alley"], false_positive=True)
        )
        await until(lambda: not w.incidents(IncidentKind.CCTV), what="the withdrawal")
        # Frigate goes away (its last will): every mapped camera is at fault.
        await w.publish("frigate/available", b"offline")

        def faults() -> set[str]:
            return {i.source for i in w.incidents(IncidentKind.CAMERA_FAULT)}

        await until(lambda: faults() == {"cam-f1", "cam-f2"}, what="camera faults")
        # Garbage on Frigate's topics: dead letters, and the core keeps going.
        await w.publish("frigate/events", b"\x00not json at all")
        await w.publish("frigate/events", json.dumps({"type": "new", "after": {}}).encode())
        await w.publish("frigate/garage/detect/state", b"ON")  # an unmapped camera
        await w.publish("frigate/back_lane_3/detect/state", b"MAYBE")
        await w.publish("frigate/available", b"online")
        await until(lambda: (w.summary() or Summary(ts=0)).rejected_total >= 4, what="rejections")
    dead = dead_letters(interop_config)
    assert [t for t, _ in dead].count("frigate/events") == 2
    reasons = " | ".join(r for _, r in dead)
    assert "not a Frigate event" in reasons and "'garage' is not mapped" in reasons
    assert "expected 'ON' or 'OFF'" in reasons
    incidents = replayed(interop_config)
    closed = incidents[first.id]
    assert closed.status is IncidentStatus.FALSE_ALARM and closed.priority == 2
    assert [i.source for i in incidents.values() if i.kind is IncidentKind.CAMERA_FAULT] == [
        "cam-f1",
        "cam-f2",
    ]


async def test_owntracks_moves_a_dispatched_responder_and_counts_what_it_ignores(
    interop_config: Path, mqtt_settings: MqttSettings
) -> None:
    async with running_core(interop_config, mqtt_settings) as w:
        report = ResponderReport(
            responder_id="scout-j1",
            kind=UnitKind.SCOUT,
            status=ResponderStatus.AVAILABLE,
            lat=CITY_HALL[0] + 0.001,
            lon=CITY_HALL[1],
            ts=time.time(),
        )
        await w.publish(topics.raw(SOURCE, topics.RAW_RESPONDER), codec.encode(report))
        alarm = SosAlarm(
            alarm_id="o1",
            source=SOURCE,
            device_id="phone-o1",
            name="Person",
            lat=CITY_HALL[0],
            lon=CITY_HALL[1],
            accuracy_m=10,
            trigger=SosTrigger.BUTTON,
            ts=time.time(),
        )
        await w.publish(topics.raw(SOURCE, topics.RAW_SOS), codec.encode(alarm))
        await until(lambda: len(w.incidents(IncidentKind.SOS)) == 1, what="the SOS incident")
        incident_id = w.incidents(IncidentKind.SOS)[0].id
        reply = await w.command("d1", Action.DISPATCH, incident_id=incident_id)
        assert reply.ok, reply.reason
        # Jane's phone reports a position: the unit moves and stays dispatched.
        await w.publish("owntracks/jane/phone", owntracks_location(CITY_HALL[0] + 0.0004, 126.98))

        def moved() -> ResponderState | None:
            r = find(w.state, "responder", "scout-j1")
            return r if isinstance(r, ResponderState) and r.lon == 126.98 else None

        await until(lambda: moved() is not None, what="the responder to move")
        state = moved()
        assert state is not None and state.status is ResponderStatus.DISPATCHED
        assert state.incident_id == incident_id
        # Unknown _types: ignored and counted, not dead letters.
        waypoint = {"_type": "waypoint", "desc": "Home", "lat": 37.5, "lon": 127.0, "tst": 1}
        await w.publish("owntracks/jane/phone", json.dumps(waypoint).encode())
        await w.publish("owntracks/jane/phone", json.dumps({"_type": "beacon"}).encode())
        await until(lambda: (w.summary() or Summary(ts=0)).ignored_total >= 2, what="ignored")
        assert (w.summary() or Summary(ts=0)).rejected_total == 0
        # Garbage: dead letters, and the core keeps going.
        await w.publish("owntracks/jane/phone", b"{]")
        await w.publish("owntracks/jane/phone", b'{"_type":"location","lat":"north","lon":1}')
        await w.publish("owntracks/mallory/phone", owntracks_location(37.5, 127.0))
        await until(lambda: (w.summary() or Summary(ts=0)).rejected_total >= 3, what="rejections")
        await w.publish("owntracks/jane/phone", owntracks_location(CITY_HALL[0], 126.981))
        await until(
            lambda: (r := find(w.state, "responder", "scout-j1")) is not None and r.lon == 126.981,
            what="the core to go on after garbage",
        )
        assert w.incidents(IncidentKind.SOS)[0].responders == ("scout-j1",)
    dead = dead_letters(interop_config)
    assert len(dead) == 3 and all(t.startswith("owntracks/") for t, _ in dead)
    assert any("'mallory' is not mapped" in r for _, r in dead)
    inc = replayed(interop_config)[incident_id]
    assert inc.status is IncidentStatus.DISPATCHED and inc.responders == ("scout-j1",)


def public_alert(identifier: str, msg_type: str = "Alert", refs: tuple[str, ...] = ()) -> bytes:
    alert = PublicAlert(
        identifier=identifier,
        sender="police@seoul.go.kr",
        sent=time.time(),
        msg_type=msg_type,  # type: ignore[arg-type]
        priority=1,
        headline="Suspect at large near City Hall",
        event="Police alert",
        area_desc="City Hall plaza",
        districts=("Jung-gu",),
        lat=CITY_HALL[0],
        lon=CITY_HALL[1],
        references=tuple(
            CapReference(sender="police@seoul.go.kr", identifier=r, sent=time.time()) for r in refs
        ),
        urgency="Immediate",
        severity="Severe",
        certainty="Observed",
    )
    return codec.encode(alert)


async def test_cap_public_alert_opens_and_cancel_closes(
    interop_config: Path, mqtt_settings: MqttSettings
) -> None:
    topic = topics.raw("cap-gw", topics.RAW_ALERT)
    async with running_core(interop_config, mqtt_settings) as w:
        await w.publish(topic, public_alert("KNPA-2024-001"))
        await w.publish(topic, public_alert("KNPA-2024-001"))  # a resend folds
        await until(lambda: len(w.incidents(IncidentKind.PUBLIC_ALERT)) == 1, what="the alert")
        inc = w.incidents(IncidentKind.PUBLIC_ALERT)[0]
        assert inc.priority == 1 and inc.district == "Jung-gu"
        assert inc.title == "Suspect at large near City Hall"
        await w.publish(topic, b"\x81\xa1x\x01")  # a map, but no alert: a dead letter
        await w.publish(topic, public_alert("KNPA-2024-002", "Cancel", refs=("KNPA-2024-001",)))
        await until(lambda: not w.incidents(IncidentKind.PUBLIC_ALERT), what="the cancel")
    closed = replayed(interop_config)[inc.id]
    assert closed.status is IncidentStatus.RESOLVED
    assert closed.disposition == "cancelled by sender"
    assert len(dead_letters(interop_config)) == 1
