"""Fault 4 of issue 5: a stalled core must not make the broker drop messages, and if it does, say so.

The core is frozen with SIGSTOP (it neither reads its socket nor acknowledges) while
a burst of BURST SOS is published at QoS 1, then thawed with SIGCONT. Against the
deploy/ settings the stall is the issue's full 30 s (longer than the keep-alive
grace, so the broker drops the connection and must keep the session); against the
defaults a few seconds are enough, since the burst is far larger than Mosquitto's
default queue (1000 + 20 in flight).

* Mosquitto with its default queue limits drops what does not fit while every
  publish was acknowledged; the core sees $SYS/broker/publish/messages/dropped
  move and every console's Summary.alarms says "BROKER DROPPING MESSAGES".
* Mosquitto with deploy/mosquitto.conf (ports, paths adapted) keeps all of it:
  every SOS of the burst is journaled once, and the broker logs no drop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from pathlib import Path

import pytest

from console.core.broker_watch import ALARM_PREFIX
from protocols.mqtt import MqttSettings
from tests.brokers import find_mosquitto
from tests.fault_helpers import (
    DefaultQueueMosquitto,
    Source,
    journal_keys,
    pause,
    poll,
    resume,
    sos,
    summaries_until,
)
from tests.processes import AnsimProcess, core_ready, write_config
from tests.secure_broker import CORE, DeployBroker

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto"),
]

BURST = 3000  # three times what Mosquitto's default queue holds for one client
STALL_S = 4.0  # enough for the defaults to overflow: the burst, not the time, does it
DEPLOY_STALL_S = 30.0  # the stall, in full: longer than the broker's keep-alive grace
WINDOW = 100  # publishes awaiting their PUBACK at once


async def burst(source: Source, count: int) -> None:
    """Publish ``count`` SOS once each (no resends), every one acknowledged by the broker."""
    for start in range(0, count, WINDOW):
        sends: list[Awaitable[None]] = [
            source.raise_sos(sos(source.source, n, dlat=(n % 50) * 0.001))
            for n in range(start, min(start + WINDOW, count))
        ]
        await asyncio.gather(*sends)


async def stalled_burst(core: AnsimProcess, source: Source, stall_s: float = STALL_S) -> None:
    started = time.monotonic()
    pause(core)
    try:
        await burst(source, BURST)
        await asyncio.sleep(max(0.0, stall_s - (time.monotonic() - started)))
    finally:
        resume(core)


async def test_default_queue_limits_drop_under_a_stall_and_every_console_is_told(
    tmp_path: Path,
) -> None:
    broker = DefaultQueueMosquitto(tmp_path / "broker")
    broker.start()
    settings = MqttSettings(port=broker.port, reconnect_min_s=0.05, reconnect_max_s=0.5)
    config = write_config(tmp_path, broker.port)
    core = AnsimProcess(config, "core").start()
    try:
        await core_ready(settings)
        async with Source(settings, "src") as source:
            await stalled_burst(core, source)
        summary = await summaries_until(
            settings,
            lambda s: any(a.startswith(ALARM_PREFIX) for a in s.alarms),
            timeout_s=15,
            what=f"a '{ALARM_PREFIX}' alarm",
        )
        alarm = next(a for a in summary.alarms if a.startswith(ALARM_PREFIX))
        dropped = int(alarm.split(": ", 1)[1].split(" ", 1)[0])
        # What did not fit: the burst less the queue (1000) and the in-flight window (20).
        assert dropped >= BURST - 1020 - 100, alarm
        assert "Outgoing messages are being dropped" in broker.log_text()
        # The loss is real (the contrast for the test below): the journal lacks them.
        keys = journal_keys(tmp_path / "journal.db", "sos:src:")
        assert len(keys) <= BURST - dropped
        assert "the broker dropped" in core.log()
    finally:
        try:
            assert core.stop() == 0, core.log()
        finally:
            broker.kill()


async def test_deploy_settings_lose_nothing_under_the_same_stall(tmp_path: Path) -> None:
    broker = DeployBroker(tmp_path / "deploy")
    broker.start()
    operator_settings = MqttSettings(  # operators read the state; the core user may not
        port=broker.port, username="op1", password=broker.passwords["op1"]
    )
    source_settings = MqttSettings(
        port=broker.port, username="cam-1", password=broker.passwords["cam-1"]
    )
    config = write_config(
        tmp_path,
        broker.port,
        broker={"username": CORE, "password": broker.passwords[CORE], "reconnect_max_s": 0.5},
    )
    core = AnsimProcess(config, "core").start()
    try:
        await core_ready(operator_settings)
        async with Source(source_settings, "cam-1") as source:
            # 30 s frozen: the broker drops the core's connection after 1.5x its keep-alive,
            # keeps its persistent session, and must still hold all 3,000 for it.
            await stalled_burst(core, source, DEPLOY_STALL_S)
            await poll(lambda: len(source.receipts) == BURST, 60, "every receipt")
        keys = journal_keys(tmp_path / "journal.db", "sos:cam-1:")
        assert len(keys) == BURST and set(keys.values()) == {1}
        assert "Outgoing messages are being dropped" not in broker.log_text()
        assert "the broker dropped" not in core.log()
    finally:
        try:
            assert core.stop() == 0, core.log()
        finally:
            broker.kill()
