"""Dispatch against a real broker and a real `ansim core` (issue 18, points 2 and 3).

The units are published as raw responder reports, the console is driven by keys alone:
the dialog `d` opens preselects the unit with the lowest ETA (a police car further away
before a guard on foot nearer), never an off-duty one; a unit on scene that reports
itself available leaves the incident acknowledged, with the core's alert on it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import OptionList

from console import config as config_module
from console.config import Config
from console.tui.app import AnsimApp
from console.tui.screens.dispatch import DispatchScreen
from protocols import topics
from protocols.mqtt import MqttSettings
from protocols.schemas import IncidentStatus, ResponderReport, ResponderStatus, UnitKind
from tests.brokers import AmqttBroker, MosquittoBroker
from tests.tui.test_ui_live import (
    CITY_HALL,
    SIZE,
    publish,
    running_core,
    sos,
    sos_in_queue,
    source,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)
M_PER_DEG = 111_195.0


def unit(
    rid: str,
    kind: UnitKind,
    north_m: float,
    status: ResponderStatus = ResponderStatus.AVAILABLE,
) -> ResponderReport:
    return ResponderReport(responder_id=rid, kind=kind, status=status,
                           lat=CITY_HALL[0] + north_m / M_PER_DEG, lon=CITY_HALL[1],
                           ts=time.time())  # fmt: skip


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
        roles={"op1": "operator"},
    )
    return config_module.load(path, environ={})


def dialog_units(app: AnsimApp) -> tuple[list[str], str | None]:
    """The unit ids the open dispatch dialog offers, and the one highlighted."""
    options = app.screen.query_one(OptionList)
    ids = [options.get_option_at_index(i).id or "" for i in range(options.option_count)]
    highlighted = options.highlighted
    return ids, (ids[highlighted] if highlighted is not None else None)


async def test_the_dialog_preselects_the_lowest_eta_never_an_off_duty_unit(
    cfg: Config, mqtt_settings: MqttSettings, tmp_path: Path
) -> None:
    async with running_core(cfg, mqtt_settings, tmp_path), source(mqtt_settings) as src:
        for report in (
            unit("off-1", UnitKind.POLICE, 100, ResponderStatus.OFF_DUTY),  # nearest, off duty
            unit("guard-1", UnitKind.GUARD, 1600),  # 16 min on foot
            unit("police-1", UnitKind.POLICE, 2700),  # 5.4 min by car
            unit("scout-1", UnitKind.SCOUT, 3000),  # 36 min on foot
        ):
            await publish(src, report, topics.RAW_RESPONDER)
        await publish(src, sos(1), topics.RAW_SOS)

        app = AnsimApp(cfg, operator="op1", connect=True)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.connected, "the console to connect")
            await wait_for(
                pilot,
                lambda: (
                    sos_in_queue(app, "phone-1") is not None
                    and len(app.store.incidents[sos_in_queue(app, "phone-1") or ""].recommended)
                    == 3
                ),
                "the SOS with its three recommended units",
            )
            incident_id = sos_in_queue(app, "phone-1")
            assert incident_id is not None
            recommended = app.store.incidents[incident_id].recommended
            assert [r.responder_id for r in recommended] == ["police-1", "guard-1", "scout-1"]

            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(app.screen, DispatchScreen), "the dialog")
            offered, preselected = dialog_units(app)
            assert preselected == "police-1"
            assert offered == ["police-1", "guard-1", "scout-1"]  # fastest first
            lines = [str(o.prompt) for o in app.screen.query_one(OptionList)._options]
            assert lines[0].startswith("ETA   5:24") and "2.7 km" in lines[0]
            assert "16 min" in lines[1] and "1.6 km" in lines[1]
            await pilot.press("escape")

            # The police car goes off duty: the core republishes the list without it, and
            # the dialog now preselects the guard.
            await publish(
                src,
                unit("police-1", UnitKind.POLICE, 2700, ResponderStatus.OFF_DUTY),
                topics.RAW_RESPONDER,
            )
            await wait_for(
                pilot,
                lambda: (
                    [r.responder_id for r in app.store.incidents[incident_id].recommended]
                    == ["guard-1", "scout-1"]
                ),
                "the recommendations republished without the off-duty car",
            )
            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(app.screen, DispatchScreen), "the dialog")
            offered, preselected = dialog_units(app)
            assert preselected == "guard-1" and "police-1" not in offered and "off-1" not in offered
            await pilot.press("enter")
            await wait_for(
                pilot,
                lambda: app.store.incidents[incident_id].responders == ("guard-1",),
                "the dispatch of the guard",
            )
            await pilot.press("q", "y")


async def test_a_unit_reporting_available_on_scene_raises_the_alert(
    cfg: Config, mqtt_settings: MqttSettings, tmp_path: Path
) -> None:
    async with running_core(cfg, mqtt_settings, tmp_path), source(mqtt_settings) as src:
        await publish(src, unit("police-7", UnitKind.POLICE, 500), topics.RAW_RESPONDER)
        await publish(src, sos(1), topics.RAW_SOS)
        app = AnsimApp(cfg, operator="op1", connect=True)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.connected, "the console to connect")
            await wait_for(
                pilot, lambda: sos_in_queue(app, "phone-1") is not None, "the SOS selected"
            )
            incident_id = sos_in_queue(app, "phone-1")
            assert incident_id is not None

            def status() -> Any:
                return app.store.incidents[incident_id].status

            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(app.screen, DispatchScreen), "the dialog")
            await pilot.press("enter")
            await wait_for(pilot, lambda: status() == IncidentStatus.DISPATCHED, "the dispatch")
            await publish(
                src, unit("police-7", UnitKind.POLICE, 400, ResponderStatus.ON_SCENE),
                topics.RAW_RESPONDER,
            )  # fmt: skip
            await wait_for(pilot, lambda: status() == IncidentStatus.ON_SCENE, "on scene")

            await publish(
                src, unit("police-7", UnitKind.POLICE, 400, ResponderStatus.AVAILABLE),
                topics.RAW_RESPONDER,
            )  # fmt: skip
            await wait_for(pilot, lambda: bool(app.store.incidents[incident_id].alert), "the alert")
            incident = app.store.incidents[incident_id]
            assert incident.status is IncidentStatus.ACKNOWLEDGED
            assert incident.responders == ()
            assert incident.alert.startswith("police-7 left: reported available")
            # The detail of the selected incident shows it.
            await wait_for(
                pilot,
                lambda: "police-7 left: reported available" in app.detail.render_text().plain,
                "the detail to show the alert",
            )
            await pilot.press("q", "y")
