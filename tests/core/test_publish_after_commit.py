"""What the core publishes, and when.

1. Nothing that reflects a batch goes out before that batch's commit. The engine
   applies a batch before the journal commits it; when the commit fails (a full
   disk) the core holds the batch and retries every second, and meanwhile its publish
   loop keeps running. It must publish no incident, camera or responder state and no
   summary figures from the held batch, only the last committed summary with the
   "JOURNAL FAILING" alarm, until the commit succeeds.
2. Every value that becomes a topic level is an identifier (``protocols.topics``
   raises ValueError otherwise), and the publisher never dies on one: the message is
   skipped, counted and logged once per kind, and everything else goes out.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest

from console.config import Config
from console.core import publisher
from console.core.publisher import Dirty, Outbox, publish_outbox, publish_state
from console.core.service import Core
from console.journal.sqlite import SqliteJournal
from console.journal.store import JournalError
from protocols import codec, topics
from protocols.mqtt import ConnectionState, Incoming
from protocols.schemas import IncidentState, Receipt, Reply, Summary
from tests.fault_helpers import poll, sos

FAILING = "JOURNAL FAILING"
SOURCE = "src"


class FlakyJournal(SqliteJournal):
    """The real SQLite journal whose commit fails, as on a full disk, while ``failing``."""

    failing = False
    attempts = 0

    def commit(self) -> None:
        if self.failing:
            self.attempts += 1
            raise JournalError("database or disk is full (simulated)")
        super().commit()


class Recorder:
    """The core's transport: records every publish."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, payload: bytes, **_: Any) -> None:
        self.published.append((topic, payload))

    def topics(self) -> list[str]:
        return [t for t, _ in self.published]

    def summaries(self) -> list[Summary]:
        return [codec.decode(p, Summary) for t, p in self.published if t == topics.STATE_SUMMARY]

    def incidents(self) -> dict[str, IncidentState]:
        return {
            topics.last_level(t): codec.decode(p, IncidentState)
            for t, p in self.published
            if t.startswith(topics.STATE_INCIDENT_PREFIX) and p
        }


def message(n: int, acked: list[int]) -> Incoming:
    payload = codec.encode(msgspec.structs.replace(sos(SOURCE, n), lat=37.5 + n * 0.01))
    return Incoming(
        topics.raw(SOURCE, topics.RAW_SOS), payload, 1, False, n, lambda mid, _q: acked.append(mid)
    )


@pytest.fixture
def core(tmp_path: Path) -> Core:
    journal = FlakyJournal(tmp_path / "journal.db")
    made = Core(Config(), journal, clock=time.time)
    made.transport = Recorder()  # type: ignore[assignment]
    return made


def recorder(core: Core) -> Recorder:
    return cast(Recorder, core.transport)


# --- 1. state waits for the commit ------------------------------------------------------


async def test_nothing_of_a_held_batch_is_published_until_its_commit(core: Core) -> None:
    journal = cast(FlakyJournal, core.journal)
    out = recorder(core)
    acked: list[int] = []
    core.handle(message(1, acked))
    await core.commit_and_release()
    await core.flush(time.time(), everything_now=True)
    committed = set(out.incidents())
    assert len(committed) == 1 and out.summaries()[-1].open_total == 1
    out.published.clear()

    journal.failing = True
    for n in range(2, 12):
        core.handle(message(n, acked))
    held = set(core.engine.open_incident_ids()) - committed
    assert held, "the engine applies a batch before its commit"
    committing = asyncio.create_task(core.commit_and_release())
    await poll(lambda: "journal" in core.alarms, 5, "the journal alarm")
    # The publish loop goes on meanwhile, and a reconnect marks everything dirty.
    await core.flush(time.time())
    core._on_connection(ConnectionState.CONNECTED, "reconnected")
    await core.flush(time.time(), everything_now=True)
    await poll(lambda: journal.attempts >= 2, 5, "a retried commit")

    assert [t for t in out.topics() if t != topics.STATE_SUMMARY] == []  # no state, no receipt
    assert acked == [1]
    summaries = out.summaries()
    assert summaries, "the consoles must see the alarm"
    for summary in summaries:
        assert any(FAILING in alarm for alarm in summary.alarms)
        assert summary.open_total == 1  # the committed figures, not the held batch's
        assert summary.events_total == 1

    journal.failing = False
    await asyncio.wait_for(committing, 5)
    await core.flush(time.time())
    assert held <= set(out.incidents())
    assert sorted(acked) == list(range(1, 12))
    last = out.summaries()[-1]
    assert not any(FAILING in alarm for alarm in last.alarms)
    assert last.open_total == len(committed | held)
    receipts = [t for t in out.topics() if t.startswith(f"{topics.ROOT}/receipt/")]
    assert len(receipts) == 10


