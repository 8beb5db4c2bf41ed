"""Placement and refusals in a partitioned city, at the Reader (docs/partitions.md):
each message is recorded by exactly one core, a refusal before placement by the home
partition's, and an SOS or a public alert is placed by its position, not by a topic."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from console.config import Config, JournalConfig
from console.config.sections import CoreConfig
from console.core.ingest import Accepted, Adapted, Elsewhere, Reader, Refused
from console.core.partition_wiring import PartitionWiring
from console.core.service import Core
from console.engine.engine import Engine
from console.engine.partitions import district_of_message
from console.journal.store import RecordKind, open_journal
from protocols import codec, topics
from protocols.mqtt import Incoming
from protocols.public_alert import PublicAlert
from protocols.schemas import (
    CameraHealth,
    CameraHealthStatus,
    ResponderReport,
    ResponderStatus,
    UnitKind,
)
from tests.engine.test_engine_support import DAY, cctv, sos
from tests.partitioned import NORTH, SOUTH

PARTS = ("north", "south")
MAPO = (37.5594, 126.9085)
GANGNAM = (37.5172, 127.0473)
YEONGDEUNGPO = (37.5222, 126.9103)
GURO = (37.4943, 126.8560)
OUTSIDE = {"zero": (0.0, 0.0), "busan": (35.1, 129.0), "beyond-nowon": (37.9, 127.0)}
Outcome = Accepted | Refused | Elsewhere


def config(partition: str | None = None) -> Config:
    if partition is None:
        return Config()
    return Config(partitions={"north": NORTH, "south": SOUTH}, core=CoreConfig(partition=partition))


class PartitionCore:
    """One partition's intake as the live core binds it: the engine judges, the wiring
    places what comes without a district."""

    def __init__(self, partition: str | None) -> None:
        cfg = config(partition)
        self.engine = Engine(cfg.engine_settings(), cfg.city.district_map())
        self.wiring = PartitionWiring(cfg, f"ansim-core-{partition}", cfg.city.district_map())
        self.reader = Reader(cfg)
        placer = self.wiring.placed_elsewhere if self.wiring.partitions.configured else None
        self.reader.bind(self.engine, placer)

    def read(self, topic: str, payload: bytes) -> Outcome:
        result = self.reader.read(topic, payload, DAY)
        assert not isinstance(result, Adapted)  # no foreign formats here
        if isinstance(result, Accepted):
            self.engine.handle_event(result.message, DAY, source=result.source or None)  # type: ignore[arg-type]
        return result


def city() -> dict[str, PartitionCore]:
    return {p: PartitionCore(p) for p in PARTS}


def each(cores: dict[str, PartitionCore], topic: str, message: object) -> dict[str, Outcome]:
    payload = message if isinstance(message, bytes) else codec.encode(message)
    return {p: core.read(topic, payload) for p, core in cores.items()}


def recorded(outcomes: dict[str, Outcome]) -> dict[str, str]:
    """Who records it: 'taken', 'dead' (with nothing else), else nothing."""
    return {
        p: "taken" if isinstance(r, Accepted) else "dead"
        for p, r in outcomes.items()
        if not isinstance(r, Elsewhere)
    }


def unit(ident: str, at: tuple[float, float], district: str | None = None) -> ResponderReport:
    return ResponderReport(responder_id=ident, kind=UnitKind.POLICE, lat=at[0], lon=at[1],
                           status=ResponderStatus.AVAILABLE, ts=DAY, district=district)  # fmt: skip


def camera(ident: str, at: tuple[float, float], district: str | None = None) -> CameraHealth:
    return CameraHealth(camera_id=ident, status=CameraHealthStatus.ONLINE, ts=DAY, lat=at[0],
                        lon=at[1], district=district, name=ident)  # fmt: skip


def alert(ident: str, at: tuple[float, float] | None) -> PublicAlert:
    lat, lon = at if at is not None else (None, None)
    return PublicAlert(identifier=ident, sender="police@seoul.go.kr", sent=DAY,
                       msg_type="Alert", priority=1, headline="Flood", lat=lat, lon=lon)  # fmt: skip


# --- F3: a refusal before placement is the home partition's --------------------------

BEFORE_PLACEMENT = [
    ("undecodable", topics.raw("cam-2", "sos"), b"\xc1 not a message"),
    ("a district as the kind", f"{topics.ROOT}/raw/cam-2/Mapo-gu", b"{}"),
    ("another source's SOS", topics.raw("cam-2", "sos"), sos("x1", source="cam-1")),
    ("a district the city lacks", topics.raw("cam-2", "responder"),
     unit("unit-x1", GANGNAM, district="Atlantis-gu")),
]  # fmt: skip


@pytest.mark.parametrize("case", BEFORE_PLACEMENT, ids=[c[0] for c in BEFORE_PLACEMENT])
def test_a_refusal_before_placement_is_recorded_by_the_home_partition_alone(
    case: tuple[str, str, object],
) -> None:
    _, topic, message = case
    outcomes = each(city(), topic, message)
    assert recorded(outcomes) == {"north": "dead"}
    assert isinstance(outcomes["south"], Elsewhere)
    # Unpartitioned: the one core records it, as before partitions.
    payload = message if isinstance(message, bytes) else codec.encode(message)
    assert isinstance(PartitionCore(None).read(topic, payload), Refused)


def test_an_unreadable_message_before_placement_is_the_home_partitions_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cores = city()
    for core in cores.values():

        def explode(*args: object) -> None:
            raise OverflowError("a reader's arithmetic")

        monkeypatch.setattr(core.reader, "_read", explode)
    outcomes = each(cores, topics.raw("cam-2", "sos"), sos("x2"))
    assert recorded(outcomes) == {"north": "dead"}
    assert str(getattr(outcomes["north"], "reason", "")).startswith("unreadable: OverflowError")


def test_a_refusal_after_placement_is_recorded_by_the_partition_it_was_placed_in() -> None:
    cores = city()
    for p in PARTS:  # the victim's units, one in each partition
        each(
            cores,
            topics.raw("cam-1", "responder"),
            unit(f"unit-{p}", MAPO if p == "north" else GURO),
        )
    for ident, at, owner in (("unit-north", MAPO, "north"), ("unit-south", GURO, "south")):
        outcomes = each(cores, topics.raw("cam-2", "responder"), unit(ident, at))
        assert recorded(outcomes) == {owner: "dead"}
        assert "belongs to source cam-1" in str(getattr(outcomes[owner], "reason", ""))


def test_a_refusal_on_a_district_topic_is_recorded_by_every_core_that_reads_it() -> None:
    """Cores subscribe to a district's topics by name: each one that got it records it."""
    outcomes = each(city(), topics.raw("cam-2", "camera", "Gangnam-gu"),
                    camera("cam-m1", GANGNAM, district="Mapo-gu"))  # fmt: skip
    assert recorded(outcomes) == {"north": "dead", "south": "dead"}


