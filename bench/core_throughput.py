"""Core throughput against the drain limit of the machine (issue 6, items 1 and 2).

A storm of the simulator's mix is queued on a real Mosquitto for a persistent
session, then drained: once by `mosquitto_sub` (C; the ceiling for any
subscriber here), once by `ansim core` (broker → journal committed → state
published). Both see the same broker, the same messages, the same machine
load, so their ratio means something even on a noisy machine.
"""

from __future__ import annotations

import asyncio
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
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench import Row, Settings, register
from bench.engine import _payloads
from protocols import codec, topics
from protocols.mqtt import MqttSettings, Transport
from protocols.schemas import Summary

# Smoke runs at tuning (60,000 events): 0.14-0.23, e.g. 26,000 vs 118,000 events/s.
REFERENCE = {"core.drain-vs-mosquitto_sub": 0.17}
HOST = "127.0.0.1"
# What limits a goal this module misses (bench/RESULTS.md "Goals not met").
LIMITS = {
    "core.drain-vs-mosquitto_sub": (
        "At 0.5 of mosquitto_sub (100,000-200,000 events/s here) one core would need "
        "50,000-100,000/s: 10-20 µs per event for decode, journal, engine and publication "
        "in Python. A py-spy profile of the drain (docs/performance.md) puts the core's "
        "time in handling each event (~55 %: engine ~23 %, decode and validation ~15 %, "
        "journal append and hash ~10 %), the SQLite commit (~19 %), state publication "
        "(~9 %) and the receive path (~7 %, down from ~43 % through paho). More cores "
        "wait for partitions by district (docs/performance.md, 'What limits it now')."
    ),
}
PUBLISH_CHUNK = 10_000  # messages per publish_many call while queueing the storm


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
    """QoS 1 through the project's own transport (publish_many: ~7 µs a message, in
    order, 1,000 in flight), so queueing 1,000,000 events takes seconds, not minutes."""

    async def publish() -> None:
        settings = MqttSettings(host=HOST, port=port, protocol=5)
        async with Transport(settings, f"bench-pub-{time.monotonic_ns()}") as pub:
            await pub.wait_connected(10)
            for at in range(0, len(payloads), PUBLISH_CHUNK):
                chunk = payloads[at : at + PUBLISH_CHUNK]
                await pub.publish_many([(t, p, retain) for t, p in chunk], timeout=600)

    asyncio.run(publish())


def _mosquitto_sub(port: int) -> list[str]:
    sub = shutil.which("mosquitto_sub")
    if sub is None:
        raise RuntimeError("mosquitto_sub not found")
    base = [sub, "-h", HOST, "-p", str(port), "-V", "mqttv5", "-q", "1", "-i", "drain", "-c"]
    base += ["-x", "3600", "-t", topics.RAW_ALL]
    subprocess.run([*base, "-E"], check=True, timeout=30)  # the session, subscribed
    return base


def _drain_with_mosquitto_sub(base: list[str], count: int) -> float:
    start = time.perf_counter()
    subprocess.run([*base, "-C", str(count)], check=True, stdout=subprocess.DEVNULL, timeout=900)
    return count / (time.perf_counter() - start)


def _config(workdir: Path, port: int, name: str = "ansim") -> Path:
    path = workdir / f"{name}.toml"
    path.write_text(
        f'[broker]\nmode = "external"\nport = {port}\nprotocol = 5\n'
        f'[journal]\npath = "{workdir / f"{name}-journal.db"}"\n'
        f'[core]\nclient_id = "{name}"\npublish_interval_s = 0.2\nlog_interval_s = 3600\n',
        encoding="utf-8",
    )
    return path


def _watch_summary(
    port: int, target: int, timeout_s: float, cores: Collection[str]
) -> tuple[float, float]:
    """(time of the first summary, time ``target`` events were counted) from ``cores``.

    Several cores publish on the one summary topic, each under its ``core_id``: the
    total is the sum of the latest count of each. Retained summaries (other or earlier
    cores) are not news and are ignored.
    """
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-watch-{time.monotonic_ns()}"
    )
    first: list[float] = []
    done = threading.Event()
    counted: dict[str, int] = {}

    def on_message(_c: object, _u: object, msg: paho.MQTTMessage) -> None:
        if not msg.payload or msg.retain:
            return
        summary: Summary = codec.decode(msg.payload, Summary)
        if summary.core_id not in cores:
            return
        now = time.perf_counter()
        counted[summary.core_id] = summary.events_total
        total = sum(counted.values())
        if not first:
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


@dataclass
class _Cores:
    """One or more ``ansim core`` processes, their persistent sessions made, not running."""

    names: list[str]  # their client ids, which their summaries carry as core_id
    argvs: list[list[str]]
    startup_s: float
    log: Path


def _core_sessions(workdir: Path, port: int, names: list[str]) -> _Cores:
    """Run the cores once, empty, so their sessions (and subscriptions) exist; time it.

    Each set of cores gets its own directory: fresh journals for its drain.
    """
    workdir = Path(tempfile.mkdtemp(prefix="cores-", dir=workdir))
    argvs = [
        [sys.executable, "-m", "console.cli", "--config", str(config), "core"]
        for config in (_config(workdir, port, name) for name in names)
    ]
    log = workdir / "core.log"
    with log.open("ab") as out:
        launched = time.perf_counter()
        running = [subprocess.Popen(argv, stdout=out, stderr=out) for argv in argvs]
        try:
            startup = _watch_summary(port, 0, 30, names)[0] - launched
        finally:
            _stop(running, 30)
    return _Cores(names, argvs, startup, log)


def _drain_with_cores(cores: _Cores, port: int, count: int) -> float:
    """Events/s from the cores' launch to the summaries counting them all, less start-up.

    Timing from the first summary that counts an event would miss most of the drain:
    Mosquitto delivers a resumed session's backlog before it answers anything the client
    sends (see test_a_resumed_session_is_connected_before_its_backlog_is_taken), so the
    summaries come late.
    """
    with cores.log.open("ab") as out:
        launched = time.perf_counter()
        running = [subprocess.Popen(argv, stdout=out, stderr=out) for argv in cores.argvs]
        try:
            _, last = _watch_summary(port, count, 900, cores.names)
        finally:
            _stop(running, 60)
    return count / max(last - launched - cores.startup_s, 1e-6)


def _stop(processes: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout_s)


@register("core_throughput")
def bench_core_throughput(settings: Settings) -> list[Row]:
    """One broker, one publish: every subscriber's session is made first, so each holds
    the same queue, then they drain one after the other."""
    count = 60_000 if settings.smoke else int(os.environ.get("ANSIM_BENCH_EVENTS", "1000000"))
    payloads = _payloads(count, 0, settings.seed)[200:]  # no camera registration burst
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with _broker(workdir) as port:
            sub = _mosquitto_sub(port)
            single = _core_sessions(workdir, port, ["core"])
            _publish(port, payloads)
            ceiling = _drain_with_mosquitto_sub(sub, len(payloads))
            core = _drain_with_cores(single, port, len(payloads))
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
    return rows
