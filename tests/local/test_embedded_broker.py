"""`ansim broker`: the embedded amqtt broker as the all-in-one launcher runs it (a child process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from console.config import Config, effective_protocol, load
from tests.brokers import HOST, free_port

ROOT = Path(__file__).resolve().parents[2]


class Broker:
    def __init__(self, port: int, persistence: Path | None = None) -> None:
        self.port = port
        self.persistence = persistence
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = [sys.executable, "-m", "console.cli", "broker", "--port", str(self.port)]
        if self.persistence is not None:
            cmd += ["--persistence", str(self.persistence)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (
                self.proc.stderr.read().decode() if self.proc.stderr else ""
            )
            try:
                c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
                c.connect(HOST, self.port)
                c.disconnect()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("embedded broker did not start")

    def stop(self) -> tuple[int, float, str]:
        assert self.proc is not None
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, time.monotonic() - began, err.decode()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def embedded() -> Iterator[Broker]:
    broker = Broker(free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


class Client:
    """A small synchronous paho client that records what it receives."""

    def __init__(self, port: int, client_id: str = "", clean: bool = True) -> None:
        self.received: list[mqtt.MQTTMessage] = []
        self.got = threading.Event()
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=clean,
        )
        self.c.on_message = self._on_message
        self.c.connect(HOST, port, keepalive=10)
        self.c.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        self.received.append(msg)
        self.got.set()

    def subscribe(self, topic: str) -> None:
        result, _mid = self.c.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout=5)
        assert info.is_published()

    def wait_for(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def test_qos1_retained_round_trip_and_clean_sigterm(embedded: Broker) -> None:
    pub = Client(embedded.port)
    payload = b"\x82\xa4type\xa3sos\xff"  # binary, not UTF-8: MessagePack goes through untouched
    pub.publish("ansim/v1/state/summary", payload, retain=True)
    sub = Client(embedded.port)
    sub.subscribe("ansim/v1/state/#")
    sub.wait_for(1)
    assert [(m.topic, m.payload, m.retain) for m in sub.received] == [
        ("ansim/v1/state/summary", payload, True)
    ]
    pub.publish("ansim/v1/state/incident/inc-1", b"live")
    sub.wait_for(2)
    assert sub.received[1].payload == b"live" and sub.received[1].qos == 1
    pub.close()
    sub.close()
    code, seconds, err = embedded.stop()
    assert code == 0, err
    assert seconds < 5
    assert "listening on 127.0.0.1" in err


def test_mqtt5_is_refused_so_embedded_mode_uses_protocol_4(embedded: Broker) -> None:
    connected = threading.Event()
    refused: list[object] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_connect = lambda _c, _u, _f, rc, _p=None: (
        connected.set() if not rc.is_failure else refused.append(rc)
    )
    c.on_connect_fail = lambda *_: refused.append("fail")
    c.connect(HOST, embedded.port)
    c.loop_start()
    time.sleep(0.5)
    c.loop_stop()
    assert not connected.is_set()
    assert effective_protocol(load(environ={"ANSIM_BROKER__MODE": "embedded"})) == 4
    cfg = load(environ={"ANSIM_BROKER__MODE": "external", "ANSIM_BROKER__PROTOCOL": "5"})
    assert isinstance(cfg, Config) and effective_protocol(cfg) == 5


def test_persistent_session_queues_while_away(embedded: Broker) -> None:
    """amqtt's anonymous plugin would drop these; ours keeps them (clean session off)."""
    core = Client(embedded.port, client_id="ansim-core", clean=False)
    core.subscribe("ansim/v1/raw/+/+")
    time.sleep(0.2)
    core.close()
    pub = Client(embedded.port)
    for i in range(3):
        pub.publish("ansim/v1/raw/sim/sos", bytes([0xC0 + i]))
    pub.close()
    back = Client(embedded.port, client_id="ansim-core", clean=False)
    back.wait_for(3)
    assert [m.payload for m in back.received] == [b"\xc0", b"\xc1", b"\xc2"]
    back.close()


def test_persistence_survives_a_restart(tmp_path: Path) -> None:
    broker = Broker(free_port(), persistence=tmp_path / "broker")
    broker.start()
    try:
        core = Client(broker.port, client_id="ansim-core", clean=False)
        core.subscribe("ansim/v1/raw/#")
        time.sleep(0.2)
        core.close()
        pub = Client(broker.port)
        pub.publish("ansim/v1/state/summary", b"\xffretained", retain=True)
        pub.publish("ansim/v1/raw/sim/sos", b"\xffqueued")
        pub.close()
        time.sleep(0.2)
        assert broker.stop()[0] == 0
        broker.start()
        back = Client(broker.port, client_id="ansim-core", clean=False)
        back.subscribe("ansim/v1/state/#")
        back.wait_for(2)
        assert sorted(m.payload for m in back.received) == [b"\xffqueued", b"\xffretained"]
        back.close()
    finally:
        broker.kill()
    assert (tmp_path / "broker" / "broker.db").exists()


def test_refuses_a_non_loopback_host() -> None:
    env = {**os.environ, "ANSIM_BROKER__HOST": "0.0.0.0"}
    proc = subprocess.run(
        [sys.executable, "-m", "console.cli", "broker", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert b"loopback only" in proc.stderr
