"""Camera lists in pages: the core republishes only the page a changed camera is on,
and a console's store joins the pages back into whole districts."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from console.core.publisher import (
    CAMERA_INTERVAL_S,
    CAMERA_PAGE,
    Dirty,
    Outbox,
    camera_pages,
    everything,
    publish_state,
    sort_effects,
)
from console.engine.engine import Engine
from console.tui.state_store import StateStore
from protocols import codec, topics
from protocols.schemas import CameraHealthStatus, CameraStatus, DistrictCameras
from tests.engine.test_engine_support import DAY, camera, engine

Item = tuple[str, bytes, bool]


class Recorder:
    """A stand-in transport: what would be published, in order."""

    def __init__(self) -> None:
        self.sent: list[Item] = []

    async def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool) -> None:
        self.sent.append((topic, payload, retain))


def _register(e: Engine, district: str, count: int, start: int = 0) -> Dirty:
    dirty = Dirty()
    for n in range(start, start + count):
        sort_effects(
            e.handle_event(camera(f"cam-{n:05d}", district=district), DAY), dirty, Outbox()
        )
    return dirty


def _publish(e: Engine, dirty: Dirty, now: float = DAY + 1) -> list[Item]:
    transport = Recorder()
    asyncio.run(publish_state(transport, e, dirty, now))  # type: ignore[arg-type]
    return [item for item in transport.sent if "/state/cameras/" in item[0]]


def _feed(store: StateStore, items: list[Item]) -> None:
    for topic, payload, retained in items:
        assert retained
        assert store.apply_payload(topic, payload), store.last_error


def test_a_district_goes_out_in_pages_and_the_old_whole_list_is_cleared() -> None:
    e = engine()
    _register(e, "Jung-gu", 2 * CAMERA_PAGE + 10)
    items = _publish(e, everything(e))
    assert items[0] == (topics.state_cameras("Jung-gu"), b"", True)
    pages = [
        codec.decode(p, DistrictCameras, max_bytes=codec.MAX_STATE_PAYLOAD) for _, p, _ in items[1:]
    ]
    assert [t for t, _, _ in items[1:]] == [
        topics.state_camera_page("Jung-gu", n) for n in range(3)
    ]
    assert [(p.page, p.pages, len(p.cameras)) for p in pages] == [
        (0, 3, 250),
        (1, 3, 250),
        (2, 3, 10),
    ]
    assert max(len(p) for _, p, _ in items) < codec.MAX_PAYLOAD
    store = StateStore()
    _feed(store, items)
    whole = store.cameras["Jung-gu"]
    assert [c.id for c in whole.cameras] == sorted(f"cam-{n:05d}" for n in range(510))
    assert whole.online == 510


def test_a_changed_camera_republishes_only_its_page() -> None:
    e = engine()
    _register(e, "Jung-gu", 3 * CAMERA_PAGE)
    store = StateStore()
    _feed(store, _publish(e, everything(e)))
    dirty = Dirty()
    sort_effects(
        e.handle_event(
            camera("cam-00300", CameraHealthStatus.OFFLINE, district="Jung-gu"), DAY + 2
        ),
        dirty,
        Outbox(),
    )
    items = _publish(e, dirty, DAY + 3)
    assert [t for t, _, _ in items] == [topics.state_camera_page("Jung-gu", 1)]
    _feed(store, items)
    whole = store.cameras["Jung-gu"]
    assert whole.cameras[300].status == CameraStatus.OFFLINE
    assert (whole.online, whole.offline, len(whole.cameras)) == (749, 1, 750)


def test_a_new_camera_shifts_the_pages_after_it_and_a_longer_list_republishes_all() -> None:
    e = engine()
    _register(e, "Jung-gu", 2 * CAMERA_PAGE)  # cam-00000 .. cam-00499: two full pages
    store = StateStore()
    _feed(store, _publish(e, everything(e)))
    # cam-00100a sorts inside page 0: every later camera moves, and a third page appears.
    dirty = Dirty()
    sort_effects(e.handle_event(camera("cam-00100a", district="Jung-gu"), DAY), dirty, Outbox())
    items = _publish(e, dirty, DAY + 2)
    assert [t for t, _, _ in items] == [topics.state_camera_page("Jung-gu", n) for n in range(3)]
    _feed(store, items)
    assert len(store.cameras["Jung-gu"].cameras) == 501
    # It leaves again: back to two pages; the third is cleared.
    dirty = Dirty()
    sort_effects(e.handle_event(camera("cam-00100a", district="Mapo-gu"), DAY + 3), dirty, Outbox())
    items = _publish(e, dirty, DAY + 4)
    by_topic = {t: p for t, p, _ in items}
    assert by_topic[topics.state_camera_page("Jung-gu", 2)] == b""
    _feed(store, items)
    assert [c.id for c in store.cameras["Jung-gu"].cameras] == [f"cam-{n:05d}" for n in range(500)]
    assert [c.id for c in store.cameras["Mapo-gu"].cameras] == ["cam-00100a"]


def test_pages_only_when_the_layout_is_unknown() -> None:
    """A fresh engine (a restarted core) knows no layout: it publishes every page."""
    e = engine()
    _register(e, "Jung-gu", CAMERA_PAGE + 1)
    first = camera_pages(e, "Jung-gu", DAY, {"cam-00000"})
    assert [t for t, _, _ in first] == [topics.state_camera_page("Jung-gu", n) for n in range(2)]
    again = camera_pages(e, "Jung-gu", DAY, {"cam-00000"})
    assert [t for t, _, _ in again] == [topics.state_camera_page("Jung-gu", 0)]


def test_the_benchmarks_page_like_the_core() -> None:
    from bench.console_storm import camera_pages as bench_pages

    e = engine()
    _register(e, "Jung-gu", CAMERA_PAGE + 10)
    core = [(t, p) for t, p, _ in camera_pages(e, "Jung-gu", DAY) if p]  # not the clears
    assert bench_pages(e.district_cameras("Jung-gu", DAY)) == core


def test_under_a_budget_a_districts_pages_go_out_at_most_once_an_interval() -> None:
    """The core's regular ticks (with a budget) hold a district's changes for the interval."""
    e = engine()
    _register(e, "Jung-gu", 2 * CAMERA_PAGE)
    _publish(e, everything(e))

    def tick(camera_id: str | None, now: float) -> list[str]:
        dirty = Dirty()
        if camera_id is not None:
            event = camera(camera_id, CameraHealthStatus.OFFLINE, district="Jung-gu")
            sort_effects(e.handle_event(event, now), dirty, Outbox())
        transport = Recorder()
        publish = publish_state(transport, e, dirty, now, backlog=OrderedDict(), budget_s=0.05)  # type: ignore[arg-type]
        asyncio.run(publish)
        return [t for t, _, _ in transport.sent if "/state/cameras/" in t]

    page0, page1 = (topics.state_camera_page("Jung-gu", n) for n in range(2))
    assert tick("cam-00001", DAY + 10) == [page0]  # the first change goes at once
    assert tick("cam-00300", DAY + 10.2) == []  # within the interval: it waits
    assert tick(None, DAY + 10.8) == []
    assert tick(None, DAY + 11.0 + CAMERA_INTERVAL_S / 10) == [page1]  # then goes
    assert tick(None, DAY + 12.5) == []  # nothing left
