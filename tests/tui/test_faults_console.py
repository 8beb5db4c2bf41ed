"""Fault 3 of issue 5: a console cut off from the broker while incidents change.

The real console (AnsimApp in Textual's run_test, its own Link and StateStore)
reaches Mosquitto through a loopback TCP proxy that the test cuts (every
connection reset, new ones refused) and restores: a network partition that
leaves the core and the other operators working, for the issue's full minute
(CUT_S): long enough for the console's reconnect backoff to reach its cap, so the
return is also a test of how soon it comes back (within one capped retry).

* On return, the console's StateStore holds exactly the current retained state,
  incident by incident, and nothing that was closed while it was away.
* A command typed while disconnected is refused clearly: the `a` key says
  "command NOT sent", and the link's send raises NotConnected. It is never queued
  and replayed: after the reconnect, and after a later command has been answered,
  the core's journal has no trace of it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from console import config as config_module
from console.tui.app import AnsimApp
from protocols import topics
from protocols.mqtt import MqttSettings, NotConnected
from protocols.schemas import Action, Command, IncidentState, IncidentStatus
from tests.brokers import MosquittoBroker
from tests.fault_helpers import Source, TcpProxy, journal_keys, poll, sos
from tests.processes import AnsimProcess, core_ready, retained_state, write_config

pytestmark = pytest.mark.slow


CUT_S = 60.0


def retained_incidents(state: dict[str, object]) -> dict[str, IncidentState]:
    prefix = topics.STATE_INCIDENT_PREFIX
    return {
        topics.last_level(t): s
        for t, s in state.items()
        if t.startswith(prefix) and isinstance(s, IncidentState)
    }


async def test_console_cut_off_catches_up_exactly_and_never_replays_commands(
    tmp_path: Path, mosquitto: MosquittoBroker, mqtt_settings: MqttSettings
) -> None:
    core_dir, console_dir = tmp_path / "core", tmp_path / "console"
    core_dir.mkdir()
    console_dir.mkdir()
    roles = {"op1": "operator", "op2": "operator"}
    core = AnsimProcess(write_config(core_dir, mosquitto.port, roles=roles), "core").start()
    proxy = TcpProxy(mosquitto.port)
    await proxy.start()
    console_cfg = config_module.load(
        write_config(
            console_dir,
            proxy.port,
            operator={"id": "op1"},
            broker={"reconnect_min_s": 0.05, "reconnect_max_s": 0.3, "keepalive": 5},
        ),
        environ={},
    )
    try:
        await core_ready(mqtt_settings)
        async with Source(mqtt_settings, "src", operators=("op2",), resend_s=0.5) as other:
            for n in range(3):
                await other.raise_sos(sos("src", n))
            await poll(lambda: len(other.receipts) == 3, 15, "three incidents")
            first, second, third = (other.receipts[f"src-a{n}"].incident_id for n in range(3))

            app = AnsimApp(console_cfg, connect=True)
            async with app.run_test(size=(100, 30)) as pilot:
                store = app.store
                await poll(lambda: app.connected and len(store.incidents) == 3, 15, "the picture")

                # --- cut off ------------------------------------------------------------
                await proxy.cut()
                await poll(lambda: not app.connected, 10, "the console to notice the cut")
                started = time.monotonic()
                # The world moves on: op2 closes one incident, acknowledges another, a new
                # SOS opens a fourth.
                assert (await other.command("op2", "c1", action=Action.ACK, incident_id=first)).ok
                resolved = await other.command(
                    "op2", "c2", action=Action.RESOLVE, incident_id=first, disposition="safe"
                )
                assert resolved.ok, resolved.reason
                ack = await other.command("op2", "c3", action=Action.ACK, incident_id=second)
                assert ack.ok
                await other.raise_sos(sos("src", 3))
                await poll(lambda: "src-a3" in other.receipts, 15, "the fourth incident")

                # The operator presses `a`: refused on screen, nothing sent.
                app.queue.select(third)
                await pilot.pause()
                await pilot.press("a")
                await pilot.pause()
                notes = [str(n.message) for n in app._notifications]
                assert any("NOT sent" in n for n in notes), notes
                # And the link itself refuses rather than queue.
                assert app.send_command is not None
                typed = Command(
                    cmd_id="while-down", operator="op1", action=Action.ACK,
                    ts=time.time(), incident_id=third,
                )  # fmt: skip
                with pytest.raises(NotConnected):
                    await app.send_command(typed)
                # The stale picture stays on screen, marked stale: it is not refreshed.
                assert store.incidents[first].status is IncidentStatus.NEW
                await asyncio.sleep(max(0.0, CUT_S - (time.monotonic() - started)))

                # --- back ---------------------------------------------------------------
                await proxy.restore()
                await poll(lambda: app.connected, 15, "the console to reconnect")
                expected: dict[str, IncidentState] = {}

                def caught_up() -> bool:
                    return dict(store.incidents) == expected

                deadline = time.monotonic() + 30  # one capped backoff (15 s) and then some
                while not caught_up() and time.monotonic() < deadline:
                    expected = retained_incidents(await retained_state(mqtt_settings))
                    await pilot.pause(0.2)
                assert len(expected) == 3 and first not in expected
                # Everything the broker holds is on screen, as it is now ...
                assert {i: store.incidents.get(i) for i in expected} == expected
                assert store.incidents[second].status is IncidentStatus.ACKNOWLEDGED
                # ... and nothing else: an incident closed while the console was away
                # (its retained message deleted, a deletion this console never saw) is gone.
                stale = sorted(set(store.incidents) - set(expected))
                assert not stale, f"closed while the console was away, still shown: {stale}"

                # A command after the return goes through, and is answered in order.
                after = await other.command("op2", "c4", action=Action.ACK, incident_id=third)
                assert after.ok
    finally:
        await proxy.close()
        assert core.stop() == 0, core.log()
    commands = journal_keys(core_dir / "journal.db", "cmd:")
    assert "cmd:op1:while-down" not in commands
    assert not [k for k in commands if k.startswith("cmd:op1:")], commands
    assert {"cmd:op2:c1", "cmd:op2:c2", "cmd:op2:c3", "cmd:op2:c4"} <= commands.keys()