# --- F4 and F10: what places a message without a topic district ----------------------


@pytest.mark.parametrize("name", sorted(OUTSIDE))
def test_a_position_outside_the_service_area_is_the_home_partitions(name: str) -> None:
    at = OUTSIDE[name]
    districts = config().city.district_map()
    assert district_of_message(sos("o1", lat=at[0], lon=at[1]), districts) is None
    outcomes = each(city(), topics.raw("app", "sos"), sos(f"o-{name}", lat=at[0], lon=at[1]))
    assert recorded(outcomes) == {"north": "taken"}
    unit_outcomes = each(city(), topics.raw("trk", "responder"), unit("u-out", at))
    assert recorded(unit_outcomes) == {"north": "dead"}  # the home core refuses it, alone


def test_a_payload_district_the_city_lacks_does_not_place_a_camera() -> None:
    districts = config().city.district_map()
    atl = camera("cam-atl", YEONGDEUNGPO, district="Atlantis-gu")
    assert district_of_message(atl, districts) == "Yeongdeungpo-gu"
    assert (
        district_of_message(camera("c", YEONGDEUNGPO, district="Mapo-gu"), districts) == "Mapo-gu"
    )
    cores = city()
    outcomes = each(cores, topics.raw("cam-2", "camera"), atl)
    assert recorded(outcomes) == {"south": "taken"}
    # Its page is the south's, beside the south's own camera, never the north's.
    each(cores, topics.raw("cam-1", "camera"), camera("cam-vs", YEONGDEUNGPO))
    assert set(cores["south"].engine.ctx.district_cams["Yeongdeungpo-gu"]) == {"cam-atl", "cam-vs"}
    assert "Yeongdeungpo-gu" not in cores["north"].engine.ctx.district_cams


# --- F1: an SOS or an alert is placed by its position, never by a topic ---------------


@pytest.mark.parametrize("partition", [None, "south"], ids=["one partition", "partitioned"])
def test_an_sos_in_another_districts_topic_is_refused_by_the_core_that_got_it(
    partition: str | None,
) -> None:
    core = PartitionCore(partition)
    topic = topics.raw("cam-2", "sos", "Gangnam-gu")
    result = core.read(topic, codec.encode(sos("z1", lat=MAPO[0], lon=MAPO[1], source="cam-2")))
    assert isinstance(result, Refused)
    assert result.reason == (
        "an SOS is placed by its position (in Mapo-gu), not by the topic's district"
        " 'Gangnam-gu': publish it without a district"
    )
    assert core.engine.open_incident_ids() == []
    # Its own district's topic is accepted, as it would be without one.
    at = GANGNAM
    fine = core.read(topic, codec.encode(sos("z2", lat=at[0], lon=at[1], source="cam-2")))
    assert isinstance(fine, Accepted) and fine.district == "Gangnam-gu"


