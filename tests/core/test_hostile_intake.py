"""Well-formed but hostile messages at the core's intake: refused with a reason, or cleaned.

Each case is one an attacker holding an ordinary source account sent (the trust-boundary
issue): nesting deep enough to exhaust the stack, impossible times, wildcards in what
becomes a topic level, terminal escapes in names. None may raise out of the intake.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from console.config import Config, JournalConfig
from console.core.ingest import Accepted, Reader, Refused, read
from console.core.service import Core
from console.journal.store import RecordKind, open_journal
from protocols import codec, topics
from protocols.mqtt import Incoming
from protocols.schemas import MAX_TIMESTAMP, SosAlarm

SOS = {
    "type": "sos", "alarm_id": "a-1", "source": "app", "device_id": "phone-1", "name": "Kim",
    "lat": 37.5, "lon": 127.0, "accuracy_m": 5.0, "trigger": "button", "ts": 1.7e9,
}  # fmt: skip
SOS_TOPIC = topics.raw("app", "sos")


def _nested(depth: int) -> object:
    value: object = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("as_json", [True, False])
def test_deep_nesting_is_a_refusal(depth: int, as_json: bool) -> None:
    if as_json:
        payload = msgspec.json.encode({**SOS, "junk": 0})
        payload = payload.replace(b'"junk":0', b'"junk":' + b"[" * depth + b"]" * depth)
    else:
        payload = msgspec.msgpack.encode({**SOS, "junk": 0})[:-1] + b"\x91" * depth + b"\x90"
    for topic in (SOS_TOPIC, topics.cmd("op1")):
        result = read(topic, payload)
        assert isinstance(result, Refused), result


@pytest.mark.parametrize("ts", [1e17, float("inf"), float("nan"), 1.7e308, -1.0, MAX_TIMESTAMP + 1])
def test_impossible_times_are_refused(ts: float) -> None:
    result = read(SOS_TOPIC, msgspec.msgpack.encode({**SOS, "ts": ts}))
    assert isinstance(result, Refused) and "$.ts" in result.reason


@pytest.mark.parametrize("district", ["#", "+", "a/b", "Gangnam-gu\x00", "강남구", "x" * 65])
def test_a_district_that_is_not_an_identifier_is_refused(district: str) -> None:
    report = {"type": "camera", "camera_id": "cam-1", "status": "online", "ts": 1.7e9}
    result = read(
        topics.raw("cams", "camera"), msgspec.json.encode({**report, "district": district})
    )
    assert isinstance(result, Refused) and "$.district" in result.reason


@pytest.mark.parametrize("district", ["Evil-gu", "gangnam", "Gangnam-gu.x"])
def test_a_topic_district_the_city_does_not_have_is_refused(district: str) -> None:
    """Any source may publish into any level under its own id: a district of its making
    would become a state topic no scoped seat reads."""
    from console.config import Config

    report = {"type": "camera", "camera_id": "cam-1", "status": "online", "ts": 1.7e9}
    reader = Reader(Config())
    topic = topics.raw("cams", "camera", district)
    result = reader.read(topic, msgspec.json.encode(report), 1.7e9)
    assert isinstance(result, Refused) and f"no district '{district}'" in result.reason
    known = reader.read(
        topics.raw("cams", "camera", "Gangnam-gu"), msgspec.json.encode(report), 1.7e9
    )
    assert isinstance(known, Accepted) and known.message.district == "Gangnam-gu"  # type: ignore[union-attr]


def test_a_units_own_district_the_city_does_not_have_is_refused() -> None:
    from console.config import Config

    unit = {"type": "responder", "responder_id": "u-1", "kind": "police", "status": "available",
            "lat": 37.5, "lon": 127.0, "ts": 1.7e9, "district": "Evil-gu"}  # fmt: skip
    result = Reader(Config()).read(topics.raw("trk", "responder"), msgspec.json.encode(unit), 1.7e9)
    assert isinstance(result, Refused) and "no district 'Evil-gu'" in result.reason


def test_a_partition_or_home_that_is_no_topic_level_is_refused_on_the_wire() -> None:
    from protocols.schemas import IncidentState

    state = {"type": "incident", "id": "I-1", "kind": "sos", "priority": 1, "status": "new",
             "lat": 37.5, "lon": 127.0, "district": "d", "place": "p", "source": "s",
             "title": "t", "created": 1.7e9, "updated": 1.7e9}  # fmt: skip
    for field in ("partition", "home"):
        with pytest.raises(codec.WireError):
            codec.decode(msgspec.json.encode({**state, field: "a/b"}), IncidentState)


def test_control_characters_are_removed_from_every_text() -> None:
    hostile = {**SOS, "name": "Kim\x1b]0;owned\x07\x1b[2J\u202eJi-woo\x9b", "phone": "010\t1234"}
    result = read(SOS_TOPIC, msgspec.msgpack.encode(hostile))
    assert isinstance(result, Accepted)
    assert isinstance(result.message, SosAlarm)
    assert result.message.name == "Kim]0;owned[2JJi-woo"
    assert result.message.phone == "010 1234"
    note = {"type": "cmd", "cmd_id": "c-1", "operator": "op1", "incident_id": "I-000001",
            "action": "note", "ts": 1.7e9, "text": "line one\nline two\x1b[31m"}  # fmt: skip
    result = read(topics.cmd("op1"), msgspec.json.encode(note))
    assert isinstance(result, Accepted)
    assert result.message.text == "line one line two[31m"  # type: ignore[union-attr]


def test_a_reader_that_breaks_refuses_instead_of_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = Reader(Config())

    def explode(*_: object) -> None:
        raise OverflowError("an adapter's arithmetic")

    monkeypatch.setattr(reader.foreign, "handle", explode)
    result = reader.read("frigate/events", b"{}", 0.0)
    assert isinstance(result, Refused)
    assert result.reason.startswith("unreadable: OverflowError")


def test_the_core_dead_letters_a_poison_message_and_goes_on(tmp_path: Path) -> None:
    journal = open_journal(JournalConfig(path=str(tmp_path / "j.db")))
    core = Core(Config(), journal)
    poison = msgspec.json.encode({**SOS, "junk": 0}).replace(
        b'"junk":0', b'"junk":' + b"[" * 50_000 + b"]" * 50_000
    )
    for mid, payload in enumerate((poison, msgspec.msgpack.encode(SOS)), start=1):
        core.handle(Incoming(SOS_TOPIC, payload, qos=1, retain=False, mid=mid))
    journal.commit()
    kinds = [record.kind for record in journal.records()]
    dead = [record for record in journal.records() if record.kind is RecordKind.DEAD]
    journal.close()
    assert RecordKind.DEAD in kinds and RecordKind.EVENT in kinds
    assert dead[0].reason == "malformed: nested too deep"
    assert core.rejected_total == 1 and core.events_total == 1


def test_a_bad_presence_is_a_dead_letter(tmp_path: Path) -> None:
    journal = open_journal(JournalConfig(path=str(tmp_path / "j.db")))
    core = Core(Config(), journal)
    deep = b'{"junk":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    core.handle(Incoming(topics.presence("op2"), deep, qos=1, retain=False, mid=1))
    journal.commit()
    (dead,) = journal.records(kinds=[RecordKind.DEAD])
    journal.close()
    assert dead.topic == topics.presence("op2") and dead.reason == "malformed: nested too deep"
    assert core.rejected_total == 1


def test_an_engine_failure_on_one_message_does_not_stop_the_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = open_journal(JournalConfig(path=str(tmp_path / "j.db")))
    core = Core(Config(), journal)
    real = core.engine.handle_event
    calls = iter([True, False])

    def fails_once(*args: object, **kwargs: object) -> object:
        if next(calls):
            raise ZeroDivisionError("a bug in a rule")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(core.engine, "handle_event", fails_once)
    for mid, alarm in enumerate(("a-1", "a-2"), start=1):
        payload = msgspec.msgpack.encode({**SOS, "alarm_id": alarm, "device_id": f"p-{alarm}"})
        core.handle(Incoming(SOS_TOPIC, payload, qos=1, retain=False, mid=mid))
    journal.commit()
    assert core.events_total == 2  # both journaled; the first changed nothing
    assert len(core.engine.open_incident_ids()) == 1
    journal.close()
