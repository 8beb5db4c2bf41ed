"""Foreign formats in the core: the Frigate and OwnTracks adapters of one core (or one replay).

The core journals a foreign MQTT payload exactly as received (kind EVENT, the
foreign topic, no dedupe key) and feeds what the adapter makes of it to the
engine, with the receive time as ``now``. Replaying the journal runs the same
payloads through fresh adapters in the same order at the same times, so the
adapters' memory (Frigate update suppression and false positives, OwnTracks'
newest fix and lost phones) is rebuilt exactly. That memory is not derivable
from the engine's state, so it also travels in the journal's snapshots:
:func:`pack_snapshot` wraps the engine's snapshot and the adapters' memory
together, and :func:`unpack_snapshot` reads both the wrapped and the plain
(engine only) form.

What is journaled: every payload the adapter read, including the ones it
ignored (they may move its memory, e.g. the order in which it forgets), but
not the ones it refused: those go to the dead-letter table with the reason.

An ignored payload also gets a code from :data:`IGNORED_REASONS` (Frigate's own
codes, one per other adapter, and the core's), which the core counts in its
summary. The vocabulary is fixed, so the count stays a few dozen entries
whatever a source sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import msgspec

from console.config import Config
from protocols.frigate import IGNORE_REASONS, FrigateAdapter, Reported, ignore_reason
from protocols.owntracks import OwnTracksAdapter, _Last
from protocols.schemas import MAX_IGNORED_REASONS, CameraHealth, CctvEvent, ResponderReport

ForeignMessage = CctvEvent | CameraHealth | ResponderReport

SNAPSHOT_TAG: Final = "ansim-snapshot+adapters/1"

# Every code an ignored foreign payload is counted under.
OWNTRACKS_IGNORED: Final = "owntracks"  # OwnTracks' own reasons are text only
NOT_PLAUSIBLE: Final = "not-plausible"  # the adapter made something the engine refused
OTHER: Final = "other"
IGNORED_REASONS: Final[frozenset[str]] = IGNORE_REASONS | {OWNTRACKS_IGNORED, NOT_PLAUSIBLE, OTHER}
assert len(IGNORED_REASONS) <= MAX_IGNORED_REASONS


@dataclass(frozen=True, slots=True)
class ForeignResult:
    """An adapter's result, with the code of why it was ignored (when it was)."""

    messages: list[ForeignMessage] = field(default_factory=list)
    ignored: str | None = None
    error: str | None = None
    reason: str | None = None  # one of IGNORED_REASONS when ``ignored`` is set


class _Memory(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The adapters' memory, in their own (eviction) order."""

    frigate: list[tuple[str, Reported]] = msgspec.field(default_factory=list)
    owntracks: list[tuple[str, _Last]] = msgspec.field(default_factory=list)


_memory_decoder = msgspec.msgpack.Decoder(_Memory)
_wrapper_decoder = msgspec.msgpack.Decoder(tuple[str, bytes, bytes])
_encoder = msgspec.msgpack.Encoder()


class ForeignAdapters:
    """The enabled adapters, routed by topic prefix."""

    def __init__(self, cfg: Config) -> None:
        self.frigate: FrigateAdapter | None = None
        self.owntracks: OwnTracksAdapter | None = None
        if cfg.frigate.enabled:
            self.frigate = FrigateAdapter(
                cfg.frigate,
                cfg.priority.utc_offset_hours,
                night_start_hour=cfg.priority.night_start_hour,
                night_end_hour=cfg.priority.night_end_hour,
            )
        if cfg.owntracks.enabled:
            self.owntracks = OwnTracksAdapter(cfg.owntracks)

    def subscriptions(self) -> list[str]:
        """The MQTT topic filters of the enabled adapters."""
        out: list[str] = []
        if self.frigate is not None:
            out += self.frigate.subscriptions()
        if self.owntracks is not None:
            out += self.owntracks.subscriptions()
        return out

    def handle(self, topic: str, payload: bytes, now: float) -> ForeignResult | None:
        """The adapter's result, or None when no enabled adapter reads ``topic``."""
        if self.frigate is not None and _under(topic, self.frigate.mapping.prefix):
            frigate = self.frigate.handle(topic, payload, now)
            reason = None
            if frigate.ignored is not None:
                reason = ignore_reason(frigate.ignored) or OTHER
            return ForeignResult(list(frigate.messages), frigate.ignored, frigate.error, reason)
        if self.owntracks is not None and _under(topic, self.owntracks.mapping.prefix):
            owntracks = self.owntracks.handle(topic, payload, now)
            reason = None if owntracks.ignored is None else OWNTRACKS_IGNORED
            return ForeignResult(
                list(owntracks.messages), owntracks.ignored, owntracks.error, reason
            )
        return None

    # --- memory, for snapshots -----------------------------------------------------------

    def memory(self) -> bytes:
        """The adapters' memory as MessagePack; b"" when no adapter is enabled."""
        if self.frigate is None and self.owntracks is None:
            return b""
        memory = _Memory(
            frigate=list(self.frigate._reported.items()) if self.frigate else [],
            owntracks=list(self.owntracks._last.items()) if self.owntracks else [],
        )
        return _encoder.encode(memory)

    def restore(self, data: bytes) -> None:
        """Load what :meth:`memory` wrote (an adapter disabled since then forgets its part)."""
        if not data:
            return
        memory = _memory_decoder.decode(data)
        if self.frigate is not None:
            self.frigate._reported.clear()
            self.frigate._reported.update(memory.frigate)
        if self.owntracks is not None:
            self.owntracks._last.clear()
            self.owntracks._last.update(memory.owntracks)


def _under(topic: str, prefix: str) -> bool:
    return topic.startswith(prefix.rstrip("/") + "/")


def pack_snapshot(engine_snapshot: bytes, adapters: bytes) -> bytes:
    """The journal's snapshot payload: the engine's alone while no adapter holds anything."""
    if not adapters:
        return engine_snapshot
    return _encoder.encode((SNAPSHOT_TAG, engine_snapshot, adapters))


def unpack_snapshot(payload: bytes) -> tuple[bytes, bytes]:
    """(engine snapshot, adapters' memory) from either form of the payload."""
    # The engine's snapshot is a MessagePack map; the wrapper is a 3-element array (0x93).
    if payload[:1] == b"\x93":
        try:
            tag, engine_snapshot, adapters = _wrapper_decoder.decode(payload)
        except msgspec.DecodeError:
            return payload, b""
        if tag == SNAPSHOT_TAG:
            return engine_snapshot, adapters
    return payload, b""
