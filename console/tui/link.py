"""The console's network edge: one MQTT transport, state in, commands out.

Reception is a Textual worker (see ``AnsimApp.start_link``) running
:meth:`Link.run`: it decodes each message straight into the StateStore, which
only records what changed; the UI drains it at its own frame rate, so a storm
of updates costs one repaint per frame and never starves the keyboard.
Commands are never queued: offline, :meth:`Link.send` raises ``NotConnected``.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

from textual.message import Message

from console.config import Config, mqtt_settings
from console.tui.messages import LinkStateChanged, ReplyReceived
from console.tui.state_store import StateStore
from protocols import codec, topics
from protocols.mqtt import ConnectionState, NotConnected, Transport, Will
from protocols.schemas import Command, Presence, Reply, Role

__all__ = ["Link", "NotConnected"]

SLICE_S = 0.005  # decoding at most this long before the UI's loop gets a turn


class Link:
    def __init__(
        self,
        cfg: Config,
        operator: str,
        role: Role,
        store: StateStore,
        post: Callable[[Message], object],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.operator, self.role, self.store, self.post = operator, role, store, post
        self._reply_topic = topics.reply(operator)
        self._presence_topic = topics.presence(operator)
        host = socket.gethostname()[:200]
        offline = Presence(operator=operator, online=False, ts=clock(), role=role, host=host)
        online = Presence(operator=operator, online=True, ts=clock(), role=role, host=host)
        self.transport = Transport(
            mqtt_settings(cfg),
            # Unique per seat, so seats sharing a broker account do not kick each other
            # off where the broker keeps client ids apart. The deploy/ broker replaces
            # every id by the account's name (docs/deploy.md, "Sessions"): there each
            # seat needs an account of its own.
            f"console-{operator}-{host}-{id(self):x}"[:64],
            subscriptions=[
                (topics.STATE_ALL, 1),
                (self._reply_topic, 1),
                (topics.PRESENCE_ALL, 1),
            ],
            will=Will(topics.presence(operator), codec.encode(offline), qos=1, retain=True),
            on_connect_publish=[(topics.presence(operator), codec.encode(online), True)],
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
            until = time.perf_counter() + SLICE_S
            async for msg in t.messages():
                self.handle(msg.topic, msg.payload)
                if self.store.resyncing and not msg.retain and self._ends_retained(msg.topic):
                    self.store.end_resync()
                if time.perf_counter() > until:
                    await asyncio.sleep(0)
                    until = time.perf_counter() + SLICE_S

    def _ends_retained(self, topic: str) -> bool:
        """Live traffic after a subscription means its retained messages are all in.

        The broker sends the retained messages of one SUBSCRIBE before it handles
        anything published later: our own presence (published right after
        subscribing) or the core's next live summary marks the end.
        """
        return topic == self._presence_topic or topic.startswith(f"{topics.ROOT}/state/")

    def handle(self, topic: str, payload: bytes) -> None:
        if topic == self._reply_topic:
            try:
                reply: Reply = codec.decode(payload, Reply)
            except codec.WireError:
                self.store.rejected += 1
                return
            self.post(ReplyReceived(reply))
        else:
            self.store.apply_payload(topic, payload)

    @property
    def connected(self) -> bool:
        return self.transport.connected

    async def send(self, command: Command) -> None:
        """Publish a command (QoS 1); raises NotConnected when offline, never queues."""
        await self.transport.publish(topics.cmd(self.operator), codec.encode(command), qos=1)
