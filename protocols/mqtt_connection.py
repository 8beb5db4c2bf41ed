"""The one place that touches aiomqtt's and paho's private API (see the class docstring).

Split from :mod:`protocols.mqtt` to keep that module readable; only
:class:`protocols.mqtt.Transport` uses :class:`_Connection`. The byte-level codec of the
fast path is in :mod:`protocols.mqtt_fastpath`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from protocols.mqtt_fastpath import (
    PUBACK,
    REASON_SHIFT,
    REFUSED,
    Publish,
    encode_puback,
    encode_publish,
    scan,
    topic_bytes,
)
from protocols.mqtt_stream import PublishBatch, QueuedPublish
from protocols.mqtt_types import Incoming, PublishRefused

if TYPE_CHECKING:
    from paho.mqtt.client import _OutPacket


_ON_CONNECTION: Final = ("client", "userdata", "flags", "reason_code", "properties")
_ON_SOCKET: Final = ("client", "userdata", "sock")
# What is at stake on a paho or aiomqtt upgrade, in one place: both are pinned exactly in
# pyproject.toml, and tests/protocols/test_paho_pins.py fails, naming each name that is
# gone or has changed shape. paho 2.2 renamed ``_last_msg_in`` to ``_last_bytes_received``
# without notice; a renamed ``_on_*`` would silently stop being called, not fail.
# owner -> name -> shape: a method's parameters after ``self`` (a module function's), or
# the type of the attribute's value on a client that has not connected yet.
PRIVATE_API: Final[dict[str, dict[str, tuple[str, ...] | type[Any]]]] = {
    "paho.Client": {
        # the socket and its reads: the receive fast path hands paho its packets
        "_sock": type(None),
        "_sock_recv": ("bufsize",),
        "_sock_close": (),
        "_protocol": int,
        "_last_bytes_received": float,  # what paho's keepalive reads
        # the write queue our raw packets join (and grow while paho has not started them)
        "_out_packet": collections.deque,
        "_packet_queue": ("command", "packet", "mid", "qos", "info"),
        "_call_socket_register_write": (),
        # packet ids, shared with paho's own publishes and subscribes
        "_mid_generate": (),
        "_out_messages": dict,
    },
    "paho.mqtt.client": {"time_func": ()},
    "aiomqtt.Client": {
        # its paho client, loop and connection futures, and the callbacks we override
        "_client": paho.Client,
        "_loop": asyncio.AbstractEventLoop,
        "_connected": asyncio.Future,
        "_disconnected": asyncio.Future,
        "_misc_task": type(None),
        "_misc_loop": (),
        "_on_connect": _ON_CONNECTION,
        "_on_disconnect": _ON_CONNECTION,
        "_on_message": ("client", "userdata", "message"),
        "_on_publish": ("client", "userdata", "mid", "reason_code", "properties"),
        "_on_socket_open": _ON_SOCKET,
        "_on_socket_register_write": _ON_SOCKET,
        "_on_socket_unregister_write": _ON_SOCKET,
    },
}

# Bytes taken from the socket per read: a storm's worth of small PUBLISH packets in one
# syscall (paho alone reads one packet per wake-up, its header byte by byte).
READ_CHUNK: Final = 256 * 1024
# Our QoS 1 publishes in flight at once (publish_many), kept below the broker's MQTT 5
# Receive Maximum when it announces one. paho's own limit is switched off (0): with a
# limit, paho scans every message it holds on each PUBACK and on each incoming PUBLISH
# (``_update_inflight``), O(n²) over a storm's receipts and states (9 % of the core's CPU).
PUBLISH_WINDOW: Final = 1000
WINDOW_HEADROOM: Final = 16  # left for single publish() calls, which bypass the window
_TO_THE_END: Final = 1 << 62  # paho's share of the bytes once the socket has ended
_EOF: Final = ConnectionResetError("end of stream")  # marker: paho must read b""


class _Connection(aiomqtt.Client):
    """One aiomqtt connection, plus the few things aiomqtt 2.x does not expose.

    This is the only place that touches aiomqtt's or paho's private API (every name is in
    ``PRIVATE_API``; both libraries are pinned exactly):

    * every message goes straight into the transport's inbox (aiomqtt's own per-client
      queue would die with the client, taking messages already acknowledged with it);
    * the receive fast path: one ``recv`` per wake-up into our buffer; PUBLISH (QoS 0/1)
      and the PUBACKs of our batch publishes are decoded here, and every other packet is
      handed to paho whole, in order, through its ``_sock_recv`` (the bytes of exactly
      that packet) and ``loop_read``. paho's ``_last_bytes_received`` is kept current;
    * the write fast path: our PUBACKs and batch PUBLISHes are appended, as raw bytes, to
      the last packet of paho's ``_out_packet`` queue while paho has not started writing
      it, so a storm's acknowledgements go out in one ``send``, never inside another
      packet. Batch publishes take their packet ids from paho's ``_mid_generate`` and are
      never in paho's ``_out_messages`` (nothing to resend: a new connection is a new
      client, and publish_many never queues across connections);
    * manual ack (aiomqtt issue #345): ``manual_ack_set`` before connecting, then the
      PUBACK from the event loop thread only, because aiomqtt drives paho's socket from
      that loop and paho is not thread-safe. A message's acker is this connection's, so an
      ack that comes after it closed is dropped, never sent on the next connection;
    * the PUBACK's reason code, which aiomqtt's ``publish`` drops (``_on_publish``), and
      which the fast path reads for batch publishes: a refusal is never a delivery;
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
        client = self._client
        client.manual_ack_set(manual_ack)
        self._v5 = client._protocol == paho.MQTTv5
        # The receive buffer: one recv per wake-up; paho reads its packets from it too.
        self._rbuf = b""
        self._rpos = 0
        self._paho_left = 0  # bytes (from _rpos on) of the packet paho is reading
        self.bytes_received = 0  # progress, for waits that must not time out while it grows
        self._may_recv = False
        self._ended: OSError | None = None  # the socket's error, or _EOF
        client._sock_recv = self._buffered_recv  # type: ignore[method-assign]
        self._tail: _OutPacket | None = None  # our last raw write in paho's queue
        self._tail_bytes = bytearray()  # its packet (what paho will send)
        self._writer_on = False
        self._inflight: dict[int, QueuedPublish] = {}  # our QoS 1 batch publishes by packet id
        self._outq: collections.deque[QueuedPublish] = collections.deque()
        self._window = PUBLISH_WINDOW - WINDOW_HEADROOM
        # publish_acked() calls waiting for paho's on_publish: packet id → reason code
        self._acks: dict[int, asyncio.Future[ReasonCode | None]] = {}

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
        # The packets the fast path leaves to paho (QoS 2, a Topic Alias): same fields.
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
        if self._closed or self._client._sock is None:
            return
        if qos == 1:
            self._send_raw(encode_puback(mid))
        else:
            self._client.ack(mid, qos)  # QoS 2: PUBCOMP, paho's bookkeeping

    # --- the receive path: our decoder first, paho for the rest -----------------------

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def readable() -> None:
            try:
                self._may_recv = True
                self._drain()
            except Exception as exc:
                # Read nothing more: a message after the failure would be out of order.
                with contextlib.suppress(Exception):
                    client._sock_close()
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)
            finally:
                self._may_recv = False

        def create_misc_task() -> None:
            self._misc_task = self._loop.create_task(self._misc_loop())

        self._loop.call_soon_threadsafe(self._loop.add_reader, sock.fileno(), readable)
        self._loop.call_soon_threadsafe(create_misc_task)

    def _drain(self) -> None:
        """Handle every whole packet that one recv (TLS: and its pending bytes) brings.

        A partial packet stays in the buffer until the (level-triggered) socket says more
        has come; a partial packet of paho's stays in paho's state the same way.
        """
        client = self._client
        while client._sock is not None:
            if self._paho_left:
                client.loop_read()  # reads through _buffered_recv, up to that packet's end
                if self._paho_left:
                    return  # the rest of paho's packet has not arrived yet
                continue
            if self._rpos < len(self._rbuf):
                found = scan(self._rbuf, self._rpos, self._v5, self._inflight)
                self._rpos = found.pos
                self._paho_left = found.handoff
                if found.items:
                    self._dispatch(found.items)
                if self._paho_left:
                    continue
            if not self._fill():
                if self._ended is None:
                    return
                self._paho_left = _TO_THE_END  # paho reads the end and drops the connection

    def _dispatch(self, items: list[Publish | int]) -> None:
        sink, inflight = self._sink, self._inflight
        acker = self._ack if self._manual_ack else None
        acks = bytearray()  # auto-ack mode: PUBACK each after its delivery, as paho does
        acked_ours = False
        for item in items:
            if isinstance(item, int):  # the PUBACK of one of our publishes
                queued = inflight.pop(item & 0xFFFF, None)
                if queued is not None:
                    acked_ours = True
                    batch = queued[4]
                    if item >= REFUSED:
                        batch.refused.append(_refusal(queued, item >> REASON_SHIFT))
                    batch.waiting -= 1
                    batch.check()
                continue
            topic, payload, qos, retain, mid = item
            sink(Incoming(topic, payload, qos, retain, mid, acker if qos else None))
            if qos and acker is None:
                acks += encode_puback(mid)
        if acks:
            self._send_raw(acks)
        if acked_ours and self._outq:
            self._pump()

    def _fill(self) -> bool:
        """Append one recv's bytes to the buffer; False if none (see ``_ended`` for why)."""
        client = self._client
        sock = client._sock
        if sock is None or self._ended is not None:
            return False
        if not self._may_recv and not _ssl_pending(client):
            return False  # one recv per wake-up: the socket says when there is more
        self._may_recv = False
        try:
            data = sock.recv(READ_CHUNK)
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        except ssl.SSLWantWriteError:
            client._call_socket_register_write()
            return False
        except OSError as exc:
            self._ended = exc
            return False
        if not data:
            self._ended = _EOF
            return False
        rest = self._rbuf[self._rpos :]
        self._rbuf = rest + data if rest else data
        self._rpos = 0
        self.bytes_received += len(data)
        client._last_bytes_received = paho.time_func()  # paho's keepalive
        return True

    def _buffered_recv(self, bufsize: int) -> bytes:
        """paho's ``_sock_recv``: the bytes of the packet it was handed, and no further."""
        left = self._paho_left
        if left <= 0:
            raise BlockingIOError  # paho: MQTT_ERR_AGAIN; the next packet is ours to decode
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            if not self._fill():
                ended = self._ended
                if ended is None:
                    raise BlockingIOError
                if ended is _EOF:
                    return b""  # paho reads this as a lost connection
                raise ended
            buf, pos = self._rbuf, self._rpos
        end = pos + min(bufsize, left, len(buf) - pos)
        self._rpos = end
        self._paho_left = left - (end - pos)
        return buf[pos:end]

    # --- the write path ---------------------------------------------------------------

    def _send_raw(self, data: bytes | bytearray) -> None:
        """Queue whole packets behind whatever paho has queued, in order.

        Appended to our previous write while it is still the last in paho's queue and
        paho has not started sending it; one packet-sized ``send`` each, otherwise.
        """
        client = self._client
        queue = client._out_packet
        tail = self._tail
        if tail is not None and queue and queue[-1] is tail and tail["pos"] == 0:
            self._tail_bytes += data
            tail["to_process"] += len(data)
            return
        self._tail_bytes = bytearray(data)
        # Labelled a PUBACK with QoS 0 so paho's writer attaches no callback to it.
        client._packet_queue(PUBACK, self._tail_bytes, 0, 0)
        self._tail = queue[-1]

    def _on_socket_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # paho asks once per queued packet while no writer is registered.
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
    ) -> asyncio.Future[list[PublishRefused]]:
        """Queue every message (QoS 0 or 1); the future is done once every PUBACK is back.

        Its result lists the messages the broker refused (MQTT 5 PUBACK reason >= 0x80),
        in batch order; empty when all were accepted. One future for the lot, where
        aiomqtt's ``publish`` costs a coroutine, an Event, a ``wait_for`` and (past ten
        pending) a logged warning per message. At most the window's worth are in flight at
        a time, in order. A topic paho would refuse, or QoS 2, raises ValueError here,
        before anything is queued.
        """
        if qos not in (0, 1):
            raise ValueError("a batch is published with QoS 0 or 1")
        batch = PublishBatch(self._loop.create_future(), len(items))
        queued = [
            (topic_bytes(t), payload, retain, qos, batch, index)
            for index, (t, payload, retain) in enumerate(items)
        ]
        self._outq.extend(queued)
        self._pump()
        batch.check()
        return batch.done

    def _pump(self) -> None:
        client, queue, inflight = self._client, self._outq, self._inflight
        packets = bytearray()  # one write for all: paho would make a send() per packet
        while queue and len(inflight) < self._window:
            queued = queue.popleft()
            topic, payload, retain, qos, batch, _ = queued
            if batch.done.done():
                continue  # failed or abandoned (a timeout): its remaining messages are dropped
            if client._sock is None:
                error = aiomqtt.MqttCodeError(paho.MQTT_ERR_NO_CONN, "Could not publish")
                batch.done.set_exception(error)
                continue
            mid = self._new_mid() if qos else 0
            packets += encode_publish(topic, payload, qos, retain, mid, self._v5)
            if qos:
                inflight[mid] = queued  # kept whole: a refusal names its topic and index
            else:
                batch.waiting -= 1
                batch.check()
        if packets:
            self._send_raw(packets)

    def _new_mid(self) -> int:
        # paho's counter, so subscribes and single publish() calls never draw the same id.
        client, inflight = self._client, self._inflight
        while True:
            mid = client._mid_generate()
            if mid not in inflight and mid not in client._out_messages:
                return mid

    # --- single publishes: aiomqtt's publish, keeping the PUBACK's reason code ----------

    def publish_acked(
        self, topic: str, payload: bytes, qos: int, retain: bool
    ) -> asyncio.Future[ReasonCode | None]:
        """paho's publish; the future's result is the PUBACK's reason code.

        aiomqtt's ``publish`` drops the reason code, so a publish the broker refused
        looked delivered. For QoS 0 it is paho's Success once written (None if paho says
        it was published at once). paho's errors (no connection) raise MqttCodeError.
        """
        info = self._client.publish(topic, payload, qos, retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
        done: asyncio.Future[ReasonCode | None] = self._loop.create_future()
        if info.is_published():
            done.set_result(None)
        else:
            self._acks[info.mid] = done
        return done

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        waiting = self._acks.pop(mid, None)
        if waiting is not None and not waiting.done():  # done: abandoned (a timeout)
            waiting.set_result(reason_code)
        super()._on_publish(client, userdata, mid, reason_code, properties)


def _refusal(queued: QueuedPublish, code: int) -> PublishRefused:
    topic = queued[0].decode()
    try:
        name = ReasonCode(PacketTypes.PUBACK, identifier=code).getName()
    except KeyError:  # a code MQTT 5 does not define for PUBACK
        name = "Unknown reason code"
    return PublishRefused(code, name, topic, queued[5])


def _ssl_pending(client: paho.Client) -> bool:
    """Whether TLS holds decrypted bytes that the socket's readiness will not announce."""
    sock = client._sock
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
