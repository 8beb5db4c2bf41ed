"""Two partitions of Seoul on real processes, for ``bench/partitions.py``.

The north of the Han river and the south, a core each (``ansim core --partition``),
or the whole city under one core; one Mosquitto; the simulator's storm published
into its districts (``topics.raw(source, kind, district)``), its SOS without one.
Bench modules do not import ``tests/``, so the two halves of the city are spelled
out here as in ``tests/partitioned.py``. Everything talks to 127.0.0.1 only, every
wait has a deadline, and every process started here is stopped by its caller's
``with`` block, failure or not.

An SOS from a source to a console's screen: :func:`sos_to_screen` (the console's link
and store, headless, in this process).

``python -m bench._partitions pace PORT RATE SEED`` is the storm at a fixed rate,
in a process of its own so it does not share the measuring process's interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench._cluster import HOST, write_config
from console.config import JournalConfig, for_partition, load
from console.core.ingest import Accepted, read
from console.core.service import Core
from console.engine.partitions import district_of_message
from console.journal.store import open_journal
from console.sim.city import build_city
from console.sim.scenario import SCENARIOS, generate
from console.sim.seoul import HAN_NORTH, HAN_SOUTH
from console.tui.link import Link
from console.tui.state_store import StateStore
from protocols import codec, topics
from protocols.mqtt import MqttSettings, Transport
from protocols.schemas import IncidentState, Receipt, Role, SosAlarm, SosTrigger, Summary

NORTH = list(HAN_NORTH)
SOUTH = list(HAN_SOUTH)
PARTITIONS = {"north": NORTH, "south": SOUTH}
CAMERAS = 2_000  # registered first, so the storm's CCTV and camera health come from known cameras
RESPONDERS = 200
SHELTERS = 100
SOURCE = "sim"
PUBLISH_CHUNK = 10_000

Message = tuple[str, bytes]


# --- the storm ---------------------------------------------------------------------------


def storm_emits(seed: int, rate: float, start: float, scenario: str = "storm") -> Iterator[Message]:
    """The simulator's storm (or another scenario) as published: registration, then the
    mix, each camera's and unit's messages into its district, each SOS without one."""
    city = build_city(seed, CAMERAS, RESPONDERS, SHELTERS)
    for emit in generate(
        city, seed=seed, scenario=scenario, rate=rate, start=start, duration=None, source=SOURCE
    ):
        yield topics.raw(SOURCE, emit.kind, emit.district), codec.encode(emit.message)


def storm(count: int, seed: int) -> list[Message]:
    """``count`` messages of the storm (registration included), encoded up front."""
    out: list[Message] = []
    for message in storm_emits(seed, 500.0, 1_800_000_000.0):
        out.append(message)
        if len(out) >= count:
            break
    return out


def publish(port: int, payloads: list[Message]) -> None:
    """QoS 1 through the project's transport, in order, 1,000 in flight (seconds, not minutes)."""

    async def run() -> None:
        settings = MqttSettings(host=HOST, port=port, protocol=5)
        async with Transport(settings, f"bench-pub-{time.monotonic_ns()}") as pub:
            await pub.wait_connected(10)
            for at in range(0, len(payloads), PUBLISH_CHUNK):
                chunk = payloads[at : at + PUBLISH_CHUNK]
                await pub.publish_many([(t, p, False) for t, p in chunk], timeout=600)

    asyncio.run(run())


# --- configuration and what each core takes -------------------------------------------------


def city_config(workdir: Path, port: int, *, partitioned: bool) -> Path:
    """One configuration file for every core of a city (two partitions, or none)."""
    journal = "journal-{partition}.db" if partitioned else "journal.db"
    sections: dict[str, dict[str, object]] = {
        "broker": {"mode": "external", "host": HOST, "port": port, "protocol": 5},
        "journal": {"path": str(workdir / journal)},
        "core": {"publish_interval_s": 0.2, "log_interval_s": 3600},
        # The simulator's ids, named: first come is refused with several partitions
        # (docs/partitions.md, "Owners"). The one-core city gets the same, so both sides
        # of the comparison check ownership alike.
        "owners": {"first_come": False},
        "owners.cameras": {SOURCE: ["cam-*"]},
        "owners.responders": {SOURCE: ["unit-*"]},
    }
    if partitioned:
        sections["partitions"] = {name: list(ds) for name, ds in PARTITIONS.items()}
    return write_config(workdir / ("partitioned.toml" if partitioned else "city.toml"), sections)


