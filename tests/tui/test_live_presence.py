"""Who is online: cleared on a normal quit, renewed by a heartbeat, expired when not renewed.

The rule is pure (``Presence.is_current``, ``others_online``: time is an argument);
the live tests run a real broker and a real `ansim core`, consoles under
``App.run_test`` and bare links. Every wait polls with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from console import config as config_module
from console.config import Config
from console.tui.app import AnsimApp
from console.tui.link import Link
from console.tui.presence import others_online
from console.tui.state_store import StateStore
from protocols import codec, topics
from protocols.mqtt import MqttSettings, Transport
from protocols.schemas import PRESENCE_TTL_S, Presence, Role, Summary
from tests.brokers import AmqttBroker, MosquittoBroker
from tests.local.quit_app import QuitApp
from tests.processes import AnsimProcess, core_ready, until, write_config

NOW = 1_750_000_000.0
SIZE = (80, 24)
pytestmark = pytest.mark.timeout(60)


# --- the rule ------------------------------------------------------------------------


def test_presence_is_current_while_online_and_renewed_within_the_ttl() -> None:
    online = Presence(operator="op2", online=True, ts=NOW)
    assert online.is_current(NOW)
    assert online.is_current(NOW + PRESENCE_TTL_S)  # the last moment it counts
    assert not online.is_current(NOW + PRESENCE_TTL_S + 0.1)  # three heartbeats missed
    assert not online.is_current(NOW - PRESENCE_TTL_S - 0.1)  # a clock far ahead: not trusted
    assert online.is_current(NOW + 5, ttl_s=10) and not online.is_current(NOW + 11, ttl_s=10)
    assert not Presence(operator="op2", online=False, ts=NOW).is_current(NOW)
    assert not Presence(operator="op2", online=True, ts=float("nan")).is_current(NOW)


def test_others_online_combines_presence_and_a_fresh_summary() -> None:
    presence = {
        "op1": Presence(operator="op1", online=True, ts=NOW),  # this seat
        "op2": Presence(operator="op2", online=True, ts=NOW - 10),
        "op3": Presence(operator="op3", online=True, ts=NOW - 200),  # expired
        "op4": Presence(operator="op4", online=False, ts=NOW - 1),  # said goodbye
    }
    assert others_online(presence, None, "op1", NOW) == ["op2"]
    # The core saw op5 (this console missed its presence); its op4 is behind the goodbye.
    summary = Summary(ts=NOW - 1, operators=("op1", "op4", "op5"))
    assert others_online(presence, summary, "op1", NOW) == ["op2", "op5"]
    # A summary older than the TTL (the core is gone) is evidence of no one.
    stale = Summary(ts=NOW - PRESENCE_TTL_S - 1, operators=("op5",))
    assert others_online(presence, stale, "op1", NOW) == ["op2"]
    assert others_online({}, None, "op1", NOW) == []


# --- live ----------------------------------------------------------------------------


@pytest.fixture
def cfg(tmp_path: Path, broker: MosquittoBroker | AmqttBroker) -> Config:
    protocol = 5 if isinstance(broker, MosquittoBroker) else 4
    path = write_config(
        tmp_path,
        broker.port,
        broker={
            "protocol": protocol,
            "keepalive": 5,
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.5,
        },
        console={"bell": False},
        roles={"op1": "operator", "op2": "operator"},
    )
    return config_module.load(path, environ={})


@contextlib.asynccontextmanager
async def running_core(settings: MqttSettings, tmp_path: Path) -> AsyncIterator[None]:
    core = AnsimProcess(tmp_path / "ansim.toml", "core").start()
    try:
        await core_ready(settings)
        yield
    finally:
        assert core.stop() == 0, core.log()


@contextlib.asynccontextmanager
async def seat(cfg: Config, operator: str, store: StateStore, **link: Any) -> AsyncIterator[Link]:
    """A bare console seat: the console's own link into a plain store."""
    seat_link = Link(cfg, operator, Role.OPERATOR, store, lambda message: None, **link)
    task = asyncio.create_task(seat_link.run())
    try:
        await until(lambda: seat_link.connected, 10, f"{operator} to connect")
        yield seat_link
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def core_sees(store: StateStore, operator: str) -> bool:
    return store.summary is not None and operator in store.summary.operators


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 15
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


