"""`ansim simulate`: resend bookkeeping (pure), and the real thing against a real broker."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from console.config import load
from console.sim import seoul
from console.sim.simulate import PendingReceipts, options
from protocols import codec, topics
from protocols.schemas import Receipt, SosAlarm, SosTrigger
from tests.brokers import AmqttBroker, MosquittoBroker

ROOT = Path(__file__).resolve().parents[2]


def alarm(n: int) -> SosAlarm:
    return SosAlarm(
        alarm_id=f"sim-7-0-{n}",
        source="sim",
        device_id=f"phone-{n}",
        name="Kim Ji-woo",
        lat=37.5,
        lon=127.0,
        accuracy_m=10.0,
        trigger=SosTrigger.BUTTON,
        ts=1.0,
    )


# --- PendingReceipts -----------------------------------------------------------------------


def test_pending_resends_every_interval_until_confirmed() -> None:
    p = PendingReceipts(resend_s=5.0)
    p.add(alarm(1), now=100.0)
    p.add(alarm(2), now=101.0)
    assert len(p) == 2 and "sim-7-0-1" in p
    assert p.due(104.9) == []
    assert [a.alarm_id for a in p.due(105.0)] == ["sim-7-0-1"]
    assert p.due(105.5) == []  # rescheduled to 110
    assert [a.alarm_id for a in p.due(110.0)] == ["sim-7-0-2", "sim-7-0-1"]  # due 106, 110
    assert p.confirm("sim-7-0-1") is True
    assert p.confirm("sim-7-0-1") is False  # a duplicate receipt
    assert [a.alarm_id for a in p.due(1000.0)] == ["sim-7-0-2"]  # forever, once per call
    assert p.confirm("sim-7-0-2") and len(p) == 0 and p.due(10_000.0) == []


def test_pending_add_twice_keeps_the_schedule_and_confirm_unknown() -> None:
    p = PendingReceipts(resend_s=1.0)
    p.add(alarm(1), now=0.0)
    p.add(alarm(1), now=0.9)
    assert [a.alarm_id for a in p.due(1.0)] == ["sim-7-0-1"]
    assert p.confirm("never-sent") is False


def test_options_command_line_over_config() -> None:
    cfg = load(environ={"ANSIM_SIMULATE__RATE": "3.5", "ANSIM_SIMULATE__SEED": "11"})
    args = argparse.Namespace(
        rate=None, duration=2.0, seed=None, scenario="storm", cameras=100_000,
        responders=None, source=None, no_resend=True, quiet=True,
    )  # fmt: skip
    o = options(args, cfg)
    assert (o.rate, o.seed, o.scenario, o.cameras, o.duration) == (3.5, 11, "storm", 100_000, 2.0)
    assert o.resend is False and o.quiet and o.source == "sim"
    args.duration = 0.0
    assert options(args, cfg).duration is None  # 0 runs until stopped


# --- against a real broker -------------------------------------------------------------------


class Watcher:
    """Subscribes to the simulator's raw topics; can answer some SOS with a receipt."""

    def __init__(
        self,
        broker: MosquittoBroker | AmqttBroker,
        receipt_if: Callable[[str], bool] | None = None,
    ) -> None:
        self.by_kind: Counter[str] = Counter()
        self.districts: dict[str, set[str | None]] = defaultdict(set)  # by kind
        self.sos_seen: dict[str, list[float]] = defaultdict(list)
        self.receipted: set[str] = set()
        self.errors: list[str] = []
        self._receipt_if = receipt_if
        self._subscribed = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *_: self._subscribed.set()
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()
        self.c.subscribe(topics.raws_from("sim"), qos=1)
        assert self._subscribed.wait(5)

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        parsed = topics.raw_parts(msg.topic)
        assert parsed is not None
        kind = parsed[1]
        self.districts[kind].add(parsed[2])
        try:
            message: object = codec.decode(bytes(msg.payload), topics.RAW_KINDS[kind])
        except codec.WireError as exc:
            self.errors.append(exc.reason)
            return
        self.by_kind[kind] += 1
        if isinstance(message, SosAlarm):
            self.sos_seen[message.alarm_id].append(time.monotonic())
            if self._receipt_if is not None and self._receipt_if(message.alarm_id):
                self.receipted.add(message.alarm_id)
                receipt = Receipt(
                    alarm_id=message.alarm_id, source="sim", incident_id="inc-1", ts=time.time()
                )
                self.c.publish(
                    topics.receipt("sim", message.alarm_id), codec.encode(receipt), qos=1
                )

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def simulate(broker: MosquittoBroker | AmqttBroker, *args: str, resend_s: float = 5.0) -> str:
    env = {
        **os.environ,
        "ANSIM_BROKER__MODE": "external",
        "ANSIM_BROKER__HOST": broker.host,
        "ANSIM_BROKER__PORT": str(broker.port),
        "ANSIM_BROKER__PROTOCOL": "5" if isinstance(broker, MosquittoBroker) else "4",
        "ANSIM_SIMULATE__RESEND_S": str(resend_s),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "console.cli", "simulate", "--quiet", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stderr.decode()


def test_publishes_registration_and_a_mix(broker: MosquittoBroker | AmqttBroker) -> None:
    watcher = Watcher(broker)
    log = simulate(
        broker, "--duration", "2", "--rate", "50", "--cameras", "300", "--responders", "20",
        "--scenario", "storm",  # the default evening is nearly all position fixes
    )  # fmt: skip
    time.sleep(0.3)
    watcher.close()
    assert watcher.errors == []
    kinds = watcher.by_kind
    assert kinds[topics.RAW_CAMERA] >= 300 and kinds[topics.RAW_RESPONDER] >= 20
    assert kinds[topics.RAW_SOS] > 0 and kinds[topics.RAW_CCTV] > 0
    scenario_events = sum(kinds.values()) - 320
    assert 50 <= scenario_events <= 200  # 2 s at 50/s, Poisson
    # Cameras and units into their districts (a partition's core reads its own), an SOS
    # into none (the cores place it by position).
    known = {d.name for d in seoul.DISTRICTS}
    assert watcher.districts[topics.RAW_SOS] == {None}
    for kind in (topics.RAW_CAMERA, topics.RAW_CCTV, topics.RAW_RESPONDER):
        assert None not in watcher.districts[kind] and watcher.districts[kind] <= known
    assert len(watcher.districts[topics.RAW_CAMERA]) == len(known)  # 300 cameras: every one
    assert "done:" in log


def test_resends_only_the_sos_without_a_receipt(broker: MosquittoBroker | AmqttBroker) -> None:
    watcher = Watcher(broker, receipt_if=lambda alarm_id: int(alarm_id.rsplit("-", 1)[1]) % 2 == 0)
    simulate(
        broker, "--duration", "3", "--rate", "60", "--scenario", "storm", "--cameras", "200",
        resend_s=0.5,
    )  # fmt: skip
    time.sleep(0.3)
    watcher.close()
    seen = watcher.sos_seen
    end = max(t for times in seen.values() for t in times)
    answered = [a for a in seen if a in watcher.receipted]
    unanswered = [a for a in seen if a not in watcher.receipted]
    assert answered and unanswered
    assert all(len(seen[a]) == 1 for a in answered), {a: len(seen[a]) for a in answered}
    # Everything unanswered for long enough was sent again, and again.
    old = [a for a in unanswered if end - seen[a][0] > 1.2]
    assert old and all(len(seen[a]) >= 2 for a in old)
