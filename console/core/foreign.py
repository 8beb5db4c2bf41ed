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
"""

from __future__ import annotations

from typing import Final

import msgspec

from console.config import Config
from protocols.adapters import AdapterResult
from protocols.frigate import FrigateAdapter, _Reported
from protocols.owntracks import OwnTracksAdapter, _Last
from protocols.schemas import CameraHealth, CctvEvent, ResponderReport

ForeignMessage = CctvEvent | CameraHealth | ResponderReport

SNAPSHOT_TAG: Final = "ansim-snapshot+adapters/1"


class _Memory(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The adapters' memory, in their own (eviction) order."""

    frigate: list[tuple[str, _Reported]] = msgspec.field(default_factory=list)
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

    def handle(
        self, topic: str, payload: bytes, now: float
    ) -> AdapterResult[ForeignMessage] | None:
        """The adapter's result, or None when no enabled adapter reads ``topic``."""
        if self.frigate is not None and _under(topic, self.frigate.mapping.prefix):
            frigate = self.frigate.handle(topic, payload, now)
            return AdapterResult(list(frigate.messages), frigate.ignored, frigate.error)
        if self.owntracks is not None and _under(topic, self.owntracks.mapping.prefix):
            owntracks = self.owntracks.handle(topic, payload, now)
            return AdapterResult(list(owntracks.messages), owntracks.ignored, owntracks.error)
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
