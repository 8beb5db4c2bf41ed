"""`ansim broker`: the embedded MQTT broker (amqtt) for the all-in-one default.

amqtt 0.12 speaks MQTT 3.1.1 only: a CONNECT with protocol level 5 is refused
with "unacceptable protocol version". Clients therefore use protocol 4 against
the embedded broker; :func:`console.config.effective_protocol` says which one to use.

Two amqtt behaviours are worked around here, both of which would silently
lose messages for the core's persistent session:

- amqtt's ``AnonymousAuthPlugin`` marks every session "anonymous", and amqtt
  neither queues QoS 1 messages for an offline anonymous session nor keeps
  the session at all once it disconnects. :class:`LoopbackAuthPlugin` lets
  everyone in (the broker only listens on loopback) without that mark.
- amqtt's own ``SessionDBPlugin`` needs SQLAlchemy and aiosqlite (not our
  dependencies) and decodes queued payloads as UTF-8, which MessagePack is
  not. :class:`SqlitePersistencePlugin` does the same job with the standard
  library's sqlite3.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amqtt.broker import Broker, BrokerContext, RetainedApplicationMessage
from amqtt.errors import BrokerError
from amqtt.plugins.base import BaseAuthPlugin, BasePlugin
from amqtt.session import Session

from console.config import Config

log = logging.getLogger("ansim.broker")

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DB_NAME = "broker.db"


class LoopbackAuthPlugin(BaseAuthPlugin):
    """Accept every client, but do not mark it anonymous (see the module docstring)."""

    @dataclass
    class Config:
        """No options: the broker binds loopback only, so whoever reaches it is local."""

    async def authenticate(self, *, session: Session) -> bool | None:
        return True


class SqlitePersistencePlugin(BasePlugin[BrokerContext]):
    """Keep retained messages, persistent sessions and their queued messages in SQLite.

    What survives a restart of the broker process: every retained message;
    every session whose client connected with clean session off (its client
    id and subscriptions); the QoS 1/2 messages queued for such a session
    while its client was away. In-flight messages of connected clients are not
    kept: a source that needs certainty resends until the core's receipt.
    """

    @dataclass
    class Config:
        path: str = DB_NAME

    def __init__(self, context: BrokerContext) -> None:
        super().__init__(context)
        path = Path(self.config.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, used from the event loop only: amqtt calls plugins there.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # WAL without fsync on every commit: a crash of the process loses nothing,
        # a crash of the machine may lose the last moments, which resends cover.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS retained (
                topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS sessions (client_id TEXT PRIMARY KEY);
            CREATE TABLE IF NOT EXISTS subscriptions (
                client_id TEXT NOT NULL, filter TEXT NOT NULL, qos INTEGER NOT NULL,
                PRIMARY KEY (client_id, filter));
            CREATE TABLE IF NOT EXISTS queued (
                id INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL,
                topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL);
            """
        )

    # --- restore -------------------------------------------------------------------

    async def on_broker_post_start(self) -> None:
        db = self._db
        retained = self.context.retained_messages
        for topic, payload, qos in db.execute("SELECT topic, payload, qos FROM retained"):
            retained[topic] = RetainedApplicationMessage(None, topic, bytes(payload), qos)
        sessions = [row[0] for row in db.execute("SELECT client_id FROM sessions")]
        for client_id in sessions:
            # Creates a disconnected session that queues QoS 1 messages until the client is back.
            await self.context.add_subscription(client_id, None, None)
            session = self.context.get_session(client_id)
            if session is None:
                continue
            session.clean_session = False
            for flt, qos in db.execute(
                "SELECT filter, qos FROM subscriptions WHERE client_id = ?", (client_id,)
            ):
                await self.context.add_subscription(client_id, flt, qos)
            for topic, payload, qos in db.execute(
                "SELECT topic, payload, qos FROM queued WHERE client_id = ? ORDER BY id",
                (client_id,),
            ):
                session.retained_messages.put_nowait(
                    RetainedApplicationMessage(None, topic, bytes(payload), qos)
                )
        log.info(
            "persistence: restored %d retained messages and %d sessions",
            len(retained),
            len(sessions),
        )

    # --- track -----------------------------------------------------------------------

    async def on_broker_client_connected(self, client_id: str, client_session: Session) -> None:
        if client_session.clean_session in (None, True):
            self._forget(client_id)
            return
        self._db.execute("INSERT OR IGNORE INTO sessions (client_id) VALUES (?)", (client_id,))
        # amqtt hands the queued messages to the client right after this event.
        self._db.execute("DELETE FROM queued WHERE client_id = ?", (client_id,))

    async def on_broker_client_subscribed(self, client_id: str, topic: str, qos: int) -> None:
        session = self.context.get_session(client_id)
        if session is None or session.clean_session in (None, True):
            return
        self._db.execute(
            "INSERT OR REPLACE INTO subscriptions (client_id, filter, qos) VALUES (?, ?, ?)",
            (client_id, topic, qos),
        )

    async def on_broker_client_unsubscribed(self, client_id: str, topic: str) -> None:
        self._db.execute(
            "DELETE FROM subscriptions WHERE client_id = ? AND filter = ?", (client_id, topic)
        )

    async def on_broker_retained_message(
        self, *, client_id: str | None, retained_message: RetainedApplicationMessage
    ) -> None:
        topic, data = retained_message.topic, bytes(retained_message.data or b"")
        qos = retained_message.qos or 0
        if client_id is not None:
            # Queued for an offline persistent session.
            self._db.execute(
                "INSERT INTO queued (client_id, topic, payload, qos) VALUES (?, ?, ?, ?)",
                (client_id, topic, data, qos),
            )
        elif data:
            self._db.execute(
                "INSERT OR REPLACE INTO retained (topic, payload, qos) VALUES (?, ?, ?)",
                (topic, data, qos),
            )
        else:
            self._db.execute("DELETE FROM retained WHERE topic = ?", (topic,))

    def _forget(self, client_id: str) -> None:
        for table in ("sessions", "subscriptions", "queued"):
            self._db.execute(f"DELETE FROM {table} WHERE client_id = ?", (client_id,))

    async def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()


