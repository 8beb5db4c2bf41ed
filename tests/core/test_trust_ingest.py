"""Trust at intake: the Reader asks the engine before anything is journaled.

What the core does with a message, minus MQTT and the journal file: read (and judge),
then either a dead letter or an append and the engine. Replaying the appended records
through a fresh engine and Reader must give the same state.
"""

from __future__ import annotations

import json

from console.config import Config, FrigateConfig
from console.core.ingest import Accepted, Adapted, Reader, Refused
from console.engine.engine import Engine
from protocols import codec, topics
from protocols.frigate import FrigateRule
from protocols.schemas import CameraHealthStatus, CctvKind, ResponderStatus
from tests.engine.test_engine_support import DAY, LAT, LON, camera, cctv, responder, sos

CFG = Config(
    frigate=FrigateConfig(
        enabled=True,
        cameras={"lane": "cam-f1", "gate": "cam-f2"},
        rules=[FrigateRule(label="person", kind=CctvKind.FIGHT)],
    )
)


def frigate_event(camera_name: str, event_id: str) -> bytes:
    after = {"id": event_id, "camera": camera_name, "label": "person", "score": 0.9}
    return json.dumps({"type": "new", "after": after}).encode()


class Core:
    """The core's intake, in miniature: judge, then dead-letter or journal and apply."""

    def __init__(self) -> None:
        self.engine = Engine(CFG.engine_settings(), CFG.city.district_map())
        self.reader = Reader(CFG)
        self.reader.bind(self.engine)
        self.journal: list[tuple[str, bytes, float]] = []
        self.dead: list[str] = []
        self.ignored: list[str] = []

    def receive(self, topic: str, payload: bytes, now: float) -> None:
        result = self.reader.read(topic, payload, now)
        if isinstance(result, Refused):
            self.dead.append(result.reason)
            return
        self.journal.append((topic, payload, now))
        if isinstance(result, Adapted):
            if result.ignored:
                self.ignored.append(result.ignored)
            for message in result.messages:
                self.engine.handle_event(message, now)
            return
        assert isinstance(result, Accepted)
        self.engine.handle_event(result.message, now, source=result.source)  # type: ignore[arg-type]


def raw(source: str, kind: str, message: object) -> tuple[str, bytes]:
    return topics.raw(source, kind), codec.encode(message)


def test_accepted_carries_the_topics_source() -> None:
    result = Reader(CFG).read(*raw("vms-a", "camera", camera("cam1")), DAY)
    assert isinstance(result, Accepted) and result.source == "vms-a"


def test_another_sources_report_is_a_dead_letter_with_the_engines_reason() -> None:
    core = Core()
    core.receive(*raw("vms-a", "camera", camera("cam1")), DAY)
    core.receive(*raw("vms-b", "camera", camera("cam1", CameraHealthStatus.TAMPERED)), DAY + 1)
    core.receive(*raw("vms-b", "cctv", cctv("e1", "cam1")), DAY + 2)
    core.receive(*raw("trk", "responder", responder("P-1")), DAY + 3)
    far = responder("P-1", ResponderStatus.OFF_DUTY, lat=33.5, lon=126.5)
    core.receive(*raw("phone-app", "responder", far), DAY + 4)
    core.receive(*raw("trk", "responder", far), DAY + 5)
    assert len(core.journal) == 2 and len(core.dead) == 4
    assert "camera cam1 belongs to source vms-a" in core.dead[0]
    assert "responder P-1 belongs to source trk" in core.dead[2]
    assert "outside the service area" in core.dead[3]
    assert core.engine.open_incident_ids() == []
    assert core.engine.responder_state("P-1").status is ResponderStatus.AVAILABLE


def test_an_sos_is_never_a_dead_letter_for_trust() -> None:
    core = Core()
    core.receive(*raw("app", "sos", sos("a1", device="d1", source="app")), DAY)
    forged = sos("a1", device="d1", source="evil", lat=0.0, lon=0.0, ts=0.0)
    core.receive(*raw("evil", "sos", forged), DAY + 1)
    assert core.dead == [] and len(core.engine.open_incident_ids()) == 2


def test_frigate_events_of_an_unplaced_camera_are_counted_with_a_reason() -> None:
    core = Core()
    core.receive("frigate/events", frigate_event("lane", "ev-1"), DAY)
    assert core.dead == [] and len(core.journal) == 1  # journaled: the adapter's memory moved
    assert "camera cam-f1 has no known position" in core.ignored[0]
    assert core.engine.st.cameras == {}  # never placed at 0, 0
    # Frigate down: its cameras are known from then on, unplaced, and their faults show.
    core.receive("frigate/available", b"offline", DAY + 1)
    faults = [core.engine.incident_state(i, DAY + 1) for i in core.engine.open_incident_ids()]
    assert {(f.source, f.place) for f in faults} == {
        ("cam-f1", "position unknown"),
        ("cam-f2", "position unknown"),
    }
    core.receive("frigate/events", frigate_event("lane", "ev-2"), DAY + 2)
    assert "camera cam-f1 has no known position" in core.ignored[1]
    # Placed by another source: then its events count.
    core.receive(*raw("vms", "camera", camera("cam-f1", lat=LAT, lon=LON)), DAY + 3)
    core.receive("frigate/events", frigate_event("lane", "ev-3"), DAY + 4)
    assert len(core.engine.open_incident_ids()) == 3 and len(core.ignored) == 2


def test_the_replay_of_what_was_journaled_gives_the_same_state() -> None:
    live = Core()
    inputs = [
        raw("vms-a", "camera", camera("cam1")),
        raw("vms-b", "camera", camera("cam1", CameraHealthStatus.TAMPERED)),
        raw("app", "sos", sos("a1")),
        raw("app", "sos", sos("a2", lat=LAT + 0.2)),  # a jump: recorded, not applied
        raw("trk", "responder", responder("P-1")),
        raw("other", "responder", responder("P-1", lat=LAT + 0.001)),
        ("frigate/events", frigate_event("lane", "ev-1")),
        raw("vms-a", "cctv", cctv("e1", "cam1")),
    ]
    for n, (topic, payload) in enumerate(inputs):
        live.receive(topic, payload, DAY + n)
    replay = Core()
    for topic, payload, now in live.journal:
        replay.receive(topic, payload, now)
    assert replay.dead == []
    assert replay.engine.snapshot() == live.engine.snapshot()
    # Unbound (no pre-check): the engine refuses the same inputs itself, to the same state.
    unbound = Core()
    unbound.reader.bind(None)
    for n, (topic, payload) in enumerate(inputs):
        unbound.receive(topic, payload, DAY + n)
    assert unbound.engine.snapshot() == live.engine.snapshot()
