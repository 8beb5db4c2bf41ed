"""The placement memory of a partitioned city's cores (console.core.placement_memory,
docs/partitions.md, "Placement"), at the Reader as the live core binds it: an alarm resent
from across a partition border is one partition's (F2), a CCTV event with neither district
nor position reaches the partition its camera was placed in (F8), and whatever a core
forgot, no message is left by every core."""

from __future__ import annotations

import random

import pytest

from console.config import Config
from console.config.sections import CoreConfig
from console.core.ingest import Accepted, Adapted, Elsewhere, Reader, Refused
from console.core.partition_wiring import PartitionWiring
from console.core.placement_memory import PlacementMemory
from console.engine.engine import Engine
from console.engine.settings import OwnersConfig
from console.engine.trust import Registry
from protocols import codec, topics
from protocols.schemas import CameraHealth, CameraHealthStatus
from tests.engine.test_engine_support import DAY, cctv, sos
from tests.partitioned import NORTH, SOUTH

PARTS = ("north", "south")
VICTIM, ATTACKER = "cam-1", "cam-2"
NORTH_BANK = (37.5418, 126.9120)  # Mapo-gu (the north's), on the Han
SOUTH_BANK = (37.5398, 126.9120)  # Yeongdeungpo-gu (the south's), 222 m across the river
JUNG = (37.5601, 126.9960)  # the north's
GURO = (37.4943, 126.8560)  # the south's
BUSAN = (35.1, 129.0)  # outside the service area: no district, the home partition's
CAMERAS = {VICTIM: ["cam-v*"], ATTACKER: ["cam-m*"]}
Outcome = Accepted | Refused | Elsewhere


def config(partition: str) -> Config:
    return Config(
        partitions={"north": NORTH, "south": SOUTH},
        core=CoreConfig(partition=partition),
        owners=OwnersConfig(first_come=False, cameras=CAMERAS),
    )


class PartitionCore:
    """One partition's intake as the live core binds it; :meth:`restart` keeps what the
    journal rebuilds (the engine) and loses what the process held (the memory)."""

    def __init__(self, partition: str) -> None:
        self.partition = partition
        self.cfg = config(partition)
        self.engine = Engine(self.cfg.engine_settings(), self.cfg.city.district_map())
        self.reader = Reader(self.cfg)
        self.restart()

    def restart(self) -> None:
        self.wiring = PartitionWiring(
            self.cfg, f"ansim-core-{self.partition}", self.cfg.city.district_map()
        )
        self.reader.bind(self.engine, self.wiring.placed_elsewhere)

    def read(self, topic: str, payload: bytes, now: float) -> Outcome:
        result = self.reader.read(topic, payload, now)
        assert not isinstance(result, Adapted)
        if isinstance(result, Accepted):
            self.engine.handle_event(result.message, now, source=result.source or None)  # type: ignore[arg-type]
        return result


def city() -> dict[str, PartitionCore]:
    return {p: PartitionCore(p) for p in PARTS}


def each(
    cores: dict[str, PartitionCore], topic: str, message: object, now: float = DAY
) -> dict[str, str]:
    """Who takes it: 'taken' (journaled) or 'dead' (a dead letter); the others leave it."""
    payload = codec.encode(message)
    outcomes = {p: core.read(topic, payload, now) for p, core in cores.items()}
    return {
        p: "taken" if isinstance(r, Accepted) else "dead"
        for p, r in outcomes.items()
        if not isinstance(r, Elsewhere)
    }


def alarm(alarm_id: str, at: tuple[float, float], source: str = "app") -> object:
    return sos(alarm_id, device=f"phone-{alarm_id}", lat=at[0], lon=at[1], source=source)


def camera(ident: str, at: tuple[float, float] | None, district: str | None = None) -> CameraHealth:
    lat, lon = at if at is not None else (None, None)
    return CameraHealth(camera_id=ident, status=CameraHealthStatus.ONLINE, ts=DAY, lat=lat,
                        lon=lon, district=district, name=ident)  # fmt: skip


SOS = topics.raw("app", "sos")


def cam_topic(source: str) -> str:
    return topics.raw(source, "camera")


def cctv_topic(source: str) -> str:
    return topics.raw(source, "cctv")


# --- F2: an alarm resent from across the border --------------------------------------