def broker_config(host: str, port: int, persistence: str = "") -> dict[str, Any]:
    """The amqtt configuration: one TCP listener, our auth plugin, optional persistence."""
    plugins: dict[str, Any] = {f"{__name__}.LoopbackAuthPlugin": {}}
    if persistence:
        plugins[f"{__name__}.SqlitePersistencePlugin"] = {"path": str(Path(persistence) / DB_NAME)}
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        # amqtt's defaults add $SYS publishing and per-packet logging; neither is wanted here.
        "plugins": plugins,
    }


def check_host(host: str) -> None:
    if host not in LOOPBACK_HOSTS:
        raise ValueError(
            f"the embedded broker binds loopback only (127.0.0.1), not {host!r}; "
            "to serve other machines run a real broker (Mosquitto, EMQX) and set "
            '[broker] mode = "external"'
        )


async def serve(host: str, port: int, persistence: str = "") -> None:
    """Run the embedded broker on ``host:port`` until cancelled."""
    check_host(host)
    broker = Broker(broker_config(host, port, persistence))
    await broker.start()
    kept = f", persistence in {persistence}" if persistence else ", in memory only"
    log.info("embedded broker listening on %s:%d (MQTT 3.1.1%s)", host, port, kept)
    try:
        await asyncio.Event().wait()
    finally:
        # Shielded: a second cancellation must not leave the listener half-closed.
        await asyncio.shield(broker.shutdown())


async def _main(host: str, port: int, persistence: str) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await serve(host, port, persistence)


def run(args: argparse.Namespace, cfg: Config) -> int:
    host = cfg.broker.host
    port = args.port if getattr(args, "port", None) is not None else cfg.broker.port
    persistence = getattr(args, "persistence", None) or cfg.broker.embedded_persistence
    try:
        check_host(host)
    except ValueError as exc:
        print(f"ansim broker: {exc}", file=sys.stderr)
        return 2
    # amqtt logs every connection at INFO; keep our own line and its warnings.
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    try:
        asyncio.run(_main(host, port, persistence))
    except (BrokerError, OSError) as exc:
        # amqtt wraps the OSError of a port already in use in a BrokerError.
        log.error("cannot start the embedded broker on %s:%d: %s", host, port, exc)
        return 1
    log.info("embedded broker stopped")
    return 0
