"""Fault 2 of issue 5: the core is killed (SIGKILL) mid-storm and restarted.

`ansim simulate --scenario storm` (resends on, ``--record``) feeds a real core
through Mosquitto; the core is SIGKILLed mid-storm and started again at once.

* Every SOS the simulator raised is in the journal exactly once.
* The restarted core's published (retained) state equals that of a reference core
  that was never killed and saw the same input: a fresh engine fed, in-process,
  the journal's input records (events, commands, state-changing ticks) in seq
  order. Compared incident by incident, every field but three: ``cameras``,
  ``recommended`` and ``shelters`` are computed when the incident is published,
  from where cameras and responders are *at that moment*; the retained copy keeps
  the positions of its last publication while the reference computes them from
  the final positions, so they legitimately differ for any incident that did not
  change after a responder moved.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest

from console import config as config_module
from console.core.rebuild import rebuild
from console.journal.store import open_journal
from protocols import topics
from protocols.mqtt import MqttSettings
from protocols.schemas import IncidentState
from tests.brokers import MosquittoBroker
from tests.fault_helpers import exited, journal_keys, poll, recorded_ids
from tests.processes import AnsimProcess, core_ready, retained_state, write_config

pytestmark = pytest.mark.slow

PUBLISH_TIME_FIELDS = ("cameras", "recommended", "shelters")


def comparable(state: IncidentState) -> IncidentState:
    return msgspec.structs.replace(state, cameras=(), recommended=(), shelters=())


async def test_core_sigkill_mid_storm_rebuilds_the_state_of_a_core_never_killed(
    tmp_path: Path, mosquitto: MosquittoBroker, mqtt_settings: MqttSettings
) -> None:
    record = tmp_path / "raised.txt"
    config = write_config(tmp_path, mosquitto.port)
    core = AnsimProcess(config, "core").start()
    sim: AnsimProcess | None = None
    try:
        await core_ready(mqtt_settings)
        sim = AnsimProcess(
            config, "simulate", "--scenario", "storm", "--rate", "30", "--duration", "8",
            "--seed", "5", "--record", str(record), "--quiet",
        ).start()  # fmt: skip
        await poll(lambda: len(recorded_ids(record)) >= 8, 20, "SOS before the kill")
        core.kill()
        core = AnsimProcess(config, "core").start()
        assert await exited(sim, 40) == 0, sim.log()
        raised = recorded_ids(record)
        wanted = {f"sos:sim:{alarm_id}" for alarm_id in raised}
        path = tmp_path / "journal.db"
        await poll(lambda: wanted <= journal_keys(path, "sos:sim:").keys(), 20, "every SOS")
        keys = journal_keys(path, "sos:sim:")
        assert keys.keys() == wanted and set(keys.values()) == {1}
    finally:
        if sim is not None:
            sim.stop()
        # SIGTERM: the core publishes what is dirty, then stops; the retained state is final.
        assert core.stop() == 0, core.log()
    assert "rebuilt state from the journal" in core.log()

    published = {
        t.rsplit("/", 1)[1]: s
        for t, s in (await retained_state(mqtt_settings)).items()
        if t.startswith(topics.STATE_INCIDENT_PREFIX) and isinstance(s, IncidentState)
    }
    cfg = config_module.load(config, environ={})
    journal = open_journal(cfg.journal)
    try:
        reference, _ = rebuild(cfg, journal)
    finally:
        journal.close()
    now = time.time()
    expected = {i: reference.incident_state(i, now) for i in reference.open_incident_ids()}
    assert set(published) == set(expected)
    assert sum(s.sos_count for s in expected.values()) == len(raised)
    for incident_id, state in expected.items():
        assert comparable(published[incident_id]) == comparable(state), incident_id
