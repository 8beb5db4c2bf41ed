"""Rebuild the engine's exact state from the journal: latest snapshot, then the tail.

The live core journals three kinds of engine input (events, commands, and the
SLA ticks that changed something) with the time it handed the engine; replaying
them in sequence order through a fresh engine gives the same state.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from functools import partial

from console.config import Config
from console.core.foreign import unpack_snapshot
from console.core.ingest import Accepted, Adapted, Reader, Refused
from console.engine.effects import Effect
from console.engine.engine import Engine
from console.journal.store import Journal, Record, RecordKind
from protocols.schemas import Command, Shelter

log = logging.getLogger("ansim.core")

TICK_KEY = "tick"
REPLAYED = (RecordKind.EVENT, RecordKind.COMMAND, RecordKind.SYSTEM)


def snapshot_seq(record: Record) -> int:
    """The journal seq a snapshot covers (stored in its key)."""
    return int(record.key) if record.key.isdigit() else 0


# The Reader (foreign adapters and their memory) that replays into each engine.
_readers: weakref.WeakKeyDictionary[Engine, Reader] = weakref.WeakKeyDictionary()


def reader_for(engine: Engine, cfg: Config) -> Reader:
    """The Reader bound to ``engine`` (made on first use): one per engine, for the adapters."""
    reader = _readers.get(engine)
    if reader is None:
        reader = _readers[engine] = Reader(cfg)
    return reader


def rebuild(
    cfg: Config,
    journal: Journal,
    shelters: Sequence[Shelter] = (),
    reader: Reader | None = None,
) -> tuple[Engine, int]:
    """A fresh engine with every journaled input applied; returns it and the last seq seen.

    ``reader`` (the live core's) gets the foreign adapters' memory back: from the
    snapshot, then from replaying the foreign payloads after it.
    """
    reader = reader or Reader(cfg)
    snapshot = journal.latest_snapshot()
    if snapshot is not None:
        engine_snapshot, adapters = unpack_snapshot(snapshot.payload)
        engine = Engine.restore(cfg.engine_settings(), cfg.city.district_map(), engine_snapshot)
        reader.restore(adapters)
        after = snapshot_seq(snapshot)
    else:
        engine = Engine(cfg.engine_settings(), cfg.city.district_map())
        after = 0
    _readers[engine] = reader
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


def apply_record(engine: Engine, cfg: Config, record: Record) -> list[Effect]:
    """Feed one journaled input to the engine; its effects (the export watches for closes)."""
    if record.kind is RecordKind.SYSTEM:
        if record.key == TICK_KEY:
            return engine.tick(record.ts)
        return []
    result = reader_for(engine, cfg).read(record.topic, record.payload, record.ts)
    if isinstance(result, Adapted):
        effects: list[Effect] = []
        for foreign in result.messages:
            effects += guarded(partial(engine.handle_event, foreign, record.ts), record.topic)
        return effects
    if not isinstance(result, Accepted):
        # It was accepted when journaled; a schema change since is worth a loud line.
        why = result.reason if isinstance(result, Refused) else "placed in another partition"
        log.error("journal record %d no longer decodes: %s", record.seq, why)
        return []
    message, source = result.message, result.source or None
    if isinstance(message, Command):
        role = cfg.role_of(message.operator)
        return guarded(lambda: engine.handle_command(message, record.ts, role), record.topic)
    return guarded(lambda: engine.handle_event(message, record.ts, source=source), record.topic)


def guarded(apply: Callable[[], list[Effect]], topic: str) -> list[Effect]:
    """``apply()``, or no effects when the engine fails on one input.

    The intake and the engine's property tests say it cannot; if it does, one message
    must not stop the authority, live or in replay. The live core and the replay use
    this same guard around the same calls, so both end in the same state.
    """
    try:
        return apply()
    except Exception:
        log.exception("the engine failed on a message from %s; it changes nothing more", topic)
        return []
