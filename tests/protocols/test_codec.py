"""Every wire message round-trips through MessagePack and JSON; bad payloads raise WireError."""

from __future__ import annotations

import typing

import msgspec
import pytest

from protocols import codec, schemas
from protocols.codec import WireError

T0 = 1_767_225_600.0  # 2026-01-01, a fixed clock

CAMERA = schemas.NearbyCamera(
    camera_id="cam-12",
    distance_m=42.5,
    status=schemas.CameraStatus.ALARM,
    name="Gate 3",
    snapshot_url="https://vms.example/snap/cam-12.jpg",
)

SAMPLES: list[msgspec.Struct] = [
    schemas.SosAlarm(
        alarm_id="a-1",
        source="app",
        device_id="dev-9",
        name="Kim Jiyeon",
        lat=37.5665,
        lon=126.978,
        accuracy_m=8.0,
        trigger=schemas.SosTrigger.TIMER_EXPIRED,
        ts=T0,
        battery=41,
        phone="+82-10-0000-0000",
    ),
    schemas.CctvEvent(
        event_id="e-1",
        camera_id="cam-12",
        kind=schemas.CctvKind.PERSON_DOWN,
        confidence=0.87,
        ts=T0,
        snapshot_url="https://vms.example/e-1.jpg",
        lat=37.5,
        lon=127.0,
    ),
    schemas.CameraHealth(
        camera_id="cam-12",
        status=schemas.CameraHealthStatus.TAMPERED,
        ts=T0,
        name="Gate 3",
        district="Jung-gu",
        lat=37.5,
        lon=127.0,
    ),
    schemas.ResponderReport(
        responder_id="u-7",
        kind=schemas.UnitKind.SCOUT,
        status=schemas.ResponderStatus.EN_ROUTE,
        lat=37.51,
        lon=127.01,
        ts=T0,
        name="Scout 7",
    ),
    schemas.Command(
        cmd_id="c-1",
        operator="op1",
        action=schemas.Action.DISPATCH,
        ts=T0,
        incident_id="inc-1",
        responder_id="u-7",
        text="go",
    ),
    schemas.Reply(cmd_id="c-1", operator="op1", ok=False, ts=T0, reason="already dispatched"),
    schemas.Presence(
        operator="op1", online=True, ts=T0, role=schemas.Role.SUPERVISOR, host="desk-2"
    ),
    schemas.Receipt(alarm_id="a-1", source="app", incident_id="inc-1", ts=T0),
    schemas.IncidentState(
        id="inc-1",
        kind=schemas.IncidentKind.SOS,
        priority=1,
        status=schemas.IncidentStatus.DISPATCHED,
        lat=37.5665,
        lon=126.978,
        district="Jung-gu",
        place="City Hall stn exit 4",
        source="dev-9",
        title="SOS: timer expired",
        created=T0,
        updated=T0 + 30,
        escalated=True,
        owner="op1",
        responders=("u-7",),
        person="Kim Jiyeon",
        phone="+82-10-0000-0000",
        sos_count=2,
        events=(schemas.CorrelatedEvent(ts=T0 + 5, kind="scream", source="cam-12"),),
        notes=(schemas.Note(ts=T0 + 10, operator="op1", text="caller silent"),),
        history=(schemas.HistoryEntry(ts=T0 + 20, actor="op1", action="dispatch", detail="u-7"),),
        ack_deadline=T0 + 30,
        dispatch_deadline=T0 + 120,
        acknowledged_at=T0 + 12,
        cameras=(CAMERA,),
        recommended=(
            schemas.Recommendation(
                responder_id="u-7", kind=schemas.UnitKind.SCOUT, distance_m=300, eta_s=216
            ),
        ),
        shelters=(
            schemas.NearbyShelter(
                shelter_id="s-1",
                name="GS25",
                kind="24h-store",
                distance_m=80,
                lat=37.56,
                lon=126.97,
            ),
        ),
    ),
    schemas.DistrictCameras(
        district="Jung-gu",
        ts=T0,
        cameras=(
            schemas.CameraCell(
                id="cam-12", status=schemas.CameraStatus.ONLINE, lat=37.5, lon=127.0, last_seen=T0
            ),
        ),
        online=1,
    ),
    schemas.ResponderState(
        id="u-7",
        kind=schemas.UnitKind.POLICE,
        status=schemas.ResponderStatus.ON_SCENE,
        lat=37.5,
        lon=127.0,
        last_seen=T0,
        status_since=T0 - 60,
        incident_id="inc-1",
    ),
    schemas.Summary(
        ts=T0,
        open_by_priority=(1, 2, 0, 5),
        open_total=8,
        oldest_unacked=T0 - 45,
        events_total=1000,
        events_per_s=2.5,
        rate_history=(1.0, 2.0, 2.5),
        rejected_total=3,
        operators=("op1", "op2"),
        alarms=("journal slow",),
        core_id="core-a",
    ),
    schemas.ShelterList(
        ts=T0,
        shelters=(schemas.Shelter(id="s-1", name="GS25", kind="24h-store", lat=37.5, lon=127.0),),
    ),
    schemas.ClosedList(
        ts=T0,
        incidents=(
            schemas.ClosedIncident(
                id="I-000001",
                kind=schemas.IncidentKind.SOS,
                priority=1,
                status=schemas.IncidentStatus.RESOLVED,
                district="Jung-gu",
                place="City Hall",
                title="SOS: panic button",
                created=T0 - 600,
                closed_at=T0,
                disposition="escorted home",
                owner="op1",
                responders=("P-1",),
                closed_by="op1",
            ),
        ),
        total=1,
    ),
]


