"""What :meth:`protocols.mqtt.Transport.messages` returns (split from :mod:`protocols.mqtt`)."""

from __future__ import annotations

import asyncio

from protocols.mqtt_types import Incoming


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
