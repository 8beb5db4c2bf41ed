"""Foreign payloads in the journal: replay re-runs the adapters, snapshots carry their memory."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from console.config import Config, FrigateConfig, JournalConfig, OwnTracksConfig
from console.core.foreign import pack_snapshot, unpack_snapshot
from console.core.ingest import Accepted, Adapted, Reader, Refused
from console.core.rebuild import rebuild
from console.journal.store import RecordKind, open_journal
from protocols import codec, topics
from protocols.frigate import FrigateRule
from protocols.schemas import CameraHealth, CameraHealthStatus, CctvKind
from tests.engine.test_engine_support import DAY, LAT, LON

CFG = Config(
    frigate=FrigateConfig(
        enabled=True,
        cameras={"lane": "cam-1"},
        rules=[
            FrigateRule(label="person", zone="alley", kind=CctvKind.FIGHT),
            FrigateRule(label="person", kind=CctvKind.LOITERING),
        ],
    ),
    owntracks=OwnTracksConfig(enabled=True, users={"jane": "scout-1"}),
)


def event(kind: str, score: float, zones: list[str], false_positive: bool = False) -> bytes:
    after = {
        "id": "ev-1",
        "camera": "lane",
        "label": "person",
        "score": score,
        "top_score": score,
        "false_positive": false_positive,
        "start_time": DAY,
        "frame_time": DAY,
        "current_zones": zones,
        "has_snapshot": False,
    }
    return json.dumps({"type": kind, "after": after}).encode()


def location(lat: float, tst: float) -> bytes:
    return json.dumps({"_type": "location", "lat": lat, "lon": LON, "tst": tst}).encode()


def test_reader_routes_foreign_topics_and_refuses_the_rest() -> None:
    reader = Reader(CFG)
    assert sorted(reader.subscriptions())[:2] == [
        "frigate/+/detect/state",
        "frigate/+/enabled/state",
    ]
    assert "owntracks/+/+" in reader.subscriptions()
    new = reader.read("frigate/events", event("new", 0.5, []), DAY)
    assert isinstance(new, Adapted) and len(new.messages) == 1
    same = reader.read("frigate/events", event("update", 0.52, []), DAY + 1)
    assert isinstance(same, Adapted) and same.messages == () and same.ignored
    assert isinstance(reader.read("frigate/events", b"junk", DAY), Refused)
    assert isinstance(reader.read("somewhere/else", b"{}", DAY), Refused)
    ignored = reader.read("owntracks/jane/phone", b'{"_type":"card"}', DAY)
    assert isinstance(ignored, Adapted) and ignored.ignored
    assert Reader(Config()).subscriptions() == []
    assert isinstance(Reader(Config()).read("frigate/events", b"{}", DAY), Refused)
    health = CameraHealth(camera_id="c", status=CameraHealthStatus.ONLINE, ts=DAY)
    own = reader.read(topics.raw("x", "camera"), codec.encode(health), DAY)
    assert isinstance(own, Accepted)


def test_adapter_memory_survives_a_snapshot() -> None:
    live = Reader(CFG)
    live.read("frigate/events", event("new", 0.5, []), DAY)
    live.read("owntracks/jane/phone", location(LAT, DAY), DAY)
    engine_bytes = b"\x81\xa1a\x01"
    payload = pack_snapshot(engine_bytes, live.memory())
    assert unpack_snapshot(payload) == (engine_bytes, live.memory())
    assert unpack_snapshot(engine_bytes) == (engine_bytes, b"")  # the plain (older) form
    assert pack_snapshot(engine_bytes, Reader(Config()).memory()) == engine_bytes
    restored = Reader(CFG)
    restored.restore(unpack_snapshot(payload)[1])
    for reader in (live, restored):
        # Remembered: a small rise is ignored, the false positive withdraws, an old fix is stale.
        small = reader.read("frigate/events", event("update", 0.55, []), DAY + 1)
        assert isinstance(small, Adapted) and small.messages == ()
        gone = reader.read("frigate/events", event("update", 0.6, [], True), DAY + 2)
        assert isinstance(gone, Adapted) and gone.messages[0].withdrawn  # type: ignore[union-attr]
        stale = reader.read("owntracks/jane/phone", location(LAT, DAY - 5), DAY + 3)
        assert isinstance(stale, Adapted) and stale.messages == ()


def test_rebuild_from_a_snapshot_equals_the_live_run(tmp_path: Path) -> None:
    """What the core does, minus MQTT: journal as received, snapshot midway, rebuild."""
    cfg = msgspec.structs.replace(CFG, journal=JournalConfig(path=str(tmp_path / "j.db")))
    journal = open_journal(cfg.journal)
    live_reader = Reader(cfg)
    live, _ = rebuild(cfg, journal, reader=live_reader)
    camera = CameraHealth(
        camera_id="cam-1", status=CameraHealthStatus.ONLINE, ts=DAY, lat=LAT, lon=LON
    )
    inputs = [
        (topics.raw("x", topics.RAW_CAMERA), codec.encode(camera)),
        ("frigate/events", event("new", 0.5, [])),
        ("owntracks/jane/phone", location(LAT, DAY)),
        ("SNAPSHOT", b""),
        ("frigate/events", event("update", 0.55, [])),  # ignored thanks to the memory
        ("frigate/events", event("update", 0.65, ["alley"])),  # fight
        ("frigate/events", event("update", 0.7, ["alley"], True)),  # withdrawn
        ("owntracks/jane/phone", location(LAT + 0.001, DAY + 9)),
    ]
    last = 0
    for n, (topic, payload) in enumerate(inputs):
        now = DAY + n
        if topic == "SNAPSHOT":
            journal.commit()
            journal.write_snapshot(now, pack_snapshot(live.snapshot(), live_reader.memory()), last)
            continue
        result = live_reader.read(topic, payload, now)
        last = journal.append(now, RecordKind.EVENT, topic, payload)
        if isinstance(result, Adapted):
            for message in result.messages:
                live.handle_event(message, now)
        else:
            assert isinstance(result, Accepted)
            live.handle_event(result.message, now, source=result.source or None)  # type: ignore[arg-type]
    journal.commit()
    again, _ = rebuild(cfg, journal)
    journal.close()
    assert again.snapshot() == live.snapshot()
    closed = again.st.closed["I-000001"]
    assert closed.status.value == "false-alarm" and closed.priority == 2
    assert again.responder_state("scout-1").lat == LAT + 0.001
