"""The transport's plain types: settings, will, states, a received message, backoff.

Kept apart from :mod:`protocols.mqtt` so the aiomqtt/paho subclass in
:mod:`protocols.mqtt_connection` can use them without an import cycle.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field


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


@dataclass(slots=True)  # one per received message: a storm's backlog may sit in the inbox
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
