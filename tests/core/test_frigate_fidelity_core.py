"""Frigate fidelity in the core (issue 18, point 11).

From a Frigate payload to the incident the operator sees: an ``end`` is recorded on its
incident and never opens one, a review's scream opens a scream incident, the title follows
a kind change; and every ignored payload is counted per reason in the retained summary.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, cast

import pytest

from console.config import Config, FrigateConfig, JournalConfig, OwnTracksConfig
from console.core.foreign import IGNORED_REASONS
from console.core.ingest import Adapted, Reader, Refused
from console.core.service import Core
from console.engine.engine import Engine
from console.journal.store import open_journal
from protocols import codec, topics
from protocols.frigate import FrigateCamera, FrigateRule
from protocols.mqtt import Incoming
from protocols.schemas import (
    MAX_IGNORED_REASONS,
    CctvKind,
    IncidentKind,
    IncidentState,
    IncidentStatus,
    Summary,
)
from tests.core.test_publish_after_commit import Recorder
from tests.engine.test_engine_support import DAY, LAT, LON, camera

CFG = Config(
    frigate=FrigateConfig(
        enabled=True,
        cameras={"lane": FrigateCamera(id="cam-f1", lat=LAT, lon=LON), "gate": "cam-f2"},
        rules=[
            FrigateRule(label="scream", kind=CctvKind.SCREAM),
            FrigateRule(label="person", kind=CctvKind.FIGHT, zone="alley"),
            FrigateRule(label="person", kind=CctvKind.LOITERING),
        ],
    ),
    owntracks=OwnTracksConfig(enabled=True, users={"jane": "scout-j1"}),
)


def frigate_event(kind: str, event_id: str, **fields: Any) -> bytes:
    after = {"id": event_id, "camera": "lane", "label": "person", "score": 0.7}
    after.update(fields)
    return json.dumps({"type": kind, "after": after}).encode()


def review(kind: str, *audio: str, severity: str = "detection") -> bytes:
    after = {
        "id": "1718987129.308396-fqk5ka",
        "camera": "lane",
        "start_time": DAY,
        "severity": severity,
        "data": {"detections": [], "objects": [], "zones": [], "audio": list(audio)},
    }
    return json.dumps({"type": kind, "after": after}).encode()


class MiniCore:
    """The core's intake without MQTT or the journal file: judge, then apply."""

    def __init__(self) -> None:
        self.engine = Engine(CFG.engine_settings(), CFG.city.district_map())
        self.reader = Reader(CFG)
        self.reader.bind(self.engine)

    def receive(self, topic: str, payload: bytes, now: float) -> Adapted:
        result = self.reader.read(topic, payload, now)
        assert isinstance(result, Adapted), result
        for message in result.messages:
            self.engine.handle_event(message, now, vetted=result.vetted)
        return result

    def incidents(self) -> list[IncidentState]:
        return [self.engine.incident_state(i, DAY) for i in self.engine.open_incident_ids()]


# --- the engine's side ---------------------------------------------------------------


def test_end_is_recorded_on_the_incident_and_never_opens_one() -> None:
    core = MiniCore()
    core.receive("frigate/events", frigate_event("new", "ev-1"), DAY)
    ended = core.receive("frigate/events", frigate_event("end", "ev-1"), DAY + 30)
    assert ended.ignored is None and ended.messages[0].ended  # type: ignore[union-attr]
    [inc] = core.incidents()
    assert inc.status is IncidentStatus.NEW  # still the operator's to close
    assert inc.events[-1].kind == "ended" and "ev-1 ended" in inc.events[-1].detail
    assert inc.history[-1].action == "event ended"
    # The end of an event never reported: ignored with its code, no incident.
    unknown = core.receive("frigate/events", frigate_event("end", "ev-2"), DAY + 31)
    assert unknown.reason == "end-unreported" and len(core.incidents()) == 1


def test_an_ended_event_the_engine_never_saw_opens_nothing() -> None:
    core = MiniCore()
    core.engine.handle_event(camera("cam-f1"), DAY)
    frigate = core.reader.foreign.frigate
    assert frigate is not None
    [made] = frigate.handle("frigate/events", frigate_event("new", "ev-9"), DAY).messages
    [end] = frigate.handle("frigate/events", frigate_event("end", "ev-9"), DAY + 1).messages
    assert core.engine.handle_event(end, DAY + 1) == []  # the "new" never reached it
    assert core.engine.open_incident_ids() == [] and made is not end


