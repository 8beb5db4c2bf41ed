"""Watch the broker's count of dropped messages and say when it moves.

Mosquitto publishes ``$SYS/broker/publish/messages/dropped`` (retained, a running
total since the broker started) every ``sys_interval`` seconds, and only when it
changed. A message counted there was acknowledged to its publisher and then thrown
away, typically because a subscriber's queue was full (``max_queued_messages``):
the one loss the receipts cannot see for foreign sources. The core turns a move of
the counter into a system alarm that every console shows.

Pure bookkeeping: values and time come in as arguments.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Final

ALARM_PREFIX: Final = "BROKER DROPPING MESSAGES"
HOLD_S: Final = 600.0  # the alarm stays this long after the counter last moved

_NUMBER: Final = re.compile(rb"\s*(\d+)\s*")


def parse_counter(payload: bytes) -> int | None:
    """The counter in a $SYS payload (ASCII decimal), or None if it is not one."""
    match = _NUMBER.fullmatch(payload)
    return int(match.group(1)) if match else None


@dataclass
class DropWatch:
    """Tracks the broker's dropped-messages counter.

    The first value seen is the baseline (drops from before this core watched are
    logged by the caller, not alarmed: nobody could tell whose messages they were).
    A rise is a drop; a fall means the broker restarted, and becomes the new baseline.
    """

    hold_s: float = HOLD_S
    last: int | None = None  # the latest value seen
    dropped: int = 0  # dropped since first_drop_at
    first_drop_at: float | None = None
    last_move_at: float | None = None

    def observe(self, value: int, now: float) -> int:
        """Feed one value; returns how many drops it adds (0 if the counter did not rise)."""
        previous, self.last = self.last, value
        if previous is None or value <= previous:
            return 0  # baseline, unchanged, or a restarted broker counting from 0 again
        added = value - previous
        if self.first_drop_at is None or not self.active(now):
            self.dropped, self.first_drop_at = 0, now
        self.dropped += added
        self.last_move_at = now
        return added

    def active(self, now: float) -> bool:
        """Whether the counter moved within the last ``hold_s`` seconds."""
        return self.last_move_at is not None and now - self.last_move_at < self.hold_s

    def alarm(self, now: float) -> str | None:
        """The alarm text while active, else None."""
        if not self.active(now) or self.first_drop_at is None:
            return None
        since = time.strftime("%H:%M:%S", time.localtime(self.first_drop_at))
        return (
            f"{ALARM_PREFIX}: {self.dropped} dropped since {since} "
            "(acknowledged to their senders, never delivered; check max_queued_messages)"
        )
