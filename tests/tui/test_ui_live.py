"""The console against a real broker and a real `ansim core`: the common path, end to end.

A Mosquitto (the ``broker`` fixture) and ``ansim core`` as a child process; a
test source publishes raw responder reports and an SOS; the console under
``App.run_test`` is driven by keys alone (``a``, ``d``, ``enter``), and the
result is checked the way a fresh console would see it: the retained state.
Every wait polls with a deadline; nothing sleeps a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from console import config as config_module
from console.config import Config
from console.tui.app import AnsimApp
from console.tui.link import Link
from console.tui.state_store import StateStore
from protocols import codec, topics
from protocols.mqtt import MqttSettings, Transport
from protocols.schemas import (
    IncidentState,
    IncidentStatus,
    ResponderReport,
    ResponderStatus,
    Role,
    SosAlarm,
    SosTrigger,
    UnitKind,
)
from tests.brokers import AmqttBroker, MosquittoBroker
from tests.processes import AnsimProcess, core_ready, retained_state, until
from tests.state_lookup import must

SOURCE = "tst"
CITY_HALL = (37.5663, 126.9779)
SIZE = (80, 24)
pytestmark = pytest.mark.timeout(40)


def sos(n: int, lat: float = CITY_HALL[0], lon: float = CITY_HALL[1]) -> SosAlarm:
    return SosAlarm(alarm_id=f"live-{n}", source=SOURCE, device_id=f"phone-{n}",
                    name=f"Person {n}", lat=lat, lon=lon, accuracy_m=10,
                    trigger=SosTrigger.BUTTON, ts=time.time())  # fmt: skip


def unit(rid: str, dlat: float, status: ResponderStatus = ResponderStatus.AVAILABLE) -> Any:
    return ResponderReport(responder_id=rid, kind=UnitKind.POLICE, status=status,
                           lat=CITY_HALL[0] + dlat, lon=CITY_HALL[1], ts=time.time())  # fmt: skip


@pytest.fixture
def cfg(tmp_path: Path, broker: MosquittoBroker | AmqttBroker) -> Config:
    from tests.processes import write_config

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
async def running_core(cfg: Config, settings: MqttSettings, tmp_path: Path) -> AsyncIterator[None]:
    core = AnsimProcess(tmp_path / "ansim.toml", "core").start()
    try:
        await core_ready(settings)
        yield
    finally:
        assert core.stop() == 0, core.log()


@contextlib.asynccontextmanager
async def source(settings: MqttSettings) -> AsyncIterator[Transport]:
    async with Transport(settings, f"src-{time.monotonic_ns()}") as t:
        await t.wait_connected(10)
        yield t


async def publish(t: Transport, message: Any, kind: str) -> None:
    await t.publish(topics.raw(SOURCE, kind), codec.encode(message))


async def wait_for(pilot: Pilot[Any], predicate: Any, what: str, timeout_s: float = 10) -> None:
    """Poll the app (letting it process its messages) until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await pilot.pause(0.05)


def row_text(app: AnsimApp, incident_id: str) -> str:
    """The queue's line for an incident as painted (render_line is what goes on screen)."""
    index = app.queue.rows.index_of(incident_id)
    if index is None:
        return ""
    return app.queue.render_line(index - round(app.queue.scroll_y) + 1).text


def sos_in_queue(app: AnsimApp, source: str) -> str | None:
    """The id of the SOS from ``source`` once the queue has drawn and selected it."""
    rows = app.queue.rows
    for i in range(len(rows)):
        if rows[i].source == source and rows[i].recommended:
            return rows[i].id if app.queue.selected_id == rows[i].id else None
    return None


def console_status(app: AnsimApp) -> str:
    return str(app.status_bar.render())


