"""The queue's order and columns: escalation's standing, the SLA countdown, ids cut apart."""

from __future__ import annotations

import msgspec
from rich.cells import cell_len

from console.tui.state_store import StateStore
from protocols.schemas import IncidentStatus
from tests.tui.ui_fixtures import NOW, incident
from widgets.alert_queue import SLA_W, _layout, sla_deadline
from widgets.format import PLACEHOLDER, countdown, fit_middle


def ids(store: StateStore) -> list[str]:
    return [store.view[i].id for i in range(len(store.view))]


def test_an_escalated_incident_stands_one_priority_higher() -> None:
    store = StateStore()
    store.apply(incident(1, priority=1, created=NOW - 10))
    store.apply(incident(2, priority=2, created=NOW - 500))
    store.apply(incident(3, priority=3, created=NOW - 900))
    store.apply(incident(4, priority=1, created=NOW - 5))
    assert ids(store) == ["I-000001", "I-000004", "I-000002", "I-000003"]
    store.apply(msgspec.structs.replace(store.incidents["I-000002"], escalated=True))
    store.apply(msgspec.structs.replace(store.incidents["I-000003"], escalated=True))
    # P2! stands with the P1s, ahead of those not escalated; P3! with the P2s.
    assert ids(store) == ["I-000002", "I-000001", "I-000004", "I-000003"]
    store.apply(msgspec.structs.replace(store.incidents["I-000004"], escalated=True))
    # Within a standing the escalated come first, oldest first: P2! (older) before P1!.
    assert ids(store) == ["I-000002", "I-000004", "I-000001", "I-000003"]
    assert store.view.index_after(store.incidents["I-000001"]) == 2


def test_fit_middle_keeps_ids_apart() -> None:
    assert fit_middle("office-mapo", 11) == "office-mapo"
    assert fit_middle("office-jongno", 11) == "off…-jongno"
    for width in (6, 8, 10):
        cut = fit_middle("office-mapo", width), fit_middle("office-jongno", width)
        assert cut[0] != cut[1] and all(cell_len(c) == width for c in cut)
    assert fit_middle("op1", 8) == "op1     "
    assert (
        fit_middle("서울시청-관제실", 9).endswith("관제실")
        and cell_len(fit_middle("서울시청-관제실", 9)) == 9
    )


def test_countdown_shows_overdue_with_a_minus() -> None:
    assert countdown(None, NOW) == ""
    assert countdown(NOW + 95, NOW) == "1m35s"
    assert countdown(NOW - 125, NOW) == "-2m05s"
    assert countdown(NOW - 0.4, NOW) == "0s"
    assert countdown(float("nan"), NOW) == PLACEHOLDER
    assert cell_len(countdown(NOW - 11 * 3600, NOW)) <= SLA_W


def test_the_sla_that_runs_is_ack_then_dispatch() -> None:
    new = incident(1, ack_deadline=NOW + 60, dispatch_deadline=NOW + 600)
    assert sla_deadline(new) == NOW + 60
    acked = msgspec.structs.replace(new, status=IncidentStatus.ACKNOWLEDGED)
    assert sla_deadline(acked) == NOW + 600
    assert sla_deadline(msgspec.structs.replace(new, status=IncidentStatus.DISPATCHED)) is None


def test_every_column_fits_at_80_columns() -> None:
    lay = _layout(79)  # 80 columns less the scrollbar
    assert lay.sla and lay.owner >= 11 and lay.responder and lay.where >= 20
    narrow = _layout(60)
    assert narrow.sla and not narrow.responder and not narrow.owner


def test_place_label_keeps_what_tells_two_cameras_apart() -> None:
    from widgets.format import place_label

    assert place_label("Dongdaemun-gu", "Dongdaemun underpass 0004") == "Dongdaemun underpass 0004"
    assert place_label("Mapo-gu", "Hongik-ro 20") == "Mapo Hongik-ro 20"
    assert place_label("Gangnam", "Teheran-ro 5") == "Gangnam Teheran-ro 5"
    assert place_label("", "") == ""
    assert "\x1b" not in place_label("Jongno-gu\x1b[31m", "x\x1b[2J")  # wire text: plain


def test_two_cameras_of_a_district_stay_apart_at_80_columns() -> None:
    from widgets.alert_queue import AlertQueue

    queue = AlertQueue()
    rows = [
        incident(n, district="Dongdaemun-gu", place=f"Dongdaemun underpass {n:04d} exit 2")
        for n in (4, 5)
    ]
    left = [queue._row_parts(inc, 80)[0].text for inc in rows]
    assert left[0] != left[1] and "0004" in left[0] and "0005" in left[1]
