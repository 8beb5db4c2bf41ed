"""What :meth:`protocols.mqtt.Transport.messages` returns, and what a ``publish_many`` waits on.

The asyncio side of the messages in and out, split from :mod:`protocols.mqtt` (and kept
out of :mod:`protocols.mqtt_types`, which the configuration imports without asyncio).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from protocols.mqtt_types import Incoming, PublishRefused


class MessageStream:
    """What :meth:`Transport.messages` returns: an async iterator, plus :meth:`take_ready`."""

    def __init__(self, inbox: asyncio.Queue[Incoming | None]) -> None:
        self._inbox = inbox

    def __aiter__(self) -> MessageStream:
        return self

    async def __anext__(self) -> Incoming:
        item = await self._inbox.get()
        if item is None:
            self._inbox.put_nowait(None)  # closed stays closed for every iterator
            raise StopAsyncIteration
        return item

    def take_ready(self, limit: int) -> list[Incoming]:
        """Up to ``limit`` messages already received, without waiting (a batch's worth)."""
        inbox = self._inbox
        out: list[Incoming] = []
        while len(out) < limit and not inbox.empty():
            item = inbox.get_nowait()
            if item is None:
                inbox.put_nowait(None)
                break
            out.append(item)
        return out


@dataclass(slots=True)
class PublishBatch:
    """One ``publish_many``: the PUBACKs it still waits for, and the refusals among them."""

    done: asyncio.Future[list[PublishRefused]]
    waiting: int = 0
    refused: list[PublishRefused] = field(default_factory=list)

    def check(self) -> None:
        if self.waiting <= 0 and not self.done.done():
            self.done.set_result(sorted(self.refused, key=_batch_order))


def _batch_order(refusal: PublishRefused) -> int:
    return refusal.index or 0


# A batch message while queued or in flight: (topic, payload, retain, qos, batch, index).
QueuedPublish = tuple[bytes, bytes, bool, int, PublishBatch, int]
