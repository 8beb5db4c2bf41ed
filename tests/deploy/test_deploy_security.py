"""deploy/: the real broker refuses every spoofing attempt and lets the legitimate flows through.

One Mosquitto for the module, started with deploy/mosquitto.conf (ports and paths
adapted, nothing else), with certificates from deploy/make-certs.sh and the password
file and ACL from deploy/make-passwords.sh. Users: ansim-core, operators op1 and op2,
sources cam-1 and cam-2, gateway gw.

A refused publish is proven by what a legitimate subscriber receives: the spoof is
sent first, then an allowed message from the same publisher; MQTT keeps one
publisher's order, so when the allowed message is the first to arrive, the spoof was
dropped. Under MQTT 5 Mosquitto also answers "not authorized" (0x87) in the PUBACK;
under 3.1.1 it acknowledges and drops silently (test_mqtt311_...).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from protocols import topics
from protocols.mqtt import MqttSettings, Transport
from tests.brokers import find_mosquitto, receive
from tests.secure_broker import (
    BAD_CREDENTIALS,
    CORE,
    DEPLOY,
    NOT_AUTHORIZED,
    Client,
    DeployBroker,
    is_refused,
)

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto")

MakeClient = Callable[..., Client]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployBroker]:
    broker = DeployBroker(tmp_path_factory.mktemp("deploy-broker"))
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


@pytest.fixture
def client(deployed: DeployBroker, request: pytest.FixtureRequest) -> Iterator[MakeClient]:
    """client(user, **options): a connected client logged in as ``user`` (closed afterwards)."""
    made: list[Client] = []
    test = request.node.name[-40:]

    def make(user: str | None, *, connect: bool = True, **options: Any) -> Client:
        password = options.pop("password", deployed.passwords.get(user or "", None))
        c = Client(deployed, f"{user}-{test}-{len(made)}", user, password, **options)
        made.append(c)
        return c.connected() if connect else c

    yield make
    for c in made:
        c.close()


# --- who may connect ---------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [5, 4])
@pytest.mark.parametrize("tls", [True, False], ids=["tls", "loopback"])
def test_anonymous_client_is_refused(client: MakeClient, protocol: int, tls: bool) -> None:
    anonymous = client(None, connect=False, protocol=protocol, tls=tls)
    assert is_refused(anonymous.connect(), NOT_AUTHORIZED, 5)  # 5: 3.1.1 "not authorised"


@pytest.mark.parametrize("user", ["op1", "mallory"])
def test_wrong_password_or_unknown_user_is_refused(client: MakeClient, user: str) -> None:
    intruder = client(user, connect=False, password="guessed")
    assert is_refused(intruder.connect(), NOT_AUTHORIZED, BAD_CREDENTIALS)


def test_plain_tcp_to_the_tls_port_is_refused(client: MakeClient, deployed: DeployBroker) -> None:
    plain = client("op1", connect=False, tls=False, port=deployed.tls_port)
    rc = plain.connect(timeout=3)
    assert is_refused(rc), rc  # no CONNACK: the broker hung up during the TLS handshake
    assert "wrong version number" in deployed.log_text()


def test_loopback_listener_takes_the_same_credentials(client: MakeClient) -> None:
    core = client(CORE, tls=False)
    core.subscribe(topics.CMD_ALL)
    client("op1", tls=False).publish(topics.cmd("op1"), b"on loopback")
    assert core.next().payload == b"on loopback"


# --- who may publish what ---------------------------------------------------------------


def test_operator_cannot_command_as_another_operator(client: MakeClient) -> None:
    core = client(CORE)
    core.subscribe(topics.CMD_ALL)
    op1 = client("op1")
    assert op1.publish(topics.cmd("op2"), b"spoof").value == NOT_AUTHORIZED
    assert not op1.publish(topics.cmd("op1"), b"own").is_failure
    assert core.next().payload == b"own"
    assert core.drain() == []


def test_source_cannot_publish_state(client: MakeClient) -> None:
    console = client("op1")
    console.subscribe(topics.STATE_ALL)
    cam = client("cam-1")
    fake = topics.state_incident("Mapo-gu", "fake-by-camera")
    assert cam.publish(fake, b"spoof", retain=True).value == NOT_AUTHORIZED
    real = topics.state_incident("Mapo-gu", "real-by-core")
    client(CORE).publish(real, b"state", retain=True)
    got = console.next()
    assert (got.topic, got.payload) == (real, b"state")
    assert console.drain() == []
    # Nor was the spoof retained for the next console that comes along.
    late = client("op2")
    late.subscribe(topics.STATE_ALL)
    assert fake not in {m.topic for m in late.drain()}


def test_source_cannot_publish_as_another_source(client: MakeClient) -> None:
    core = client(CORE)
    core.subscribe(topics.RAW_ALL)
    cam = client("cam-1")
    assert cam.publish(topics.raw("cam-2", topics.RAW_SOS), b"spoof").value == NOT_AUTHORIZED
    assert not cam.publish(topics.raw("cam-1", topics.RAW_SOS), b"own").is_failure
    got = core.next()
    assert (got.topic, got.payload) == (topics.raw("cam-1", topics.RAW_SOS), b"own")
    assert core.drain() == []


def test_roles_do_not_mix(client: MakeClient) -> None:
    """A source cannot send commands (even under its own id); an operator cannot raise alarms."""
    core = client(CORE)
    core.subscribe(topics.RAW_ALL, topics.CMD_ALL)
    cam, op1 = client("cam-1"), client("op1")
    assert cam.publish(topics.cmd("cam-1"), b"camera commands").value == NOT_AUTHORIZED
    assert op1.publish(topics.raw("op1", topics.RAW_SOS), b"op alarm").value == NOT_AUTHORIZED
    assert op1.publish(topics.presence("op2"), b"op2 offline").value == NOT_AUTHORIZED
    assert cam.publish(topics.receipt("cam-1", "a1"), b"self receipt").value == NOT_AUTHORIZED
    assert op1.publish(topics.reply("op1"), b"self reply").value == NOT_AUTHORIZED
    cam.publish(topics.raw("cam-1", topics.RAW_CCTV), b"end")
    assert core.next().payload == b"end"
    assert core.drain() == []


def test_only_the_core_publishes_replies_and_receipts(client: MakeClient) -> None:
    op1, cam = client("op1"), client("cam-1")
    op1.subscribe(topics.reply("op1"))
    cam.subscribe(topics.receipts_for("cam-1"))
    op2 = client("op2")
    assert op2.publish(topics.reply("op1"), b"forged reply").value == NOT_AUTHORIZED
    assert client("cam-2").publish(topics.receipt("cam-1", "a1"), b"forged").value == 0x87
    core = client(CORE)
    assert not core.publish(topics.reply("op1"), b"reply").is_failure
    assert not core.publish(topics.receipt("cam-1", "a1"), b"receipt").is_failure
    assert op1.next().payload == b"reply"
    assert cam.next().payload == b"receipt"
    assert op1.drain() == [] and cam.drain() == []


def test_mqtt311_refused_publish_is_acknowledged_but_never_delivered(client: MakeClient) -> None:
    core = client(CORE)
    core.subscribe(topics.CMD_ALL)
    op1 = client("op1", protocol=4)
    assert not op1.publish(topics.cmd("op2"), b"spoof").is_failure  # PUBACK all the same
    op1.publish(topics.cmd("op1"), b"own")
    assert core.next().payload == b"own"
    assert core.drain() == []


def test_gateway_publishes_for_any_source_but_nothing_else(client: MakeClient) -> None:
    core = client(CORE)
    core.subscribe(topics.RAW_ALL, topics.CMD_ALL)
    gw = client("gw")
    assert gw.publish(topics.state_incident("Mapo-gu", "gw"), b"state").value == NOT_AUTHORIZED
    assert gw.publish(topics.cmd("op1"), b"cmd").value == NOT_AUTHORIZED
    assert not gw.publish(topics.raw("webhook-7", topics.RAW_SOS), b"sos").is_failure
    assert core.next().topic == topics.raw("webhook-7", topics.RAW_SOS)
    assert core.drain() == []


# --- who may read what ------------------------------------------------------------------


def test_reads_are_limited_to_the_role(client: MakeClient) -> None:
    """Subscriptions are granted, but Mosquitto delivers only what the ACL lets a user read.

    A source sees neither state (personal data), commands, other sources' alarms nor
    other sources' receipts; an operator sees neither raw alarms, other operators'
    commands or replies, nor $SYS. Each receives exactly its own one message.
    """
    cam, op1, op2 = client("cam-1"), client("op1"), client("op2")
    cam.subscribe(topics.STATE_ALL, topics.CMD_ALL, topics.RAW_ALL, topics.receipts_for("cam-2"))
    cam.subscribe(topics.receipts_for("cam-1"))
    op1.subscribe(topics.RAW_ALL, topics.CMD_ALL, topics.reply("op2"), topics.SYS_DROPPED)
    op1.subscribe(topics.reply("op1"))
    op2.publish(topics.cmd("op2"), b"op2's command")
    client("cam-2").publish(topics.raw("cam-2", topics.RAW_SOS), b"cam-2's alarm")
    core = client(CORE)
    core.publish(topics.state_incident("Mapo-gu", "personal-data"), b"name and phone", retain=True)
    core.publish(topics.receipt("cam-2", "a2"), b"not yours")
    core.publish(topics.reply("op2"), b"not yours")
    core.publish(topics.receipt("cam-1", "a1"), b"yours")
    core.publish(topics.reply("op1"), b"yours")
    assert [m.payload for m in cam.drain()] == [b"yours"]
    assert [m.payload for m in op1.drain()] == [b"yours"]


def test_core_reads_everything_it_needs(client: MakeClient) -> None:
    core = client(CORE)
    core.subscribe(topics.shared(topics.RAW_ALL), topics.CMD_ALL, topics.PRESENCE_ALL)
    core.subscribe(topics.SYS_DROPPED)
    assert core.next().topic == topics.SYS_DROPPED  # retained by the broker
    client("cam-1").publish(topics.raw("cam-1", topics.RAW_SOS), b"sos")
    client("op1").publish(topics.presence("op1"), b"online", retain=True)
    client("op1").publish(topics.cmd("op1"), b"cmd")
    got = {m.topic: m.payload for m in core.drain()}
    assert got[topics.raw("cam-1", topics.RAW_SOS)] == b"sos"
    assert got[topics.presence("op1")] == b"online"
    assert got[topics.cmd("op1")] == b"cmd"


# --- the legitimate flows with the project's own transport, over TLS ----------------------


async def test_legitimate_flows_over_tls_with_the_transport(deployed: DeployBroker) -> None:
    """source -> raw -> core; operator -> cmd -> core; core -> state and reply -> operator."""

    def settings(user: str) -> MqttSettings:
        return MqttSettings(
            host=deployed.host,
            port=deployed.tls_port,
            username=user,
            password=deployed.passwords[user],
            tls_ca=str(deployed.ca),
            reconnect_min_s=0.05,
            reconnect_max_s=0.5,
        )

    core = Transport(
        settings(CORE),
        "ansim-core-flows",
        subscriptions=[topics.RAW_ALL, topics.CMD_ALL],
        persistent=True,
        manual_ack=True,
    )
    state = topics.state_incident("Mapo-gu", "flows")
    console = Transport(
        settings("op1"), "console-op1-flows", subscriptions=[state, topics.reply("op1")]
    )
    source = Transport(settings("cam-1"), "cam-1-flows")
    async with core, console, source:
        await asyncio.gather(*(t.wait_connected(5) for t in (core, console, source)))
        core_in, console_in = core.messages(), console.messages()
        await source.publish(topics.raw("cam-1", topics.RAW_CCTV), b"scream")
        await console.publish(topics.cmd("op1"), b"acknowledge")
        got = await receive(core_in, 2)
        assert {(m.topic, m.payload) for m in got} == {
            (topics.raw("cam-1", topics.RAW_CCTV), b"scream"),
            (topics.cmd("op1"), b"acknowledge"),
        }
        for m in got:
            m.ack()
        await core.publish(state, b"acknowledged", retain=True)
        await core.publish(topics.reply("op1"), b"ok")
        seen = {(m.topic, m.payload) for m in await receive(console_in, 2)}
        assert seen == {(state, b"acknowledged"), (topics.reply("op1"), b"ok")}


# --- the scripts themselves -------------------------------------------------------------


@pytest.mark.parametrize(
    ("listing", "complaint"),
    [
        ("operator op/1\n", "bad name"),
        ("source cam+1\n", "bad name"),
        ("core somebody\n", "ansim-core"),
        ("operator op1\nsource op1\n", "listed twice"),
        ("admin root\n", "unknown role"),
    ],
)
def test_make_passwords_refuses_bad_lists(tmp_path: Path, listing: str, complaint: str) -> None:
    users = tmp_path / "users"
    users.write_text(listing)
    script = DEPLOY / "make-passwords.sh"
    done = subprocess.run(
        [str(script), str(users), str(tmp_path / "out")], capture_output=True, text=True
    )
    assert done.returncode != 0
    assert complaint in done.stderr
    assert not (tmp_path / "out" / "passwords").exists()


def test_make_certs_reuses_the_ca_and_signs_clients(tmp_path: Path) -> None:
    script = DEPLOY / "make-certs.sh"
    subprocess.run([str(script), str(tmp_path)], check=True, capture_output=True)
    ca = (tmp_path / "ca.crt").read_bytes()
    env = {"ANSIM_CERT_HOSTS": "broker.example.org,10.1.2.3", "PATH": "/usr/bin:/bin"}
    subprocess.run([str(script), str(tmp_path), "op1"], check=True, capture_output=True, env=env)
    assert (tmp_path / "ca.crt").read_bytes() == ca
    text = subprocess.run(
        [
            "openssl",
            "x509",
            "-in",
            str(tmp_path / "server.crt"),
            "-noout",
            "-ext",
            "subjectAltName",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in ("127.0.0.1", "localhost", "broker.example.org", "10.1.2.3"):
        assert name in text
    for cert in ("server.crt", "op1.crt"):
        subprocess.run(
            ["openssl", "verify", "-CAfile", str(tmp_path / "ca.crt"), str(tmp_path / cert)],
            check=True,
            capture_output=True,
        )
    assert oct((tmp_path / "op1.key").stat().st_mode & 0o777) == "0o600"
