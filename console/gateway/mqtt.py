"""The gateway's MQTT side: publishing with QoS 1, and waiting for the core's receipts.

An SOS alarm is published and resent until the core's receipt for it is back
(:class:`Receipts`), a CAP alert until the broker acknowledged it; at the deadline the
request is refused (:class:`console.gateway.http.Refusal`, 504 or 503). The summary and
the receipts arrive on the subscriptions of :class:`console.gateway.service.Gateway`.

The core's summary is its heartbeat (it publishes one, retained, several times a second):
``summary_seen`` is when the gateway last heard it, on the gateway's clock. A summary
that the broker replays from its retained store at (re)subscription is old news, as old
as its own ``ts`` says, so it counts as heard that long ago: the retained summary of a
core that died an hour ago is an hour old at once, not fresh.

With several partitions every core has its own summary (``state/summary/<partition>``),
and the gateway is as healthy as its stalest: one silent core is enough for the SOS of
its districts to go unanswered, whatever the others say (docs/partitions.md).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from typing import Final

from console.config import GatewayConfig
from console.gateway.http import GatewayStats, Refusal
from protocols import cap, codec, topics
from protocols.mqtt import ConnectionState, Incoming, NotConnected, Transport
from protocols.schemas import Receipt, SosAlarm, Summary

_SUMMARY = f"{topics.ROOT}/state/summary/"
log = logging.getLogger("ansim.gateway")

REMEMBERED_RECEIPTS: Final = 10_000  # repeated POSTs of these answer at once
IN_FLIGHT: Final = 10  # publishes awaiting their PUBACK at once (aiomqtt warns above 10)


class Receipts:
    """SOS alarms awaiting the core's receipt, and the receipts seen lately.

    Concurrent POSTs of one alarm share one future; a POST of an alarm already
    receipted is answered from memory (the core would answer a resend with the
    same receipt anyway).
    """

    def __init__(self, remember: int = REMEMBERED_RECEIPTS) -> None:
        self.remember = remember
        self._pending: dict[tuple[str, str], tuple[asyncio.Future[Receipt], int]] = {}
        self._done: collections.OrderedDict[tuple[str, str], Receipt] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def known(self, key: tuple[str, str]) -> Receipt | None:
        receipt = self._done.get(key)
        if receipt is not None:
            self._done.move_to_end(key)
        return receipt

    def wait_for(self, key: tuple[str, str]) -> asyncio.Future[Receipt]:
        entry = self._pending.get(key)
        if entry is None:
            entry = (asyncio.get_running_loop().create_future(), 0)
        self._pending[key] = (entry[0], entry[1] + 1)
        return entry[0]

    def release(self, key: tuple[str, str]) -> None:
        entry = self._pending.get(key)
        if entry is None:
            return
        if entry[1] <= 1:
            del self._pending[key]
        else:
            self._pending[key] = (entry[0], entry[1] - 1)

    def arrived(self, receipt: Receipt) -> bool:
        """Record a receipt; True if a request was waiting for it."""
        key = (receipt.source, receipt.alarm_id)
        self._done[key] = receipt
        self._done.move_to_end(key)
        while len(self._done) > self.remember:
            self._done.popitem(last=False)
        entry = self._pending.get(key)
        if entry is not None and not entry[0].done():
            entry[0].set_result(receipt)
            return True
        return False


class GatewayMqtt:
    """The MQTT half of :class:`console.gateway.service.Gateway` (a mixin: the state is set there)."""

    cfg: GatewayConfig
    clock: Callable[[], float]
    wall: Callable[[], float]  # UNIX time, to age a retained summary by its ts
    stats: GatewayStats
    receipts: Receipts
    summary: Summary | None  # the newest heard, of any partition
    summary_seen: float | None
    partitions: tuple[str, ...]  # whose cores must be heard for the gateway to be "ok"
    heard: dict[str, tuple[Summary, float]]  # by partition (its topic's level): when heard
    transport: Transport
    _publishing: asyncio.Semaphore

    def _on_state(self, state: ConnectionState, detail: str) -> None:
        if state is ConnectionState.CONNECTED:
            log.info("broker connected: %s", detail)

    async def _listen(self) -> None:
        async for message in self.transport.messages():
            try:
                self._incoming(message)
            except Exception:  # one odd message must not end the listener
                log.exception("cannot handle a message on %s", message.topic)

    def _incoming(self, message: Incoming) -> None:
        if message.topic.startswith(_SUMMARY):  # any partition's core (docs/partitions.md)
            if message.payload:
                with contextlib.suppress(codec.WireError):
                    summary: Summary = codec.decode(message.payload, Summary)
                    partition = message.topic.removeprefix(_SUMMARY)
                    self._summary_arrived(partition, summary, message.retain)
            return
        parts = message.topic.split("/")
        if len(parts) != 5 or parts[2] != "receipt":
            return
        try:
            receipt: Receipt = codec.decode(message.payload, Receipt)
        except codec.WireError as exc:
            log.warning("unreadable receipt on %s: %s", message.topic, exc.reason)
            return
        if (receipt.source, receipt.alarm_id) != (parts[3], parts[4]):
            log.warning(
                "receipt on %s names %s/%s", message.topic, receipt.source, receipt.alarm_id
            )
            return
        self.stats.receipts += 1
        self.receipts.arrived(receipt)

    def _summary_arrived(self, partition: str, summary: Summary, retained: bool) -> None:
        lag = max(0.0, self.wall() - summary.ts) if retained else 0.0
        seen = self.clock() - lag
        self.summary, self.summary_seen = summary, seen
        self.heard[partition] = (summary, seen)

    def partition_ages(self) -> dict[str, float | None]:
        """Seconds since each partition's core was last heard, or None: never yet."""
        now = self.clock()
        ages: dict[str, float | None] = {}
        for partition in self.partitions:
            heard = self.heard.get(partition)
            ages[partition] = None if heard is None else max(0.0, now - heard[1])
        return ages

    def summary_age(self) -> float | None:
        """Seconds since the stalest core was last heard, or None: one never yet."""
        ages = list(self.partition_ages().values())
        if not ages or any(age is None for age in ages):
            return None
        return max(age for age in ages if age is not None)

    async def _publish(self, topic: str, payload: bytes, timeout_s: float) -> None:
        """QoS 1, back once the broker's PUBACK is in; TimeoutError after ``timeout_s`` in all."""
        async with asyncio.timeout(max(0.05, timeout_s)), self._publishing:
            await self.transport.publish(topic, payload, qos=1, timeout=None)

    async def _deliver_sos(self, alarm: SosAlarm) -> Receipt:
        """Publish and resend until the core's receipt, or refuse with 504/503 at the deadline."""
        key = (alarm.source, alarm.alarm_id)
        known = self.receipts.known(key)
        if known is not None:
            return known
        topic, payload = topics.raw(alarm.source, topics.RAW_SOS), codec.encode(alarm)
        deadline = self.clock() + self.cfg.receipt_timeout_s
        future = self.receipts.wait_for(key)
        published = 0
        try:
            while True:
                left = deadline - self.clock()
                if left <= 0:
                    break
                if self.transport.connected:
                    try:
                        await self._publish(topic, payload, left)
                        published += 1
                        if published > 1:
                            self.stats.resent += 1
                    except (NotConnected, TimeoutError):
                        pass
                left = deadline - self.clock()
                if left <= 0 or future.done():
                    break
                await asyncio.wait({future}, timeout=min(self.cfg.resend_s, left))
                if future.done():
                    break
        finally:
            self.receipts.release(key)
        if future.done():
            return future.result()
        retry = "it may still arrive; retry with the same alarm_id (resends fold by id)"
        if published:
            raise Refusal(
                504,
                "no-receipt",
                f"published, but the core did not confirm it within "
                f"{self.cfg.receipt_timeout_s:g} s: {retry}",
                headers={"Retry-After": "1"},
                alarm_id=alarm.alarm_id,
            )
        raise Refusal(
            503,
            "broker-unavailable",
            f"the broker at {self.transport.settings.address} is not reachable: {retry}",
            headers={"Retry-After": "1"},
            alarm_id=alarm.alarm_id,
        )

    async def _publish_alert(self, topic: str, alert: cap.PublicAlert) -> None:
        """Publish until the broker took it, or refuse with 503 at the deadline."""
        deadline = self.clock() + self.cfg.receipt_timeout_s
        while True:
            left = deadline - self.clock()
            if left <= 0:
                raise Refusal(
                    503,
                    "broker-unavailable",
                    f"the broker at {self.transport.settings.address} did not take the alert "
                    f"within {self.cfg.receipt_timeout_s:g} s; retry (the alert key is the same)",
                    headers={"Retry-After": "1"},
                )
            try:
                if self.transport.connected:
                    await self._publish(topic, codec.encode(alert), left)
                    break
            except (NotConnected, TimeoutError):
                pass
            with contextlib.suppress(TimeoutError):
                await self.transport.wait_connected(min(self.cfg.resend_s, max(0.01, left)))
