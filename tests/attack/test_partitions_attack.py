"""One source account against a city of two partitions (docs/partitions.md): two real
cores on the deploy/ Mosquitto, a victim with an SOS, a camera and a unit in each
(tests/attack/partitions_city.py). The tests run in order on one city. After each: both
cores up, the victim's state unchanged in either partition, every refusal a dead letter
with its reason in each partition that read it, every SOS journaled by one partition.

The attacks from test 12 on once worked (each a finding of docs/partitions.md's
history); they change something, so they come last, and the final tests check what
must hold after all of them: both cores restart, and a fresh city-wide console renders.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from protocols import topics
from protocols.schemas import ResponderStatus
from tests.attack.city import wait
from tests.attack.partitions_city import (
    ATTACKER,
    GANGNAM,
    GURO,
    HOSTILE_LEVELS,
    JUNG,
    MARK,
    NORTH_BANK,
    PARTS,
    SOUTH_BANK,
    VICTIM,
    PartitionedCity,
    after_each,
    alert,
    camera,
    cameras,
    cctv,
    command,
    incidents,
    on_the_line,
    owner_of,
    placement,
    raised_by,
    refused_since,
    settle,
    setup_victim,
    sos,
    sos_keys,
    taken_by,
    unit,
    units,
    victim_now,
)
from tests.attack.partitions_console import city_console_screens

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

A = ATTACKER
OUTSIDE = {"zero": (0.0, 0.0), "busan": (35.1, 129.0), "beyond-nowon": (37.9, 127.0)}


@pytest.fixture(scope="module")
def pcity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PartitionedCity]:
    city = PartitionedCity(tmp_path_factory.mktemp("partitions-attack"))
    try:
        city.start()
        setup_victim(city)
        yield city
    finally:
        city.close()


@pytest.fixture(scope="module")
def victim(pcity: PartitionedCity) -> dict[str, Any]:
    """What must not change, as first published."""
    return victim_now(pcity)


# --- refused or harmless --------------------------------------------------------------

DISAGREE = [
    # kind, the topic's district, the payload's, the partitions whose core reads the topic
    ("camera", "Gangnam-gu", "Mapo-gu", ("north", "south")),  # the north reads it as border
    ("responder", "Yeongdeungpo-gu", "Mapo-gu", ("north", "south")),
    ("responder", "Jongno-gu", "Gwanak-gu", ("north",)),
    ("cctv", "Guro-gu", "Jung-gu", ("south",)),
]


@pytest.mark.parametrize("case", DISAGREE)
def test_01_a_payload_district_that_contradicts_the_topic_is_refused_where_read(
    pcity: PartitionedCity, victim: dict[str, Any], case: tuple[str, str, str, tuple[str, ...]]
) -> None:
    kind, topic_district, claimed, readers = case
    message = {"camera": camera("cam-m1", JUNG), "responder": unit("unit-m1", JUNG),
               "cctv": cctv("ev-m1", "cam-m1")}[kind]  # fmt: skip
    before = pcity.refusal_counts()
    pcity.send_as(A, kind, {**message, "district": claimed}, topic_district)
    assert refused_since(pcity, before) == {p: int(p in readers) for p in PARTS}
    reason = f"district '{claimed}' does not match the topic's '{topic_district}'"
    for p in readers:
        assert pcity.dead(p)[-1] == (topics.raw(A, kind, topic_district), reason)
    after_each(pcity, victim)


def test_02_without_a_topic_district_the_payloads_or_the_positions_places_it(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    # A unit naming the south's Gangnam-gu from a north position: the south's, by design.
    pcity.send_as(A, "responder", unit("unit-m2", JUNG, district="Gangnam-gu"))
    assert taken_by(pcity, "unit-m2") == ["south"]
    # An SOS has no district field: an extra one is ignored and its position decides.
    pcity.send_as(A, "sos", {**sos("m-d1", "phone-d1", A, NORTH_BANK), "district": "Gangnam-gu"})
    assert taken_by(pcity, "m-d1") == ["north"]
    wait(lambda: [s.home for _, s in units(pcity.retained(), "unit-m2")] == ["Gangnam-gu"], "m2")
    after_each(pcity, victim)


@pytest.mark.parametrize(
    ("level", "expect"), HOSTILE_LEVELS, ids=[repr(x[:12]) for x, _ in HOSTILE_LEVELS]
)
def test_03_a_hostile_district_level_reaches_no_core(
    pcity: PartitionedCity, victim: dict[str, Any], level: str, expect: str
) -> None:
    token = "cam-level-" + hashlib.sha256(level.encode()).hexdigest()[:10]
    before = pcity.refusal_counts()
    topic = f"{topics.ROOT}/raw/{A}/camera/{level}"
    pcity.send(A, topic, msgspec.json.encode(camera(token, NORTH_BANK)), expect=expect)
    # Both cores subscribe to their districts by exact name: nothing else is read.
    assert taken_by(pcity, token) == []
    assert refused_since(pcity, before) == {"north": 0, "south": 0}
    after_each(pcity, victim)


def test_04_the_cores_topics_are_not_a_sources(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    lend = {"type": "cmd", "cmd_id": "lend-9", "operator": "ansim-core-north", "action": "lend",
            "incident_id": "north-000001", "responder_id": "unit-vs", "ts": time.time()}  # fmt: skip
    answer = {"type": "reply", "cmd_id": "lend-1", "operator": "ansim-core-north", "ok": True,
              "ts": time.time()}  # fmt: skip
    refused = [
        (topics.cmd("ansim-core-north", "south"), lend),  # a LEND, as the north's core
        (topics.reply("ansim-core-north"), answer),  # the south's answer to one
        (topics.cmd(A, "south"), {**lend, "operator": A}),
        (topics.presence(A), {"type": "presence", "operator": A, "online": True, "ts": 1.0}),
        (topics.raw(VICTIM, "responder", "Guro-gu"), unit("unit-vs", GURO, status="off-duty")),
        (topics.state_responder("Guro-gu", "unit-vs"), unit("unit-vs", GURO)),
    ]
    for topic, message in refused:
        pcity.send(A, topic, msgspec.json.encode(message), expect="refused Not authorized")
    after_each(pcity, victim)


THEIRS = [
    # kind, message, topic district ("": none), who refuses it
    ("cctv", cctv("ev-t1", "cam-vs"), "Yeongdeungpo-gu", ("north", "south")),
    ("cctv", cctv("ev-t2", "cam-vn"), "Mapo-gu", ("north", "south")),
    ("camera", camera("cam-vn", JUNG, status="tampered"), "Mapo-gu", ("north", "south")),
    ("camera", camera("cam-vs", SOUTH_BANK, status="offline"), "", ("south",)),
    ("responder", unit("unit-vs", GURO, status="off-duty"), "Guro-gu", ("south",)),
    ("responder", unit("unit-vn", JUNG, status="off-duty"), "Jung-gu", ("north",)),
    ("responder", unit("unit-vn", JUNG, status="off-duty"), "", ("north",)),
]


@pytest.mark.parametrize("case", THEIRS)
def test_05_the_victims_ids_are_refused_by_every_core_that_knows_them(
    pcity: PartitionedCity, victim: dict[str, Any], case: tuple[Any, ...]
) -> None:
    kind, message, district, refusers = case
    before = pcity.refusal_counts()
    pcity.send_as(A, kind, {**message, "ts": time.time()}, district)
    assert refused_since(pcity, before) == {p: int(p in refusers) for p in PARTS}
    for p in refusers:
        assert f"is reported by {VICTIM} ([owners] configuration)" in pcity.dead(p)[-1][1]
    after_each(pcity, victim)


def test_06_border_evidence_and_units_are_context_marked_as_the_neighbours(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    """By design, as without partitions: any source's camera near an SOS adds its event,
    any unit near it is ranked; the north opens nothing for them and marks the unit."""
    north_id = victim["north incident"][0]
    pcity.send_as(A, "camera", camera("cam-mb", (SOUTH_BANK[0] - 0.0003, SOUTH_BANK[1])),
                  "Yeongdeungpo-gu")  # fmt: skip
    pcity.send_as(A, "cctv", cctv("ev-mb", "cam-mb"), "Yeongdeungpo-gu")
    pcity.send_as(A, "responder", unit("unit-mb", (NORTH_BANK[0] - 0.0005, NORTH_BANK[1])),
                  "Yeongdeungpo-gu")  # fmt: skip

    def seen() -> bool:
        found = incidents(pcity.retained())
        sos_state = found[north_id][1]
        return "cam-mb" in [e.source for e in sos_state.events] and "unit-mb" in [
            r.responder_id for r in sos_state.recommended
        ]

    wait(seen, "the scream on the victim's SOS, the unit among its recommendations")
    found = incidents(pcity.retained())
    sos_state = found[north_id][1]
    assert [r.home for r in sos_state.recommended if r.responder_id == "unit-mb"] == [
        "Yeongdeungpo-gu"
    ]
    # The camera's owner opened its CCTV incident; the north opened none for it.
    assert [s.partition for _, s in found.values() if s.source == "cam-mb"] == ["south"]
    after_each(pcity, victim)


def test_07_positions_on_the_line_in_the_river_and_outside_are_taken_once(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    line = on_the_line(pcity)  # adjacent floats, either side of Mapo-gu / Yeongdeungpo-gu
    points = {"line-n": line[0], "line-s": line[1], "river": (37.5300, 126.9400), **OUTSIDE}
    for name, at in points.items():
        assert pcity.publish(A, topics.raw(A, "sos"), msgspec.json.encode(
            sos(f"pos-{name}.", f"phone-pos-{name}", A, at))) == "ok"  # fmt: skip
    pcity.sync(A)
    _, districts = placement(pcity)
    for name, at in points.items():
        where = taken_by(pcity, f"pos-{name}.")
        assert len(where) == 1, (name, where)
        if districts.in_service_area(*at):
            assert where == [owner_of(pcity, at)], name
    assert [owner_of(pcity, at) for at in line] == ["north", "south"]
    after_each(pcity, victim)


def test_08_a_flood_without_districts_is_taken_by_exactly_one_core(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    spots = [NORTH_BANK, SOUTH_BANK, *on_the_line(pcity), JUNG, GURO, GANGNAM, *MARK.values()]
    expected: dict[str, str] = {}
    for n in range(80):
        at, ident = spots[n % len(spots)], f"fl{n:03d}."
        kind = ("sos", "camera", "responder", "cctv")[n % 4]
        message = {"sos": sos(ident, f"phone-{ident}", A, at), "camera": camera(f"c-{ident}", at),
                   # Off duty: they must not crowd the victim's recommendations.
                   "responder": unit(f"u-{ident}", at, status="off-duty"),
                   "cctv": cctv(ident, f"c-{ident}", lat=at[0], lon=at[1])}[kind]  # fmt: skip
        assert pcity.publish(A, topics.raw(A, kind), msgspec.json.encode(message)) == "ok"
        expected[ident] = owner_of(pcity, at)
    # Placed, then refused by the one core they were placed in (outside the service
    # area: one of them, see test 10).
    refusals = [
        ("responder", unit("u-out.", OUTSIDE["busan"]), "outside the service area"),
        ("camera", camera("c-out.", OUTSIDE["beyond-nowon"]), "outside the service area"),
        ("responder", unit("u-old.", JUNG, ts=time.time() - 3 * 86400), "days old"),
    ]
    before = pcity.refusal_counts()
    for kind, message, _ in refusals:
        assert pcity.publish(A, topics.raw(A, kind), msgspec.json.encode(message)) == "ok"
    pcity.sync(A)
    for ident, owner in expected.items():
        assert taken_by(pcity, ident) == [owner], ident
    assert sum(refused_since(pcity, before).values()) == len(refusals)
    for _, message, why in refusals:
        ident = str(message.get("camera_id") or message.get("responder_id"))
        where = [p for p in PARTS for _, r in pcity.dead(p) if f" {ident}:" in r and why in r]
        assert len(where) == 1, (ident, where)
    assert [p for p in PARTS for _, r in pcity.dead(p) if " u-old.:" in r] == ["north"]
    after_each(pcity, victim)


def test_09_a_refusal_before_placement_is_one_dead_letter_in_the_home_partition(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    before = pcity.refusal_counts()
    pcity.send(A, topics.raw(A, "sos"), b"\xc1 not a message")
    pcity.send(A, f"{topics.ROOT}/raw/{A}/Mapo-gu", b"{}")  # a district as the kind
    pcity.send_as(A, "sos", sos("m-x1", "phone-x1", VICTIM, NORTH_BANK))  # the victim's name
    pcity.send_as(A, "responder", unit("unit-x1", GANGNAM, district="Atlantis-gu"))
    refused = refused_since(pcity, before)
    after_each(pcity, victim)
    assert refused == {"north": 4, "south": 0}


def test_10_a_position_outside_the_service_area_is_the_home_partitions(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    after_each(pcity, victim)
    assert {name: taken_by(pcity, f"pos-{name}.") for name in OUTSIDE} == {
        name: ["north"] for name in OUTSIDE
    }


def test_11_each_core_restarts_on_its_journal_and_nothing_changed(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    counts = pcity.refusal_counts()
    keys = {p: sos_keys(pcity, p) for p in PARTS}
    assert not set(keys["north"]) & set(keys["south"]), "an SOS journaled by both partitions"
    for p in PARTS:
        pcity.restart(p)
        after_each(pcity, victim)
    # A replay refuses nothing again and journals nothing more.
    assert pcity.refusal_counts() == counts
    assert {p: sos_keys(pcity, p) for p in PARTS} == keys


# --- attacks that once worked: each changes something, so they come last -------------


def test_12_an_alarm_resent_from_across_the_river_is_one_incident(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    pcity.send_as(A, "sos", sos("m-r1.", "phone-r1", A, NORTH_BANK))
    pcity.send_as(A, "sos", sos("m-r1.", "phone-r1", A, SOUTH_BANK))  # 222 m on: GPS jitter
    after_each(pcity, victim)
    assert len(taken_by(pcity, "m-r1.")) == 1, taken_by(pcity, "m-r1.")


def test_13_an_sos_published_into_a_district_is_no_incident_of_another_partitions_district(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    pcity.send_as(A, "sos", sos("m-z1.", "phone-z1", A, NORTH_BANK), "Gangnam-gu")
    partitions, _ = placement(pcity)

    def misplaced() -> list[tuple[str, str]]:
        found = incidents(pcity.retained())
        return [(s.id, s.home) for _, s in found.values()
                if s.home != "unknown" and partitions.owner(s.home) != s.partition]  # fmt: skip

    settle(lambda: bool(misplaced()))
    after_each(pcity, victim)
    assert misplaced() == []


def test_14_a_districts_closed_list_keeps_every_closed_incident(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    pcity.send_as(A, "sos", sos("m-k1.", "phone-k1", A, NORTH_BANK), "Gangnam-gu")
    pcity.send_as(A, "sos", sos("m-k2.", "phone-k2", A, NORTH_BANK))
    devices = ("phone-k1", "phone-k2")
    settle(lambda: len(raised_by(pcity, devices)) == 2)
    mine = raised_by(pcity, devices)
    for incident in mine:
        reply = command(pcity, incident.partition, action="false-alarm",
                        incident_id=incident.id, disposition="attack test")  # fmt: skip
        assert reply.ok, reply.reason
    closed = topics.state_closed("Mapo-gu")

    def listed() -> set[str]:
        listing = pcity.retained().get(closed)
        return {i.id for i in getattr(listing, "incidents", ())}

    settle(lambda: {i.id for i in mine} <= listed())
    after_each(pcity, victim)
    assert {i.id for i in mine} <= listed(), (mine, listed())


def test_15_a_positionless_cctv_event_reaches_its_cameras_core(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    pcity.send_as(A, "camera", camera("cam-u1", GURO))  # placed in the south by its position
    pcity.send_as(A, "cctv", cctv("ev-u1.", "cam-u1"))
    after_each(pcity, victim)
    assert taken_by(pcity, "ev-u1.") == ["south"], {p: pcity.dead(p)[-1:] for p in PARTS}


def test_16_a_camera_naming_no_district_of_the_city_cannot_blank_a_neighbours_page(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    at = (SOUTH_BANK[0] - 0.001, SOUTH_BANK[1])  # Yeongdeungpo-gu, the south's
    pcity.send_as(A, "camera", camera("cam-atl", at, district="Atlantis-gu"))
    settle(lambda: bool(cameras(pcity.retained(), "cam-atl")))
    state = pcity.retained()
    assert cameras(state, "cam-atl"), "the attacker's camera was not published"
    assert cameras(state, "cam-vs"), "the victim's camera vanished from the city's view"


def test_17_a_unit_id_of_one_partition_cannot_be_claimed_in_the_other(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    before = pcity.refusal_counts()
    pcity.send_as(A, "responder", unit("unit-vn", GANGNAM, status="off-duty"), "Gangnam-gu")
    assert refused_since(pcity, before)["north"] == 1  # the north knows the victim's
    settle(lambda: len(units(pcity.retained(), "unit-vn")) > 1)
    assert [t for t, _ in units(pcity.retained(), "unit-vn")] == [
        topics.state_responder("Jung-gu", "unit-vn")
    ]


def test_17b_a_cap_sender_of_one_partition_cannot_be_spoken_for_in_the_other(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    pcity.send_as(VICTIM, "alert", alert("flood-1", JUNG, "Flash flood"))  # the north's
    before = pcity.refusal_counts()
    pcity.send_as(A, "alert", alert("fake-1", JUNG, "Evacuate now"))
    assert refused_since(pcity, before) == {"north": 1, "south": 0}
    pcity.send_as(A, "alert", alert("fake-2", GANGNAM, "Evacuate now"))  # the south's
    assert refused_since(pcity, before) == {"north": 1, "south": 1}, "spoke for the sender"


def test_18_the_victims_unit_id_is_never_ranked_from_the_attackers_reports(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    """F6 was: the north ranked the attacker's unit-vs 11 m from the victim's SOS, and
    its LEND got the victim's real unit-vs of Guro-gu, 7 km away. Owners are named in a
    city of partitions, so both cores refuse the report (and a LEND names the source it
    ranked: tests/engine/test_lending_source.py)."""
    north_id = victim["north incident"][0]
    near = (NORTH_BANK[0] - 0.0001, NORTH_BANK[1])  # 11 m from the victim's SOS
    before = pcity.refusal_counts()
    pcity.send_as(A, "responder", unit("unit-vs", near), "Yeongdeungpo-gu")
    assert refused_since(pcity, before) == {"north": 1, "south": 1}

    def ranked() -> bool:
        found = incidents(pcity.retained())[north_id][1]
        return "unit-vs" in [r.responder_id for r in found.recommended]

    assert not settle(ranked)
    ((_, real),) = units(pcity.retained(), "unit-vs")
    assert (real.status, real.incident_id) == (ResponderStatus.AVAILABLE, None), real


def test_19_a_unit_that_changes_partition_leaves_no_stale_state(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    pcity.send_as(VICTIM, "responder", unit("unit-vm", JUNG), "Jongno-gu")
    wait(lambda: bool(units(pcity.retained(), "unit-vm")), "the victim's second unit")
    pcity.send_as(VICTIM, "responder", unit("unit-vm", GANGNAM), "Gangnam-gu")
    settle(lambda: len(units(pcity.retained(), "unit-vm")) > 1)
    assert [t for t, _ in units(pcity.retained(), "unit-vm")] == [
        topics.state_responder("Gangnam-gu", "unit-vm")
    ]


def test_20_after_everything_both_cores_restart_and_the_victims_sos_are_theirs(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    counts = pcity.refusal_counts()
    for p in PARTS:
        pcity.restart(p)
    assert all(pcity.alive(p) for p in PARTS)
    now = victim_now(pcity)
    for p in PARTS:
        # Who, where, whose: the dispatch of test 18 may have moved its status on.
        assert now[f"{p} incident"][:7] == victim[f"{p} incident"][:7]
        assert f"sos:{VICTIM}:v-{p}" in sos_keys(pcity, p)
        assert all(reason.strip() for _, reason in pcity.dead(p))
    assert pcity.refusal_counts() == counts


def test_21_a_fresh_city_wide_console_renders_what_is_left(
    pcity: PartitionedCity, victim: dict[str, Any]
) -> None:
    screens = city_console_screens(pcity, [victim[f"{p} incident"][0] for p in PARTS])
    for screen in screens:  # SVG text: an escape that reached the terminal stands in it
        assert "\x1b" not in screen and "\x07" not in screen
    assert all(pcity.alive(p) for p in PARTS)