@pytest.mark.parametrize(
    ("first", "then", "owner"),
    [
        (NORTH_BANK, SOUTH_BANK, "north"),
        (SOUTH_BANK, NORTH_BANK, "south"),
        (BUSAN, SOUTH_BANK, "north"),
    ],
    ids=["north then south", "south then north", "no district then south"],
)
def test_a_resent_alarm_goes_where_its_first_sighting_was_placed(
    first: tuple[float, float], then: tuple[float, float], owner: str
) -> None:
    cores = city()
    assert each(cores, SOS, alarm("r1", first)) == {owner: "taken"}
    for at in (then, first, then):
        assert each(cores, SOS, alarm("r1", at), DAY + 30.0) == {owner: "taken"}
    assert [len(c.engine.open_incident_ids()) for c in cores.values()] == [
        int(p == owner) for p in PARTS
    ]
    # Another alarm of the same device is new: its position places it.
    assert each(cores, SOS, alarm("r2", then)) == {
        "south" if owner == "north" else "north": "taken"
    }


def test_the_owner_knows_its_alarm_from_its_journal_after_a_restart() -> None:
    cores = city()
    each(cores, SOS, alarm("r3", NORTH_BANK))
    cores["north"].restart()  # its memory is gone; its engine holds the alarm
    assert each(cores, SOS, alarm("r3", SOUTH_BANK), DAY + 60.0) == {"north": "taken"}


def test_what_is_left_a_core_restarted_after_leaving_an_alarm_elsewhere_takes_a_resend() -> None:
    """Documented (docs/partitions.md, "Not done yet"): two incidents, nothing lost."""
    cores = city()
    each(cores, SOS, alarm("r4", NORTH_BANK))
    cores["south"].restart()
    assert each(cores, SOS, alarm("r4", SOUTH_BANK), DAY + 60.0) == {
        "north": "taken",
        "south": "taken",
    }


def test_the_alarm_memory_is_bounded_in_count_and_in_time() -> None:
    cfg = config("north")
    districts = cfg.city.district_map()
    memory = PlacementMemory(districts, Registry({}), sos_max=3, sos_window_s=600.0)
    for n in range(5):
        memory.place(alarm(f"b{n}", NORTH_BANK), "app", DAY + n)
    assert list(memory.sos) == ["app/b2", "app/b3", "app/b4"]  # the newest, in order
    # A resend keeps its first sighting's place and its age.
    assert memory.place(alarm("b2", SOUTH_BANK), "app", DAY + 10).district == "Mapo-gu"
    assert memory.place(alarm("b9", SOUTH_BANK), "app", DAY + 604.0).district == "Yeongdeungpo-gu"
    assert list(memory.sos) == ["app/b4", "app/b9"]  # b2 and b3 were older than 600 s
    # Let go: a resend is placed by its position again.
    assert memory.place(alarm("b0", SOUTH_BANK), "app", DAY + 604.0).district == "Yeongdeungpo-gu"
    assert memory.size() == (3, 0)


# --- F8: a CCTV event with neither district nor position -----------------------------


def test_a_positionless_cctv_event_goes_to_its_cameras_partition() -> None:
    cores = city()
    assert each(cores, cam_topic(ATTACKER), camera("cam-m1", GURO)) == {"south": "taken"}
    assert each(cores, cctv_topic(ATTACKER), cctv("e1", "cam-m1")) == {"south": "taken"}
    assert cores["south"].engine.open_incident_ids()  # its owner opened the CCTV incident
    # With a position or a district, the event places itself, as before.
    assert each(cores, cctv_topic(ATTACKER), cctv("e2", "cam-m1", lat=JUNG[0], lon=JUNG[1])) == {
        "north": "taken"
    }


def test_a_camera_reported_again_elsewhere_moves_its_events_with_it() -> None:
    cores = city()
    each(cores, cam_topic(ATTACKER), camera("cam-m2", GURO))
    each(cores, cam_topic(ATTACKER), camera("cam-m2", JUNG))
    assert each(cores, cctv_topic(ATTACKER), cctv("e3", "cam-m2")) == {"north": "taken"}
    # A report without a position places nothing: the memory keeps the camera's place.
    assert each(cores, cam_topic(ATTACKER), camera("cam-m2", None)) == {"north": "taken"}
    each(cores, cam_topic(ATTACKER), camera("cam-m2", GURO))
    each(cores, cam_topic(ATTACKER), camera("cam-m2", None))
    assert each(cores, cctv_topic(ATTACKER), cctv("e4", "cam-m2")) == {"south": "taken"}


def test_only_a_cameras_named_owner_moves_the_memory() -> None:
    cores = city()
    each(cores, cam_topic(VICTIM), camera("cam-v1", GURO))
    # The attacker reports the victim's camera in the north: refused there, remembered nowhere.
    assert each(cores, cam_topic(ATTACKER), camera("cam-v1", JUNG)) == {"north": "dead"}
    assert each(cores, cctv_topic(VICTIM), cctv("e5", "cam-v1")) == {"south": "taken"}
    # The attacker's own event of it is not placed by the victim's memory: the home
    # partition's core refuses it, alone.
    outcome = each(cores, cctv_topic(ATTACKER), cctv("e6", "cam-v1"))
    assert outcome == {"north": "dead"}


