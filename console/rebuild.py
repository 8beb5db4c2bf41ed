"""Rebuild the engine's exact state from the journal: latest snapshot, then the tail.

The live core journals three kinds of engine input (events, commands, and the
SLA ticks that changed something) with the time it handed the engine; replaying
them in sequence order through a fresh engine gives the same state.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from console.config import Config
from console.engine import Engine
from console.ingest import Accepted, read
from console.journal import Journal, Record, RecordKind
from protocols.schemas import Command, Shelter

log = logging.getLogger("ansim.core")

TICK_KEY = "tick"
REPLAYED = (RecordKind.EVENT, RecordKind.COMMAND, RecordKind.SYSTEM)


def snapshot_seq(record: Record) -> int:
    """The journal seq a snapshot covers (stored in its key)."""
    return int(record.key) if record.key.isdigit() else 0


def rebuild(cfg: Config, journal: Journal, shelters: Sequence[Shelter] = ()) -> tuple[Engine, int]:
    """A fresh engine with every journaled input applied; returns it and the last seq seen."""
    snapshot = journal.latest_snapshot()
    if snapshot is not None:
        engine = Engine.restore(cfg, snapshot.payload)
        after = snapshot_seq(snapshot)
    else:
        engine = Engine(cfg)
        after = 0
    engine.set_shelters(shelters)
    last = after
    replayed = 0
    for record in journal.records(after_seq=after, kinds=REPLAYED):
        last = record.seq
        apply_record(engine, cfg, record)
        replayed += 1
    if replayed or snapshot is not None:
        log.info(
            "rebuilt state from the journal: snapshot at seq %d, %d records replayed, %d open incidents",
            after,
            replayed,
            len(engine.open_incident_ids()),
        )
    return engine, last


def apply_record(engine: Engine, cfg: Config, record: Record) -> None:
    if record.kind is RecordKind.SYSTEM:
        if record.key == TICK_KEY:
            engine.tick(record.ts)
        return
    result = read(record.topic, record.payload)
    if not isinstance(result, Accepted):
        # It was accepted when journaled; a schema change since is worth a loud line.
        log.error("journal record %d no longer decodes: %s", record.seq, result.reason)
        return
    if isinstance(result.message, Command):
        engine.handle_command(result.message, record.ts, cfg.role_of(result.message.operator))
    else:
        engine.handle_event(result.message, record.ts)
