"""Core throughput against the drain limit of the machine (issue 6, items 1 and 2).

A storm of the simulator's mix is queued on a real Mosquitto for a persistent
session, then drained: once by `mosquitto_sub` (C; the ceiling for any
subscriber here), once by `ansim core` (broker → journal committed → state
published). Both see the same broker, the same messages, the same machine
load, so their ratio means something even on a noisy machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench import Row, Settings, register
from bench.engine import _payloads
from protocols import codec, topics
from protocols.schemas import Summary

# Launch-based timing (see _drain_with_core); smoke run at tuning: 10,371 vs 92,408 events/s.
REFERENCE = {"core.drain-vs-mosquitto_sub": 0.11}
HOST = "127.0.0.1"
# The 1 → 2 core comparison drains this many (of the full run's events).
SCALING_EVENTS = 300_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _mosquitto() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )
    if found is None:
        raise RuntimeError("mosquitto not found: the throughput bench needs a real broker")
    return found


@contextlib.contextmanager
def _broker(workdir: Path) -> Iterator[int]:
    """Mosquitto with the deploy/ queue settings (nothing dropped), in memory for speed."""
    port = _free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} {HOST}\nallow_anonymous true\nmax_queued_messages 0\n"
        "max_inflight_messages 1000\npersistence false\n"
        f"user {os.environ.get('USER', 'root')}\nlog_type error\n",
        encoding="utf-8",
    )
    process = subprocess.Popen([_mosquitto(), "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((HOST, port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def _publish(port: int, payloads: list[tuple[str, bytes]], *, retain: bool = False) -> None:
    """QoS 1 through a window of 1,000 unacknowledged: a fast source, so the drain is measured.

    The window is ours, not paho's: paho holds every queued message in one list and
    scans it on each PUBACK, which made 300,000 queued publishes quadratic (minutes).
    """
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{time.monotonic_ns()}")
    client.max_inflight_messages_set(0)  # unlimited in paho; the semaphore below meters
    window = threading.BoundedSemaphore(1000)
    done = threading.Event()
    acked = 0

    def on_publish(*_: object) -> None:
        nonlocal acked
        acked += 1
        window.release()
        if acked == len(payloads):
            done.set()

    client.on_publish = on_publish
    client.connect(HOST, port)
    client.loop_start()
    for topic, payload in payloads:
        if not window.acquire(timeout=60):
            raise RuntimeError(f"the broker stopped acknowledging after {acked} publishes")
        client.publish(topic, payload, qos=1, retain=retain)
    if not done.wait(600):
        raise RuntimeError(f"only {acked} of {len(payloads)} publishes acknowledged")
    client.loop_stop()
    client.disconnect()


def _drain_with_mosquitto_sub(port: int, payloads: list[tuple[str, bytes]]) -> float:
    sub = shutil.which("mosquitto_sub")
    if sub is None:
        raise RuntimeError("mosquitto_sub not found")
    base = [sub, "-h", HOST, "-p", str(port), "-V", "mqttv5", "-q", "1", "-i", "drain", "-c"]
    base += ["-x", "3600", "-t", topics.RAW_ALL]
    subprocess.run([*base, "-E"], check=True, timeout=30)  # the session, subscribed
    _publish(port, payloads)
    start = time.perf_counter()
    subprocess.run(
        [*base, "-C", str(len(payloads))], check=True, stdout=subprocess.DEVNULL, timeout=900
    )
    return len(payloads) / (time.perf_counter() - start)


def _config(workdir: Path, port: int, name: str = "ansim", *, shared: bool = False) -> Path:
    path = workdir / f"{name}.toml"
    path.write_text(
        f'[broker]\nmode = "external"\nport = {port}\nprotocol = 5\n'
        f'[journal]\npath = "{workdir / f"{name}-journal.db"}"\n'
        f'[core]\nclient_id = "{name}"\npublish_interval_s = 0.2\nlog_interval_s = 3600\n'
        f"shared_subscription = {'true' if shared else 'false'}\n",
        encoding="utf-8",
    )
    return path


def _watch_summary(port: int, target: int, timeout_s: float) -> tuple[float, float]:
    """(time the first event was counted, time ``target`` events were) from the cores' summaries.

    Several cores publish on the one summary topic, each under its ``core_id``: the
    total is the sum of the latest count of each.
    """
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-watch-{time.monotonic_ns()}"
    )
    first: list[float] = []
    done = threading.Event()
    counted: dict[str, int] = {}

    def on_message(_c: object, _u: object, msg: paho.MQTTMessage) -> None:
        if not msg.payload:
            return
        summary: Summary = codec.decode(msg.payload, Summary)
        now = time.perf_counter()
        counted[summary.core_id] = summary.events_total
        total = sum(counted.values())
        if total > 0 and not first:
            first.append(now)
        if total >= target:
            first.append(now)
            done.set()

    client.on_message = on_message
    client.connect(HOST, port)
    client.subscribe(topics.STATE_SUMMARY, qos=0)
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            raise RuntimeError(f"the core did not journal {target} events in {timeout_s:.0f} s")
        return first[0], first[-1]
    finally:
        client.loop_stop()
        client.disconnect()


def _drain_with_core(
    workdir: Path, port: int, payloads: list[tuple[str, bytes]], cores: int = 1
) -> float:
    """Events/s from the core's launch to the summary counting them all, less its start-up.

    The start-up (launch to first summary) is measured on the first, empty run. Timing
    from the first summary that counts an event would miss most of the drain: a resumed
    session delivers its backlog before the SUBACK that makes the core count as
    connected (and publish), so a fast core is half done before its first summary.
    """
    shared = cores > 1
    argvs = [
        [sys.executable, "-m", "console.cli", "--config", str(config), "core"]
        for config in (_config(workdir, port, f"core{n}", shared=shared) for n in range(cores))
    ]
    log = (workdir / "core.log").open("ab")
    # First run: creates the persistent sessions (and their subscriptions), then leaves.
    launched = time.perf_counter()
    running = [subprocess.Popen(argv, stdout=log, stderr=log) for argv in argvs]
    try:
        startup = _watch_summary(port, 0, 30)[0] - launched
    finally:
        _stop(running, 30)
    _publish(port, payloads)
    launched = time.perf_counter()
    running = [subprocess.Popen(argv, stdout=log, stderr=log) for argv in argvs]
    try:
        _, last = _watch_summary(port, len(payloads), 900)
    finally:
        _stop(running, 60)
        log.close()
    return len(payloads) / max(last - launched - startup, 1e-6)


def _stop(processes: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout_s)


@register("core_throughput")
def bench_core_throughput(settings: Settings) -> list[Row]:
    count = 20_000 if settings.smoke else int(os.environ.get("ANSIM_BENCH_EVENTS", "300000"))
    payloads = _payloads(count, 0, settings.seed)[200:]  # no camera registration burst
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with _broker(workdir) as port:
            ceiling = _drain_with_mosquitto_sub(port, payloads)
        with _broker(workdir) as port:
            core = _drain_with_core(workdir, port, payloads)
        scaling = None
        if not settings.smoke:
            shared = payloads[:SCALING_EVENTS]
            with _broker(workdir) as port:
                one = _drain_with_core(workdir, port, shared) if shared != payloads else core
            with _broker(workdir) as port:
                scaling = (_drain_with_core(workdir, port, shared, cores=2), one, len(shared))
    rows = [
        Row.of(
            "core.drain-vs-mosquitto_sub",
            core,
            "events/s",
            ceiling,
            "mosquitto_sub -q 1 draining the same queue",
            lower_is_better=False,
            goal="≥ 0.5× the drain limit and ≥ 20,000 events/s",
            met=core >= 20_000 and core >= 0.5 * ceiling,
            reference=REFERENCE["core.drain-vs-mosquitto_sub"],
            note=f"{len(payloads):,} storm events (QoS 1) queued for a persistent session, "
            "then drained: broker → SQLite journal committed → acknowledged → state published",
        )
    ]
    if scaling is not None:
        two, one, events = scaling
        rows.append(
            Row.of(
                "core.scaling.2-vs-1",
                two,
                "events/s",
                one,
                "one core draining the same queue",
                lower_is_better=False,
                note=f"{events:,} events; two `ansim core` processes on the shared subscription "
                "$share/ansim-core/ (shared_subscription = true), each with its own journal, "
                "on this 2-core machine beside Mosquitto",
            )
        )
    return rows
