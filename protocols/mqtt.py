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
import collections
import contextlib
import enum
import logging
import math
import random
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

__all__ = [
    "ConnectionState",
    "Incoming",
    "MessageStream",
    "MqttSettings",
    "NotConnected",
    "Transport",
    "TransportStats",
    "Will",
    "backoff_delay",
]

log = logging.getLogger("ansim.mqtt")

T = TypeVar("T")

CONNECT_TIMEOUT_S: Final = 10.0
DISCONNECT_TIMEOUT_S: Final = 5.0
# Bytes taken from the socket per read: a storm's worth of small PUBLISH packets in one
# syscall, parsed by paho from memory (paho alone reads one packet per wake-up, its
# header byte by byte). See docs/performance.md.
READ_CHUNK: Final = 256 * 1024
# Our QoS 1 publishes in flight at once (publish_many), kept below the broker's MQTT 5
# Receive Maximum when it announces one. paho's own limit is switched off (0): with a
# limit, paho scans every message it holds on each PUBACK and on each incoming PUBLISH
# (``_update_inflight``), O(n²) over a storm's receipts and states (9 % of the core's CPU).
PUBLISH_WINDOW: Final = 1000
WINDOW_HEADROOM: Final = 16  # left for single publish() calls, which bypass the window


@dataclass(frozen=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    protocol: int = 5  # 5 = MQTT 5, 4 = MQTT 3.1.1
    keepalive: int = 15
    username: str = ""
    password: str = ""
    tls_ca: str = ""  # non-empty turns TLS on
    tls_cert: str = ""
    tls_key: str = ""
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 15.0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Will:
    """Published by the broker if the connection dies without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class ConnectionState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


class NotConnected(Exception):
    """The transport has no connection right now (or lost it before the broker answered)."""


@dataclass
class TransportStats:
    received: int = 0
    published: int = 0
    reconnects: int = 0  # successful connections after the first


@dataclass
class Incoming:
    """One received message. In manual-ack mode the broker hears of it only through :meth:`ack`."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    _acker: Callable[[int, int], None] | None = field(default=None, repr=False, compare=False)
    _acked: bool = field(default=False, repr=False, compare=False)

    def ack(self) -> None:
        """Send the PUBACK now (manual-ack mode only); safe from any thread, and idempotent.

        If the connection that delivered this message is gone, nothing is sent: the
        broker redelivers it on the next connection, and a packet id from an old
        connection must never acknowledge whatever reuses it on the new one.
        """
        if self._acked or self._acker is None:
            return
        self._acked = True
        self._acker(self.mid, self.qos)


def backoff_delay(
    attempt: int, low: float, high: float, rand: Callable[[], float] = random.random
) -> float:
    """Capped exponential backoff with jitter: in [cap/2, cap], cap = min(high, low·2^attempt).

    The jitter keeps twenty consoles from reconnecting in lockstep after a broker restart;
    the lower half is kept so a retry never comes sooner than half the intended pause.
    """
    cap = min(high, low * 2 ** min(attempt, 32))
    return cap * (0.5 + 0.5 * rand())


class _Connection(aiomqtt.Client):
    """One aiomqtt connection, plus the few things aiomqtt 2.x does not expose.

    This is the only place that touches aiomqtt's or paho's private API:

    * every message goes straight into the transport's inbox from paho's callback
      (aiomqtt's own per-client queue would die with the client, taking messages
      paho had already acknowledged with it);
    * manual ack (aiomqtt issue #345): ``manual_ack_set`` before connecting, then
      ``ack(mid, qos)`` on the paho client, always from the event loop thread,
      because aiomqtt drives paho's socket from that loop and paho is not
      thread-safe;
    * the CONNACK's session-present flag, so a resumed session can be told from a
      fresh one;
    * a connection closed before its CONNACK (a TLS mismatch, a broker going down)
      fails the connect at once, where aiomqtt would wait for its full timeout.
    """

    def __init__(self, sink: Callable[[Incoming], None], manual_ack: bool, **kwargs: Any) -> None:
        super().__init__(max_inflight_messages=0, **kwargs)
        self._sink = sink
        self._manual_ack = manual_ack
        self._loop_thread = threading.get_ident()
        self._closed = False
        self.session_present = False
        self._client.manual_ack_set(manual_ack)
        # Buffered reads: paho's _sock_recv is served from one big recv per wake-up.
        self._rbuf = b""
        self._rpos = 0
        self._may_recv = False
        self._client._sock_recv = self._buffered_recv  # type: ignore[method-assign]
        self._writer_on = False
        self._batches: dict[int, _PublishBatch] = {}  # mid → its batch, for our in-flight
        self._outq: collections.deque[tuple[str, bytes, bool, int, _PublishBatch]] = (
            collections.deque()
        )
        self._pump_soon = False
        self._window = PUBLISH_WINDOW - WINDOW_HEADROOM

    def close(self) -> None:
        self._closed = True

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: Any,
        properties: Properties | None = None,
    ) -> None:
        self.session_present = bool(flags.session_present)
        # paho ignores the broker's Receive Maximum; sending more would be a protocol error.
        receive_max = getattr(properties, "ReceiveMaximum", None)
        if isinstance(receive_max, int) and 0 < receive_max < PUBLISH_WINDOW:
            self._window = max(1, receive_max // 2, receive_max - WINDOW_HEADROOM)
        super()._on_connect(client, userdata, flags, reason_code, properties)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: Any,
        properties: Properties | None = None,
    ) -> None:
        if not self._connected.done():
            why = "closed by the broker before CONNACK (TLS or protocol mismatch?)"
            self._connected.set_exception(aiomqtt.MqttError(why))
        super()._on_disconnect(client, userdata, flags, reason_code, properties)

    def abort(self) -> None:
        """Best effort to drop a connection attempt that is being abandoned."""
        self._closed = True
        with contextlib.suppress(Exception):
            self._client.disconnect()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        acker = self._ack if self._manual_ack and message.qos > 0 else None
        self._sink(
            Incoming(
                topic=message.topic,
                payload=bytes(message.payload),
                qos=message.qos,
                retain=bool(message.retain),
                mid=message.mid,
                _acker=acker,
            )
        )

    def _ack(self, mid: int, qos: int) -> None:
        if threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self._ack, mid, qos)
            return
        if not self._closed:
            self._client.ack(mid, qos)

    # --- the receive path: many packets per wake-up -----------------------------------

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        """aiomqtt's reader calls ``loop_read()`` once per wake-up: one packet, its header read
        one byte per syscall. Ours reads up to READ_CHUNK bytes once and lets paho parse
        every packet in them before it returns (a partial packet stays in paho's state;
        the socket, level-triggered, wakes us for the rest)."""

        def readable() -> None:
            try:
                self._may_recv = True
                while client._sock is not None:
                    client.loop_read()
                    if self._rpos >= len(self._rbuf) and not _ssl_pending(client):
                        break
            except Exception as exc:
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)
            finally:
                self._may_recv = False

        def create_misc_task() -> None:
            self._misc_task = self._loop.create_task(self._misc_loop())

        self._loop.call_soon_threadsafe(self._loop.add_reader, sock.fileno(), readable)
        self._loop.call_soon_threadsafe(create_misc_task)

    def _buffered_recv(self, bufsize: int) -> bytes:
        """paho's ``_sock_recv``, from a buffer refilled by at most one recv per wake-up."""
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            client = self._client
            sock = client._sock
            if sock is None:
                raise ConnectionError("self._sock is None")
            if not self._may_recv and not _ssl_pending(client):
                raise BlockingIOError  # paho: MQTT_ERR_AGAIN, wait for the next wake-up
            self._may_recv = False
            try:
                data = sock.recv(READ_CHUNK)
            except ssl.SSLWantReadError as err:
                raise BlockingIOError from err
            except ssl.SSLWantWriteError as err:
                client._call_socket_register_write()
                raise BlockingIOError from err
            if len(data) <= bufsize:
                return data  # also b"" at EOF, which paho reads as a lost connection
            self._rbuf, pos = data, 0
            buf = data
        end = pos + bufsize
        self._rpos = end
        return buf[pos:end]

    # --- the write path: one writer registration, not one per packet ------------------

    def _on_socket_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # paho asks for this once per queued packet (every PUBACK, every PUBLISH).
        if threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self._register_writer, sock.fileno())
        elif not self._writer_on:
            self._register_writer(sock.fileno())

    def _register_writer(self, fileno: int) -> None:
        self._writer_on = True
        self._loop.add_writer(fileno, self._writable)

    def _writable(self) -> None:
        try:
            self._client.loop_write()
        except Exception as exc:
            if not self._disconnected.done():
                self._disconnected.set_exception(exc)

    def _on_socket_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self._unregister_writer, sock.fileno())
        else:
            self._unregister_writer(sock.fileno())

    def _unregister_writer(self, fileno: int) -> None:
        self._writer_on = False
        self._loop.remove_writer(fileno)

    # --- batched publishing -----------------------------------------------------------

    def publish_batch(
        self, items: Sequence[tuple[str, bytes, bool]], qos: int
    ) -> asyncio.Future[None]:
        """Queue every message; the future is done once every PUBACK is back.

        One future for the lot, where aiomqtt's ``publish`` costs a coroutine, an Event, a
        ``wait_for`` and (past ten pending) a logged warning per message. At most
        the window's worth are in flight at a time, in order.
        """
        batch = _PublishBatch(self._loop.create_future(), len(items))
        self._outq.extend((topic, payload, retain, qos, batch) for topic, payload, retain in items)
        self._pump()
        batch.check()
        return batch.done

    def _pump(self) -> None:
        self._pump_soon = False
        self._window = PUBLISH_WINDOW - WINDOW_HEADROOM
        client, queue, batches = self._client, self._outq, self._batches
        window = self._window
        while queue and len(batches) < window:
            topic, payload, retain, qos, batch = queue.popleft()
            if batch.done.done():
                continue  # failed or abandoned (a timeout): its remaining messages are dropped
            info = client.publish(topic, payload, qos, retain)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                batch.done.set_exception(aiomqtt.MqttCodeError(info.rc, "Could not publish"))
            elif qos > 0 and not info.is_published():
                batches[info.mid] = batch
            else:
                batch.waiting -= 1
                batch.check()

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: Any,
        properties: Any,
    ) -> None:
        batch = self._batches.pop(mid, None)
        if batch is None:
            super()._on_publish(client, userdata, mid, reason_code, properties)
            return
        batch.waiting -= 1
        batch.check()
        if self._outq and not self._pump_soon:  # not from inside paho's PUBACK handling
            self._pump_soon = True
            self._loop.call_soon(self._pump)