async def test_the_shutdown_flush_publishes_a_held_batch_only_once_committed(
    core: Core,
) -> None:
    """Stopping mid-hold: the last flush commits first; if it still cannot, nothing goes."""
    journal = cast(FlakyJournal, core.journal)
    out = recorder(core)
    core.handle(message(1, []))
    await core.commit_and_release()
    journal.failing = True
    core.handle(message(2, []))
    holding = asyncio.create_task(core.commit_and_release())
    await poll(lambda: "journal" in core.alarms, 5, "the held batch")
    holding.cancel()  # the core is stopping: its loops are cancelled
    out.published.clear()
    await core._flush_quietly()  # the commit fails again: not even a summary
    assert out.published == []
    journal.failing = False
    await core._flush_quietly()
    assert len(out.incidents()) == 2 and not core.held


# --- 2. topic levels are identifiers; the publisher skips what is not -------------------

BAD = ["", "a/b", "+", "#", "a b", "a\n", "tab\there", "ünï", "x" * 129, "$SYS", "a\x00"]
GOOD = ["a", "op1", "cam-gangnam-17", "sos:src:a1", "user@example.org", "x" * 128, "v1.2_3"]
BUILDERS = {
    "raw source": lambda v: topics.raw(v, topics.RAW_SOS),
    "raw kind": lambda v: topics.raw("cam-1", v),
    "raw district": lambda v: topics.raw("cam-1", topics.RAW_CCTV, v),
    "raws_from": topics.raws_from,
    "state_incident": lambda v: topics.state_incident("Mapo-gu", v),
    "state_incident district": lambda v: topics.state_incident(v, "I-000001"),
    "state_closed": topics.state_closed,
    "state_summary": topics.state_summary,
    "cmd partition": lambda v: topics.cmd("op1", v),
    "state_cameras": topics.state_cameras,
    "state_camera_page": lambda v: topics.state_camera_page(v, 0),
    "state_responder": lambda v: topics.state_responder("Mapo-gu", v),
    "state_responder district": lambda v: topics.state_responder(v, "u-1"),
    "cmd": topics.cmd,
    "reply": topics.reply,
    "receipt source": lambda v: topics.receipt(v, "a1"),
    "receipt id": lambda v: topics.receipt("cam-1", v),
    "receipts_for": topics.receipts_for,
    "presence": topics.presence,
}


@pytest.mark.parametrize("build", BUILDERS.values(), ids=BUILDERS.keys())
def test_every_topic_builder_refuses_a_level_that_is_not_an_identifier(build: Any) -> None:
    for value in BAD:
        with pytest.raises(ValueError, match="not an identifier"):
            build(value)
    for value in GOOD:
        assert value in build(value).split("/")


def test_the_level_rule_is_the_ident_schema() -> None:
    ident = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
    for value in [*BAD, *GOOD, "a:b@c", "-", ".", "..", "ㄱ"]:
        accepted = True
        try:
            topics.level(value)
        except ValueError:
            accepted = False
        assert accepted == bool(ident.fullmatch(value)), repr(value)


