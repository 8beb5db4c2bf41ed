"""StateStore: ordering, closing, filtering, change tracking (pure, no Textual)."""

from __future__ import annotations

import subprocess
import sys

import msgspec

from console.tui.state_store import Filter, StateStore, sort_key
from protocols import codec, topics
from protocols.schemas import IncidentKind, IncidentStatus
from tests.tui.ui_fixtures import NOW, incident, make_store, summary


def ids(store: StateStore) -> list[str]:
    return [store.view[i].id for i in range(len(store.view))]


def test_order_is_priority_then_escalated_then_oldest() -> None:
    store = StateStore()
    store.apply(incident(1, priority=2))
    store.apply(incident(2, priority=1, created=NOW - 10))
    store.apply(incident(3, priority=1, created=NOW - 100))
    store.apply(incident(4, priority=1, created=NOW - 1, escalated=True))
    assert ids(store) == ["I-000004", "I-000003", "I-000002", "I-000001"]
    assert store.view.index_of("I-000002") == 2
    assert store.view.index_of("nope") is None


def test_update_moves_the_row_and_records_changes() -> None:
    store = StateStore()
    store.apply(incident(1, priority=2))
    store.apply(incident(2, priority=1))
    store.drain()
    store.apply(incident(1, priority=1, created=NOW - 999))
    changes = store.drain()
    assert changes.incidents == {"I-000001"} and changes.order
    assert ids(store) == ["I-000001", "I-000002"]
    # A change that keeps the sort key is not a re-order.
    store.apply(incident(1, priority=1, created=NOW - 999, owner="op1"))
    changes = store.drain()
    assert changes.incidents == {"I-000001"} and not changes.order
    assert not store.drain()


def test_closed_and_removed_incidents_leave_the_queue() -> None:
    store = StateStore()
    store.apply(incident(1))
    store.apply(incident(2))
    store.apply(incident(1, status=IncidentStatus.RESOLVED))
    assert ids(store) == ["I-000002"]
    assert "I-000001" in store.incidents  # still there for the detail
    assert store.apply_payload(topics.state_incident("Jongno-gu", "I-000002"), b"")
    assert ids(store) == [] and "I-000002" not in store.incidents


def test_reconnect_drops_incidents_the_retained_picture_no_longer_holds() -> None:
    store = StateStore()
    for n in (1, 2, 3):
        store.apply(incident(n))
    store.begin_resync()  # the link is reconnecting; I-000002 was closed meanwhile
    store.apply(incident(1))
    store.apply(incident(3, status=IncidentStatus.ACKNOWLEDGED))
    store.apply(incident(4))  # new while away
    assert set(ids(store)) == {"I-000001", "I-000002", "I-000003", "I-000004"}  # not yet known
    store.end_resync()
    assert set(ids(store)) == {"I-000001", "I-000003", "I-000004"}
    assert "I-000002" not in store.incidents and not store.resyncing
    store.end_resync()  # a second end (no resync running) changes nothing
    assert set(ids(store)) == {"I-000001", "I-000003", "I-000004"}


def test_payloads_are_decoded_by_topic_and_bad_ones_counted() -> None:
    store = StateStore()
    assert store.apply_payload(
        topics.state_incident("Jongno-gu", "I-000001"), codec.encode(incident(1))
    )
    assert store.apply_payload(topics.STATE_SUMMARY, codec.encode(summary()))
    assert store.summary is not None and ids(store) == ["I-000001"]
    assert not store.apply_payload(topics.STATE_SUMMARY, b"\x81\xa1x\x01")
    assert store.rejected == 1 and "summary" in store.last_error


def test_filter_parse_and_incremental_maintenance() -> None:
    f = Filter.parse("p1 NEW gangnam yeoksam", {"Gangnam", "Mapo"})
    assert f == Filter("yeoksam", "Gangnam", 1, IncidentStatus.NEW)
    store = make_store()
    store.set_filter(Filter.parse("p1 new", store.districts()))
    assert ids(store) == ["I-000003", "I-000001"]
    store.apply(incident(9))  # a new, older P1 SOS joins the filtered view in place
    assert ids(store) == ["I-000003", "I-000009", "I-000001"]  # escalated, then oldest
    store.apply(incident(9, status=IncidentStatus.ACKNOWLEDGED))  # and leaves it
    assert ids(store) == ["I-000003", "I-000001"]
    store.set_filter(Filter.parse("cam-jon-007"))
    assert ids(store) == ["I-000002"]
    store.set_filter(Filter())
    assert len(store.view) == store.open_count == 9


def test_large_queue_updates_without_resorting() -> None:
    store = StateStore()
    for n in range(20_000):
        store.apply(incident(n, priority=1 + n % 4, kind=IncidentKind.CCTV, created=NOW - n))
    keys = [sort_key(store.view[i]) for i in range(len(store.view))]
    assert keys == sorted(keys)
    store.apply(msgspec.structs.replace(store.incidents["I-019999"], priority=1, escalated=True))
    assert store.view[0].id == "I-019999"


def test_state_store_does_not_import_textual() -> None:
    code = "import sys, console.tui.state_store; sys.exit('textual' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_a_district_of_4000_cameras_is_accepted() -> None:
    """100,000 cameras over 25 districts: ~410 KB a district, above the raw-ingest limit."""
    from protocols.schemas import CameraCell, CameraStatus, DistrictCameras

    cells = tuple(
        CameraCell(
            id=f"cam-gangnam-{n:05d}",
            status=CameraStatus.ONLINE,
            lat=37.49 + n * 1e-5,
            lon=127.02,
            name=f"Gangnam camera {n}",
            last_seen=NOW,
        )
        for n in range(4000)
    )
    payload = codec.encode(DistrictCameras(district="Gangnam-gu", ts=NOW, cameras=cells))
    assert len(payload) > codec.MAX_PAYLOAD
    store = StateStore()
    assert store.apply_payload(topics.state_camera_page("Gangnam-gu", 0), payload), store.last_error
    assert len(store.cameras["Gangnam-gu"].cameras) == 4000


