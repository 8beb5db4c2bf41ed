"""What one journal record costs: has_key, append (hash, checks) and commit, per record.

``python -m bench.journal_record [records] [--cameras=N] [--profile] [--dsn=postgresql://…/db]``.

Not a benchmark that ``bench.run`` tabulates (it registers nothing): it splits the
journal's share of ``engine+journal-vs-engine`` into its parts, on the same records
(the storm after 20,000 camera registrations: 47 % keyed, CCTV events and SOS), so a
change to the record can be measured alone; ``--cameras=0`` gives the live core's mix
(``core.drain-vs-mosquitto_sub``: 13 % keyed). ``--profile`` prints the top of a
cProfile of the append and commit path; ``--dsn`` measures PostgreSQL too, in a
database it creates on that server and drops after (the DSN's own database is only
used to create and drop it).
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import quiet_gc
from bench.engine import _payloads
from console.config import Config, JournalConfig
from console.core.ingest import Accepted, read
from console.journal.store import Journal, RecordKind, open_journal

Input = tuple[float, RecordKind, str, bytes, str]
CAMERAS = 20_000  # as bench.engine: about half the storm's records are then keyed (CCTV)


def _inputs(count: int, cameras: int = CAMERAS) -> list[Input]:
    """The records ``engine+journal-vs-engine`` journals once its registrations are done."""
    out: list[Input] = []
    for i, (topic, payload) in enumerate(_payloads(count, cameras, 42)[cameras + 200 :]):
        result = read(topic, payload)
        assert isinstance(result, Accepted)
        out.append((1_800_000_000.0 + i * 0.002, result.kind, topic, payload, result.key))
    return out


@contextmanager
def _fresh_database(admin_dsn: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of ``admin_dsn``; dropped after."""
    import psycopg

    name = f"ansim_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_dsn.rpartition("/")[0] + "/" + name
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(inputs: list[Input], batch: int, where: str = "file") -> tuple[float, float, float]:
    """Seconds spent in has_key, append and commit, over all of ``inputs``.

    ``where``: "file"; "memory", an SQLite journal in memory, the same statements
    without the file's writes and fsyncs (whose cost swings with whatever else uses
    the disk); or a PostgreSQL DSN to make a fresh database beside.
    """
    if where.startswith("postgresql:"):
        with tempfile.TemporaryDirectory() as tmp, _fresh_database(where) as dsn:
            cfg = JournalConfig(backend="postgres", dsn=dsn, path=str(Path(tmp) / "j.db"))
            return _timed(open_journal(cfg), inputs, batch)
    with tempfile.TemporaryDirectory() as tmp:
        path = ":memory:" if where == "memory" else str(Path(tmp) / "bench.db")
        return _timed(open_journal(JournalConfig(path=path)), inputs, batch)


def _timed(journal: Journal, inputs: list[Input], batch: int) -> tuple[float, float, float]:
    lookup = append = commit = 0.0
    clock = time.perf_counter
    try:
        for start in range(0, len(inputs), batch):
            chunk = inputs[start : start + batch]
            t0 = clock()
            fresh = [x for x in chunk if not (x[4] and journal.has_key(x[4]))]
            t1 = clock()
            for ts, kind, topic, payload, key in fresh:
                journal.append(ts, kind, topic, payload, key=key)
            t2 = clock()
            journal.commit()
            t3 = clock()
            lookup, append, commit = lookup + t1 - t0, append + t2 - t1, commit + t3 - t2
    finally:
        journal.close()
    return lookup, append, commit


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    count = int(args[0]) if args else 100_000
    cameras = next((int(a.split("=", 1)[1]) for a in argv if a.startswith("--cameras=")), CAMERAS)
    inputs = _inputs(count, cameras)
    keyed = sum(1 for x in inputs if x[4]) / len(inputs)
    batch = Config().journal.batch_max
    print(f"{len(inputs):,} records ({keyed:.0%} keyed), commit per {batch}, best of 5:")
    places = {"file": "SQLite file, WAL, synchronous=FULL", "memory": "SQLite in memory"}
    for arg in argv:
        if arg.startswith("--dsn="):
            places[arg.removeprefix("--dsn=")] = "PostgreSQL, COPY"
    for where, label in places.items():
        best: tuple[float, float, float] | None = None
        with quiet_gc():
            for _ in range(5):
                run = _run(inputs, batch, where)
                best = run if best is None or sum(run) < sum(best) else best
        assert best is not None
        per = [1e6 * t / len(inputs) for t in best]
        print(
            f"  {label}: "
            f"has_key {per[0]:.2f} µs, append {per[1]:.2f} µs, commit {per[2]:.2f} µs, "
            f"total {sum(per):.2f} µs a record ({len(inputs) / sum(best):,.0f} records/s)"
        )
    if "--profile" in argv:
        profile = cProfile.Profile()
        profile.runcall(_run, inputs, batch)
        pstats.Stats(profile).sort_stats("tottime").print_stats(18)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