async def test_one_of_two_consoles_quits_and_the_other_stays_and_sees_it_go(
    cfg: Config, mqtt_settings: MqttSettings, tmp_path: Path
) -> None:
    async with running_core(mqtt_settings, tmp_path):
        staying = AnsimApp(cfg, operator="op2", connect=True)
        quitting = QuitApp(cfg, "op1")
        async with staying.run_test(size=SIZE) as here, quitting.run_test(size=SIZE) as there:
            await wait_for(here, lambda: staying.connected and quitting.connected, "both seats")
            await wait_for(
                here,
                lambda: (
                    "ops: op1" in str(staying.status_bar.render())
                    and core_sees(staying.store, "op1")
                ),
                "op2 to list op1, and the core to count it",
            )
            await there.press("q", "y")
            await wait_for(there, lambda: not quitting.is_running, "op1's console to exit")
            began = time.monotonic()
            await wait_for(
                here,
                lambda: (
                    "op1" not in str(staying.status_bar.render())
                    and not core_sees(staying.store, "op1")
                ),
                "op1 to leave op2's list and the core's",
            )
            assert time.monotonic() - began < 5
            assert staying.connected and core_sees(staying.store, "op2")
            assert "● connected" in str(staying.status_bar.render())
            await here.press("q", "y")


async def test_presence_is_renewed_and_the_core_expires_what_is_not(
    cfg: Config, mqtt_settings: MqttSettings, tmp_path: Path
) -> None:
    async with running_core(mqtt_settings, tmp_path):
        watcher = StateStore()
        async with seat(cfg, "op2", watcher), seat(cfg, "op1", StateStore(), heartbeat_s=0.1):
            await until(lambda: "op1" in watcher.presence, 10, "op1's presence")
            first = watcher.presence["op1"].ts
            await until(lambda: watcher.presence["op1"].ts > first, 5, "a heartbeat")
            assert watcher.presence["op1"].online

            # Seats that vanished without a last will: one announced long ago, one just now.
            async with Transport(mqtt_settings, f"gone-{time.monotonic_ns()}") as raw:
                await raw.wait_connected(10)
                old = Presence(operator="op8", online=True, ts=time.time() - PRESENCE_TTL_S - 5)
                new = Presence(operator="op9", online=True, ts=time.time())
                for p in (old, new):
                    await raw.publish(topics.presence(p.operator), codec.encode(p), retain=True)
            await until(lambda: core_sees(watcher, "op9"), 10, "the core to count op9")
            assert not core_sees(watcher, "op8")  # expired on arrival
            assert core_sees(watcher, "op1") and core_sees(watcher, "op2")
            assert others_online(watcher.presence, watcher.summary, "op2", time.time()) == [
                "op1",
                "op9",
            ]


async def test_two_seats_of_one_operator_one_quits_the_other_stays_online(
    cfg: Config, mqtt_settings: MqttSettings, tmp_path: Path
) -> None:
    async with running_core(mqtt_settings, tmp_path):
        watcher = StateStore()
        async with seat(cfg, "op2", watcher), seat(cfg, "op1", StateStore()) as first:
            async with seat(cfg, "op1", StateStore()) as second:
                await until(lambda: first.other_seats(time.time()) == 1, 10, "seat 1 sees seat 2")
                await second.leave()
                # Seat 1 answers seat 2's goodbye at once: op1 is still at a console.
                await until(
                    lambda: (
                        (p := watcher.presence.get("op1")) is not None
                        and p.online
                        and p.seat == first.seat
                    ),
                    5,
                    "seat 1 to say op1 is still online",
                )
                assert first.other_seats(time.time()) == 0
            await until(lambda: core_sees(watcher, "op1"), 5, "the core to count op1")
