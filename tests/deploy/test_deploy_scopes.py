"""deploy/: scoped seats and partitions' cores on the real broker (docs/partitions.md).

The module's Mosquitto runs deploy/mosquitto.conf with the ACL that
deploy/make-passwords.sh makes from the test's users plus: an office seat scoped to two
districts (``op-mapo``: Mapo-gu and Seodaemun-gu), a city-wide seat (``op-city``) and
the cores of two partitions (``ansim-core-north``, ``ansim-core-south``).

What Mosquitto 2.0 does with a seat that asks for more than its districts: the
subscription is granted (SUBACK "granted QoS 1", under MQTT 5 and 3.1.1 alike), and
every message is checked against the seat's read rights as it is delivered, so another
district's state never reaches it, retained or live. A refused read is proven by order,
as in test_deploy_security.py: the foreign district's message is published first, then
the seat's own; when the own one is the first to arrive, the other was never sent.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from protocols import topics
from tests.brokers import find_mosquitto
from tests.secure_broker import CORE, DEPLOY, NOT_AUTHORIZED, Client, DeployBroker

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto")

MakeClient = Callable[..., Client]
OFFICE = "op-mapo"
CITY_SEAT = "op-city"
NORTH, SOUTH = "ansim-core-north", "ansim-core-south"
# The lines the test adds to tests/secure_broker.USERS: the new syntax, with "-" for a
# generated password.
EXTRA_USERS = f"""
operator {OFFICE} - districts=Mapo-gu,Seodaemun-gu
operator {CITY_SEAT}
core {NORTH}
core {SOUTH}
"""
OWN, OTHER = "Mapo-gu", "Gangnam-gu"


def make_passwords(listing: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEPLOY / "make-passwords.sh"), str(listing), str(out)],
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployBroker]:
    broker = DeployBroker(tmp_path_factory.mktemp("scoped-broker"))
    # The broker's users, and ours: made again by the script (its passwords are kept).
    listing = broker.security_dir / "users"
    listing.write_text(listing.read_text() + EXTRA_USERS)
    done = make_passwords(listing, broker.security_dir)
    assert done.returncode == 0, done.stderr
    credentials = (broker.security_dir / "credentials").read_text().splitlines()
    broker.passwords = dict(line.split(" ", 1) for line in credentials)
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


@pytest.fixture
def client(deployed: DeployBroker, request: pytest.FixtureRequest) -> Iterator[MakeClient]:
    made: list[Client] = []
    test = request.node.name[-40:]

    def make(user: str, **options: Any) -> Client:
        c = Client(
            deployed, f"{user}-{test}-{len(made)}", user, deployed.passwords[user], **options
        )
        made.append(c)
        return c.connected()

    yield make
    for c in made:
        c.close()


def district_topics(district: str, tag: str) -> list[str]:
    """One topic of each kind of a district's state."""
    return [
        topics.state_incident(district, f"north-{tag}"),
        topics.state_responder(district, f"unit-{tag}"),
        topics.state_camera_page(district, 0),
        topics.state_closed(district),
    ]


# --- reading ----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [5, 4])
def test_a_scoped_seat_asking_for_the_whole_city_gets_only_its_districts(
    client: MakeClient, protocol: int
) -> None:
    core = client(CORE)
    retained = [*district_topics(OTHER, "retained"), topics.state_incident(OWN, "north-retained")]
    for topic in retained:
        core.publish(topic, b"own" if OWN in topic else b"other", retain=True)
    try:
        seat_asks_for_the_city(client, core, protocol)
    finally:
        for topic in retained:  # an empty retained message deletes it: the next test's city
            core.publish(topic, b"", retain=True)


