"""Fault 5 of issue 5: the journal's disk is full.

The core must stop acknowledging (the broker keeps the messages), show
"JOURNAL FAILING" in every console's Summary.alarms, and carry on without loss
once there is room again.

With root (a tmpfs can be mounted), the real thing: `ansim core` as a process with
its journal on a 1 MiB tmpfs that the test fills and frees. The SOS are published
ONCE (no resends), so whatever reaches the journal in the end was kept by the
broker, i.e. never acknowledged by the core while it could not write. Without
root, the same promise is checked in-process: a Core whose SQLite journal is
capped with PRAGMA max_page_count, lowered and raised.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from console import config as config_module
from console.core.service import Core
from console.journal.sqlite import SqliteJournal
from console.journal.store import RecordKind
from protocols import codec, topics
from protocols.mqtt import Incoming, MqttSettings
from protocols.schemas import Receipt
from tests.brokers import MosquittoBroker
from tests.fault_helpers import Source, TinyDisk, journal_keys, poll, sos, summaries_until
from tests.processes import AnsimProcess, core_ready, write_config

FAILING = "JOURNAL FAILING"
BATCH = 10


@pytest.mark.slow
async def test_full_disk_holds_acknowledgements_alarms_and_resumes_without_loss(
    tmp_path: Path, mosquitto: MosquittoBroker, mqtt_settings: MqttSettings
) -> None:
    if not TinyDisk.available(tmp_path / "probe"):
        pytest.skip("cannot mount a tmpfs (needs root); the in-process test below covers it")
    disk = TinyDisk(tmp_path / "disk", size_kib=1024)
    disk.mount()
    journal_path = disk.path / "journal.db"
    config = write_config(tmp_path, mosquitto.port, journal={"path": str(journal_path)})
    core = AnsimProcess(config, "core").start()
    try:
        await core_ready(mqtt_settings)
        async with Source(mqtt_settings, "src") as source:
            # 1. Full while the core runs: no receipt, the alarm on every console.
            disk.fill()
            first = [sos("src", n) for n in range(BATCH)]
            for alarm in first:
                await source.raise_sos(alarm)
            await summaries_until(
                mqtt_settings, lambda s: any(FAILING in a for a in s.alarms), 10, FAILING
            )
            assert not source.receipts, "receipt sent for an SOS that is not in the journal"
            assert not journal_keys(journal_path, "sos:src:")
            # ... room again: the held batch is written, acknowledged and receipted.
            disk.free()
            await poll(lambda: len(source.receipts) == BATCH, 15, "receipts after space returns")
            await summaries_until(
                mqtt_settings, lambda s: not any(FAILING in a for a in s.alarms), 10, "no alarm"
            )

            # 2. Full again, and the core dies while it holds the batch: the broker kept it.
            disk.fill()
            second = [sos("src", n) for n in range(BATCH, 2 * BATCH)]
            for alarm in second:
                await source.raise_sos(alarm)
            await summaries_until(
                mqtt_settings, lambda s: any(FAILING in a for a in s.alarms), 10, FAILING
            )
            core.kill()
            disk.free()
            core = AnsimProcess(config, "core").start()
            # Published once, never resent: only the broker can have kept them. (Their
            # receipts may be lost: the resumed session delivers the backlog before the
            # link counts as connected, and the core leaves receipts to a source's resend.)
            await poll(
                lambda: len(journal_keys(journal_path, "sos:src:")) == 2 * BATCH,
                20,
                "the held batch in the journal after the restart",
            )
        keys = journal_keys(journal_path, "sos:src:")
        assert len(keys) == 2 * BATCH and set(keys.values()) == {1}
        assert "journal commit failed, holding acknowledgements" in core.log()
    finally:
        core.stop()
        disk.unmount()


class FakeTransport:
    """Stands in for the MQTT transport of an in-process Core: records what it publishes."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, payload: bytes, **_: Any) -> None:
        self.published.append((topic, payload))


async def test_capped_journal_in_process_holds_acks_then_resumes(tmp_path: Path) -> None:
    """Without root: the same promise with SQLite's max_page_count as the full disk."""
    cfg = config_module.Config()
    journal = SqliteJournal(tmp_path / "journal.db")
    core = Core(cfg, journal, clock=time.time)
    transport = FakeTransport()
    core.transport = transport  # type: ignore[assignment]
    conn = journal._conn  # the test's one reach inside: the cap stands in for the disk
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    acked: list[int] = []

    def message(n: int) -> Incoming:
        alarm = sos("src", n, dlat=0.0)
        payload = codec.encode(alarm)
        return Incoming(topics.raw("src", topics.RAW_SOS), payload, 1, False, n, acked_by(n))

    def acked_by(n: int) -> Any:
        return lambda mid, qos: acked.append(mid)

    conn.execute(f"PRAGMA max_page_count = {pages}")  # nothing more fits
    for n in range(1, 200):  # enough rows to need a new page
        core.handle(message(n))
    committing = asyncio.create_task(core.commit_and_release())
    await poll(lambda: "journal" in core.alarms, 5, "the journal alarm")
    assert FAILING in core.alarms["journal"]
    assert not acked, "acknowledged before the journal had it"
    summary_topics = [t for t, _ in transport.published if t == topics.STATE_SUMMARY]
    assert summary_topics, "the alarm was not published to the consoles"
    conn.execute("PRAGMA max_page_count = 1073741823")  # room again
    await asyncio.wait_for(committing, 5)
    assert sorted(acked) == list(range(1, 200))
    assert "journal" not in core.alarms
    receipts = [p for t, p in transport.published if t.startswith(f"{topics.ROOT}/receipt/")]
    assert len({codec.decode(p, Receipt).alarm_id for p in receipts}) == 199
    assert journal.count(RecordKind.EVENT) == 199
    journal.close()
