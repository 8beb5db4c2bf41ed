"""The one place that touches aiomqtt's and paho's private API (see the class docstring).

Split from :mod:`protocols.mqtt` to keep that module readable; only
:class:`protocols.mqtt.Transport` uses :class:`_Connection`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.properties import Properties

from protocols.mqtt_types import Incoming

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
