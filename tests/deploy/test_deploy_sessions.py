"""deploy/: a session belongs to its account; nobody else can take the core's.

Mosquitto keys a session by client id alone: whoever connects with the core's id
``ansim-core`` disconnects the core and inherits (or, with a clean start, wipes) its
session, including every QoS 1 message queued for it while it was away. With 2.0.11
that even loses them: the broker drops the queued messages the newcomer may not read.
deploy/mosquitto.conf sets ``use_username_as_clientid true`` on every listener, so the
client id *is* the user name: an ordinary account that asks for ``ansim-core`` gets its
own session (named after itself) and the core's is untouched.

Each test starts its own broker (the scenario depends on what sessions it holds). The
last test removes the setting and shows the attack succeeding, so the others cannot
pass trivially.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocols import topics
from tests.brokers import find_mosquitto
from tests.secure_broker import CONFIG, CORE, SESSION_SETTING, Client, DeployBroker

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto")

BURST = 200  # acknowledged SOS queued for the absent core
SOURCE = "cam-1"
SOS = topics.raw(SOURCE, topics.RAW_SOS)
ATTACKERS = ("cam-2", "op1", "gw")  # a source, an operator, the gateway: none is the core


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DeployBroker]:
    deployed = DeployBroker(tmp_path / "broker")
    deployed.start()
    try:
        yield deployed
    finally:
        deployed.kill()


def as_core(broker: DeployBroker) -> Client:
    """The core as it connects: fixed client id, persistent session, loopback listener."""
    return Client(broker, CORE, CORE, broker.passwords[CORE], tls=False, persistent=True)


def as_user(
    broker: DeployBroker,
    user: str,
    client_id: str,
    *,
    tls: bool = True,
    protocol: int = 5,
    persistent: bool = False,
) -> Client:
    password = broker.passwords[user]
    return Client(broker, client_id, user, password, tls=tls, protocol=protocol,
                  persistent=persistent)  # fmt: skip


def core_away_with_a_queue(broker: DeployBroker) -> None:
    """The core's session subscribes and leaves; a source's BURST SOS are acknowledged."""
    core = as_core(broker).connected()
    core.subscribe(topics.RAW_ALL)
    core.close()
    source = as_user(broker, SOURCE, "phone-backend", tls=False).connected()
    try:
        source.publish_many(SOS, [b"sos-%d" % i for i in range(BURST)])
    finally:
        source.close()


def everything_for(client: Client, expected: int) -> set[bytes]:
    got: set[bytes] = set()
    while len(got) < expected:
        batch = client.drain(quiet=0.5)
        if not batch:
            break
        got.update(m.payload for m in batch)
    return got


def test_every_listener_makes_the_client_id_the_user_name() -> None:
    """The protection is per listener in Mosquitto 2.0: one listener without it is a way in."""
    blocks = re.split(r"^(?=listener )", CONFIG.read_text(), flags=re.MULTILINE)[1:]
    assert len(blocks) == 2
    for block in blocks:
        settings = [line.strip() for line in block.splitlines()]
        assert f"{SESSION_SETTING} true" in settings, block.splitlines()[0]


@pytest.mark.parametrize("protocol", [5, 4], ids=["mqtt5", "mqtt311"])
@pytest.mark.parametrize("clean", [False, True], ids=["resume", "clean-start"])
def test_an_account_cannot_take_the_absent_cores_session(
    broker: DeployBroker, protocol: int, clean: bool
) -> None:
    """The attacker gets its own, empty session; the core comes back to all of its queue.

    A resume would have handed the attacker the core's queue; a clean start would
    have wiped it.
    """
    core_away_with_a_queue(broker)
    attacker = as_user(broker, "cam-2", CORE, protocol=protocol, persistent=not clean)
    attacker.connected()
    try:
        assert attacker.session_present is False  # not the core's session
        attacker.subscribe(topics.receipts_for("cam-2"))
        assert attacker.drain() == []  # nothing of the core's queue
    finally:
        attacker.close()
    log = broker.log_text()
    assert re.search(r"connected from \S+ as cam-2 \(p\d, c\d, k\d+, u'cam-2'\)", log)
    assert not re.search(r"as ansim-core \([^)]*u'cam-2'\)", log)
    core = as_core(broker).connected()
    try:
        assert core.session_present is True
        assert len(everything_for(core, BURST)) == BURST
    finally:
        core.close()


def test_takeover_attempts_leave_the_connected_core_alone(broker: DeployBroker) -> None:
    """Repeated attempts by every other role: the core never drops, receipts keep flowing."""
    core = as_core(broker).connected()
    source = as_user(broker, SOURCE, "phone-backend").connected()
    try:
        core.subscribe(topics.RAW_ALL)
        source.subscribe(topics.receipts_for(SOURCE))
        for round_no in range(5):
            for user in ATTACKERS:
                for protocol in (5, 4):
                    attacker = as_user(broker, user, CORE, protocol=protocol, persistent=True)
                    try:
                        attacker.connected()  # into its own session (resumed after round 1)
                    finally:
                        attacker.close()
            # The core still receives and answers: an SOS in, its receipt out.
            source.publish(SOS, b"sos-%d" % round_no)
            assert core.next().payload == b"sos-%d" % round_no
            core.publish(topics.receipt(SOURCE, f"a{round_no}"), b"receipt")
            assert source.next().topic == topics.receipt(SOURCE, f"a{round_no}")
        assert core.disconnects == []
        assert source.disconnects == []
        assert not re.search(r"as ansim-core \([^)]*u'(?!ansim-core')", broker.log_text())
        assert core.drain() == []  # nothing was delivered twice or stolen
    finally:
        source.close()
        core.close()


def test_a_sources_own_session_is_its_own_too(broker: DeployBroker) -> None:
    """The rule covers every account that keeps a session, not only the core."""
    victim = as_user(broker, SOURCE, SOURCE, persistent=True).connected()
    try:
        victim.subscribe(topics.receipts_for(SOURCE))
        attacker = as_user(broker, "cam-2", SOURCE, persistent=True).connected()
        assert attacker.session_present is False
        attacker.close()
        core = as_core(broker).connected()
        core.publish(topics.receipt(SOURCE, "a1"), b"receipt")
        core.close()
        assert victim.next().payload == b"receipt"
        assert victim.disconnects == []
    finally:
        victim.close()


def test_one_live_connection_per_account(broker: DeployBroker) -> None:
    """The price: two connections of one account are one session; the newer one wins.

    Mosquitto disconnects the older ("session taken over"). So every seat, core,
    gateway and simulator needs its own account (docs/deploy.md).
    """
    first = as_user(broker, "op1", "console-op1-seat-a").connected()
    second = as_user(broker, "op1", "console-op1-seat-b").connected()
    try:
        deadline = time.monotonic() + 5
        while not first.disconnects and time.monotonic() < deadline:
            time.sleep(0.01)
        assert first.disconnects  # (paho reports it as "Unspecified error")
        assert "Client op1 already connected, closing old connection." in broker.log_text()
    finally:
        first.close()
        second.close()


def test_without_the_setting_the_session_is_stolen(tmp_path: Path) -> None:
    """The contrast: Mosquitto's default hands the core's session to whoever asks."""
    broker = DeployBroker(tmp_path / "takeover", drop=(SESSION_SETTING,))
    lines = broker.config_path.read_text().splitlines()
    assert not [line for line in lines if line.startswith(SESSION_SETTING)]
    broker.start()
    try:
        core_away_with_a_queue(broker)
        attacker = as_user(broker, "cam-2", CORE, persistent=True).connected()
        assert attacker.session_present is True  # the core's session, subscriptions and all
        assert attacker.drain() == []  # it may not read raw/#: the broker drops the queue...
        attacker.close()
        core = as_core(broker).connected()
        try:
            assert len(everything_for(core, BURST)) == 0  # ... and the core never gets it
        finally:
            core.close()
    finally:
        broker.kill()
