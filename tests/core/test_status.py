"""`ansim status` (console/core/status.py): lease, term, journal head, broker reachability.

PostgreSQL cases use a fresh database on 127.0.0.1:5432 (skipped, saying why, when none
answers); brokers are a listening loopback socket and a port nobody listens on.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from console import config as config_module
from console.config import Config
from console.core import status as status_module
from console.journal.store import RecordKind
from tests.brokers import free_port
from tests.journal import journal_helpers
from tests.processes import write_config

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")

from console.journal.lease import Fence, Lease  # noqa: E402  (needs psycopg)
from console.journal.postgres import PostgresJournal  # noqa: E402

pg_database = journal_helpers.pg_database


@pytest.fixture
def dsn(pg_database: str) -> Iterator[str]:
    def clear() -> None:
        with psycopg.connect(pg_database, autocommit=True) as conn:
            for table in ("journal", "dead_counts", "core_lease"):
                conn.execute(f"DROP TABLE IF EXISTS {table}")

    clear()
    yield pg_database
    clear()


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def _config(tmp_path: Path, port: int, *, standby: bool = True, **journal: object) -> Config:
    core = {"standby": standby}
    return config_module.load(write_config(tmp_path, port, journal=dict(journal), core=core))


def test_postgres_with_nothing_started_yet_is_not_healthy(tmp_path: Path, dsn: str) -> None:
    cfg = _config(tmp_path, free_port(), backend="postgres", dsn=dsn)
    status = status_module.gather(cfg)
    text = "\n".join(status.lines())
    assert "no journal yet" in text and "none yet" in text and "UNREACHABLE" in text
    assert not status.healthy(leased=True)


def test_postgres_with_a_live_lease_names_the_active_and_its_term(
    tmp_path: Path, dsn: str, listening: int, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = PostgresJournal(dsn)
    for n in range(3):
        journal.append(float(n), RecordKind.EVENT, "t", b"x", key=f"k{n}")
    journal.commit()
    journal.close()
    lease = Lease(dsn)
    try:
        assert lease.acquire("core-a@host:1", 0) == 1
        assert lease.acquire("core-b@host:2", 30) == 2
        cfg = _config(tmp_path, listening, backend="postgres", dsn=dsn)
        assert status_module.run(None, cfg) == 0  # type: ignore[arg-type]  (takes no options)
        out = capsys.readouterr().out
        assert "core-b@host:2, term 2" in out and "expires in" in out
        assert "head seq 3" in out and f"127.0.0.1:{listening} reachable" in out

        lease.release(Fence("core-b@host:2", 2))  # a clean stop: no active now
        assert status_module.run(None, cfg) == 1  # type: ignore[arg-type]
        assert "EXPIRED" in capsys.readouterr().out
    finally:
        lease.close()


def test_postgres_that_does_not_answer_is_said_in_one_line(tmp_path: Path) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    status = status_module.gather(_config(tmp_path, free_port(), backend="postgres", dsn=dead))
    assert "cannot read" in status.journal and status.lease.startswith("unknown")
    assert not status.healthy(leased=True)


def test_a_lone_core_on_postgres_needs_no_lease(tmp_path: Path, dsn: str, listening: int) -> None:
    PostgresJournal(dsn).close()
    cfg = _config(tmp_path, listening, standby=False, backend="postgres", dsn=dsn)
    status = status_module.gather(cfg)
    assert "not used" in status.lease and "head seq 0" in status.journal
    assert status.healthy(status_module.leased(cfg))


def test_sqlite_reports_the_head_and_needs_no_lease(tmp_path: Path, listening: int) -> None:
    from console.journal.sqlite import SqliteJournal

    path = tmp_path / "journal.db"
    with SqliteJournal(path) as journal:
        journal.append(1.0, RecordKind.EVENT, "t", b"x")
    cfg = _config(tmp_path, listening, standby=False, path=str(path))
    status = status_module.gather(cfg)
    assert "head seq 1" in status.journal and not status.lease
    assert not status_module.leased(cfg) and status.healthy(leased=False)


def test_a_partitioned_city_reports_each_partitions_journal(
    tmp_path: Path, listening: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from console.journal.sqlite import SqliteJournal
    from tests.partitioned import NORTH, OWNERS, SOUTH

    with SqliteJournal(tmp_path / "journal-north.db") as journal:
        journal.append(1.0, RecordKind.EVENT, "t", b"x")
    cfg = config_module.load(
        write_config(
            tmp_path,
            listening,
            journal={"path": str(tmp_path / "journal-{partition}.db")},
            partitions={"north": NORTH, "south": SOUTH},
            **OWNERS,
        )
    )
    code = status_module.run(None, cfg)  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert "partition north (" in out and "partition south (" in out
    assert "journal-north.db, head seq 1" in out and "journal-south.db, no journal yet" in out
    assert code == 1  # the south's core has not started yet
