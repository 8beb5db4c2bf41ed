"""The leased core in process (console/core/lease_keeper.py, standby.py), on a real PostgreSQL.

What the process tests (test_faults_standby.py) cannot pin down by timing: a core whose
lease may have run out by its own clock publishes nothing; a fenced commit acknowledges
nothing and ends the core's loop instead of being retried; a refused renewal steps down
naming the new holder; a standby's follower applies what the active commits.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, cast

import msgspec
import pytest

from console.config import Config
from protocols import codec, topics
from protocols.mqtt import Incoming
from protocols.schemas import Summary
from tests.fault_helpers import sos
from tests.journal import journal_helpers

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")

from console.core.lease_keeper import LeasedCore  # noqa: E402  (needs psycopg)
from console.core.standby import Follower  # noqa: E402
from console.journal.lease import FencedError  # noqa: E402
from console.journal.postgres import PostgresJournal  # noqa: E402

pg_database = journal_helpers.pg_database
TTL_S = 1.0


@pytest.fixture
def dsn(pg_database: str) -> Iterator[str]:
    def clear() -> None:
        with psycopg.connect(pg_database, autocommit=True) as conn:
            for table in ("journal", "dead_counts", "core_lease"):
                conn.execute(f"DROP TABLE IF EXISTS {table}")

    clear()
    yield pg_database
    clear()


class Recorder:
    """The core's transport: records every publish."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, payload: bytes, **_: Any) -> None:
        self.published.append((topic, payload))

    def summaries(self) -> list[Summary]:
        return [codec.decode(p, Summary) for t, p in self.published if t == topics.STATE_SUMMARY]


def _config() -> Config:
    cfg = Config()
    core = msgspec.structs.replace(cfg.core, standby=True, lease_ttl_s=TTL_S)
    return msgspec.structs.replace(cfg, core=core)


@pytest.fixture
def cores(dsn: str) -> Iterator[list[LeasedCore]]:
    made: list[LeasedCore] = []
    yield made
    for core in made:
        core.lease.close()
        try:
            core.journal.close()
        except Exception:
            pass  # a fenced core cannot commit what it holds: that is the point


def _core(dsn: str, cores: list[LeasedCore]) -> LeasedCore:
    core = LeasedCore(_config(), PostgresJournal(dsn))
    core.transport = Recorder()  # type: ignore[assignment]
    cores.append(core)
    return core


def _sos(n: int, acked: list[int]) -> Incoming:
    payload = codec.encode(sos("src", n))
    return Incoming(
        topics.raw("src", topics.RAW_SOS), payload, 1, False, n, lambda mid, _q: acked.append(mid)
    )


def _take_lease(core: LeasedCore, ttl_s: float = TTL_S) -> int:
    sent = time.monotonic()
    term = core.lease.acquire(core.holder, ttl_s)
    assert term is not None
    core.lease_taken(term, since=sent)
    return term


async def test_publishes_only_while_the_lease_is_surely_its_own(
    dsn: str, cores: list[LeasedCore]
) -> None:
    core = _core(dsn, cores)
    term = _take_lease(core)
    await core.flush(time.time(), everything_now=True)
    summaries = cast(Recorder, core.transport).summaries()
    assert summaries and summaries[-1].term == term and summaries[-1].lease_holder == core.holder

    # As after a freeze: by its own clock the last renewal was sent more than a ttl ago.
    core.lease_taken(term, since=time.monotonic() - TTL_S - 0.1)
    cast(Recorder, core.transport).published.clear()
    core.handle(_sos(1, []))
    await core.flush(time.time(), everything_now=True)
    await core.send_outbox()
    assert cast(Recorder, core.transport).published == []


async def test_a_fenced_commit_acknowledges_nothing_and_is_not_retried(
    dsn: str, cores: list[LeasedCore]
) -> None:
    old, new = _core(dsn, cores), _core(dsn, cores)
    _take_lease(old, ttl_s=0)  # expires at once: the next holder may take it
    acked: list[int] = []
    old.handle(_sos(1, acked))
    await old.commit_and_release()
    assert acked == [1]
    assert _take_lease(new) == 2

    old.handle(_sos(2, acked))
    with pytest.raises(FencedError):
        await old.commit_and_release()
    assert acked == [1] and old.unacked  # held, never acknowledged
    assert not new.journal.has_key("sos:src:src-a2")

    await old._keep_lease()  # the renewal is refused: it steps down and says who has it
    assert old.stepped_down == f"term 2 taken by {new.holder}" and old.stop_requested()


async def test_a_standby_follows_what_the_active_commits(dsn: str, cores: list[LeasedCore]) -> None:
    active, standby = _core(dsn, cores), _core(dsn, cores)
    follower = Follower(standby)
    _take_lease(active)
    for n in range(5):
        active.handle(_sos(n, []))
    await active.commit_and_release()
    assert follower.catch_up() >= 5
    assert standby.engine.open_incident_ids() == active.engine.open_incident_ids()
    assert follower.position == standby.pg_journal.stored_seq() == active.journal.committed_seq
    assert follower.catch_up() == 0  # nothing new


async def test_a_standby_rebuilds_up_to_a_tail_read_first(
    dsn: str, cores: list[LeasedCore]
) -> None:
    """Rebuilding reads one query per kind; bounded by a tail read made before them, a
    commit landing in between cannot leave a gap (PostgresJournal.read_upto)."""
    active = _core(dsn, cores)
    _take_lease(active)
    for n in range(4):
        active.handle(_sos(n, []))
    await active.commit_and_release()
    standby = _core(dsn, cores)
    assert standby.last_seq == active.journal.committed_seq and standby.pg_journal.read_upto is None
    assert standby.engine.open_incident_ids() == active.engine.open_incident_ids()

    journal = standby.pg_journal
    journal.read_upto = 2
    assert [r.seq for r in journal.records()] == [1, 2]
    journal.read_upto = None
    assert len(list(journal.records())) == active.journal.committed_seq