def client_ids(config: Path, partitions: list[str | None]) -> list[str]:
    """The client id (a summary's ``core_id``) of each partition's core."""
    cfg = load(config, environ={})
    return [for_partition(cfg, name).core.client_id for name in partitions]


def expected_events(config: Path, partitions: list[str], payloads: list[Message]) -> list[int]:
    """How many of ``payloads`` each partition's core journals (events and dead letters).

    Its real subscriptions (``Core.subscriptions``, border context included) say what it
    receives; what comes without a district it journals only if it owns the placement.
    """
    cfg = load(config, environ={})
    districts = cfg.city.district_map()
    owners = cfg.partition_map()
    counts = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in partitions:
            journal = open_journal(JournalConfig(path=str(Path(tmp) / f"{name}.db")))
            try:
                core = Core(for_partition(cfg, name), journal)
                raw = [f for f, _ in core.subscriptions() if f.startswith(f"{topics.ROOT}/raw/")]
            finally:
                journal.close()
            n = 0
            takes: dict[str, bool] = {}  # a storm has a few hundred distinct topics
            for topic, payload in payloads:
                taken = takes.get(topic)
                if taken is None:
                    taken = takes[topic] = any(paho.topic_matches_sub(f, topic) for f in raw)
                if not taken:
                    continue
                parts = topics.raw_parts(topic)
                if parts is not None and parts[2] is None:  # placed by the cores that get it
                    result = read(topic, payload)
                    if not isinstance(result, Accepted):
                        raise RuntimeError(f"the storm has a message the core refuses: {result}")
                    if owners.owner(district_of_message(result.message, districts)) != name:
                        continue
                n += 1
            counts.append(n)
    return counts


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (0 if it is gone), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- cores -------------------------------------------------------------------------------


@dataclass
class Cores:
    """``ansim core`` processes of one city, one per partition (``None``: unpartitioned)."""

    config: Path
    partitions: list[str | None]
    log: Path
    names: list[str] = field(default_factory=list)  # their client ids
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)  # CPU time of each, read as it was stopped

    def __post_init__(self) -> None:
        self.names = client_ids(self.config, self.partitions)

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIM_")}
        with self.log.open("ab") as out:
            for name in self.partitions:
                argv = [sys.executable, "-m", "console.cli", "--config", str(self.config), "core"]
                argv += ["--partition", name] if name else []
                self.processes.append(
                    subprocess.Popen(
                        argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=env
                    )
                )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL past a deadline; safe to call twice."""
        self.cpu_s = [cpu_seconds(p.pid) for p in self.processes]
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self.processes = []

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        self.start()
        try:
            yield
        finally:
            self.stop()


def watch_summaries(port: int, targets: dict[str, int], timeout_s: float) -> tuple[float, float]:
    """(first live summary of any of the cores, when each has counted its target).

    Each core publishes its own retained summary (``summary/<partition>``) under its
    ``core_id``; retained ones (an earlier run) are not news and are ignored.
    """
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-watch-{time.monotonic_ns()}"
    )
    first: list[float] = []
    counted: dict[str, int] = {}
    done = threading.Event()
    last = [0.0]

    def on_message(_c: object, _u: object, msg: paho.MQTTMessage) -> None:
        if not msg.payload or msg.retain:
            return
        summary: Summary = codec.decode(bytes(msg.payload), Summary)
        if summary.core_id not in targets:
            return
        now = time.perf_counter()
        if not first:
            first.append(now)
        # A refusal (a dead letter) is handled too: it is journaled, not counted as an event.
        counted[summary.core_id] = summary.events_total + summary.rejected_total
        if all(counted.get(name, -1) >= want for name, want in targets.items()):
            if not done.is_set():
                last[0] = now
            done.set()

    client.on_message = on_message
    client.connect(HOST, port)
    client.subscribe(topics.STATE_SUMMARIES, qos=0)
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            raise RuntimeError(
                f"the cores did not journal {targets} in {timeout_s:.0f} s (counted {counted})"
            )
        return first[0], last[0]
    finally:
        client.loop_stop()
        client.disconnect()


# --- an SOS until it is on a console's screen ------------------------------------------------

PROBE_EVERY_S = 0.1
FPS = 15.0  # the console's drain rate ([console] fps): the store reaches the screen per drain
# Two places an SOS is raised, alternately: one per partition.
PLACES = [(37.5594, 126.9085), (37.5172, 127.0473)]  # Mapo-gu (north), Gangnam-gu (south)


class WatchedStore(StateStore):
    """The console's store, noting when an SOS's incident (by the phone that raised it) arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.raised: dict[str, float] = {}  # phone -> published at (perf_counter)
        self.arrived: dict[str, tuple[str, float]] = {}  # phone -> (incident id, when)
        self.summaries_at: dict[tuple[str, float], float] = {}  # (partition, ts) -> when

    def apply(self, message: Any, *, district: str = "") -> None:
        super().apply(message, district=district)
        if (
            isinstance(message, IncidentState)
            and message.source in self.raised
            and message.source not in self.arrived
        ):
            self.arrived[message.source] = (message.id, time.perf_counter())
        elif isinstance(message, Summary):
            self.summaries_at[message.partition, message.ts] = time.perf_counter()


