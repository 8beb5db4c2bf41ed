"""A partition's core publishes retained per-district state for its own districts only (F7),
and clears the state of a unit that became another partition's (F9).

In process, on the publisher with a recording transport: engines of the Han split
(``tests.partitioned``), fed as ingest would feed them, then ``publish_state``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
import pytest

from console.config import Config
from console.core.publisher import Dirty, Outbox, everything, publish_state, scope_publication
from console.core.publisher import sort_effects as sort
from console.engine.engine import Engine
from protocols import codec, topics
from protocols.schemas import Action, CameraHealthStatus, ClosedList, ResponderStatus
from tests.engine.test_engine_support import DAY, camera, do, responder, sos
from tests.partitioned import GANGNAM, MAPO, NORTH, SOUTH

YEONGDEUNGPO = (37.5398, 126.9120)  # the south's, across the Han from Mapo-gu
JUNG = (37.5601, 126.9960)
SPLIT = {"north": NORTH, "south": SOUTH}


class Recorder:
    def __init__(self, fail: int = 0) -> None:
        self.published: dict[str, bytes] = {}  # the last payload of each topic
        self.fail = fail  # publishes that raise first (a lost connection)

    async def publish(self, topic: str, payload: bytes, **_: Any) -> None:
        if self.fail:
            self.fail -= 1
            raise TimeoutError("no PUBACK")
        self.published[topic] = payload


def make(partition: str | None, home: bool | None = None) -> Engine:
    cfg = Config(partitions=SPLIT) if partition else Config()
    e = Engine(cfg.engine_settings(partition), cfg.city.district_map())
    if home is not None:
        scope_publication(e, home=home)
    return e


def publish(e: Engine, dirty: Dirty | None = None, rec: Recorder | None = None) -> Recorder:
    rec = rec or Recorder()
    dirty = everything(e) if dirty is None else dirty
    asyncio.run(publish_state(rec, e, dirty, DAY + 100))  # type: ignore[arg-type]
    return rec


def dirty_of(effects: list[Any]) -> Dirty:
    dirty = Dirty()
    sort(effects, dirty, Outbox())
    return dirty


def close_sos(e: Engine, n: int, at: tuple[float, float]) -> str:
    e.handle_event(sos(f"a{n}", device=f"phone-{n}", lat=at[0], lon=at[1]), DAY, source="app")
    incident_id = f"{e.settings.id_prefix}-{e.st.seq:06d}"
    assert do(e, Action.FALSE_ALARM, incident_id, now=DAY + 10, disposition="test").ok
    return incident_id


def closed(rec: Recorder, district: str) -> list[str] | None:
    payload = rec.published.get(topics.state_closed(district))
    if payload is None:
        return None
    listing: ClosedList = codec.decode(payload, ClosedList)
    return [record.id for record in listing.incidents]


def under(rec: Recorder, prefix: str) -> list[str]:
    return sorted(t for t in rec.published if t.startswith(f"{topics.ROOT}/{prefix}"))


def withheld(caplog: pytest.LogCaptureFixture, district: str) -> int:
    return sum(f"of {district} not published" in r.getMessage() for r in caplog.records)


# --- F7: the closed lists and the camera pages ----------------------------------------------


def test_the_closed_list_of_another_partitions_district_is_not_published(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "ansim.core.publisher")
    e = make("south", home=False)
    mapo = close_sos(e, 1, MAPO)  # raised here (F1) in the north's district
    gangnam = close_sos(e, 2, GANGNAM)
    rec = publish(e)
    assert closed(rec, "Gangnam-gu") == [gangnam]
    assert closed(rec, "Mapo-gu") is None, "the north's list overwritten"
    assert e.incident_home(mapo) == "Mapo-gu"
    assert withheld(caplog, "Mapo-gu") == 1
    close_sos(e, 3, MAPO)  # the next list, and the next tick: not logged again
    publish(e, Dirty(closed_list=True), rec)
    publish(e, Dirty(closed_list=True), rec)
    assert closed(rec, "Mapo-gu") is None
    assert withheld(caplog, "Mapo-gu") == 1


def test_unknown_is_published_by_the_home_partitions_core_alone() -> None:
    outside = (0.0, 0.0)
    south, north, untold = make("south", home=False), make("north", home=True), make("north")
    for e in (south, north, untold):
        incident_id = close_sos(e, 1, outside)
        assert e.incident_home(incident_id) == "unknown"
    assert closed(publish(south), "unknown") is None
    assert closed(publish(north), "unknown") == ["north-000001"]
    assert closed(publish(untold), "unknown") == ["north-000001"]  # not told: as before


def test_a_camera_held_across_the_line_is_not_on_the_pages_of_this_core(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The home core reads Frigate, which names no district: a Frigate camera standing in
    Yeongdeungpo-gu is registered there, and that page is the south's to publish."""
    caplog.set_level(logging.WARNING, "ansim.core.publisher")
    e = make("north", home=True)
    e.handle_event(camera("cam-vn", lat=MAPO[0], lon=MAPO[1], district="Mapo-gu"), DAY)
    frigate = camera("frigate-1", lat=YEONGDEUNGPO[0], lon=YEONGDEUNGPO[1], district=None)
    e.handle_event(frigate, DAY)
    assert e.districts() == ["Mapo-gu", "Yeongdeungpo-gu"]  # held, and withheld
    rec = publish(e)
    assert under(rec, "state/cameras/") == [topics.state_cameras("Mapo-gu"),
                                            topics.state_camera_page("Mapo-gu", 0)]  # fmt: skip
    offline = msgspec.structs.replace(frigate, status=CameraHealthStatus.OFFLINE, ts=DAY + 1)
    publish(e, dirty_of(e.handle_event(offline, DAY + 1)), rec)
    assert not under(rec, "state/cameras/Yeongdeungpo-gu")
    assert withheld(caplog, "Yeongdeungpo-gu") == 1


