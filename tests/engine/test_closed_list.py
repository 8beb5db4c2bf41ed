"""The recently closed incidents the core publishes (``console.engine.closed``).

Newest first, the last 200 of the last 24 hours, bounded in bytes whatever was typed,
with no personal data, and the same list after a snapshot and restore.
"""

from __future__ import annotations

import msgspec

from console.config import Config
from console.engine.closed import (
    CLOSED_LIST_MAX,
    CLOSED_LIST_MAX_BYTES,
    CLOSED_RESPONDERS_MAX,
    CLOSED_WINDOW_S,
    closed_list,
    expires_at,
)
from console.engine.engine import Engine
from protocols import codec
from protocols.schemas import Action, ClosedList, IncidentKind, IncidentStatus
from tests.engine.test_engine_support import (
    DAY,
    LAT,
    LON,
    camera,
    cctv,
    do,
    engine,
    responder,
    restore,
    sos,
)

NAME, PHONE = "Kim Minji", "010-0000-0000"  # what test_engine_support's SOS carries


def _open_and_close(
    eng: Engine, n: int, now: float, *, false_alarm: bool = False, disposition: str = "ok"
) -> str:
    """SOS number ``n`` (its own phone), acknowledged and closed at ``now``; its id."""
    eng.handle_event(sos(f"a{n}", device=f"phone-{n}", ts=now - 30), now - 30, source="app")
    incident_id = f"I-{eng.st.seq:06d}"
    assert do(eng, Action.ACK, incident_id, now=now - 20).ok
    if false_alarm:
        assert do(eng, Action.FALSE_ALARM, incident_id, now=now, disposition=disposition).ok
    else:
        assert do(eng, Action.RESOLVE, incident_id, now=now, disposition=disposition).ok
    return incident_id


def test_closed_incidents_are_listed_newest_first_with_how_they_ended() -> None:
    eng = engine()
    first = _open_and_close(eng, 1, DAY + 100, disposition="escorted home")
    second = _open_and_close(eng, 2, DAY + 200, false_alarm=True, disposition="pocket dial")
    listing = eng.closed_list(DAY + 300)
    assert [r.id for r in listing.incidents] == [second, first]
    assert listing.total == 2 and listing.ts == DAY + 300
    newest, oldest = listing.incidents
    assert newest.status is IncidentStatus.FALSE_ALARM and newest.disposition == "pocket dial"
    assert oldest.status is IncidentStatus.RESOLVED and oldest.disposition == "escorted home"
    assert oldest.kind is IncidentKind.SOS and oldest.owner == "op1"
    assert oldest.closed_at == DAY + 100 and oldest.created == DAY + 70
    assert oldest.district == "Jung-gu" and oldest.place and oldest.title
    assert eng.st.incidents == {}  # nothing open: the list is read off ``State.closed``


def test_a_closed_record_holds_no_personal_data() -> None:
    eng = engine()
    _open_and_close(eng, 1, DAY + 100)
    record = eng.closed_list(DAY + 200).incidents[0]
    assert not {"person", "phone", "source", "device_id"} & set(record.__struct_fields__)
    wire = codec.encode(eng.closed_list(DAY + 200))
    for personal in (NAME, PHONE, "phone-1"):
        assert personal.encode() not in wire


def test_the_units_that_served_are_named_though_the_close_freed_them() -> None:
    eng = engine()
    for n in range(CLOSED_RESPONDERS_MAX + 2):
        eng.handle_event(responder(f"P-{n}", lat=LAT + 0.001 * (n + 1)), DAY, source="radio")
    eng.handle_event(sos("a1", device="phone-1"), DAY, source="app")
    for n in range(CLOSED_RESPONDERS_MAX + 2):
        reply = do(eng, Action.DISPATCH, now=DAY + 10 + n, responder_id=f"P-{n}")
        assert reply.ok, reply.reason
    assert do(eng, Action.RESOLVE, now=DAY + 60, disposition="done").ok
    assert eng.st.closed["I-000001"].responders == []  # freed at the close
    record = eng.closed_list(DAY + 61).incidents[0]
    assert record.responders == tuple(f"P-{n}" for n in range(CLOSED_RESPONDERS_MAX))


def test_the_list_is_bounded_to_the_latest_200() -> None:
    eng = engine()
    ids = [_open_and_close(eng, n, DAY + 60 * n) for n in range(1, CLOSED_LIST_MAX + 51)]
    listing = eng.closed_list(DAY + 60 * (CLOSED_LIST_MAX + 51))
    assert len(listing.incidents) == CLOSED_LIST_MAX
    assert listing.total == CLOSED_LIST_MAX + 50
    assert [r.id for r in listing.incidents] == ids[::-1][:CLOSED_LIST_MAX]