async def until(predicate: Callable[[], bool], timeout_s: float, what: str = "") -> bool:
    """Poll ``predicate``; past ``timeout_s``, raise naming ``what`` (or return False)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            if what:
                raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
            return False
        await asyncio.sleep(0.01)
    return True


@dataclass
class Latencies:
    """Seconds from the publish of each SOS to: the core's receipt (journaled), the
    incident in the console's store, the first 15 Hz drain that finds it in the view."""

    receipt: list[float]
    store: list[float]
    screen: list[float]
    lag: list[float]  # each summary: into the console's store less into a bare subscriber
    summary_age: list[float]  # each summary at the bare subscriber: its age (its tick's start)
    missing: int  # SOS not on the screen by the deadline (counted as shown at it)


async def sos_to_screen(config: Path, samples: int, run: str, wait_s: float) -> Latencies:
    """``samples`` SOS, one every ``PROBE_EVERY_S``; then at most ``wait_s`` for the last."""
    cfg = load(config, environ={})
    store = WatchedStore()
    link = Link(cfg, "op-city", Role.SUPERVISOR, store, post=lambda _m: None)
    receiving = asyncio.create_task(link.run())
    shown: dict[str, float] = {}
    receipted: dict[str, float] = {}  # phone -> receipt arrival

    async def drain_loop() -> None:  # what AnsimApp.drain does at [console] fps
        while True:
            await asyncio.sleep(1 / FPS)
            store.drain()
            now = time.perf_counter()
            for phone, (incident, _) in list(store.arrived.items()):
                if phone not in shown and store.view.index_of(incident) is not None:
                    shown[phone] = now

    async def receipts(source: Transport) -> None:
        async for msg in source.messages():
            receipt = codec.decode_any(msg.payload)
            if isinstance(receipt, Receipt):
                receipted.setdefault(f"probe-{receipt.alarm_id}", time.perf_counter())

    tasks = [receiving, asyncio.create_task(drain_loop())]
    # The cores' summaries (a few a second) as a bare client gets them: what the console's
    # link adds to the broker's delivery is its own lag.
    bare: dict[tuple[str, float], float] = {}
    ages: list[float] = []
    watcher = summary_watcher(cfg.broker.port, bare, ages)
    settings = MqttSettings(host=HOST, port=cfg.broker.port, protocol=5)
    rng = random.Random(7)
    try:
        await until(lambda: set(PARTITIONS) <= set(store.summaries), 30, "both cores' summaries")
        subscriptions = [(topics.receipts_for("probe"), 1)]
        client_id = f"bench-sos-{run}-{time.monotonic_ns()}"
        async with Transport(settings, client_id, subscriptions=subscriptions) as source:
            await source.wait_connected(10)
            tasks.append(asyncio.create_task(receipts(source)))
            for n in range(samples):
                lat, lon = PLACES[n % len(PLACES)]
                phone = f"probe-{run}{n}"  # the alarm id is the phone's name less "probe-"
                alarm = SosAlarm(
                    alarm_id=f"{run}{n}", source="probe", device_id=phone, name=f"Probe {n}",
                    lat=lat + rng.uniform(-0.003, 0.003), lon=lon + rng.uniform(-0.003, 0.003),
                    accuracy_m=10, trigger=SosTrigger.BUTTON, ts=time.time(),
                )  # fmt: skip
                store.raised[phone] = time.perf_counter()
                await source.publish(topics.raw("probe", topics.RAW_SOS), codec.encode(alarm))
                await asyncio.sleep(PROBE_EVERY_S)
            # An SOS still missing at the deadline counts as shown then: a lower bound.
            await until(lambda: len(shown) == samples and len(receipted) == samples, wait_s)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        watcher.loop_stop()
        watcher.disconnect()
    raised = store.raised.items()
    end = time.perf_counter()
    return Latencies(
        receipt=[receipted.get(p, end) - t for p, t in raised],
        store=[store.arrived.get(p, ("", end))[1] - t for p, t in raised],
        screen=[shown.get(p, end) - t for p, t in raised],
        missing=samples - len(shown),
        lag=[t - bare[k] for k, t in store.summaries_at.items() if k in bare],
        summary_age=ages,
    )