def test_unpartitioned_every_district_is_published_as_before(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "ansim.core.publisher")
    e = make(None)
    e.handle_event(camera("frigate-1", lat=YEONGDEUNGPO[0], lon=YEONGDEUNGPO[1], district=None),
                   DAY)  # fmt: skip
    ids = [close_sos(e, n, at) for n, at in enumerate((MAPO, GANGNAM, (0.0, 0.0)), 1)]
    rec = publish(e)
    assert [closed(rec, d) for d in ("Mapo-gu", "Gangnam-gu", "unknown")] == [[i] for i in ids]
    assert topics.state_camera_page("Yeongdeungpo-gu", 0) in rec.published
    assert not caplog.records


# --- units: only its own, and F9 ------------------------------------------------------------


def unit_report(
    e: Engine, district: str | None, at: tuple[float, float], now: float = DAY
) -> list[Any]:
    ev = msgspec.structs.replace(
        responder("unit-vm", lat=at[0], lon=at[1], ts=now), district=district
    )
    return e.handle_event(ev, now, source="radio")


def test_a_unit_now_another_partitions_has_its_old_state_cleared() -> None:
    e = make("north", home=True)
    rec = publish(e, dirty_of(unit_report(e, "Jongno-gu", JUNG)))
    mine = topics.state_responder("Jongno-gu", "unit-vm")
    assert rec.published[mine]
    publish(e, dirty_of(unit_report(e, "Gangnam-gu", JUNG, DAY + 5)), rec)
    assert rec.published[mine] == b""  # the retained state deleted
    assert under(rec, "state/responder/") == [mine]  # its new owner publishes it
    # After a reconnect (everything again) it stays cleared: no longer this core's.
    publish(e, None, rec)
    assert rec.published[mine] == b""


def test_a_clear_that_did_not_go_out_goes_out_with_the_next_publication() -> None:
    e = make("north", home=True)
    rec = publish(e, dirty_of(unit_report(e, "Jongno-gu", JUNG)))
    rec.fail = 1
    with pytest.raises(TimeoutError):
        publish(e, dirty_of(unit_report(e, "Gangnam-gu", JUNG, DAY + 5)), rec)
    publish(e, Dirty(), rec)  # the core merges back only what Dirty held
    assert rec.published[topics.state_responder("Jongno-gu", "unit-vm")] == b""


def test_a_unit_back_under_its_old_home_is_published_not_cleared() -> None:
    e = make("north", home=True)
    unit_report(e, "Jongno-gu", JUNG)
    dirty = dirty_of(unit_report(e, "Gangnam-gu", JUNG, DAY + 5))
    sort(unit_report(e, "Jongno-gu", JUNG, DAY + 6), dirty, Outbox())  # within one tick
    rec = publish(e, dirty)
    assert rec.published[topics.state_responder("Jongno-gu", "unit-vm")]


def test_a_neighbours_unit_is_never_published_here_even_when_marked_changed() -> None:
    """An incident's on-scene marks every assigned unit changed, a borrowed one too."""
    e = make("north", home=True)
    unit_report(e, "Yeongdeungpo-gu", YEONGDEUNGPO)
    rec = publish(e, Dirty(responders={"unit-vm"}))
    assert not under(rec, "state/responder/")
    assert e.st.responders["unit-vm"].status is ResponderStatus.AVAILABLE