def test_samples_cover_every_message_kind() -> None:
    kinds = set(typing.get_args(schemas.AnyMessage))
    assert {type(m) for m in SAMPLES} == kinds


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_msgpack_roundtrip(message: msgspec.Struct) -> None:
    payload = codec.encode(message)
    assert not codec.looks_like_json(payload)
    assert codec.decode(payload, type(message)) == message
    assert codec.decode_any(payload) == message


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_json_roundtrip(message: msgspec.Struct) -> None:
    payload = codec.encode_json(message)
    assert codec.looks_like_json(payload)
    assert codec.decode(payload, type(message)) == message
    assert codec.decode_any(b"\n  " + payload) == message


def _sos(**changes: object) -> dict[str, object]:
    fields = msgspec.to_builtins(SAMPLES[0])
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not ...}


BAD_FIELDS = [
    pytest.param(_sos(lat=200.0), "$.lat", id="lat-200"),
    pytest.param(_sos(lon=-181), "$.lon", id="lon-out-of-range"),
    pytest.param(_sos(trigger="sneeze"), "$.trigger", id="unknown-enum"),
    pytest.param(_sos(lat=...), "`lat`", id="missing-field"),
    pytest.param(_sos(ts="yesterday"), "$.ts", id="wrong-type"),
    pytest.param(_sos(battery=101), "$.battery", id="battery-101"),
    pytest.param(_sos(device_id="a/b"), "$.device_id", id="slash-in-ident"),
    pytest.param(_sos(type="nope"), "type", id="unknown-tag"),
]


@pytest.mark.parametrize(("fields", "where"), BAD_FIELDS)
@pytest.mark.parametrize(
    "encode", [msgspec.msgpack.encode, msgspec.json.encode], ids=["msgpack", "json"]
)
def test_invalid_field_is_named(fields: dict[str, object], where: str, encode: typing.Any) -> None:
    with pytest.raises(WireError) as err:
        codec.decode_any(encode(fields))
    assert where in err.value.reason


@pytest.mark.parametrize(
    "encode", [msgspec.msgpack.encode, msgspec.json.encode], ids=["msgpack", "json"]
)
def test_negative_confidence_is_named(encode: typing.Any) -> None:
    fields = msgspec.to_builtins(SAMPLES[1])
    fields["confidence"] = -0.1
    with pytest.raises(WireError) as err:
        codec.decode(encode(fields), schemas.CctvEvent)
    assert "$.confidence" in err.value.reason


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(codec.encode(SAMPLES[0])[:-7], id="truncated-msgpack"),
        pytest.param(codec.encode_json(SAMPLES[0])[:-3], id="truncated-json"),
        pytest.param(bytes(range(256)) * 4096, id="1MB-junk"),
        pytest.param(b"\xc1" * 100, id="reserved-msgpack-bytes"),
        pytest.param(b"", id="empty"),
        pytest.param(b"   ", id="blanks"),
        pytest.param(b"\x93\x01\x02\x03", id="msgpack-array-not-map"),
        pytest.param(b"null", id="json-null"),
    ],
)
def test_malformed_payload_raises_wire_error(payload: bytes) -> None:
    with pytest.raises(WireError) as err:
        codec.decode_any(payload)
    assert err.value.reason


def test_decode_never_raises_anything_but_wire_error() -> None:
    good = codec.encode(SAMPLES[8])
    for cut in range(len(good)):
        try:
            codec.decode_any(good[:cut])
        except WireError:
            pass
