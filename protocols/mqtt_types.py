"""The transport's plain types: settings, will, states, a received message, backoff.

Kept apart from :mod:`protocols.mqtt` so the aiomqtt/paho subclass in
:mod:`protocols.mqtt_connection` can use them without an import cycle.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as paho


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
    # Further brokers, tried in this order when host:port is gone (protocols/mqtt_brokers.py).
    fallbacks: tuple[tuple[str, int], ...] = ()
    # Seconds between checks, while on a fallback, of whether an earlier broker is back.
    return_check_s: float = 30.0

    @property
    def address(self) -> str:
        """The broker in use (a transport's settings name the one it is connected to)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def brokers(self) -> tuple[tuple[str, int], ...]:
        """host:port, then the fallbacks: the order a transport tries them in."""
        return ((self.host, self.port), *self.fallbacks)


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


class TransportError(Exception):
    """Anything the transport raises about a publish it could not complete."""


class NotConnected(TransportError):
    """The transport has no connection right now (or lost it before the broker answered)."""


class PublishRefused(TransportError):
    """The broker answered a QoS 1 publish with a failing MQTT 5 PUBACK (reason code >= 0x80).

    Not a :class:`NotConnected`: the connection is fine and the same message sent again
    gets the same answer (an ACL denial is 0x87 "Not authorized"), so a caller that
    resends on NotConnected must not resend this. MQTT 3.1.1 has no reason codes: there a
    broker's refusal cannot be told from a delivery.
    """

    def __init__(
        self, reason_code: int, reason_name: str, topic: str, index: int | None = None
    ) -> None:
        where = "" if index is None else f" (item {index} of a batch)"
        super().__init__(
            f"the broker refused the publish to {topic}{where}: {reason_name} (0x{reason_code:02X})"
        )
        self.reason_code = reason_code
        self.reason_name = reason_name
        self.topic = topic
        self.index = index  # the position in a publish_many batch; None for publish()


@dataclass
class TransportStats:
    received: int = 0
    published: int = 0  # acknowledged by the broker as accepted (refusals not included)
    refused: int = 0  # QoS 1 publishes the broker refused (MQTT 5 PUBACK reason >= 0x80)
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


def describe_error(exc: BaseException) -> str:
    """A connection error as an operator reads it in the log and the status bar."""
    rc = getattr(exc, "rc", None)
    # paho reports a dropped socket as "Unspecified error" (MQTT 5) or code 7 (3.1.1).
    if rc is not None and int(getattr(rc, "value", rc)) in (paho.MQTT_ERR_CONN_LOST, 128):
        return "connection lost"
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({cause})"
    return text