def _page(district: str, page: int, pages: int, ids: range, ts: float = NOW) -> tuple[str, bytes]:
    from protocols.schemas import CameraCell, CameraStatus, DistrictCameras

    cells = tuple(
        CameraCell(id=f"cam-{n:05d}", status=CameraStatus.OFFLINE if n % 10 == 0 else
                   CameraStatus.ONLINE, lat=37.5, lon=127.0)
        for n in ids
    )  # fmt: skip
    offline = sum(1 for c in cells if c.status == CameraStatus.OFFLINE)
    message = DistrictCameras(district=district, ts=ts, cameras=cells, online=len(cells) - offline,
                              offline=offline, page=page, pages=pages)  # fmt: skip
    return topics.state_camera_page(district, page), codec.encode(message)


def test_camera_pages_join_into_the_district_in_order() -> None:
    store = StateStore()
    for page in (2, 0, 1):  # retained messages come in any order
        assert store.apply_payload(
            *_page("Jongno-gu", page, 3, range(page * 250, page * 250 + 250))
        )
    assert store.drain().cameras
    whole = store.cameras["Jongno-gu"]
    assert [c.id for c in whole.cameras] == [f"cam-{n:05d}" for n in range(750)]
    assert (whole.online, whole.offline, whole.pages) == (675, 75, 3)
    # One camera changes: only its page comes again.
    topic, _ = _page("Jongno-gu", 1, 3, range(250, 500))
    from protocols.schemas import CameraCell, CameraStatus, DistrictCameras

    page1 = store._camera_pages["Jongno-gu"][1]
    cams = list(page1.cameras)
    cams[3] = msgspec.structs.replace(cams[3], status=CameraStatus.ALARM)
    changed = msgspec.structs.replace(page1, cameras=tuple(cams), online=page1.online - 1, alarm=1)
    assert store.apply_payload(topic, codec.encode(changed))
    assert store.drain().cameras
    whole = store.cameras["Jongno-gu"]
    assert whole.cameras[253].status == CameraStatus.ALARM and whole.alarm == 1
    assert isinstance(whole.cameras[0], CameraCell) and isinstance(whole, DistrictCameras)


def test_camera_pages_past_the_newest_count_and_cleared_pages_are_dropped() -> None:
    store = StateStore()
    # A page left over from a longer list (older), then the current two pages.
    store.apply_payload(*_page("Mapo-gu", 2, 3, range(500, 520), ts=NOW - 60))
    store.apply_payload(*_page("Mapo-gu", 0, 2, range(0, 250)))
    store.apply_payload(*_page("Mapo-gu", 1, 2, range(250, 300)))
    assert len(store.cameras["Mapo-gu"].cameras) == 300
    # The core clears a page it no longer has (an empty retained message).
    assert store.apply_payload(topics.state_camera_page("Mapo-gu", 1), b"")
    assert len(store.cameras["Mapo-gu"].cameras) == 250
    assert store.apply_payload(topics.state_camera_page("Mapo-gu", 0), b"")
    assert "Mapo-gu" not in store.cameras and "Mapo-gu" not in store.districts()


def test_whole_district_lists_of_the_old_layout_are_ignored() -> None:
    """A broker may still hold a district's whole list, retained, from an older core."""
    store = StateStore()
    store.apply_payload(*_page("Seocho-gu", 0, 1, range(0, 10)))
    _, payload = _page("Seocho-gu", 0, 1, range(0, 4000))
    assert store.apply_payload(topics.state_cameras("Seocho-gu"), payload)
    assert store.apply_payload(topics.state_cameras("Seocho-gu"), b"")
    assert len(store.cameras["Seocho-gu"].cameras) == 10 and store.rejected == 0


def test_camera_pages_are_decoded_when_read_and_a_bad_one_is_counted_then() -> None:
    store = StateStore()
    store.apply_payload(*_page("Jung-gu", 0, 2, range(0, 250)))
    topic, payload = _page("Jung-gu", 1, 2, range(250, 260))
    assert store.apply_payload(topic, payload[:-5])  # truncated: not looked at yet
    assert store.apply_payload(*_page("Mapo-gu", 0, 1, range(0, 3)))
    assert store.rejected == 0 and store.districts() == {"Jung-gu", "Mapo-gu"}
    assert store.drain().cameras
    jung = store.camera_district("Jung-gu")  # one district: Mapo-gu stays undecoded
    assert jung is not None and len(jung.cameras) == 250
    assert store.rejected == 1 and store.last_error.startswith(topic)
    assert "Mapo-gu" in store._camera_raw
    # A page under another page's topic is refused too; the good one then comes.
    _, wrong = _page("Jung-gu", 0, 2, range(0, 250))
    store.apply_payload(topic, wrong)
    assert len(store.cameras["Jung-gu"].cameras) == 250 and store.rejected == 2
    store.apply_payload(topic, payload)
    assert (
        len(store.cameras["Jung-gu"].cameras) == 260 and len(store.cameras["Mapo-gu"].cameras) == 3
    )


def test_the_detail_names_the_partition_of_an_incident_of_a_partitioned_city() -> None:
    from widgets.incident_detail import IncidentDetail

    detail = IncidentDetail()
    detail.incident, detail.now = incident(1), 1_770_000_000.0
    assert "partition" not in str(detail.render_text())  # one partition: nothing to tell
    detail.incident = msgspec.structs.replace(incident(1), partition="north")
    assert "Core     partition north" in str(detail.render_text())