def test_what_no_core_remembers_keeps_todays_rule_and_its_hint() -> None:
    cores = city()
    # A camera no report placed: the home partition's core refuses its event, alone.
    assert each(cores, cctv_topic(ATTACKER), cctv("e7", "cam-m7")) == {"north": "dead"}
    result = cores["north"].read(cctv_topic(ATTACKER), codec.encode(cctv("e7", "cam-m7")), DAY)
    assert isinstance(result, Refused)
    assert "camera cam-m7 has no known position" in result.reason
    assert "publish the camera into its district" in result.reason
    assert "lat and lon" in result.reason and len(result.reason) <= 500
    # A camera no owner names: refused by the home partition's core, as any other source's.
    each(cores, cam_topic(ATTACKER), camera("cam-x1", GURO))
    assert each(cores, cctv_topic(ATTACKER), cctv("e8", "cam-x1")) == {"north": "dead"}


def test_a_camera_placed_by_a_payload_district_but_outside_the_area_is_not_remembered() -> None:
    cores = city()
    far = camera("cam-m3", BUSAN, district="Guro-gu")
    assert each(cores, cam_topic(ATTACKER), far) == {"south": "dead"}  # outside the area
    assert cores["south"].wiring.memory.size() == (0, 0)
    assert each(cores, cctv_topic(ATTACKER), cctv("e8", "cam-m3")) == {"north": "dead"}


def test_the_cameras_core_takes_its_events_after_a_restart() -> None:
    cores = city()
    each(cores, cam_topic(ATTACKER), camera("cam-m4", GURO))
    cores["south"].restart()  # no memory; its engine holds the camera
    assert each(cores, cctv_topic(ATTACKER), cctv("e9", "cam-m4")) == {"south": "taken"}
    # What is left: the home core restarted takes it too (a dead letter with the hint).
    cores["north"].restart()
    assert each(cores, cctv_topic(ATTACKER), cctv("e10", "cam-m4")) == {
        "north": "dead",
        "south": "taken",
    }


def test_a_sources_flood_of_its_own_cameras_never_pushes_out_anothers() -> None:
    cfg = config("north")
    memory = PlacementMemory(cfg.city.district_map(), Registry(CAMERAS), cameras_per_source=2)
    memory.place(camera("cam-v2", GURO), VICTIM, DAY)
    for n in range(10):
        memory.place(camera(f"cam-m{n}", JUNG), ATTACKER, DAY)
    assert memory.place(cctv("e11", "cam-v2"), VICTIM, DAY).district == "Guro-gu"
    assert list(memory.cameras[ATTACKER]) == ["cam-m8", "cam-m9"]
    assert memory.size() == (0, 3)


# --- whatever a core forgets, every message is taken --------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_no_message_is_left_by_every_core(seed: int) -> None:
    """Random resends, camera reports and positionless events, with restarts and a small
    memory: every message is taken by at least one core; with neither, by exactly one."""
    rng = random.Random(seed)
    cores = city()
    restarts = seed % 2 == 0
    if seed >= 4:  # a memory that lets go of almost everything
        for core in cores.values():
            core.wiring.memory.sos_max = 2
    spots = [NORTH_BANK, SOUTH_BANK, JUNG, GURO, BUSAN]
    now = DAY
    for step in range(300):
        now += rng.uniform(0.0, 30.0)
        roll = rng.random()
        if restarts and roll < 0.03:
            cores[rng.choice(PARTS)].restart()
            continue
        if roll < 0.5:
            topic, message = SOS, alarm(f"p{rng.randrange(12)}", rng.choice(spots))
        elif roll < 0.7:
            topic, message = (
                cam_topic(ATTACKER),
                camera(f"cam-m{rng.randrange(4)}", rng.choice(spots)),
            )
        else:
            topic, message = cctv_topic(ATTACKER), cctv(f"q{step}", f"cam-m{rng.randrange(5)}")
        takers = each(cores, topic, message, now)
        assert takers, (step, message)
        if not restarts and seed < 4:
            assert len(takers) == 1, (step, message, takers)


def test_what_is_left_a_camera_published_into_its_district_sends_bare_events_to_two() -> None:
    """Documented: no core remembers it (only its district's cores read its report), so the
    home partition takes its bare event, and so does the core whose journal registered it."""
    cores = city()
    topic = topics.raw(ATTACKER, "camera", "Guro-gu")  # the south's, no border of the north's
    assert isinstance(
        cores["south"].read(topic, codec.encode(camera("cam-m5", GURO)), DAY), Accepted
    )
    assert each(cores, cctv_topic(ATTACKER), cctv("e12", "cam-m5")) == {
        "north": "dead",
        "south": "taken",
    }