def summary_watcher(
    port: int, into: dict[tuple[str, float], float], ages: list[float]
) -> paho.Client:
    """A paho client in a thread of its own noting when each live summary arrives, and
    how old it is then (the core stamps it at the start of its publishing tick)."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-summaries-{time.monotonic_ns()}"
    )

    def on_message(_c: object, _u: object, msg: paho.MQTTMessage) -> None:
        if msg.payload and not msg.retain:
            summary: Summary = codec.decode(bytes(msg.payload), Summary)
            into[summary.partition, summary.ts] = time.perf_counter()
            ages.append(time.time() - summary.ts)

    client.on_message = on_message
    client.connect(HOST, port)
    client.subscribe(topics.STATE_SUMMARIES, qos=1)
    client.loop_start()
    return client


# --- the storm at a fixed rate, in its own process -------------------------------------------


@contextlib.contextmanager
def paced_storm(
    port: int, rate: float, seed: int, log: Path, scenario: str = "storm"
) -> Iterator[list[str]]:
    """The storm at ``rate``/s until the block ends; the list gets the pacer's report
    ("<messages sent> <seconds>")."""
    report: list[str] = []
    argv = [sys.executable, "-m", "bench._partitions", "pace", str(port), str(rate), str(seed)]
    argv += ["--scenario", scenario]
    with log.open("ab") as err:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err)
    try:
        yield report
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            out, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate(timeout=10)
        report.append(out.decode(errors="replace").strip())


async def _pace(port: int, rate: float, seed: int, scenario: str) -> tuple[int, float]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    settings = MqttSettings(host=HOST, port=port, protocol=5)
    emits = storm_emits(seed, rate, time.time(), scenario)
    sent = 0
    async with Transport(settings, f"bench-pace-{os.getpid()}") as pub:
        await pub.wait_connected(10)
        began = time.monotonic()
        while not stop.is_set():
            due = int((time.monotonic() - began) * rate)
            batch = [(t, p, False) for t, p in (next(emits) for _ in range(due - sent))]
            if batch:
                await pub.publish_many(batch, timeout=30)
                sent = due
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.005)
        return sent, time.monotonic() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._partitions")
    sub = parser.add_subparsers(dest="command", required=True)
    pace = sub.add_parser("pace", help="publish the storm at RATE/s until SIGTERM")
    pace.add_argument("port", type=int)
    pace.add_argument("rate", type=float)
    pace.add_argument("seed", type=int)
    pace.add_argument("--scenario", default="storm", choices=SCENARIOS)
    args = parser.parse_args(argv)
    sent, elapsed = asyncio.run(_pace(args.port, args.rate, args.seed, args.scenario))
    print(f"{sent} {elapsed:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
