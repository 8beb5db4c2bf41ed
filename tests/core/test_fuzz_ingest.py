"""Bad input at scale (issue 5, fault 6): every decoder and the core's intake, fuzzed.

No payload may raise out of the intake; each refusal is counted and kept, with its
reason, in the journal's dead-letter table, and the engine's invariants hold.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.config import Config, JournalConfig
from console.core.ingest import Accepted, Refused, read
from console.core.service import Core
from console.journal.dead import DeadLetter
from console.journal.store import RecordKind, open_journal
from protocols import codec, topics
from protocols.mqtt import Incoming
from protocols.schemas import (
    Action,
    CameraHealth,
    CameraHealthStatus,
    CctvEvent,
    CctvKind,
    Command,
    ResponderReport,
    ResponderStatus,
    SosAlarm,
    SosTrigger,
    UnitKind,
)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

TS = 1_800_000_000.0
VALID: dict[str, Any] = {
    topics.raw("src", topics.RAW_SOS): SosAlarm(
        alarm_id="a1",
        source="src",
        device_id="d1",
        name="Kim",
        lat=37.5,
        lon=127.0,
        accuracy_m=5,
        trigger=SosTrigger.BUTTON,
        ts=TS,
    ),
    topics.raw("src", topics.RAW_CCTV): CctvEvent(
        event_id="e1", camera_id="c1", kind=CctvKind.SCREAM, confidence=0.9, ts=TS
    ),
    topics.raw("src", topics.RAW_CAMERA): CameraHealth(
        camera_id="c1", status=CameraHealthStatus.ONLINE, ts=TS, lat=37.5, lon=127.0
    ),
    topics.raw("src", topics.RAW_RESPONDER): ResponderReport(
        responder_id="r1",
        kind=UnitKind.POLICE,
        status=ResponderStatus.AVAILABLE,
        lat=37.5,
        lon=127.0,
        ts=TS,
    ),
    topics.cmd("op1"): Command(
        cmd_id="k1", operator="op1", action=Action.ACK, ts=TS, incident_id="I-000001"
    ),
}
TOPICS = [*VALID, topics.raw("src", "nonsense"), "ansim/v1/cmd", "elsewhere/x"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.binary(max_size=40),
)
junk = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=20,
)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid message with one field dropped, replaced by junk, or a junk field added."""
    topic = draw(st.sampled_from(list(VALID)))
    fields: dict[str, Any] = msgspec.to_builtins(VALID[topic])
    name = draw(st.sampled_from(sorted(fields)))
    how = draw(st.sampled_from(["drop", "replace", "add"]))
    if how == "drop":
        del fields[name]
    elif how == "replace":
        fields[name] = draw(junk)
    else:
        fields[draw(st.text(min_size=1, max_size=12))] = draw(junk)
    as_json = draw(st.booleans())
    try:
        payload = msgspec.json.encode(fields) if as_json else msgspec.msgpack.encode(fields)
    except (TypeError, OverflowError, ValueError):  # e.g. NaN is fine, bytes are not in JSON
        payload = msgspec.msgpack.encode(fields)
    return topic, payload


def check_read(topic: str, payload: bytes) -> None:
    result = read(topic, payload)
    assert isinstance(result, Accepted | Refused)
    if isinstance(result, Refused):
        assert result.reason.strip(), "a refusal must say why"
    else:  # whatever is accepted survives a round trip unchanged
        again = codec.decode(codec.encode(result.message), type(result.message))
        assert again == result.message


def test_every_valid_message_is_accepted() -> None:
    for topic, message in VALID.items():
        for payload in (codec.encode(message), codec.encode_json(message)):
            result = read(topic, payload)
            assert isinstance(result, Accepted), (topic, result)
            assert result.message == message


@FUZZ
@given(topic=st.sampled_from(TOPICS), payload=st.binary(max_size=300))
def test_random_bytes_are_refused_or_accepted_never_raise(topic: str, payload: bytes) -> None:
    check_read(topic, payload)


@FUZZ
@given(case=mutated())
def test_mutated_messages_are_refused_with_a_reason_or_valid(case: tuple[str, bytes]) -> None:
    check_read(*case)


@FUZZ
@given(topic=st.sampled_from(TOPICS), value=junk, as_json=st.booleans())
def test_random_structures_never_raise(topic: str, value: Any, as_json: bool) -> None:
    try:
        payload = msgspec.json.encode(value) if as_json else msgspec.msgpack.encode(value)
    except (TypeError, OverflowError, ValueError):
        payload = msgspec.msgpack.encode(value)
    check_read(topic, payload)


@FUZZ
@given(
    inputs=st.lists(
        st.one_of(
            mutated(),
            st.tuples(st.sampled_from(TOPICS), st.binary(max_size=80)),
            st.sampled_from([(t, codec.encode(m)) for t, m in VALID.items()]),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_the_core_counts_and_journals_every_rejection(
    tmp_path: Path, inputs: list[tuple[str, bytes]]
) -> None:
    path = tmp_path / f"fuzz-{next(_runs)}.db"
    journal = open_journal(JournalConfig(path=str(path)))
    clock = _Clock(TS)
    core = Core(Config(), journal, clock=clock)
    expected_dead = 0
    refused: list[tuple[str, bytes]] = []
    for mid, (topic, payload) in enumerate(inputs, start=1):
        # The core reads each message once, at its next clock value: ask the same question
        # first (raw topics are stateless to read; the engine's trust checks are pure).
        if isinstance(core.reader.read(topic, payload, clock.upcoming), Refused):
            expected_dead += 1
            refused.append((topic, payload))
        core.handle(Incoming(topic, payload, qos=1, retain=False, mid=mid))
    journal.commit()
    dead = [DeadLetter.from_record(r) for r in journal.records(kinds=[RecordKind.DEAD])]
    # Past a source's budget a refusal is counted rather than stored: none is lost.
    counted = sum(c.suppressed for c in journal.dead_counts().values())
    assert core.rejected_total == expected_dead == len(dead) + counted
    assert all(r.reason.strip() for r in dead)
    if not counted:
        assert [d.digest for d in dead] == [hashlib.sha256(p).digest() for _, p in refused]
        assert [d.size for d in dead] == [len(p) for _, p in refused]
    # The engine is still whole: every open incident can be published.
    for incident_id in core.engine.open_incident_ids():
        assert core.engine.incident_state(incident_id, TS + 100).id == incident_id
    assert journal.verify().ok
    journal.close()


_runs = itertools.count()


class _Clock:
    """Half a second a call, and which time the next call will give."""

    def __init__(self, start: float) -> None:
        self.upcoming = start

    def __call__(self) -> float:
        now, self.upcoming = self.upcoming, self.upcoming + 0.5
        return now
