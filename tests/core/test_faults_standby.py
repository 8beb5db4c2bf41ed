"""Issue 13: two `ansim core` on one PostgreSQL journal, the active killed or frozen mid-storm.

Real processes: one Mosquitto, two cores with `[core] standby = true` on a fresh
database (127.0.0.1:5432, trust auth; skipped, saying why, when none answers), and
`ansim simulate --scenario storm` resending every SOS until the core's receipt.

* SIGKILL of the active: the standby takes the lease and the broker session within a
  few seconds (printed), and every SOS raised is journaled exactly once and counted once
  in the retained state.
* SIGSTOP of the active past its lease, the standby takes over, SIGCONT: the old active
  writes nothing (its commits are fenced by the term), steps down saying so, and exits
  with code 3; the new active carries on and still nothing is lost or doubled.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocols import topics
from protocols.mqtt import MqttSettings
from protocols.schemas import IncidentState, Summary
from tests.brokers import MosquittoBroker, free_port
from tests.fault_helpers import exited, pause, poll, recorded_ids, resume, summaries_until
from tests.journal import journal_helpers
from tests.processes import AnsimProcess, retained_state, write_config

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")

pytestmark = pytest.mark.slow

pg_database = journal_helpers.pg_database

TTL_S = 1.5  # [core] lease_ttl_s: short, so a takeover fits a test
RATE = 30.0  # events/s of the storm (12 % SOS): this is about loss, not load
DURATION_S = 10.0
STEPPED_DOWN = 3


@pytest.fixture
def dsn(pg_database: str) -> Iterator[str]:
    """The session database with no journal and no lease, before and after."""

    def clear() -> None:
        with psycopg.connect(pg_database, autocommit=True) as conn:
            for table in ("journal", "dead_counts", "core_lease"):
                conn.execute(f"DROP TABLE IF EXISTS {table}")

    clear()
    yield pg_database
    clear()


def sos_keys(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT key, count(*) FROM journal WHERE key LIKE 'sos:sim:%' GROUP BY key"
        ).fetchall()
    return {str(key): int(n) for key, n in rows}


def sos_total(state: dict[str, object]) -> int:
    return sum(
        s.sos_count
        for t, s in state.items()
        if t.startswith(topics.STATE_INCIDENT_PREFIX) and isinstance(s, IncidentState)
    )


def core(config: Path, name: str) -> AnsimProcess:
    process = AnsimProcess(config, "core")
    process.log_path = config.parent / f"core-{name}.log"
    return process.start()


async def active_summary(settings: MqttSettings, term: int, timeout_s: float) -> Summary:
    return await summaries_until(
        settings, lambda s: s.term >= term, timeout_s, f"an active core in term {term}"
    )


async def every_sos_once(config: Path, dsn: str, settings: MqttSettings, raised: list[str]) -> None:
    """Every SOS raised is in the journal exactly once, and counted once in retained state."""
    assert len(raised) == len(set(raised))
    wanted = {f"sos:sim:{alarm_id}" for alarm_id in raised}
    await poll(lambda: wanted <= sos_keys(dsn).keys(), 20, "every SOS in the journal")
    keys = sos_keys(dsn)
    assert keys.keys() == wanted, "an SOS in the journal that the simulator never raised"
    assert set(keys.values()) == {1}, "an SOS journaled twice"
    chain = ansim(config, "journal", "verify")  # one chain, whichever core wrote each part
    assert chain.returncode == 0, chain.stdout + chain.stderr
    state: dict[str, object] = {}
    deadline = time.monotonic() + 15
    while sos_total(state) != len(raised) and time.monotonic() < deadline:
        state = await retained_state(settings)
    assert sos_total(state) == len(raised)


def storm(config: Path, record: Path) -> AnsimProcess:
    return AnsimProcess(
        config, "simulate", "--scenario", "storm", "--rate", str(RATE),
        "--duration", str(DURATION_S), "--seed", "13", "--record", str(record),
    ).start()  # fmt: skip


def ansim(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "console.cli", "--config", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def two_core_config(tmp_path: Path, port: int, dsn: str) -> Path:
    return write_config(
        tmp_path,
        port,
        broker={"reconnect_max_s": 0.5},
        journal={"backend": "postgres", "dsn": dsn},
        core={"standby": True, "lease_ttl_s": TTL_S},
    )


async def test_active_sigkill_the_standby_takes_over_and_loses_no_sos(
    tmp_path: Path, mosquitto: MosquittoBroker, mqtt_settings: MqttSettings, dsn: str
) -> None:
    config = two_core_config(tmp_path, mosquitto.port, dsn)
    record = tmp_path / "raised.txt"
    first = core(config, "a")
    second: AnsimProcess | None = None
    sim: AnsimProcess | None = None
    try:
        before = await active_summary(mqtt_settings, 1, 20)
        second = core(config, "b")
        await poll(lambda: "following the journal" in second.log(), 20, "the standby")
        sim = storm(config, record)
        await poll(lambda: len(recorded_ids(record)) >= 5, 20, "SOS before the kill")
        first.kill()
        killed_at = time.monotonic()
        after = await active_summary(mqtt_settings, 2, 20)
        takeover = time.monotonic() - killed_at
        assert after.lease_holder != before.lease_holder
        assert after.lease_holder.startswith("ansim-core@")
        status = ansim(config, "status")
        assert status.returncode == 0, status.stdout
        assert f"lease:   {after.lease_holder}, term 2" in status.stdout
        raised_at_kill = len(recorded_ids(record))
        await poll(lambda: len(recorded_ids(record)) >= raised_at_kill + 3, 20, "SOS after")
        assert await exited(sim, DURATION_S + 30) == 0, sim.log()
        raised = recorded_ids(record)
        await every_sos_once(config, dsn, mqtt_settings, raised)
        print(
            f"\nactive SIGKILL: standby took over in {takeover:.2f} s (lease ttl {TTL_S} s); "
            f"SOS raised {len(raised)} ({raised_at_kill} before the takeover), "
            "all journaled once and counted once"
        )
        assert takeover < 3 * TTL_S + 3, "the takeover took too long"
        took = re.search(r"took the lease: term 2, .*\((\d+) records applied", second.log())
        assert took is not None and int(took.group(1)) > 0, "the standby did not follow"
    finally:
        if sim is not None:
            sim.stop()
        first.kill()
        if second is not None:
            assert second.stop() == 0, second.log()


async def test_frozen_active_wakes_writes_nothing_and_steps_down(
    tmp_path: Path, mosquitto: MosquittoBroker, mqtt_settings: MqttSettings, dsn: str
) -> None:
    config = two_core_config(tmp_path, mosquitto.port, dsn)
    record = tmp_path / "raised.txt"
    first = core(config, "a")
    second: AnsimProcess | None = None
    sim: AnsimProcess | None = None
    frozen = False
    try:
        await active_summary(mqtt_settings, 1, 20)
        second = core(config, "b")
        await poll(lambda: "following the journal" in second.log(), 20, "the standby")
        sim = storm(config, record)
        await poll(lambda: len(recorded_ids(record)) >= 5, 20, "SOS before the freeze")
        pause(first)
        frozen, frozen_at = True, time.monotonic()
        await active_summary(mqtt_settings, 2, 20)
        takeover = time.monotonic() - frozen_at
        raised_at_takeover = len(recorded_ids(record))
        await poll(lambda: len(recorded_ids(record)) >= raised_at_takeover + 3, 20, "SOS after")
        resume(first)
        frozen = False
        assert await exited(first, 15) == STEPPED_DOWN, first.log()
        assert "stepped down: term 2 taken by ansim-core@" in first.log()
        assert await exited(sim, DURATION_S + 30) == 0, sim.log()
        raised = recorded_ids(record)
        await every_sos_once(config, dsn, mqtt_settings, raised)
        # The new active was never displaced for good: it is still the one publishing.
        latest = await active_summary(mqtt_settings, 2, 10)
        assert latest.term == 2
        with psycopg.connect(dsn, autocommit=True) as conn:
            holder, term = conn.execute("SELECT holder, term FROM core_lease").fetchone()
        assert term == 2 and holder == latest.lease_holder
        print(
            f"\nactive SIGSTOP: standby took over in {takeover:.2f} s (lease ttl {TTL_S} s); "
            f"the old active woke, wrote nothing and stepped down; SOS raised {len(raised)}, "
            "all journaled once and counted once"
        )
    finally:
        if frozen:
            resume(first)
        if sim is not None:
            sim.stop()
        first.kill()
        if second is not None:
            assert second.stop() == 0, second.log()


def test_standby_needs_the_postgres_journal(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), core={"standby": True})
    command = [sys.executable, "-m", "console.cli", "--config", str(config), "core"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2, result.stderr
    assert '[core] standby = true needs [journal] backend = "postgres"' in result.stderr