def seat_asks_for_the_city(client: MakeClient, core: Client, protocol: int) -> None:
    office = client(OFFICE, protocol=protocol)
    # Granted, not refused: Mosquitto 2.0 checks the read rights per message instead.
    granted = office.subscribe(topics.STATE_ALL)
    assert [code.value for code in granted] == [1]
    got = office.next()
    assert (got.topic, got.payload, got.retain) == (
        topics.state_incident(OWN, "north-retained"),
        b"own",
        True,
    )
    for topic in district_topics(OTHER, "live"):
        core.publish(topic, b"other")
    for topic in district_topics(OWN, "live"):
        core.publish(topic, b"own")
    assert [(m.topic, m.payload) for m in office.drain()] == [
        (topic, b"own") for topic in district_topics(OWN, "live")
    ]


def test_a_scoped_seat_reads_its_districts_the_summaries_and_the_shelters(
    client: MakeClient,
) -> None:
    office = client(OFFICE)
    second = "Seodaemun-gu"
    office.subscribe(
        *topics.district_state(OWN),
        *topics.district_state(second),
        *topics.district_state(OTHER),  # asked, granted, never delivered
        topics.STATE_SUMMARIES,
        topics.STATE_SHELTERS,
        topics.presence("op1"),
    )
    core = client(CORE)
    for topic in district_topics(OTHER, "x"):
        core.publish(topic, b"other")
    wanted = [
        *district_topics(OWN, "x"),
        topics.state_cameras(OWN),  # the old whole-district cameras topic
        *district_topics(second, "x"),
        topics.state_summary("north"),
        topics.state_summary("south"),  # every partition's counts: the city at a glance
        topics.STATE_SHELTERS,
    ]
    for topic in wanted:
        core.publish(topic, b"yes")
    client("op1").publish(topics.presence("op1"), b"online")
    got = [m.topic for m in office.drain()]
    assert got == [*wanted, topics.presence("op1")]


def test_the_city_seat_reads_every_district(client: MakeClient) -> None:
    seat = client(CITY_SEAT)
    seat.subscribe(topics.STATE_ALL)
    core = client(CORE)
    sent = district_topics(OTHER, "city") + district_topics(OWN, "city")
    for topic in sent:
        core.publish(topic, b"state")
    assert [m.topic for m in seat.drain()] == sent


# --- commands -------------------------------------------------------------------------


def test_a_seat_commands_any_partition_under_its_own_id_only(client: MakeClient) -> None:
    north = client(NORTH)
    north.subscribe(topics.cmds_for("north"), topics.CMD_ALL)
    office = client(OFFICE)
    # The broker checks the id; the partition and the districts are the core's to check.
    assert office.publish(topics.cmd("op1", "north"), b"spoof").value == NOT_AUTHORIZED
    assert office.publish(f"{topics.cmd(OFFICE, 'north')}/x", b"deeper").value == NOT_AUTHORIZED
    office.publish(topics.cmd(OFFICE, "north"), b"to north")
    office.publish(topics.cmd(OFFICE), b"to the default")
    client("op1").publish(topics.cmd("op1", "north"), b"city-wide seat to north")
    assert [(m.topic, m.payload) for m in north.drain()] == [
        (topics.cmd(OFFICE, "north"), b"to north"),
        (topics.cmd(OFFICE), b"to the default"),
        (topics.cmd("op1", "north"), b"city-wide seat to north"),
    ]


# --- a partition's core ----------------------------------------------------------------


def test_a_partitions_core_has_the_cores_rights_under_its_own_name(client: MakeClient) -> None:
    north = client(NORTH)
    north.subscribe(topics.raws_in(OWN), topics.RAW_ALL, topics.PRESENCE_ALL)
    north.subscribe(topics.SYS_DROPPED)
    assert north.next().topic == topics.SYS_DROPPED  # retained by the broker
    camera = client("cam-1")
    camera.publish(topics.raw("cam-1", topics.RAW_CAMERA, OWN), b"into Mapo-gu")
    camera.publish(topics.raw("cam-1", topics.RAW_SOS), b"no district")
    assert north.publish(topics.presence(SOUTH), b"spoof").value == NOT_AUTHORIZED
    north.publish(topics.presence(NORTH), b"online")
    assert [m.payload for m in north.drain()] == [b"into Mapo-gu", b"no district", b"online"]
    office = client(OFFICE)
    office.subscribe(topics.reply(OFFICE), topics.state_incidents_in(OWN))
    assert not north.publish(topics.state_incident(OWN, "north-000001"), b"s").is_failure
    assert not north.publish(topics.reply(OFFICE), b"ok").is_failure
    assert not north.publish(topics.receipt("cam-1", "a1"), b"receipt").is_failure
    assert [m.payload for m in office.drain()] == [b"s", b"ok"]


