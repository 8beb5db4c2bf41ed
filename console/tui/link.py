"""The console's network edge: one MQTT transport, state in, commands out.

Reception is a Textual worker (see ``AnsimApp.start_link``) running
:meth:`Link.run`: it decodes each message straight into the StateStore, which
only records what changed; the UI drains it at its own frame rate, so a storm
of updates costs one repaint per frame and never starves the keyboard.
Commands are never queued: offline, :meth:`Link.send` raises ``NotConnected``.

Presence: the seat announces itself (retained) on connect and again every
``PRESENCE_HEARTBEAT_S``, so a seat gone without its last will expires; a normal quit
says "offline" at once (:meth:`Link.leave`) instead of leaving it to the will, which a
clean disconnect never sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import Callable

from textual.message import Message

from console.config import Config, mqtt_settings
from console.tui.messages import LinkStateChanged, ReplyReceived
from console.tui.state_store import StateStore
from protocols import codec, topics
from protocols.mqtt import ConnectionState, NotConnected, PublishRefused, Transport, Will
from protocols.schemas import PRESENCE_HEARTBEAT_S, Command, Presence, Reply, Role

__all__ = ["Link", "NotConnected"]

log = logging.getLogger("ansim.console")

SLICE_S = 0.005  # decoding at most this long before the UI's loop gets a turn
LEAVE_TIMEOUT_S = 2.0  # a quit waits at most this long for the broker to take the goodbye
MAX_TWINS = 32  # other seats of this operator remembered (only this operator can publish them)


def state_filters(scope: frozenset[str] | None) -> list[str]:
    """What a seat subscribes to: the whole city, or only its districts' state (the
    broker's ACL grants a scoped seat no more), every partition's summary, shelters."""
    if scope is None:
        return [topics.STATE_ALL]
    own = [f for district in sorted(scope) for f in topics.district_state(district)]
    return [*own, topics.STATE_SUMMARIES, topics.STATE_SHIFTS, topics.STATE_SHELTERS]


class Link:
    def __init__(
        self,
        cfg: Config,
        operator: str,
        role: Role,
        store: StateStore,
        post: Callable[[Message], object],
        clock: Callable[[], float] = time.time,
        heartbeat_s: float = PRESENCE_HEARTBEAT_S,
    ) -> None:
        self.operator, self.role, self.store, self.post = operator, role, store, post
        self.clock, self.heartbeat_s = clock, heartbeat_s
        self.seat = secrets.token_hex(4)
        self._scope = cfg.scope_of(operator)
        self._host = socket.gethostname()[:200]
        self._reply_topic = topics.reply(operator)
        self._presence_topic = topics.presence(operator)
        self._twins: dict[str, Presence] = {}  # other seats signed in as this operator, by seat
        self._leaving = False
        self._left = False
        self._beat_now = asyncio.Event()
        self._presence_lock = asyncio.Lock()  # a heartbeat never lands after the goodbye
        self.transport = Transport(
            mqtt_settings(cfg),
            # Unique per seat, so seats sharing a broker account do not kick each other
            # off where the broker keeps client ids apart. The deploy/ broker replaces
            # every id by the account's name (docs/deploy.md, "Sessions"): there each
            # seat needs an account of its own.
            f"console-{operator}-{self._host}-{id(self):x}"[:64],
            subscriptions=[
                *[(f, 1) for f in state_filters(cfg.scope_of(operator))],
                (self._reply_topic, 1),
                (topics.PRESENCE_ALL, 1),
            ],
            will=Will(self._presence_topic, self._presence(online=False), qos=1, retain=True),
            on_connect_publish=[(self._presence_topic, self._presence(online=True), True)],
            on_state=self._on_state,
        )

    def _on_state(self, state: ConnectionState, reason: str) -> None:
        if state is ConnectionState.CONNECTING:
            self.store.begin_resync()
        self.post(LinkStateChanged(state is ConnectionState.CONNECTED, state.value, reason))

    async def run(self) -> None:
        """Receive until cancelled (the worker is cancelled when the app exits).

        Messages already received are taken without a pause (the stream does not
        suspend while it holds some), so after ``SLICE_S`` of decoding the loop is
        given back: a burst (the retained picture, a storm's camera pages) must not
        hold a keypress or a frame for longer than that."""
        async with self.transport as t:
            beat = asyncio.create_task(self._heartbeat(), name=f"presence:{self.operator}")
            try:
                until = time.perf_counter() + SLICE_S
                async for msg in t.messages():
                    self.handle(msg.topic, msg.payload, retained=msg.retain)
                    if self.store.resyncing and not msg.retain and self._ends_retained(msg.topic):
                        self.store.end_resync()
                    if time.perf_counter() > until:
                        await asyncio.sleep(0)
                        until = time.perf_counter() + SLICE_S
            finally:
                beat.cancel()
                # A quit that did not say goodbye first (the app closed another way): try now.
                await self.leave()

    def _ends_retained(self, topic: str) -> bool:
        """Live traffic after a subscription means its retained messages are all in.

        The broker sends the retained messages of one SUBSCRIBE before it handles
        anything published later: our own presence (published right after
        subscribing) or the core's next live summary marks the end.
        """
        return topic == self._presence_topic or topic.startswith(f"{topics.ROOT}/state/")

    def handle(self, topic: str, payload: bytes, *, retained: bool = False) -> None:
        if topic == self._presence_topic:
            self._own_presence(payload, retained)
        if topic == self._reply_topic:
            try:
                reply: Reply = codec.decode(payload, Reply)
            except codec.WireError:
                self.store.rejected += 1
                return
            self.post(ReplyReceived(reply))
        elif self._in_scope(topic):
            self.store.apply_payload(topic, payload)

    def _in_scope(self, topic: str) -> bool:
        """A scoped seat shows its districts only, whatever a broker delivers (amqtt sends a
        new client the retained messages matching any client's subscription)."""
        if self._scope is None:
            return True
        district = topics.state_district(topic)
        return district is None or district in self._scope

    @property
    def connected(self) -> bool:
        return self.transport.connected

    async def send(self, command: Command) -> None:
        """Publish a command (QoS 1); raises NotConnected when offline, never queues."""
        incident = self.store.incidents.get(command.incident_id or "")
        partition = incident.partition if incident is not None and incident.partition else None
        topic = topics.cmd(self.operator, partition)  # to the core that owns the incident
        await self.transport.publish(topic, codec.encode(command), qos=1)

    # --- presence ---------------------------------------------------------------------

    def _presence(self, *, online: bool) -> bytes:
        presence = Presence(operator=self.operator, online=online, ts=self.clock(),
                            role=self.role, host=self._host, seat=self.seat)  # fmt: skip
        return codec.encode(presence)

    async def _heartbeat(self) -> None:
        """Announce this seat again every ``heartbeat_s``, and at once when asked to."""
        while not self._leaving:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.heartbeat_s):
                    await self._beat_now.wait()
            self._beat_now.clear()
            async with self._presence_lock:
                if self._leaving:
                    return
                online = self._presence(online=True)
                # A reconnect announces the seat with a recent stamp, not the first one.
                self.transport.on_connect_publish = [(self._presence_topic, online, True)]
                await self._publish_presence(online, timeout_s=self.heartbeat_s)

    async def leave(self, timeout_s: float = LEAVE_TIMEOUT_S) -> None:
        """Say (retained) that this seat is offline, so other seats and the core drop it now.

        Idempotent; returns within ``timeout_s``. Offline, or past the timeout, the
        last will and the presence's expiry do the same job later."""
        if self._left:
            return
        self._leaving = self._left = True
        offline = self._presence(online=False)
        self.transport.on_connect_publish = [(self._presence_topic, offline, True)]
        async with self._presence_lock:
            await self._publish_presence(offline, timeout_s=timeout_s)

    async def _publish_presence(self, payload: bytes, *, timeout_s: float) -> None:
        if not self.transport.connected:
            return  # on_connect_publish says it on the next connect
        try:
            await self.transport.publish(
                self._presence_topic, payload, qos=1, retain=True, timeout=timeout_s
            )
        except (NotConnected, TimeoutError, PublishRefused) as exc:
            log.info("presence not published: %s", exc)

    def _own_presence(self, payload: bytes, retained: bool) -> None:
        """Another seat signed in as this operator: count it, and answer its goodbye.

        Seats of one operator share a retained topic, so one seat's quit (or last will)
        says the operator is offline while this seat is still here: say otherwise at once.
        """
        try:
            presence: Presence = codec.decode(payload, Presence)
        except codec.WireError:
            return  # the store counts it as rejected
        if presence.seat == self.seat:
            return
        if presence.online:
            if presence.seat:
                self._twins.pop(presence.seat, None)
                self._twins[presence.seat] = presence
                while len(self._twins) > MAX_TWINS:
                    del self._twins[next(iter(self._twins))]  # the least recently heard
            return
        self._twins.pop(presence.seat, None)
        if not retained and not self._leaving:
            self._beat_now.set()

    def other_seats(self, now: float) -> int:
        """Other seats signed in as this operator, heard from within the presence TTL."""
        return sum(1 for twin in self._twins.values() if twin.is_current(now))