def test_a_journaled_sos_from_before_the_rule_replays_as_it_was_taken() -> None:
    """The rule refuses before the journal; a record journaled before it existed is
    replayed by an unbound Reader (console.core.rebuild) and never lost on a restart."""
    topic = topics.raw("cam-2", "sos", "Gangnam-gu")
    payload = codec.encode(sos("z1", lat=MAPO[0], lon=MAPO[1], source="cam-2"))
    replayed = Reader(config()).read(topic, payload, DAY)
    assert isinstance(replayed, Accepted)


@pytest.mark.parametrize(
    ("at", "where"),
    [(MAPO, "in Mapo-gu"), (None, "it has none"), (OUTSIDE["busan"], "outside the service area")],
)
def test_a_public_alert_in_a_district_topic_must_be_placed_there(
    at: tuple[float, float] | None, where: str
) -> None:
    core = PartitionCore(None)
    result = core.read(topics.raw("police", "alert", "Gangnam-gu"), codec.encode(alert("a1", at)))
    assert isinstance(result, Refused)
    assert result.reason.startswith(
        f"a public alert is placed by its districts or its position ({where}), not by"
    )
    ok = core.read(topics.raw("police", "alert", "Gangnam-gu"), codec.encode(alert("a2", GANGNAM)))
    assert isinstance(ok, Accepted)
    # Naming the district places it there, wherever its centre (the engine homes it so).
    named = msgspec.structs.replace(alert("a3", at), districts=("Atlantis-gu", "Gangnam-gu"))
    ok = core.read(topics.raw("police", "alert", "Gangnam-gu"), codec.encode(named))
    assert isinstance(ok, Accepted)


def test_an_alert_naming_a_district_is_placed_in_that_districts_partition() -> None:
    """Where the engine homes it (console.engine.alerts): so no core opens an incident in
    another partition's district, whose closed list it would overwrite."""
    named = msgspec.structs.replace(alert("a4", MAPO), districts=("Gangnam-gu",))
    cores = city()
    assert recorded(each(cores, topics.raw("police", "alert"), named)) == {"south": "taken"}
    (incident_id,) = cores["south"].engine.open_incident_ids()
    assert cores["south"].engine.incident_state(incident_id, DAY).home == "Gangnam-gu"
    unnamed = alert("a5", None)  # neither: the home partition's
    assert recorded(each(cores, topics.raw("police", "alert"), unnamed)) == {"north": "taken"}


def _matches(pattern: str, topic: str) -> bool:
    rx = "^" + re.escape(pattern).replace(r"\+", "[^/]+").replace("/\\#", "(/.*)?") + "$"
    return re.match(rx, topic) is not None


@pytest.mark.parametrize("kind", [topics.RAW_SOS, topics.RAW_ALERT])
def test_only_a_districts_owner_reads_its_sos_and_alert_topics(kind: str) -> None:
    """So the refusal above is recorded once, and the core whose district the position is
    never got the message: no other core would have taken it."""
    cfg = config("north")
    partitions, districts = cfg.partition_map(), cfg.city.district_map()
    wirings = {p: PartitionWiring(config(p), f"ansim-core-{p}", districts) for p in PARTS}
    subscribed = {p: [f for f, _ in w.subscriptions([])] for p, w in wirings.items()}
    for district in districts.names:
        topic = topics.raw("cam-2", kind, district)
        readers = [p for p in PARTS if any(_matches(f, topic) for f in subscribed[p])]
        assert readers == [partitions.owner(district)], district


# --- F8: what the source must do about a CCTV event nobody can place ------------------


def test_a_positionless_cctv_event_of_a_camera_placed_elsewhere_says_what_to_do() -> None:
    cores = city()
    assert recorded(each(cores, topics.raw("cam-2", "camera"), camera("cam-u1", GURO))) == {
        "south": "taken"
    }
    outcomes = each(cores, topics.raw("cam-2", "cctv"), cctv("ev-u1", "cam-u1"))
    assert recorded(outcomes) == {"north": "dead"}
    reason = str(getattr(outcomes["north"], "reason", ""))
    assert "camera cam-u1 has no known position" in reason
    assert "publish the camera into its district" in reason and "lat and lon" in reason
    # Unpartitioned, the engine's own reason is enough (the camera is simply unknown).
    alone = PartitionCore(None).read(topics.raw("cam-2", "cctv"), codec.encode(cctv("e", "c9")))
    assert isinstance(alone, Refused) and "district" not in alone.reason


# --- F3 for presence: the home partition's core records a bad one --------------------


@pytest.mark.parametrize(("partition", "dead"), [("north", 1), ("south", 0), (None, 1)])
def test_a_bad_presence_is_a_dead_letter_of_the_home_partition_only(
    tmp_path: Path, partition: str | None, dead: int
) -> None:
    journal = open_journal(JournalConfig(path=str(tmp_path / "j.db")))
    core = Core(config(partition), journal, client_id=f"ansim-core-{partition}")
    deep = b'{"junk":' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    core.handle(Incoming(topics.presence("op2"), deep, qos=1, retain=False, mid=1))
    journal.commit()
    letters = list(journal.records(kinds=[RecordKind.DEAD]))
    journal.close()
    assert (len(letters), core.rejected_total) == (dead, dead)
