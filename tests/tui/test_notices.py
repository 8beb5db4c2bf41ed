"""console.tui.notices: who is told that a unit left an incident."""

from __future__ import annotations

import msgspec

from console.tui.notices import incident_notices
from protocols.schemas import IncidentKind, IncidentState, IncidentStatus

LEFT = "police-07 left: reported available; no unit assigned, dispatch again"


def incident(**changes: object) -> IncidentState:
    base = IncidentState(
        id="I-000007",
        kind=IncidentKind.SOS,
        priority=1,
        status=IncidentStatus.ON_SCENE,
        lat=37.5,
        lon=127.0,
        district="Gangnam-gu",
        place="Teheran-ro 5",
        source="app",
        title="SOS: panic button",
        created=1_750_000_000.0,
        updated=1_750_000_000.0,
        owner="op1",
        responders=("police-07",),
    )
    return msgspec.structs.replace(base, **changes)


def released(**changes: object) -> IncidentState:
    fields: dict[str, object] = {
        "status": IncidentStatus.ACKNOWLEDGED,
        "responders": (),
        "alert": LEFT,
        "alert_ts": 1_750_000_100.0,
    }
    return incident(**{**fields, **changes})


def test_the_owner_is_told_once() -> None:
    before, after = incident(), released()
    assert incident_notices("op1", before, after) == [
        f"I-000007 P1 Gangnam-gu Teheran-ro 5: {LEFT}"
    ]
    # republished for another reason (a note, a new recommendation): not again
    assert incident_notices("op1", after, msgspec.structs.replace(after, updated=2e9)) == []


def test_another_operator_is_not_told_about_an_owned_incident() -> None:
    assert incident_notices("op2", incident(), released()) == []


def test_everyone_is_told_when_nobody_owns_it() -> None:
    assert incident_notices("op2", incident(owner=None), released(owner=None))


def test_seen_for_the_first_time_with_an_alert_counts_as_new() -> None:
    assert incident_notices("op1", None, released())


def test_a_new_alert_after_an_old_one_is_told_again() -> None:
    first = released()
    second = released(alert="police-09 left: reported off-duty", alert_ts=1_750_000_500.0)
    assert incident_notices("op1", first, second) == [
        "I-000007 P1 Gangnam-gu Teheran-ro 5: police-09 left: reported off-duty"
    ]


def test_nothing_for_a_cleared_alert_or_a_closed_incident() -> None:
    assert incident_notices("op1", released(), incident(status=IncidentStatus.DISPATCHED)) == []
    closed = released(status=IncidentStatus.RESOLVED)
    assert incident_notices("op1", incident(), closed) == []


def test_wire_text_is_made_plain() -> None:
    hostile = released(alert="x\x1b[31m\nleft", place="a\tb")
    (text,) = incident_notices("op1", incident(), hostile)
    assert "\x1b" not in text and "\n" not in text and "\t" not in text