@dataclass(slots=True)
class _PublishBatch:
    done: asyncio.Future[None]
    waiting: int = 0

    def check(self) -> None:
        if self.waiting <= 0 and not self.done.done():
            self.done.set_result(None)


def _ssl_pending(client: paho.Client) -> bool:
    """Whether TLS holds decrypted bytes that the socket's readiness will not announce."""
    sock = client._sock
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0


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
        self.settings = settings
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
        ``timeout`` seconds.
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
    ) -> None:
        """Publish ``(topic, payload, retain)`` items at once; return after every PUBACK.

        The same promises as :meth:`publish` (NotConnected at once or if the connection is
        lost first; never queued across connections), for the whole batch: with an
        exception, any of them may or may not have reached the broker. ``timeout`` is for
        the whole batch (default 10 s plus 1 ms per message).
        """
        if not items:
            return
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
            await _unless_lost(_wait(done), lost)
        self.stats.published += len(items)

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
        while not self._stopping.is_set():
            self._set_state(ConnectionState.CONNECTING, self.settings.address)
            connected_for, reason = await self._connect_once(reconnect=ever_connected)
            if self._stopping.is_set():
                break
            if connected_for is not None:
                ever_connected = True
                # A connection dropped at once (a duplicate client id taking over, a
                # broker kicking us out) must not reset the backoff, or we would spin.
                if connected_for >= self.settings.reconnect_max_s:
                    attempt = 0
            delay = backoff_delay(
                attempt, self.settings.reconnect_min_s, self.settings.reconnect_max_s
            )
            attempt += 1
            self._set_state(ConnectionState.DISCONNECTED, reason)
            what = "lost" if connected_for is not None else "cannot connect to"
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
                try:
                    await _unless_lost(self._on_connected(conn, lost, reconnect=reconnect), lost)
                    up_since = time.monotonic()
                    ends: set[asyncio.Future[Any]] = {stop, lost}
                    await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    self._connection_ended(conn)
                    watcher.cancel()
                    stop.cancel()
                if lost.done():
                    reason = _describe(lost.exception() or ConnectionError("disconnected"))
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
            reason = _describe(exc)
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
        if self.subscriptions:
            granted: Sequence[int | ReasonCode] = await conn.subscribe(
                self.subscriptions, timeout=CONNECT_TIMEOUT_S
            )
            for (topic, _), code in zip(self.subscriptions, granted, strict=False):
                if code.is_failure if isinstance(code, ReasonCode) else code >= 0x80:
                    log.error("subscription to %s refused by the broker: %s", topic, code)
        for topic, payload, retain in self.on_connect_publish:
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
        sending = conn.publish(topic, payload, qos=qos, retain=retain, timeout=math.inf)
        try:
            async with asyncio.timeout(limit_s):
                await _unless_lost(sending, lost)
        except aiomqtt.MqttError as exc:
            raise NotConnected(f"publish to {topic} failed: {exc}") from exc

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


def _describe(exc: BaseException) -> str:
    rc = getattr(exc, "rc", None)
    # paho reports a dropped socket as "Unspecified error" (MQTT 5) or code 7 (3.1.1).
    if rc is not None and int(getattr(rc, "value", rc)) in (paho.MQTT_ERR_CONN_LOST, 128):
        return "connection lost"
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({cause})"
    return text
