"""Real processes for the failover benchmarks: PostgreSQL databases, Mosquittos, cores, a source.

Bench modules do not import ``tests/`` (the benchmarks run from an installed tree
without the test suite), so these are small counterparts of ``tests/brokers.py``,
``tests/processes.py`` and the resending source of ``tests/fault_helpers.py``.
Everything talks to 127.0.0.1 only, and every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from protocols import codec, topics
from protocols.mqtt import MqttSettings, NotConnected, Transport
from protocols.schemas import IncidentState, Receipt, SosAlarm, SosTrigger

HOST = "127.0.0.1"
PG_CANDIDATES = [
    os.environ.get("ANSIM_TEST_PG_DSN", ""),
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
    "postgresql://postgres@127.0.0.1:5432/postgres",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def quiet_transports() -> Iterator[None]:
    """No reconnect warnings from this process's transports: the faults are on purpose."""
    logger = logging.getLogger("ansim.mqtt")
    was = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(was)


def wait_until(predicate: Any, timeout_s: float, what: str, step_s: float = 0.02) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(step_s)


# --- PostgreSQL --------------------------------------------------------------------------


def pg_admin_dsn() -> str | None:
    """A DSN of the local server that may create databases, or None (no server, no psycopg)."""
    try:
        import psycopg
    except ImportError:
        return None
    for dsn in filter(None, PG_CANDIDATES):
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
            return dsn
        except psycopg.Error:
            continue
    return None


@contextlib.contextmanager
def pg_database(admin_dsn: str) -> Iterator[str]:
    """A fresh database for one scenario, dropped (connections forced off) afterwards."""
    import psycopg

    name = f"ansim_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_dsn.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_sos_keys(dsn: str, source: str) -> dict[str, int]:
    """How often each SOS key of ``source`` is in a PostgreSQL journal."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT key, count(*) FROM journal WHERE key LIKE %s GROUP BY key",
            (f"sos:{source}:%",),
        ).fetchall()
    return {str(key): int(n) for key, n in rows}


def sqlite_sos_keys(path: Path, source: str) -> dict[str, int]:
    """The same for a SQLite journal (read-only: safe while the core writes)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        rows = conn.execute(
            "SELECT key, count(*) FROM journal WHERE key LIKE ? GROUP BY key", (f"sos:{source}:%",)
        ).fetchall()
    finally:
        conn.close()
    return {str(key): int(n) for key, n in rows}


# --- processes ---------------------------------------------------------------------------


