"""The engine never raises on a well-formed message, however extreme (hypothesis).

Well-formed: it passes the wire schema (``msgspec.convert``), as whatever reaches the
engine through ingest does. Extreme: positions on the poles and the antimeridian, times
0 and the largest allowed, huge accuracies, 4000-character texts, any unicode, several
sources speaking about the same ids. After every input the published state must still
pass the schema (a console must be able to decode it), a refusal must be exactly what
``refusal`` predicted and change nothing, and snapshots must round-trip.
"""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from console.config import Config
from console.engine.effects import Rejected, SendReceipt
from console.engine.engine import Engine
from protocols import codec
from protocols.public_alert import PublicAlert
from protocols.schemas import (
    MAX_TIMESTAMP,
    Action,
    CameraHealth,
    CameraHealthStatus,
    CctvEvent,
    CctvKind,
    Command,
    DistrictCameras,
    IncidentState,
    ResponderReport,
    ResponderState,
    ResponderStatus,
    Role,
    SosAlarm,
    SosTrigger,
    Summary,
    UnitKind,
)
from tests.engine.test_engine_support import DAY, LAT, LON

CFG = Config()
Msg = tuple[type[Any], dict[str, Any]]
LATS = st.one_of(
    st.sampled_from([-90.0, 90.0, 0.0, LAT, LAT + 0.2, 37.78198886221097]),
    st.floats(-90.0, 90.0),
)
LONS = st.one_of(
    st.sampled_from([-180.0, 180.0, 0.0, LON, LON - 0.2, 126.66814612967019]),
    st.floats(-180.0, 180.0),
)
TIMES = st.one_of(
    st.sampled_from([0.0, MAX_TIMESTAMP, DAY, DAY + 301.0]), st.floats(0.0, MAX_TIMESTAMP)
)
IDS = st.one_of(
    st.sampled_from(["a", "b", "x" * 128, "cam:1@2.3-4_5"]), st.text("ab12", min_size=1, max_size=3)
)
SOURCES = st.sampled_from([None, "s1", "s2", "x" * 128])
TEXT = st.text(max_size=200)
LONG = st.one_of(st.text(max_size=50), st.just("긴" * 4000), st.text(min_size=3990, max_size=4000))
METRES = st.one_of(st.sampled_from([0.0, 1e300, float("inf")]), st.floats(0.0, 1e12))
CONFIDENCE = st.one_of(st.sampled_from([0.0, 1.0, 5e-324]), st.floats(0.0, 1.0))
MAYBE_LAT = st.one_of(st.none(), LATS)
MAYBE_LON = st.one_of(st.none(), LONS)

sos: st.SearchStrategy[Msg] = st.builds(
    dict,
    alarm_id=IDS,
    source=st.sampled_from(["s1", "s2"]),
    device_id=IDS,
    name=TEXT,
    lat=LATS,
    lon=LONS,
    accuracy_m=METRES,
    trigger=st.sampled_from(list(SosTrigger)),
    ts=TIMES,
    battery=st.one_of(st.none(), st.integers(0, 100)),
    phone=st.one_of(st.none(), st.text(max_size=32)),
).map(lambda d: (SosAlarm, d))
cctv: st.SearchStrategy[Msg] = st.builds(
    dict,
    event_id=IDS,
    camera_id=IDS,
    kind=st.sampled_from(list(CctvKind)),
    confidence=CONFIDENCE,
    ts=TIMES,
    snapshot_url=st.one_of(st.none(), st.just("https://x/" + "y" * 1990)),
    lat=MAYBE_LAT,
    lon=MAYBE_LON,
    withdrawn=st.booleans(),
).map(lambda d: (CctvEvent, d))
camera: st.SearchStrategy[Msg] = st.builds(
    dict,
    camera_id=IDS,
    status=st.sampled_from(list(CameraHealthStatus)),
    ts=TIMES,
    name=st.one_of(st.none(), TEXT),
    district=st.one_of(st.none(), st.sampled_from(["Jung-gu", "Atlantis", "x" * 64])),
    lat=MAYBE_LAT,
    lon=MAYBE_LON,
).map(lambda d: (CameraHealth, d))
responder: st.SearchStrategy[Msg] = st.builds(
    dict,
    responder_id=IDS,
    kind=st.sampled_from(list(UnitKind)),
    status=st.sampled_from(list(ResponderStatus)),
    lat=LATS,
    lon=LONS,
    ts=TIMES,
    name=st.one_of(st.none(), TEXT),
    position_only=st.booleans(),
).map(lambda d: (ResponderReport, d))
alert: st.SearchStrategy[Msg] = st.builds(
    dict,
    identifier=st.one_of(IDS, st.text(min_size=1, max_size=500)),
    sender=st.one_of(st.sampled_from(["kma", "s" * 500]), st.text(min_size=1, max_size=20)),
    sent=st.one_of(
        st.sampled_from([-1e308, 0.0, 1e308, DAY]), st.floats(allow_nan=False, allow_infinity=False)
    ),
    msg_type=st.sampled_from(["Alert", "Update", "Cancel"]),
    priority=st.integers(1, 4),
    headline=TEXT,
    description=LONG,
    area_desc=TEXT,
    districts=st.lists(st.sampled_from(["Jung-gu", "Atlantis", ""]), max_size=3),
    lat=MAYBE_LAT,
    lon=MAYBE_LON,
    references=st.lists(
        st.builds(
            dict, sender=st.sampled_from(["kma", "other"]), identifier=IDS, sent=st.just(DAY)
        ),
        max_size=3,
    ),
).map(lambda d: (PublicAlert, d))
command: st.SearchStrategy[Msg] = st.builds(
    dict,
    cmd_id=IDS,
    operator=st.sampled_from(["op1", "sup1"]),
    action=st.sampled_from(list(Action)),
    ts=TIMES,
    incident_id=st.one_of(st.none(), st.sampled_from(["I-000001", "I-000002", "I-000003"])),
    responder_id=st.one_of(st.none(), IDS),
    disposition=st.one_of(st.none(), TEXT),
    text=st.one_of(st.none(), LONG),
).map(lambda d: (Command, d))