@pytest.mark.parametrize("page", [-1, 1.0, "1", True, None])
def test_a_camera_page_is_a_natural_number(page: Any) -> None:
    with pytest.raises(ValueError):
        topics.state_camera_page("Jongno-gu", page)
    assert topics.state_camera_page("Jongno-gu", 3).endswith("/Jongno-gu/3")


@pytest.fixture
def refusals(monkeypatch: pytest.MonkeyPatch) -> publisher.RefusedTopics:
    fresh = publisher.RefusedTopics()
    monkeypatch.setattr(publisher, "refused_topics", fresh)
    return fresh


def reply(operator: str) -> Reply:
    return Reply(cmd_id="c1", operator=operator, ok=True, ts=1.0)


def receipt(alarm_id: str) -> Receipt:
    return Receipt(alarm_id=alarm_id, source=SOURCE, incident_id="i1", ts=1.0)


async def test_publish_outbox_skips_a_bad_level_and_sends_the_rest(
    refusals: publisher.RefusedTopics, caplog: pytest.LogCaptureFixture
) -> None:
    out = Recorder()
    box = Outbox(
        replies=[reply("op1"), reply("op/2"), reply("op3")],
        receipts=[receipt("a1"), receipt("a#2"), receipt("a+3"), receipt("a4")],
    )
    with caplog.at_level(logging.ERROR, logger="ansim.core.publisher"):
        await publish_outbox(out, box)  # type: ignore[arg-type]
    assert out.topics() == [
        topics.reply("op1"),
        topics.reply("op3"),
        topics.receipt(SOURCE, "a1"),
        topics.receipt(SOURCE, "a4"),
    ]
    assert refusals.total == 3 and refusals.by_kind == {"reply": 1, "receipt": 2}
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 2, logged  # once per kind
    assert all("not an identifier" in line for line in logged)


async def test_publish_state_skips_bad_levels_and_publishes_everything_else(
    core: Core, refusals: publisher.RefusedTopics
) -> None:
    core.handle(message(1, []))
    await core.commit_and_release()
    good = core.engine.open_incident_ids()
    # A home district that is not an identifier (an old journal's "unknown district!").
    bad = core.engine.st.incidents[good[0]]
    bad.home = "bad/district"
    dirty = Dirty(
        incidents={*good, "never-seen"},  # no home district: nothing to publish
        closed={"gone#1"},
        districts={"bad/district"},
        responders={"bad responder"},
    )
    out = Recorder()
    sent = await publish_state(out, core.engine, dirty, time.time())  # type: ignore[arg-type]
    assert sent == len(out.published) == len(good) - 1
    assert set(out.incidents()) == set(good) - {bad.id}
    assert refusals.by_kind == {"incident": 1, "district": 1}


async def test_the_core_keeps_publishing_past_bad_values(
    core: Core, refusals: publisher.RefusedTopics
) -> None:
    """The publish loop once died on the first ValueError, and took the core down with it."""
    out = recorder(core)
    core.handle(message(1, []))
    await core.commit_and_release()
    core.dirty.incidents.add("evil/../incident")
    core.dirty.responders.add("#")
    core.owed.receipts.append(receipt("a\n"))
    core.owed.replies.append(reply("op1"))
    await core.flush(time.time(), everything_now=True)
    assert topics.reply("op1") in out.topics()
    assert len(out.incidents()) == 1
    assert topics.STATE_SUMMARY in out.topics()
    assert refusals.total == 1  # unknown ids have no home district: skipped, not refused
    assert not core.failed
    # An incident whose home district is not an identifier: refused, counted each round.
    (incident_id,) = core.engine.open_incident_ids()
    core.engine.st.incidents[incident_id].home = "evil/../district"
    for round_ in (1, 2):
        core.dirty.incidents.add(incident_id)
        await core.flush(time.time())
        assert refusals.by_kind["incident"] == round_ and not core.failed
