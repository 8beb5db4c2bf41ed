"""Mosquitto started with the shipped deploy/mosquitto.conf, adapted only for a test.

:func:`adapt_config` swaps ports and paths line by line (failing if an expected
line is missing, so the tests always run the file that ships), the certificates
and the password file and ACL come from the shipped scripts (deploy/make-certs.sh,
deploy/make-passwords.sh), and :class:`DeployBroker` runs it on two free loopback
ports: ``port`` (plain, as 1883) and ``tls_port`` (TLS, as 8883).

:class:`Client` is a small synchronous paho client for the tests that need to see
what the broker answers (CONNACK and PUBACK reason codes, the CONNACK's "session
present" flag, every disconnect), which the project Transport deliberately hides
behind reconnects.
"""

from __future__ import annotations

import contextlib
import getpass
import queue
import re
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.brokers import HOST, START_TIMEOUT_S, _ProcessBroker, find_mosquitto, free_port

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
CONFIG = DEPLOY / "mosquitto.conf"
INSTALL_DIR = "/etc/mosquitto/ansim/"

# The settings that keep a slow subscriber's messages; removed for the "defaults" contrast.
QUEUE_SETTINGS = ("max_queued_messages", "max_queued_bytes", "max_inflight_messages")
# The per-listener setting that makes the client id the user name, so that only an
# account can hold its own session; removed for the "takeover" contrast.
SESSION_SETTING = "use_username_as_clientid"

CORE = "ansim-core"
# The test's users: "role name" lines for deploy/make-passwords.sh (passwords generated).
USERS = {
    CORE: "core",
    "op1": "operator",
    "op2": "operator",
    "op3": "operator",  # a read-only probe beside two seats (tests/attack)
    "cam-1": "source",
    "cam-2": "source",
    "gw": "gateway",
}


def adapt_config(
    text: str,
    *,
    port: int,
    tls_port: int,
    security_dir: Path,
    persistence_dir: Path,
    log_path: Path,
    drop: tuple[str, ...] = (),
) -> str:
    """deploy/mosquitto.conf for a test: its ports, its directories, its user; nothing else.

    ``drop`` removes the settings with these names (to compare with Mosquitto's defaults);
    each must be there at least once (a per-listener setting is there once per listener).
    """
    replacements = {
        "listener 1883 127.0.0.1": f"listener {port} {HOST}",
        "listener 8883": f"listener {tls_port} {HOST}",
        "persistence_location /var/lib/mosquitto/": f"persistence_location {persistence_dir}/",
        "log_dest file /var/log/mosquitto/mosquitto.log": f"log_dest file {log_path}",
        "pid_file /run/mosquitto/mosquitto.pid": "",
        # Run as root, mosquitto would switch to the 'mosquitto' user, who cannot read tmp_path.
        "user mosquitto": f"user {getpass.getuser()}",
    }
    found = dict.fromkeys(replacements, 0)
    dropped = dict.fromkeys(drop, 0)
    lines = []
    for line in text.splitlines():
        key = line.split(" ", 1)[0]
        if line in replacements:
            found[line] += 1
            line = replacements[line]
        elif key in dropped:
            dropped[key] += 1
            continue
        elif INSTALL_DIR in line:
            line = line.replace(INSTALL_DIR, f"{security_dir}/")
        lines.append(line)
    missing = [line for line, n in found.items() if n != 1]
    missing += [key for key, n in dropped.items() if n == 0]
    if missing:
        raise AssertionError(f"deploy/mosquitto.conf changed; expected once each: {missing}")
    return "\n".join(lines) + "\n"