def test_only_the_last_24_hours_are_listed_and_the_list_says_when_it_expires() -> None:
    eng = engine()
    old = _open_and_close(eng, 1, DAY)
    recent = _open_and_close(eng, 2, DAY + 3600)
    listing = eng.closed_list(DAY + CLOSED_WINDOW_S + 60)
    assert [r.id for r in listing.incidents] == [recent] and listing.total == 1
    assert old in eng.st.closed  # the engine still remembers it; the list is a view
    assert expires_at(listing) == DAY + 3600 + CLOSED_WINDOW_S
    assert expires_at(eng.closed_list(DAY + 3 * CLOSED_WINDOW_S)) == float("inf")


def test_the_encoded_list_stays_small_whatever_was_typed() -> None:
    eng = engine()
    long = "x" * 200  # the longest disposition a command may carry
    for n in range(1, CLOSED_LIST_MAX + 1):
        _open_and_close(eng, n, DAY + 60 * n, disposition=long)
        eng.st.closed[f"I-{eng.st.seq:06d}"].place = "가" * 5000  # an engine text of any size
    listing = eng.closed_list(DAY + 60 * (CLOSED_LIST_MAX + 1))
    size = len(codec.encode(listing))
    assert size <= CLOSED_LIST_MAX_BYTES < codec.MAX_PAYLOAD
    assert 0 < len(listing.incidents) <= CLOSED_LIST_MAX
    newest = listing.incidents[0]
    assert newest.id == f"I-{eng.st.seq:06d}" and len(newest.place) <= 200
    # A tighter budget drops the oldest first, never the newest.
    small = closed_list(eng.st.closed, DAY + 60 * (CLOSED_LIST_MAX + 1), max_bytes=4096)
    assert len(codec.encode(small)) <= 4096
    assert [r.id for r in small.incidents] == [
        r.id for r in listing.incidents[: len(small.incidents)]
    ]


def test_a_record_the_wire_would_refuse_is_left_out_not_the_whole_list() -> None:
    eng = engine()
    good = _open_and_close(eng, 1, DAY + 100)
    bad = _open_and_close(eng, 2, DAY + 200)
    eng.st.closed[bad].owner = "x" * 100  # fine: cut to the wire's length
    eng.st.closed[bad].responders = ["a/b"]  # not an identifier: never named
    eng.st.closed[bad].priority = 9  # outside P1..P4: the console would refuse the list
    listing = eng.closed_list(DAY + 300)
    assert [r.id for r in listing.incidents] == [good]
    decoded = codec.decode(codec.encode(listing), ClosedList)
    assert decoded == listing


def test_the_list_is_the_same_after_a_snapshot_and_restore() -> None:
    config = Config()
    eng = engine(config)
    for n in range(1, 6):
        _open_and_close(eng, n, DAY + 60 * n, false_alarm=n % 2 == 0)
    before = eng.closed_list(DAY + 1000)
    again = restore(config, eng.snapshot())
    assert again.closed_list(DAY + 1000) == before
    assert msgspec.msgpack.encode(before) == msgspec.msgpack.encode(again.closed_list(DAY + 1000))


def test_an_open_incident_is_never_in_the_list() -> None:
    eng = engine()
    eng.handle_event(sos("a1", device="phone-1", lat=LAT, lon=LON), DAY, source="app")
    assert eng.closed_list(DAY + 10).incidents == ()
    assert eng.closed_list(DAY + 10).total == 0


def test_the_closer_is_named_and_an_automatic_close_is_the_cores() -> None:
    eng = engine()
    eng.handle_event(camera("cam1"), DAY, source="vms")
    eng.handle_event(cctv("e1", ts=DAY + 5), DAY + 5, source="vms")
    eng.handle_event(cctv("e1", withdrawn=True, ts=DAY + 9), DAY + 9, source="vms")
    assert eng.st.incidents == {}, "a withdrawn event closes its incident"
    cctv_record = eng.closed_list(DAY + 10).incidents[0]
    assert cctv_record.kind is IncidentKind.CCTV and cctv_record.closed_by == "core"
    sos_id = _open_and_close(eng, 1, DAY + 100)
    record = eng.closed_list(DAY + 101).incidents[0]
    assert (record.id, record.owner, record.closed_by) == (sos_id, "op1", "op1")
