"""Dead letters: what a refused payload leaves in the journal, and how much of it.

A refusal is kept as a bounded record, never the payload itself: the SHA-256 of the
whole payload, its size and its first :data:`DEAD_PREFIX` bytes, with the reason and
the topic (both cleaned and bounded). Whole payloads let one ordinary account grow
the journal by the broker's message limit per message until the disk is full, and a
full disk stops every receipt.

Each source also has a budget per time window (:class:`DeadBudget`): past it, further
refusals are counted per source (a row per source, updated once per commit) instead
of stored. The first refusal of each window is always kept, so every burst leaves at
least one sample in the chain; nothing is dropped without being counted.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from console.journal.chain import RecordKind

if TYPE_CHECKING:
    from console.journal.store import Record

DEAD_PREFIX: Final = 512  # payload bytes kept: enough to see what it was, not to store it
DEAD_REASON_MAX: Final = 240  # characters of the reason kept
DEAD_TOPIC_MAX: Final = 256  # characters of the topic kept (MQTT allows 65,535 bytes)

# The budget's defaults: per source, per window of the engine's time. The worst a source
# can store is then about 32 x (44 + 512 + 240 + 256) bytes a minute, ~48 MB a day.
DEAD_WINDOW_S: Final = 60.0
DEAD_BUDGET_RECORDS: Final = 32
DEAD_BUDGET_BYTES: Final = 16 * 1024
DEAD_SOURCES_MAX: Final = 4096  # budgets remembered at once; bounds memory, not a limit

# payload = magic, sha256 of the whole payload, its size, then the prefix.
_MAGIC: Final = b"AD\x00\x01"
_DEAD_HEADER: Final = struct.Struct(">4s32sQ")
DEAD_HEADER_SIZE: Final = _DEAD_HEADER.size

# C0, DEL and C1 controls: a reason or topic is shown on consoles and in logs.
_CONTROLS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def clean_text(text: str, limit: int) -> str:
    """``text`` without control characters, at most ``limit`` characters ("…" if cut)."""
    text = _CONTROLS.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def dead_source(topic: str) -> str:
    """Who a refusal is charged to: the ``<source>`` of ``ansim/v1/raw/<source>/...``,
    the operator of ``ansim/v1/cmd/<operator>`` or ``ansim/v1/presence/<operator>``, else
    the topic's first two levels (never ``reply/<operator>``: that level is the receiver).

    The broker's ACL binds those levels to an account, so one account cannot spend
    another's budget.
    """
    parts = topic.split("/", 4)
    if (
        len(parts) >= 4
        and parts[0] == "ansim"
        and parts[1] == "v1"
        and parts[2] in ("raw", "cmd", "presence")
    ):
        source = f"{parts[2]}:{parts[3]}"
    else:
        source = "/".join(parts[:2])
    return clean_text(source, DEAD_TOPIC_MAX)


def encode_dead(payload: bytes) -> bytes:
    """The stored form of a refused payload: header (digest, size) and a bounded prefix."""
    digest = hashlib.sha256(payload).digest()
    return _DEAD_HEADER.pack(_MAGIC, digest, len(payload)) + payload[:DEAD_PREFIX]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead letter as read back: what was refused, from where, and why."""

    seq: int
    ts: float
    topic: str
    source: str
    reason: str
    digest: bytes  # sha256 of the whole refused payload
    size: int  # bytes of the whole refused payload
    prefix: bytes  # its first DEAD_PREFIX bytes (all of it when smaller)

    @classmethod
    def from_record(cls, record: Record) -> DeadLetter:
        """Read a dead letter; one written before dead letters were bounded held the whole
        payload, and is read as such (digest and size computed from it)."""
        if record.kind is not RecordKind.DEAD:
            raise ValueError(f"record {record.seq} is a {record.kind}, not a dead letter")
        payload = record.payload
        if len(payload) >= DEAD_HEADER_SIZE and payload.startswith(_MAGIC):
            _, digest, size = _DEAD_HEADER.unpack_from(payload)
            prefix = payload[DEAD_HEADER_SIZE:]
        else:
            digest, size, prefix = hashlib.sha256(payload).digest(), len(payload), payload
        source = dead_source(record.topic)
        return cls(record.seq, record.ts, record.topic, source, record.reason, digest, size, prefix)


@dataclass(slots=True)
class DeadCount:
    """Refusals of one source that were counted instead of stored."""

    suppressed: int = 0
    bytes: int = 0  # the refused payloads' sizes, summed
    first_ts: float = 0.0
    last_ts: float = 0.0

    def add(self, size: int, ts: float) -> None:
        if not self.suppressed:
            self.first_ts = ts
        self.suppressed += 1
        self.bytes += size
        self.last_ts = max(self.last_ts, ts)

    def merge(self, other: DeadCount) -> None:
        if not other.suppressed:
            return
        self.first_ts = min(self.first_ts, other.first_ts) if self.suppressed else other.first_ts
        self.suppressed += other.suppressed
        self.bytes += other.bytes
        self.last_ts = max(self.last_ts, other.last_ts)


class DeadBudget:
    """How many dead-letter records and bytes each source may store per window of time.

    Pure bookkeeping: the caller gives the time (the engine's), nothing reads a clock.
    Windows are aligned (``ts // window_s``) so a restart lands in the same window.
    A core restart forgets what was spent (at most one extra window's budget).
    """

    def __init__(
        self,
        *,
        window_s: float = DEAD_WINDOW_S,
        max_records: int = DEAD_BUDGET_RECORDS,
        max_bytes: int = DEAD_BUDGET_BYTES,
    ) -> None:
        if window_s <= 0 or max_records < 1 or max_bytes < 0:
            raise ValueError("a dead-letter budget needs window_s > 0 and max_records >= 1")
        self.window_s = window_s
        self.max_records = max_records
        self.max_bytes = max_bytes
        # source -> [window, records, bytes], least recently charged first.
        self._spent: OrderedDict[str, list[int]] = OrderedDict()

    def admit(self, source: str, ts: float, cost: int) -> bool:
        """Charge ``cost`` stored bytes to ``source`` at ``ts``; False when over budget."""
        window = int(ts // self.window_s)
        spent = self._spent.get(source)
        if spent is None or window > spent[0]:
            # The first refusal of a window is always kept, whatever it costs.
            self._spent[source] = [window, 1, cost]
            self._spent.move_to_end(source)
            if len(self._spent) > DEAD_SOURCES_MAX:
                self._spent.popitem(last=False)
            return True
        self._spent.move_to_end(source)
        if spent[1] >= self.max_records or spent[2] + cost > self.max_bytes:
            return False
        spent[1] += 1
        spent[2] += cost
        return True


def storable_text(text: str) -> str:
    """Text as both backends can store it: UTF-8 without NUL (PostgreSQL refuses both).

    Used for topic and reason, which describe rather than identify: a dead letter whose
    reason quotes a NUL must still be journaled, not poison the batch at commit.
    """
    if text.isascii() and "\x00" not in text:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
