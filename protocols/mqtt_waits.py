"""Waiting on a connection that may end: a SUBACK behind a backlog, a PUBACK that never comes.

Kept apart from :mod:`protocols.mqtt` (the connection loop) to keep each module small.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine, Sequence
from typing import Any, Final, TypeVar

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode

from protocols.mqtt_connection import _Connection
from protocols.mqtt_types import NotConnected

T = TypeVar("T")

CONNECT_TIMEOUT_S: Final = 10.0


async def _subscribe(
    conn: _Connection, subscriptions: list[tuple[str, int]]
) -> Sequence[int | ReasonCode]:
    """SUBSCRIBE and wait for the SUBACK as long as the broker keeps sending.

    A resumed session's backlog arrives before the SUBACK (Mosquitto sends the queued
    messages first): 1,000,000 queued events take about a minute to drain. A fixed
    timeout dropped the connection mid-backlog and the broker sent every unacknowledged
    message again. Only CONNECT_TIMEOUT_S without a byte from the broker is a failure.
    """
    request = asyncio.ensure_future(conn.subscribe(subscriptions, timeout=math.inf))
    seen = conn.bytes_received
    try:
        while True:
            done, _ = await asyncio.wait({request}, timeout=CONNECT_TIMEOUT_S)
            if done:
                return request.result()
            if conn.bytes_received == seen:
                raise TimeoutError(f"no SUBACK and nothing received in {CONNECT_TIMEOUT_S:.0f} s")
            seen = conn.bytes_received
    finally:
        request.cancel()


async def _unless_lost(work: Coroutine[Any, Any, T], lost: asyncio.Future[None]) -> T:
    """Run ``work`` unless the connection ends first.

    aiomqtt waits for a SUBACK or PUBACK that can no longer come once the connection
    is gone (until its own timeout), so race it against the end of the connection.
    """
    task = asyncio.create_task(work)
    either: set[asyncio.Future[Any]] = {task, lost}
    try:
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
    # A task cancelled just above is not done until it runs again: task.result()
    # would raise InvalidStateError, which no caller expects (it killed the
    # core's publish loop on a broker crash).
    if task.cancelled() or not task.done():
        raise NotConnected("connection lost")
    try:
        return task.result()
    except aiomqtt.MqttError as exc:
        # paho fails a publish on a broken socket ("Could not publish") before the
        # connection is declared lost: to callers that is the same thing.
        raise NotConnected(f"connection lost: {exc}") from exc


async def _wait(future: asyncio.Future[T]) -> T:
    return await future
