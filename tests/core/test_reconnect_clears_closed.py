"""A (re)connect republishes everything, closes included.

A broker that missed a close (it was down while the parties used the second broker, or
it restarted from an older persistence file) still holds the incident as open, and a
console takes the retained picture as the whole truth. So every connect sends a retained
delete for each recently closed incident, and a close pending at that moment is kept.
"""

from __future__ import annotations

from pathlib import Path

from console.core.publisher import everything
from protocols import topics
from protocols.mqtt import ConnectionState
from tests.core.test_closed_publication import Clock, close_one, make_core


async def test_a_reconnect_deletes_the_retained_state_of_closed_incidents(tmp_path: Path) -> None:
    clock = Clock()
    core, out = make_core(tmp_path / "journal.db", clock)
    incident_id = await close_one(core, 1)
    await core.flush(clock.now, everything_now=True)
    topic = topics.state_incident(core.engine.incident_home(incident_id) or "", incident_id)
    sent = len(out.payloads(topic))
    core._on_connection(ConnectionState.CONNECTED, "")  # the broker came back, or another one
    clock.now += 1
    await core.flush(clock.now)
    assert out.payloads(topic)[sent:] == [b""]
    core.journal.close()


async def test_a_close_pending_at_a_reconnect_still_goes_out(tmp_path: Path) -> None:
    clock = Clock()
    core, out = make_core(tmp_path / "journal.db", clock)
    await core.flush(clock.now, everything_now=True)
    incident_id = await close_one(core, 1)  # committed, not yet published
    core._on_connection(ConnectionState.CONNECTED, "")
    await core.flush(clock.now)
    home = core.engine.incident_home(incident_id) or ""
    assert out.payloads(topics.state_incident(home, incident_id))[-1] == b""
    assert incident_id in everything(core.engine).closed
    core.journal.close()