def test_the_title_follows_a_kind_change_in_a_folded_incident() -> None:
    core = MiniCore()
    core.receive("frigate/events", frigate_event("new", "ev-1"), DAY)
    core.receive("frigate/events", frigate_event("new", "ev-2"), DAY + 5)  # folds into it
    [inc] = core.incidents()
    assert inc.title.startswith("Loitering") and len(inc.events) == 2
    core.receive(
        "frigate/events", frigate_event("update", "ev-2", current_zones=["alley"]), DAY + 9
    )
    [inc] = core.incidents()
    assert inc.title.startswith("Fight"), inc.title
    assert inc.priority == 2 and inc.history[-2].action == "updated"
    # A later fight on that camera folds into it under its new kind.
    core.receive("frigate/events", frigate_event("new", "ev-3", current_zones=["alley"]), DAY + 12)
    assert len(core.incidents()) == 1


def test_a_scream_in_a_review_opens_a_scream_incident() -> None:
    core = MiniCore()
    core.receive("frigate/reviews", review("new", "speech", "scream"), DAY)
    [inc] = core.incidents()
    assert inc.kind is IncidentKind.CCTV and inc.title.startswith("Scream") and inc.priority <= 2
    assert core.receive("frigate/reviews", review("update", "scream"), DAY + 1).reason == (
        "duplicate"
    )
    core.receive("frigate/reviews", review("end", "scream"), DAY + 20)
    [inc] = core.incidents()
    assert inc.events[-1].kind == "ended"


# --- the counts in the retained summary ----------------------------------------------


def incoming(topic: str, payload: bytes, mid: int) -> Incoming:
    return Incoming(topic, payload, qos=1, retain=False, mid=mid)


@pytest.fixture
def core(tmp_path: Path) -> Core:
    cfg = Config(
        frigate=CFG.frigate,
        owntracks=CFG.owntracks,
        journal=JournalConfig(path=str(tmp_path / "journal.db")),
    )
    made = Core(cfg, open_journal(cfg.journal), clock=lambda: DAY)
    made.transport = Recorder()  # type: ignore[assignment]
    return made


async def test_ignored_payloads_are_counted_by_reason_in_the_retained_summary(
    core: Core,
) -> None:
    inputs = [
        ("frigate/events", frigate_event("new", "ev-1")),  # reported
        ("frigate/events", frigate_event("update", "ev-1")),  # no-change
        ("frigate/events", frigate_event("update", "ev-1", score=0.72)),  # no-change
        ("frigate/events", frigate_event("new", "ev-2", label="car")),  # label-not-mapped
        ("frigate/events", frigate_event("end", "ev-3")),  # end-unreported
        ("frigate/events", frigate_event("new", "ev-4", camera="gate")),  # not-plausible
        ("frigate/reviews", review("new", severity="detection")),  # detection-severity
        ("frigate/front_door/person", b"1"),  # topic-not-read
        ("owntracks/jane/phone", json.dumps({"_type": "waypoint"}).encode()),  # owntracks
        ("frigate/events", b"not json"),  # a dead letter: rejected, not ignored
    ]
    for mid, (topic, payload) in enumerate(inputs, start=1):
        core.handle(incoming(topic, payload, mid))
    await core.commit_and_release()
    await core.flush(time.time(), everything_now=True)
    recorder = cast(Recorder, core.transport)
    published = [p for t, p in recorder.published if t == topics.STATE_SUMMARY]
    summary: Summary = codec.decode(published[-1], Summary)
    assert summary.ignored_total == 8 and summary.rejected_total == 1
    assert summary.ignored_by_reason == (
        ("no-change", 2),
        ("detection-severity", 1),
        ("end-unreported", 1),
        ("label-not-mapped", 1),
        ("not-plausible", 1),
        ("owntracks", 1),
        ("topic-not-read", 1),
    )
    assert sum(n for _, n in summary.ignored_by_reason) == summary.ignored_total


def test_a_reason_outside_the_vocabulary_is_counted_as_other(core: Core) -> None:
    real = core.reader.read

    def hostile(topic: str, payload: bytes, now: float) -> Adapted | Refused:
        result = real(topic, payload, now)
        assert isinstance(result, Adapted)
        return Adapted(result.messages, ignored=payload.decode(), reason=payload.decode())

    core.reader.read = hostile  # type: ignore[method-assign]
    for mid in range(200):
        core.handle(incoming("frigate/front_door/person", f"reason-{mid}".encode(), mid))
    assert core.ignored_by_reason == {"other": 200}
    assert set(core.ignored_by_reason) <= IGNORED_REASONS
    assert len(IGNORED_REASONS) <= MAX_IGNORED_REASONS
    assert core.summary(DAY).ignored_by_reason == (("other", 200),)