def make_security(directory: Path, users: dict[str, str] = USERS) -> dict[str, str]:
    """Certificates, password file and ACL from the shipped scripts; returns name -> password."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(DEPLOY / "make-certs.sh"), str(directory)], check=True, capture_output=True)
    listing = directory / "users"
    listing.write_text("".join(f"{role} {name}\n" for name, role in users.items()))
    subprocess.run(
        [str(DEPLOY / "make-passwords.sh"), str(listing), str(directory)],
        check=True,
        capture_output=True,
    )
    passwords = {}
    for line in (directory / "credentials").read_text().splitlines():
        name, password = line.split(" ", 1)
        passwords[name] = password
    return passwords


class DeployBroker(_ProcessBroker):
    """Mosquitto running deploy/mosquitto.conf on a plain and a TLS loopback port."""

    persistent = True

    def __init__(self, workdir: Path, *, drop: tuple[str, ...] = ()) -> None:
        super().__init__(workdir)
        executable = find_mosquitto()
        if executable is None:
            raise RuntimeError("mosquitto not found")
        self.executable = executable
        self.tls_port = free_port()
        self.security_dir = workdir / "security"
        self.passwords = make_security(self.security_dir)
        self.ca = self.security_dir / "ca.crt"
        persistence_dir = workdir / "persistence"
        persistence_dir.mkdir(exist_ok=True)
        self.config_path = workdir / "mosquitto.conf"
        self.config_path.write_text(
            adapt_config(
                CONFIG.read_text(),
                port=self.port,
                tls_port=self.tls_port,
                security_dir=self.security_dir,
                persistence_dir=persistence_dir,
                log_path=self.log_path,
                drop=drop,
            )
        )

    def _command(self) -> list[str]:
        return [self.executable, "-c", str(self.config_path)]

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection((HOST, self.tls_port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)


# --- a synchronous paho client that shows the broker's answers -------------------------


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class Client:
    """One paho connection (MQTT 5 unless ``protocol=4``); connect() returns the CONNACK code."""

    broker: DeployBroker
    client_id: str
    username: str | None = None
    password: str | None = None
    tls: bool = True
    protocol: int = 5
    persistent: bool = False
    port: int | None = None  # default: the broker's TLS or plain port, as ``tls`` says
    inbox: queue.Queue[Received] = field(default_factory=queue.Queue)
    # The CONNACK's "session present" flag of the last successful connect.
    session_present: bool | None = None
    # Every loss of the connection, with the reason (e.g. "Session taken over").
    disconnects: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        version = paho.MQTTv5 if self.protocol == 5 else paho.MQTTv311
        self.paho = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=version,
            clean_session=None if self.protocol == 5 else not self.persistent,
        )
        if self.username is not None:
            self.paho.username_pw_set(self.username, self.password)
        if self.tls:
            context = ssl.create_default_context(cafile=str(self.broker.ca))
            self.paho.tls_set_context(context)
        self.paho.max_inflight_messages_set(1000)
        self.paho.max_queued_messages_set(0)
        # So that a refused client's retry loop ends at once (paho's hints say int; it sleeps).
        self.paho.reconnect_delay_set(0.05, 0.1)  # type: ignore[arg-type]
        self._connack: queue.Queue[ReasonCode | str] = queue.Queue()
        self._acks: dict[int, ReasonCode] = {}
        self._acked = threading.Condition()
        self.paho.on_connect = self._on_connect
        self.paho.on_connect_fail = lambda *_: self._connack.put("connection failed")
        self.paho.on_disconnect = self._on_disconnect
        self.paho.on_publish = self._on_publish
        self.paho.on_message = self._on_message

    # callbacks, on paho's network thread
    def _on_connect(self, _c: Any, _u: Any, flags: Any, rc: ReasonCode, _p: Any = None) -> None:
        if not rc.is_failure:
            self.session_present = bool(flags.session_present)
        self._connack.put(rc)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any = None) -> None:
        self.disconnects.append(str(rc))
        self._connack.put(f"disconnected: {rc}")

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        with self._acked:
            self._acks[mid] = rc
            self._acked.notify_all()

    def _on_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        self.inbox.put(Received(message.topic, bytes(message.payload), bool(message.retain)))

    # API
    def connect(self, timeout: float = 5.0) -> ReasonCode | str:
        """The CONNACK reason code, or a string saying why there was none."""
        port = self.port or (self.broker.tls_port if self.tls else self.broker.port)
        properties = None
        if self.protocol == 5 and self.persistent:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 3600
        kwargs: dict[str, Any] = {"keepalive": 10, "properties": properties}
        if self.protocol == 5:
            kwargs["clean_start"] = not self.persistent
        try:
            self.paho.connect(HOST, port, **kwargs)
        except (OSError, ssl.SSLError) as exc:
            return f"connect failed: {exc}"
        self.paho.loop_start()
        try:
            rc = self._connack.get(timeout=timeout)
        except queue.Empty:
            rc = "no CONNACK"
        if isinstance(rc, str) or rc.is_failure:
            self.close()  # or paho's loop would keep retrying
        return rc

    def connected(self) -> Client:
        rc = self.connect()
        assert isinstance(rc, ReasonCode) and not rc.is_failure, f"{self.client_id}: {rc}"
        return self

    def subscribe(self, *filters: str, timeout: float = 5.0) -> list[ReasonCode]:
        granted: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.paho.on_subscribe = lambda _c, _u, _m, codes, _p: granted.put(list(codes))
        self.paho.subscribe([(f, 1) for f in filters])
        return granted.get(timeout=timeout)

    def publish(
        self, topic: str, payload: bytes = b"x", *, retain: bool = False, timeout: float = 5.0
    ) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK's reason code (3.1.1: always success)."""
        info = self.paho.publish(topic, payload, qos=1, retain=retain)
        with self._acked:
            if not self._acked.wait_for(lambda: info.mid in self._acks, timeout):
                raise AssertionError(f"no PUBACK for {topic}")
            return self._acks.pop(info.mid)

    def publish_many(self, topic: str, payloads: list[bytes], timeout: float = 30.0) -> None:
        """Publish all at QoS 1 as fast as the in-flight window allows; wait for every PUBACK."""
        mids = {self.paho.publish(topic, p, qos=1).mid for p in payloads}
        with self._acked:
            if not self._acked.wait_for(lambda: mids <= self._acks.keys(), timeout):
                missing = len(mids - self._acks.keys())
                raise AssertionError(f"{missing} of {len(mids)} publishes without PUBACK")
            for mid in mids:
                self._acks.pop(mid)

    def next(self, timeout: float = 5.0) -> Received:
        try:
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.client_id} received nothing in {timeout} s") from None

    def drain(self, quiet: float = 0.3) -> list[Received]:
        """Everything received until nothing more comes for ``quiet`` seconds."""
        got = []
        with contextlib.suppress(queue.Empty):
            while True:
                got.append(self.inbox.get(timeout=quiet))
        return got

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.paho.disconnect()
        self.paho.loop_stop()


NOT_AUTHORIZED = 0x87
BAD_CREDENTIALS = 0x86


def is_refused(rc: ReasonCode | str, *codes: int) -> bool:
    """A failing CONNACK with one of ``codes``, or no MQTT session at all (a string)."""
    if isinstance(rc, str):
        return not codes
    return rc.is_failure and (not codes or rc.value in codes)


def sys_value(text: bytes) -> int:
    match = re.fullmatch(rb"\s*(\d+)\s*", text)
    assert match, text
    return int(match.group(1))
