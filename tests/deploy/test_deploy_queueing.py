"""deploy/mosquitto.conf keeps every QoS 1 message for an absent core; Mosquitto's defaults do not.

The experiment, run twice against real Mosquitto processes started with the shipped
configuration (ports and paths adapted, tests/secure_broker.py):

1. the core (user ansim-core, fixed client id, persistent MQTT 5 session) subscribes
   to the raw topics at QoS 1 and goes away;
2. a source publishes a burst of BURST QoS 1 messages; the broker acknowledges every
   one of them;
3. the core comes back and counts what it receives.

With the shipped settings it receives all of them, even across a clean broker
restart in between (persistence). With the three queue settings removed, i.e.
Mosquitto's defaults (max_queued_messages 1000), it receives 1000 and the broker
counts the rest in $SYS/broker/publish/messages/dropped, the counter the core
watches: the contrast shows the first test cannot pass trivially.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from protocols import topics
from tests.brokers import find_mosquitto
from tests.secure_broker import CORE, QUEUE_SETTINGS, Client, DeployBroker, sys_value

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto"),
]

BURST = 20_000
SOURCE = "cam-1"


def core_client(broker: DeployBroker) -> Client:
    return Client(broker, "ansim-core", CORE, broker.passwords[CORE], tls=False, persistent=True)


def absent_core_then_burst(broker: DeployBroker) -> None:
    """Steps 1 and 2: the core's session subscribes and leaves; the burst is acknowledged."""
    core = core_client(broker).connected()
    core.subscribe(topics.RAW_ALL)
    core.close()
    source = Client(broker, "source", SOURCE, broker.passwords[SOURCE], tls=False).connected()
    try:
        payloads = [b"%d" % i for i in range(BURST)]
        source.publish_many(topics.raw(SOURCE, topics.RAW_CCTV), payloads, timeout=30)
    finally:
        source.close()


def core_returns(broker: DeployBroker) -> tuple[Client, set[bytes]]:
    """Step 3: the core reconnects to its session; everything it receives (distinct)."""
    core = core_client(broker).connected()
    got: set[bytes] = set()
    while len(got) < BURST:
        batch = core.drain(quiet=0.5)
        if not batch:
            break
        got.update(m.payload for m in batch)
    return core, got


def test_deploy_settings_keep_a_burst_for_an_absent_core(tmp_path: Path) -> None:
    started = time.monotonic()
    broker = DeployBroker(tmp_path / "deploy")
    broker.start()
    core: Client | None = None
    try:
        absent_core_then_burst(broker)
        broker.restart()  # SIGTERM saves the queue (persistence true); start reloads it
        core, got = core_returns(broker)
        assert len(got) == BURST, f"received {len(got)} of {BURST}"
        assert "Outgoing messages are being dropped" not in broker.log_text()
    finally:
        if core is not None:
            core.close()
        broker.kill()
    assert time.monotonic() - started < 15


def test_mosquitto_defaults_drop_the_same_burst(tmp_path: Path) -> None:
    started = time.monotonic()
    broker = DeployBroker(tmp_path / "defaults", drop=QUEUE_SETTINGS)
    assert "max_queued_messages" not in broker.config_path.read_text()
    broker.start()
    core: Client | None = None
    try:
        absent_core_then_burst(broker)  # every message acknowledged to the source...
        core, got = core_returns(broker)
        assert len(got) == 1000  # ... but the default queue held 1000 of them
        assert "Outgoing messages are being dropped for client ansim-core" in broker.log_text()
        # The loss shows in the counter the core watches ($SYS every sys_interval, 5 s).
        core.subscribe(topics.SYS_DROPPED)
        deadline = time.monotonic() + 6
        dropped = 0
        while dropped < BURST - 1000 and time.monotonic() < deadline:
            message = core.next(timeout=6)
            dropped = sys_value(message.payload)
        assert dropped >= BURST - 1000
    finally:
        if core is not None:
            core.close()
        broker.kill()
    assert time.monotonic() - started < 15