class Mosquitto:
    """A Mosquitto on a free loopback port, in memory (nothing survives a kill)."""

    def __init__(self, workdir: Path) -> None:
        from bench.core_throughput import _mosquitto

        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} {HOST}\nallow_anonymous true\nmax_queued_messages 0\n"
            f"max_inflight_messages 1000\npersistence false\nuser {getpass.getuser()}\n"
            "log_type error\n",
            encoding="utf-8",
        )
        self.command = [_mosquitto(), "-c", str(conf)]
        self.process = subprocess.Popen(self.command, stderr=subprocess.DEVNULL)
        wait_until(self._listening, 10, f"mosquitto on port {self.port}")

    def restart(self) -> None:
        """Start again on the same port, empty (what a supervisor does after a crash)."""
        self.process = subprocess.Popen(self.command, stderr=subprocess.DEVNULL)
        wait_until(self._listening, 10, f"mosquitto back on port {self.port}", step_s=0.005)

    def _listening(self) -> bool:
        try:
            socket.create_connection((HOST, self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """A config.toml from ``{section: {key: value}}`` (str, bool, number, list of str)."""

    def toml(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(value, list):
            return "[" + ", ".join(toml(v) for v in value) + "]"
        return repr(value)

    lines = []
    for name, table in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {toml(value)}" for key, value in table.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


class Core:
    """`ansim core` as a child process, its output in its own log file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log_path = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIM_")}
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "console.cli", "--config", str(config), "core"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.process.returncode)


def ansim(config: Path, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "console.cli", "--config", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)


# --- a resending SOS source, in this process ---------------------------------------------


class SosStorm:
    """Raises SOS at ``rate``/s (each a new phone), resends each until its receipt.

    Run it in a thread of its own (:meth:`run`): the caller keeps its hands free for
    signals and waits. ``receipts`` are (arrival on time.monotonic(), the core's handling
    time) for every receipt, duplicates included: a kill's takeover is the first one
    the core handled after the kill.
    """

    def __init__(
        self, settings: MqttSettings, source: str, rate: float, resend_s: float = 0.5
    ) -> None:
        self.settings = settings
        self.source = source
        self.rate = rate
        self.resend_s = resend_s
        self.raised: list[str] = []
        self.receipted: set[str] = set()
        self.receipts: list[tuple[float, float]] = []
        self.raising = True
        self._done = threading.Event()
        self._sent: dict[str, SosAlarm] = {}
        self._rng = random.Random(13)

    def stop_raising(self) -> None:
        self.raising = False

    def stop(self) -> None:
        """End :meth:`run` (from another thread)."""
        self.raising = False
        self._done.set()

    def all_receipted(self) -> bool:
        return not self.raising and self.receipted >= set(self.raised)

    def first_receipt_after(self, wall: float, mono: float) -> float | None:
        """Seconds from ``mono`` to the first receipt the core handled after ``wall``."""
        for arrived, handled in list(self.receipts):
            if arrived >= mono and handled > wall:
                return arrived - mono
        return None

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        subscriptions = [(topics.receipts_for(self.source), 1)]
        client_id = f"bench-src-{self.source}-{time.monotonic_ns()}"
        async with Transport(self.settings, client_id, subscriptions=subscriptions) as t:
            await t.wait_connected(10)
            tasks = [asyncio.create_task(self._listen(t)), asyncio.create_task(self._resend(t))]
            try:
                await self._raise(t)
                await asyncio.to_thread(self._done.wait)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    def _alarm(self, n: int) -> SosAlarm:
        return SosAlarm(
            alarm_id=f"b{n}",
            source=self.source,
            device_id=f"{self.source}-phone-{n}",
            name=f"Person {n}",
            lat=37.45 + self._rng.random() * 0.25,
            lon=126.80 + self._rng.random() * 0.38,
            accuracy_m=10,
            trigger=SosTrigger.BUTTON,
            ts=time.time(),
        )

    async def _raise(self, t: Transport) -> None:
        began, n = time.monotonic(), 0
        while self.raising:
            due = int((time.monotonic() - began) * self.rate)
            while n < due and self.raising:
                n += 1
                alarm = self._alarm(n)
                self.raised.append(alarm.alarm_id)
                self._sent[alarm.alarm_id] = alarm
                # Fire and forget: an SOS whose publish failed is resent like any unanswered one.
                with contextlib.suppress(NotConnected, TimeoutError):
                    await self._publish(t, alarm, timeout=0.5)
            await asyncio.sleep(0.01)

    async def _publish(self, t: Transport, alarm: SosAlarm, timeout: float) -> None:  # noqa: ASYNC109
        topic = topics.raw(self.source, topics.RAW_SOS)
        await t.publish(topic, codec.encode(alarm), timeout=timeout)

    async def _listen(self, t: Transport) -> None:
        async for msg in t.messages():
            with contextlib.suppress(codec.WireError):
                receipt = codec.decode_any(msg.payload)
                if isinstance(receipt, Receipt):
                    self.receipts.append((time.monotonic(), receipt.ts))
                    self.receipted.add(receipt.alarm_id)
                    self._sent.pop(receipt.alarm_id, None)

    async def _resend(self, t: Transport) -> None:
        while True:
            await asyncio.sleep(self.resend_s)
            due = [a for a in list(self._sent.values()) if a.alarm_id not in self.receipted]
            if due and t.connected:
                with contextlib.suppress(NotConnected, TimeoutError):
                    topic = topics.raw(self.source, topics.RAW_SOS)
                    await t.publish_many([(topic, codec.encode(a), False) for a in due], timeout=5)


# --- what a fresh console would see ------------------------------------------------------


async def _retained_sos_total(settings: MqttSettings, quiet_s: float = 1.0) -> int:
    total: dict[str, int] = {}
    client_id = f"bench-probe-{time.monotonic_ns()}"
    async with Transport(settings, client_id, subscriptions=[(topics.STATE_ALL, 1)]) as t:
        await t.wait_connected(10)
        messages = t.messages()
        while True:
            try:
                msg = await asyncio.wait_for(anext(messages), quiet_s)
            except TimeoutError:
                break
            if not msg.retain:
                break  # live traffic: the retained picture has been delivered
            if msg.payload and msg.topic.startswith(topics.STATE_INCIDENT_PREFIX):
                state = codec.decode_any(msg.payload, max_bytes=codec.MAX_STATE_PAYLOAD)
                if isinstance(state, IncidentState):
                    total[msg.topic] = state.sos_count
    return sum(total.values())


def retained_sos_total(settings: MqttSettings, want: int, timeout_s: float = 30) -> int:
    """SOS counted in the retained incident states; read again until ``want`` or the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = asyncio.run(_retained_sos_total(settings))
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.5)
