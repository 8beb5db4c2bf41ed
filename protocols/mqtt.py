"""The MQTT transport: one long-lived connection that reconnects, resubscribes and never drops.

Built on aiomqtt 2.x (paho-mqtt underneath). An aiomqtt ``Client`` is one
connection; :class:`Transport` makes a new one for every (re)connect, so all
session continuity has to come from the broker. Two traps follow from that
(see docs/transport.md):

* MQTT 5: paho's default ``clean_start=MQTT_CLEAN_START_FIRST_ONLY`` counts
  "first" per client object, so every fresh ``Client`` starts a clean session
  and the broker throws away what it queued for us. A persistent transport
  therefore sends ``clean_start=False`` and a session expiry interval > 0.
* aiomqtt's ``max_queued_incoming_messages`` discards messages *after* paho
  acknowledged them to the broker. The incoming queue here is unbounded; the
  backpressure tool is manual ack (the broker stops sending once its
  in-flight window of unacknowledged messages is full).

Payloads stay bytes: decoding and dead-lettering are the caller's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from protocols.mqtt_brokers import BrokerRing, format_address, wait_for_preferred
from protocols.mqtt_connection import _Connection
from protocols.mqtt_stream import MessageStream
from protocols.mqtt_types import (
    ConnectionState,
    Incoming,
    MqttSettings,
    NotConnected,
    PublishRefused,
    TransportError,
    TransportStats,
    Will,
    backoff_delay,
    describe_error,
)
from protocols.mqtt_waits import CONNECT_TIMEOUT_S, _subscribe, _unless_lost, _wait

__all__ = [
    "ConnectionState",
    "Incoming",
    "MessageStream",
    "MqttSettings",
    "NotConnected",
    "PublishRefused",
    "Transport",
    "TransportError",
    "TransportStats",
    "Will",
    "backoff_delay",
]

log = logging.getLogger("ansim.mqtt")

DISCONNECT_TIMEOUT_S: Final = 5.0


class Transport:
    """A self-healing MQTT connection. Use as ``async with Transport(...) as t:``."""

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        *,
        subscriptions: Sequence[str | tuple[str, int]] = (),
        persistent: bool = False,
        session_expiry_s: int = 86400,
        will: Will | None = None,
        manual_ack: bool = False,
        on_connect_publish: Sequence[tuple[str, bytes, bool]] = (),
        on_state: Callable[[ConnectionState, str], None] | None = None,
    ) -> None:
        if persistent and not client_id:
            raise ValueError("a persistent session needs a fixed client id")
        self.configured = settings  # as given: every broker, in the order of preference
        self._ring = BrokerRing(settings.brokers)
        self._back_to: int | None = None  # set when an earlier broker answered the check
        self.settings = self._ring.settings(settings)  # its address: the broker in use
        self.client_id = client_id
        self.subscriptions: list[tuple[str, int]] = [
            (s, 1) if isinstance(s, str) else (s[0], s[1]) for s in subscriptions
        ]
        self.persistent = persistent
        self.session_expiry_s = session_expiry_s
        self.will = will
        self.manual_ack = manual_ack
        self.on_connect_publish = list(on_connect_publish)
        self.on_state = on_state
        self.stats = TransportStats()
        self._state = ConnectionState.DISCONNECTED
        self._session_present = False
        self._inbox: asyncio.Queue[Incoming | None] = asyncio.Queue()  # unbounded, on purpose
        self._conn: _Connection | None = None
        self._lost: asyncio.Future[None] | None = None
        self._connected = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Transport:
        if self._task is not None:
            raise RuntimeError("Transport is not reentrant")
        if self._stopping.is_set():  # entered again after a close: messages() starts afresh
            self._inbox = asyncio.Queue()
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"mqtt:{self.client_id}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        if not self.connected:
            task.cancel()  # nothing to disconnect cleanly: don't wait out a connect attempt
        try:
            await asyncio.wait_for(task, DISCONNECT_TIMEOUT_S)
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # our caller is being cancelled, not just the loop task
        except TimeoutError:
            log.warning("%s: no clean disconnect from %s", self.client_id, self.settings.address)
        if self._state is not ConnectionState.DISCONNECTED:
            self._set_state(ConnectionState.DISCONNECTED, "closed")
        self._inbox.put_nowait(None)  # ends messages() once what is queued is consumed

    # --- public API --------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def connected(self) -> bool:
        return self._state is ConnectionState.CONNECTED

    @property
    def session_present(self) -> bool:
        """Whether the broker resumed an existing session on the latest connect."""
        return self._session_present

    async def wait_connected(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Return once connected; raise TimeoutError after ``timeout`` seconds."""
        # Yield first: paho fails a publish on a dead socket before the connection loop
        # sees the loss, so a retry loop (publish, NotConnected, wait) would spin forever.
        await asyncio.sleep(0)
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout: float | None = 10.0,  # noqa: ASYNC109
    ) -> None:
        """Publish now, returning after the broker's PUBACK (QoS 1); never queues.

        Raises NotConnected when there is no connection or it is lost before the
        PUBACK (the message may or may not have reached the broker: resend it under
        the same id and let the receiver fold duplicates), TimeoutError after
        ``timeout`` seconds, PublishRefused when the broker's MQTT 5 PUBACK refuses it
        (reason code >= 0x80, e.g. 0x87 not authorized: resending will not help).
        """
        conn, lost = self._conn, self._lost
        if conn is None or lost is None or not self.connected:
            raise NotConnected(f"not connected to {self.settings.address}")
        await self._publish_on(conn, lost, topic, payload, qos, retain, timeout)
        self.stats.published += 1

    async def publish_many(
        self,
        items: Sequence[tuple[str, bytes, bool]],
        *,
        qos: int = 1,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[PublishRefused]:
        """Publish ``(topic, payload, retain)`` items at once; return after every PUBACK.

        The same promises as :meth:`publish` (NotConnected at once or if the connection is
        lost first; never queued across connections), for the whole batch: with an
        exception, any of them may or may not have reached the broker. ``timeout`` is for
        the whole batch (default 10 s plus 1 ms per message). QoS 0 or 1 only (ValueError
        for 2, or for a topic that cannot be published on, before anything is sent).

        Returns the items the broker refused (MQTT 5 PUBACK reason >= 0x80), in batch
        order, each with its ``index``; empty when every one was accepted. Refusals are
        not raised, so one refused topic does not hide the rest of the batch's outcome;
        they are logged, counted in ``stats.refused`` and never in ``stats.published``.
        """
        if not items:
            return []
        conn, lost = self._conn, self._lost
        if conn is None or lost is None or not self.connected:
            raise NotConnected(f"not connected to {self.settings.address}")
        if timeout is None:
            timeout = 10.0 + 0.001 * len(items)
        try:
            done = conn.publish_batch(items, qos)
        except aiomqtt.MqttError as exc:
            raise NotConnected(f"publish of {len(items)} messages failed: {exc}") from exc
        async with asyncio.timeout(timeout):
            refused = await _unless_lost(_wait(done), lost)
        self.stats.published += len(items) - len(refused)
        if refused:
            self.stats.refused += len(refused)
            log.warning(
                "%d of %d publishes refused; first: %s", len(refused), len(items), refused[0]
            )
        return refused

    def messages(self) -> MessageStream:
        """Every received message, across reconnects, until the transport is closed.

        Meant for one consumer: two iterators would split the messages between them.
        Cancelling a pending ``anext()`` (a timeout, say) loses nothing and leaves the
        iterator usable, unlike an async generator's.
        """
        return MessageStream(self._inbox)

    # --- the connection loop -----------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        ever_connected = False
        ring = self._ring
        while not self._stopping.is_set():
            self.settings = ring.settings(self.configured)
            self._set_state(ConnectionState.CONNECTING, self.settings.address)
            connected_for, reason = await self._connect_once(reconnect=ever_connected)
            if self._stopping.is_set():
                break
            lasted = False
            if connected_for is not None:
                ever_connected = True
                # A connection dropped at once (a duplicate client id taking over, a
                # broker kicking us out) must not reset the backoff, or we would spin.
                lasted = connected_for >= self.settings.reconnect_max_s
                if lasted:
                    attempt = 0
            back_to, self._back_to = self._back_to, None
            if back_to is not None:  # an earlier broker is back: everyone converges there
                ring.return_to(back_to, lasted=lasted)
                self._set_state(ConnectionState.DISCONNECTED, reason)
                log.warning("leaving %s: %s", self.settings.address, reason)
                continue
            round_failed = ring.ended(lasted=lasted)
            self._set_state(ConnectionState.DISCONNECTED, reason)
            what = "lost" if connected_for is not None else "cannot connect to"
            if not round_failed:  # no pause between the brokers of one round
                after = format_address(ring.current)
                log.warning("%s %s: %s; trying %s", what, self.settings.address, reason, after)
                continue
            delay = backoff_delay(
                attempt, self.settings.reconnect_min_s, self.settings.reconnect_max_s
            )
            attempt += 1
            log.warning("%s %s: %s; retry in %.2g s", what, self.settings.address, reason, delay)
            try:
                async with asyncio.timeout(delay):
                    await self._stopping.wait()
            except TimeoutError:
                pass
        if self._state is not ConnectionState.DISCONNECTED:
            log.info("disconnected from %s (closed)", self.settings.address)
        self._set_state(ConnectionState.DISCONNECTED, "closed")

    async def _connect_once(self, *, reconnect: bool) -> tuple[float | None, str]:
        """One connection from CONNECT to its end: (seconds it was up or None, why it ended)."""
        conn = self._new_connection()
        up_since: float | None = None
        try:
            async with conn:
                lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                watcher = asyncio.create_task(self._watch(conn, lost))
                stop = asyncio.create_task(self._stopping.wait())
                back: asyncio.Task[int] | None = None  # an earlier broker answered the check
                try:
                    await _unless_lost(self._on_connected(conn, lost, reconnect=reconnect), lost)
                    up_since = time.monotonic()
                    ends: set[asyncio.Future[Any]] = {stop, lost}
                    if self._ring.preferred:  # on a fallback: watch for an earlier broker
                        check_s = self._ring.return_check_s(self.configured.return_check_s)
                        back = asyncio.create_task(
                            wait_for_preferred(self._ring.preferred, check_s)
                        )
                        ends.add(back)
                    await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    self._connection_ended(conn)
                    watcher.cancel()
                    stop.cancel()
                    if back is not None and not back.done():
                        back.cancel()
                if lost.done():
                    reason = describe_error(lost.exception() or ConnectionError("disconnected"))
                elif back is not None and back.done() and not back.cancelled():
                    self._back_to = back.result()
                    reason = f"{format_address(self._ring.brokers[self._back_to])} is back"
                else:
                    reason = "closed"
        except asyncio.CancelledError:
            conn.abort()
            self._connection_ended(conn)
            raise
        except Exception as exc:  # a transport must outlive any single failure
            self._connection_ended(conn)
            if not isinstance(exc, aiomqtt.MqttError | OSError | TimeoutError | NotConnected):
                log.exception("unexpected error on the MQTT connection")
            reason = describe_error(exc)
        if up_since is not None:
            return time.monotonic() - up_since, reason
        return None, reason

    async def _watch(self, conn: _Connection, lost: asyncio.Future[None]) -> None:
        # aiomqtt's message iterator is the public way to learn of a disconnect; it never
        # yields here because _Connection routes messages to the inbox instead.
        try:
            async for _ in conn.messages:
                pass
        except aiomqtt.MqttError as exc:
            if not lost.done():
                lost.set_exception(exc.__cause__ or exc)
                lost.exception()  # retrieved: no "never retrieved" warning if unused

    async def _on_connected(
        self, conn: _Connection, lost: asyncio.Future[None], *, reconnect: bool
    ) -> None:
        # A resumed session still holds our subscriptions, and the broker may send its whole
        # backlog before the SUBACK (seen: 100,000 queued messages, then the SUBACK): count
        # as connected at once and subscribe again (for a changed list) behind it.
        resumed = self.persistent and conn.session_present
        if self.subscriptions and not resumed:
            await self._subscribe(conn)
        for topic, payload, retain in self.on_connect_publish:
            with contextlib.suppress(PublishRefused):  # logged; a reconnect gets refused too
                await self._publish_on(conn, lost, topic, payload, 1, retain, CONNECT_TIMEOUT_S)
        self._conn, self._lost = conn, lost
        self._session_present = conn.session_present
        if reconnect:
            self.stats.reconnects += 1
        session = ""
        if self.persistent:
            session = " (session resumed)" if conn.session_present else " (new session)"
        log.info("connected to %s as %s%s", self.settings.address, self.client_id, session)
        self._set_state(ConnectionState.CONNECTED, self.settings.address + session)
        if self.subscriptions and resumed:
            # No time limit: the SUBACK may wait for a backlog that a stalled consumer
            # (a failing journal holds its acks) is not taking; the session is fine, and
            # keepalive, not this wait, decides whether the connection is.
            await self._subscribe(conn, patient=True)

    async def _subscribe(self, conn: _Connection, *, patient: bool = False) -> None:
        granted: Sequence[int | ReasonCode]
        if patient:
            granted = await conn.subscribe(self.subscriptions, timeout=math.inf)
        else:
            granted = await _subscribe(conn, self.subscriptions)
        for (topic, _), code in zip(self.subscriptions, granted, strict=False):
            if code.is_failure if isinstance(code, ReasonCode) else code >= 0x80:
                log.error("subscription to %s refused by the broker: %s", topic, code)

    def _connection_ended(self, conn: _Connection) -> None:
        conn.close()
        if self._conn is conn:
            self._conn = self._lost = None
        self._connected.clear()

    async def _publish_on(
        self,
        conn: _Connection,
        lost: asyncio.Future[None],
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        limit_s: float | None,
    ) -> None:
        try:
            sending = _wait(conn.publish_acked(topic, payload, qos, retain))
            async with asyncio.timeout(limit_s):
                code = await _unless_lost(sending, lost)
        except aiomqtt.MqttError as exc:
            raise NotConnected(f"publish to {topic} failed: {exc}") from exc
        if code is not None and code.is_failure:
            self.stats.refused += 1
            refusal = PublishRefused(code.value, code.getName(), topic)
            log.warning("%s", refusal)
            raise refusal

    def _new_connection(self) -> _Connection:
        s = self.settings
        v5 = s.protocol == 5
        properties = None
        if v5 and self.persistent:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = self.session_expiry_s
        will = None
        if self.will is not None:
            w = self.will
            will = aiomqtt.Will(w.topic, w.payload, qos=w.qos, retain=w.retain)
        tls = None
        if s.tls_ca:
            tls = aiomqtt.TLSParameters(
                ca_certs=s.tls_ca,
                certfile=s.tls_cert or None,
                keyfile=s.tls_key or None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        return _Connection(
            self._deliver,
            self.manual_ack,
            hostname=s.host,
            port=s.port,
            identifier=self.client_id or None,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            username=s.username or None,
            password=s.password or None,
            keepalive=s.keepalive,
            timeout=CONNECT_TIMEOUT_S,
            will=will,
            tls_params=tls,
            # paho refuses clean_session under MQTT 5, and under MQTT 5 "first only"
            # would mean every reconnect, since each connection is a new client object.
            clean_session=None if v5 else not self.persistent,
            clean_start=(not self.persistent) if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
            logger=logging.getLogger("ansim.mqtt.paho"),
        )

    def _deliver(self, message: Incoming) -> None:
        self.stats.received += 1
        self._inbox.put_nowait(message)

    def _set_state(self, state: ConnectionState, detail: str) -> None:
        if state is ConnectionState.CONNECTED:
            self._connected.set()
        else:
            self._connected.clear()
        if state is self._state and state is not ConnectionState.CONNECTED:
            return
        self._state = state
        if self.on_state is not None:
            try:
                self.on_state(state, detail)
            except Exception:
                log.exception("on_state callback failed")