message = st.one_of(sos, cctv, camera, responder, alert, command)
steps = st.lists(
    st.tuples(message, SOURCES, st.sampled_from([0.0, 0.5, 60.0, 86400.0 * 400])),
    min_size=1,
    max_size=25,
)
# The core's own clock (message times take every value; this one is a real clock's).
START = st.sampled_from([0.0, DAY, 2_500_000_000.0])


def well_formed(kind: type[Any], fields: dict[str, Any]) -> Any:
    if kind is PublicAlert:
        if (fields["lat"] is None) != (fields["lon"] is None):
            fields = {**fields, "lat": None, "lon": None}  # ingest refuses half a position
        if fields["msg_type"] != "Alert" and not fields["references"]:
            fields = {**fields, "msg_type": "Alert"}  # ingest refuses these too
    try:
        return msgspec.convert(fields, kind)
    except msgspec.ValidationError:
        assume(False)


def published(engine: Engine, now: float) -> None:
    """Everything the core would publish decodes again under the wire schema."""
    for incident_id in engine.open_incident_ids():
        codec.decode(codec.encode(engine.incident_state(incident_id, now)), IncidentState)
    for district in engine.districts():
        codec.decode(codec.encode(engine.district_cameras(district, now)), DistrictCameras)
    for responder_id in engine.responder_ids():
        codec.decode(codec.encode(engine.responder_state(responder_id)), ResponderState)
    codec.decode(codec.encode(engine.summary(now)), Summary)


PROPS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@PROPS
@given(steps, START)
def test_no_well_formed_message_makes_the_engine_raise(
    seq: list[tuple[tuple[type[Any], dict[str, Any]], str | None, float]], start: float
) -> None:
    engine = Engine(CFG.engine_settings(), CFG.city.district_map())
    now = start
    for (kind, fields), source, dt in seq:
        now = min(now + dt, MAX_TIMESTAMP)
        msg = well_formed(kind, fields)
        if isinstance(msg, Command):
            engine.handle_command(
                msg, now, Role.SUPERVISOR if msg.operator == "sup1" else Role.OPERATOR
            )
        else:
            if isinstance(msg, SosAlarm) and source is not None:
                source = msg.source  # ingest refuses an SOS whose source is not the topic's
            predicted = engine.refusal(msg, now, source=source)
            before = engine.snapshot() if predicted is not None else b""
            effects = engine.handle_event(msg, now, source=source)
            if predicted is not None:
                assert effects == [Rejected(predicted)] and engine.snapshot() == before
            else:
                assert not any(isinstance(e, Rejected) for e in effects)
            if isinstance(msg, SosAlarm):
                assert any(isinstance(e, SendReceipt) for e in effects), "an SOS is never lost"
        engine.tick(now)
        published(engine, now)
    data = engine.snapshot()
    again = Engine.restore(CFG.engine_settings(), CFG.city.district_map(), data)
    assert again.snapshot() == data