# --- the generator ---------------------------------------------------------------------


def test_the_generated_block_of_a_scoped_seat(deployed: DeployBroker) -> None:
    acl = (deployed.security_dir / "acl").read_text()
    block = acl.split(f"\nuser {OFFICE}\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert block == [
        f"topic write ansim/v1/cmd/{OFFICE}",
        f"topic write ansim/v1/cmd/{OFFICE}/+",
        f"topic write ansim/v1/presence/{OFFICE}",
        "topic read ansim/v1/state/incident/Mapo-gu/#",
        "topic read ansim/v1/state/responder/Mapo-gu/#",
        "topic read ansim/v1/state/cameras/Mapo-gu/#",
        "topic read ansim/v1/state/closed/Mapo-gu",
        "topic read ansim/v1/state/incident/Seodaemun-gu/#",
        "topic read ansim/v1/state/responder/Seodaemun-gu/#",
        "topic read ansim/v1/state/cameras/Seodaemun-gu/#",
        "topic read ansim/v1/state/closed/Seodaemun-gu",
        "topic read ansim/v1/state/summary/#",
        "topic read ansim/v1/state/shift/#",
        "topic read ansim/v1/state/shelters",
        "topic read ansim/v1/presence/+",
    ]
    city = acl.split(f"\nuser {CITY_SEAT}\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert "topic read ansim/v1/state/#" in city
    assert acl.count("\nuser ansim-core\n") == 1  # the static block of deploy/acl
    assert f"topic write ansim/v1/presence/{SOUTH}" in acl


def test_a_password_and_districts_together(tmp_path: Path) -> None:
    listing = tmp_path / "users"
    listing.write_text("operator op-jung s3cret-given districts=Jung-gu  # the Jung-gu office\n")
    assert make_passwords(listing, tmp_path / "out").returncode == 0
    assert (tmp_path / "out" / "credentials").read_text() == "op-jung s3cret-given\n"
    assert "topic read ansim/v1/state/closed/Jung-gu\n" in (tmp_path / "out" / "acl").read_text()


@pytest.mark.parametrize(
    ("listing", "complaint"),
    [
        ("source sim districts=Mapo-gu\n", "for an operator's seat"),
        ("core ansim-core-north districts=Mapo-gu\n", "for an operator's seat"),
        ("operator op1 districts=\n", "names no district"),
        ("operator op1 districts=Mapo-gu,\n", "names no district"),
        ("operator op1 districts=Mapo-gu,,Jung-gu\n", "bad district ''"),
        ("operator op1 districts=Mapo/gu\n", "bad district 'Mapo/gu'"),
        ("operator op1 districts=Mapo-gu,Mapo-gu\n", "listed twice"),
        ("operator op1 districts=Mapo-gu districts=Jung-gu\n", "given twice"),
        ("operator op1 pw1 pw2\n", "expected 'role name [password] [districts=A,B,...]'"),
        ("core ansim-core-\n", "ansim-core-<partition>"),
        ("core core-north\n", "ansim-core-<partition>"),
        ("operator ansim-core-north\n", "are the cores' (role core)"),
        ("source ansim-core\n", "are the cores' (role core)"),
    ],
)
def test_make_passwords_refuses_bad_scopes(tmp_path: Path, listing: str, complaint: str) -> None:
    users = tmp_path / "users"
    users.write_text("operator op0\n" + listing)
    done = make_passwords(users, tmp_path / "out")
    assert done.returncode != 0
    assert f"{users}:2: " in done.stderr and complaint in done.stderr, done.stderr
    assert not (tmp_path / "out" / "passwords").exists()