async def test_sos_a_d_enter_dispatches_the_nearest_free_unit_and_op2_sees_it(
    cfg: Config, mqtt_settings: MqttSettings, tmp_path: Path
) -> None:
    async with running_core(cfg, mqtt_settings, tmp_path), source(mqtt_settings) as src:
        # Off duty and nearest, then the nearest free one, then a farther free one.
        await publish(src, unit("u-off", 0.0003, ResponderStatus.OFF_DUTY), topics.RAW_RESPONDER)
        await publish(src, unit("u-near", 0.001), topics.RAW_RESPONDER)
        await publish(src, unit("u-far", 0.02), topics.RAW_RESPONDER)
        await publish(src, sos(1), topics.RAW_SOS)

        # A second console seat: the console's own link into a plain store.
        other = StateStore()
        link2 = Link(cfg, "op2", Role.OPERATOR, other, lambda message: None)
        second = asyncio.create_task(link2.run())
        app = AnsimApp(cfg, operator="op1", connect=True)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await wait_for(pilot, lambda: app.connected, "the console to connect")

                await wait_for(
                    pilot,
                    lambda: sos_in_queue(app, "phone-1") is not None,
                    "the SOS (with recommendations) selected in the queue",
                )
                incident_id = sos_in_queue(app, "phone-1")
                assert incident_id is not None
                assert "SOS" in row_text(app, incident_id) and "NEW" in row_text(app, incident_id)
                assert app.selected_incident() is not None
                assert app.selected_incident().id == incident_id  # type: ignore[union-attr]

                await pilot.press("a")
                await wait_for(
                    pilot,
                    lambda: app.store.incidents[incident_id].status == IncidentStatus.ACKNOWLEDGED,
                    "the acknowledgement to come back as state",
                )
                await pilot.press("d")
                await pilot.pause()
                pressed = time.monotonic()
                await pilot.press("enter")
                await wait_for(
                    pilot,
                    lambda: app.store.incidents[incident_id].status == IncidentStatus.DISPATCHED,
                    "the dispatch to come back as state",
                )
                seen_here = time.monotonic()
                assert "DISP" in row_text(app, incident_id)
                assert any("Dispatched u-near" in str(n.message) for n in app._notifications)

                await until(
                    lambda: (
                        (i := other.incidents.get(incident_id)) is not None
                        and i.status == IncidentStatus.DISPATCHED
                    ),
                    timeout_s=5,
                    what="the second console to see the dispatch",
                )
                seen_there = time.monotonic()
                assert seen_there - seen_here < 1.0, f"op2 lagged {seen_there - seen_here:.2f} s"
                assert seen_there - pressed < 3.0, f"enter→op2 took {seen_there - pressed:.2f} s"
                assert other.incidents[incident_id].responders == ("u-near",)
                await pilot.press("q", "y")
        finally:
            second.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await second

        state = await retained_state(mqtt_settings)
        incident = must(state, "incident", incident_id)
        assert isinstance(incident, IncidentState)
        assert incident.status is IncidentStatus.DISPATCHED
        assert incident.responders == ("u-near",) and incident.owner == "op1"
        responder = must(state, "responder", "u-near")
        assert responder.status is ResponderStatus.DISPATCHED
        assert responder.incident_id == incident_id


async def test_console_survives_a_broker_restart(
    cfg: Config,
    broker: MosquittoBroker | AmqttBroker,
    mqtt_settings: MqttSettings,
    tmp_path: Path,
) -> None:
    async with running_core(cfg, mqtt_settings, tmp_path):
        async with source(mqtt_settings) as src:
            await publish(src, unit("u-near", 0.001), topics.RAW_RESPONDER)
            await publish(src, sos(1), topics.RAW_SOS)
        app = AnsimApp(cfg, operator="op1", connect=True)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.store.open_count >= 1, "the first SOS")
            first = app.queue.rows[0].id

            broker.kill()  # a crash: the console's connection drops at once
            await wait_for(pilot, lambda: not app.connected, "the console to notice")
            assert "disconnected" in console_status(app) or "connecting" in console_status(app)
            assert app.panes.has_class("-stale")
            assert app.queue.row_count() == 1  # the last known picture stays
            await pilot.press("a")
            # pilot.press returns once the process looks idle, which on a loaded machine
            # can be before the key has gone all the way down to the app's action.
            await wait_for(
                pilot,
                lambda: any("NOT sent" in str(n.message) for n in app._notifications),
                "the refusal to send offline",
            )
            assert app._sent == {}

            broker.start()  # same port, a fresh process
            await wait_for(pilot, lambda: app.connected, "the console to reconnect", 15)
            assert not app.panes.has_class("-stale")
            assert "● connected" in console_status(app)

            # Catch up: a new SOS raised after the restart shows up, the old one is still there.
            await core_ready(mqtt_settings)
            async with source(mqtt_settings) as src:
                await publish(src, sos(2, lat=CITY_HALL[0] + 0.01), topics.RAW_SOS)
            await wait_for(pilot, lambda: app.store.open_count >= 2, "the SOS raised after")
            assert app.queue.rows.index_of(first) is not None
            # And commands work again.
            app.queue.select(first)
            await pilot.press("a")
            await wait_for(
                pilot,
                lambda: app.store.incidents[first].status == IncidentStatus.ACKNOWLEDGED,
                "the acknowledgement after the restart",
            )
            await pilot.press("q", "y")
