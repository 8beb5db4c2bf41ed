"""Helpers for the fault tests (issue 5): sources, a cuttable TCP link, journals, a tiny disk.

Everything here talks to 127.0.0.1 only and waits by polling with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from protocols import codec, topics
from protocols.mqtt import MqttSettings, NotConnected, Transport
from protocols.schemas import (
    CctvEvent,
    CctvKind,
    Command,
    Receipt,
    Reply,
    SosAlarm,
    SosTrigger,
    Summary,
)
from tests.brokers import HOST, MosquittoBroker, free_port
from tests.processes import AnsimProcess

CITY_HALL = (37.5663, 126.9779)


def sos(source: str, n: int, *, device: str | None = None, dlat: float = 0.0) -> SosAlarm:
    """An SOS near City Hall; each n a different phone (unless ``device`` is given)."""
    return SosAlarm(
        alarm_id=f"{source}-a{n}",
        source=source,
        device_id=device or f"{source}-phone-{n}",
        name=f"Person {n}",
        lat=CITY_HALL[0] + dlat + n * 0.0007,
        lon=CITY_HALL[1],
        accuracy_m=10,
        trigger=SosTrigger.BUTTON,
        ts=time.time(),
    )


class Source:
    """A test client that speaks our protocol: SOS with receipts, commands with replies.

    ``resend_s`` > 0 resends every SOS without a receipt that often (what a real
    source must do); 0 publishes each once, to show what the broker alone keeps.
    """

    def __init__(
        self,
        settings: MqttSettings,
        source: str,
        *,
        operators: tuple[str, ...] = (),
        resend_s: float = 0.0,
    ) -> None:
        self.source = source
        self.resend_s = resend_s
        subscriptions = [(topics.receipts_for(source), 1)]
        subscriptions += [(topics.reply(op), 1) for op in operators]
        self.transport = Transport(
            settings, f"src-{source}-{time.monotonic_ns()}", subscriptions=subscriptions
        )
        self.sent: dict[str, SosAlarm] = {}
        self.receipts: dict[str, Receipt] = {}
        self.replies: dict[str, Reply] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Source:
        await self.transport.__aenter__()
        await self.transport.wait_connected(10)
        self._tasks.append(asyncio.create_task(self._listen()))
        if self.resend_s > 0:
            self._tasks.append(asyncio.create_task(self._resend()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.transport.__aexit__(None, None, None)

    async def _listen(self) -> None:
        async for msg in self.transport.messages():
            with contextlib.suppress(codec.WireError):
                decoded = codec.decode_any(msg.payload)
                if isinstance(decoded, Receipt):
                    self.receipts[decoded.alarm_id] = decoded
                elif isinstance(decoded, Reply):
                    self.replies[decoded.cmd_id] = decoded

    async def _resend(self) -> None:
        while True:
            await asyncio.sleep(self.resend_s)
            for alarm_id, alarm in list(self.sent.items()):
                if alarm_id not in self.receipts:
                    with contextlib.suppress(NotConnected, TimeoutError):
                        await self.publish_sos(alarm)

    async def publish_sos(self, alarm: SosAlarm) -> None:
        await self.transport.publish(topics.raw(self.source, topics.RAW_SOS), codec.encode(alarm))

    async def raise_sos(self, alarm: SosAlarm) -> None:
        """Raise an SOS: tracked for resends (if on) and published now (waits for a link)."""
        self.sent[alarm.alarm_id] = alarm
        while True:
            try:
                await self.publish_sos(alarm)
                return
            except (NotConnected, TimeoutError):
                await self.transport.wait_connected(10)

    async def command(
        self, operator: str, cmd_id: str, *, partition: str | None = None, **fields: Any
    ) -> Reply:
        """Send a command (to ``partition``'s core, else the default's) and wait for its reply."""
        cmd = Command(cmd_id=cmd_id, operator=operator, ts=time.time(), **fields)
        await self.transport.publish(topics.cmd(operator, partition), codec.encode(cmd))
        await poll(lambda: cmd_id in self.replies, 15, f"reply to {cmd_id}")
        return self.replies[cmd_id]


class OnceCctv:
    """A foreign camera source without receipts (Frigate-style): each event published once.

    QoS 1 and a publish that failed (no PUBACK: the broker was gone) is not retried,
    as a source that does not speak our protocol would not know it had to.
    """

    def __init__(self, settings: MqttSettings, source: str, camera_id: str) -> None:
        self.source, self.camera_id = source, camera_id
        self.transport = Transport(settings, f"once-{source}-{time.monotonic_ns()}")
        self.acked: list[str] = []  # event ids the broker acknowledged
        self.acked_at: list[float] = []  # time.monotonic() of each acknowledgement
        self.failed: list[str] = []  # event ids whose publish failed (never acknowledged)

    async def run(self, interval_s: float, stop: asyncio.Event) -> None:
        async with self.transport as t:
            await t.wait_connected(10)
            n = 0
            while not stop.is_set():
                n += 1
                event = CctvEvent(
                    event_id=f"{self.source}-e{n}",
                    camera_id=self.camera_id,
                    kind=CctvKind.LOITERING,
                    confidence=0.9,
                    ts=time.time(),
                    # A camera the core never saw registered: the event says where it is
                    # (without a position the core refuses it, as it must).
                    lat=37.5663,
                    lon=126.9779,
                )
                try:
                    topic = topics.raw(self.source, topics.RAW_CCTV)
                    await t.publish(topic, codec.encode(event), timeout=2.0)
                    self.acked.append(event.event_id)
                    self.acked_at.append(time.monotonic())
                except (NotConnected, TimeoutError):
                    self.failed.append(event.event_id)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval_s)


class TcpProxy:
    """A loopback TCP forwarder to the broker that can be cut (a network partition).

    ``cut()`` closes every forwarded connection and refuses new ones; ``restore()``
    listens again on the same port. Only the clients pointed at ``port`` are cut off.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, HOST, self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, like a cable pulled: no clean DISCONNECT
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()


# --- journals, read from outside the core ------------------------------------------------


def journal_keys(path: Path, prefix: str) -> Counter[str]:
    """How often each committed record key starting with ``prefix`` is in the journal.

    A read-only connection: safe while the core writes (WAL).
    """
    if not path.exists():
        return Counter()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        rows = conn.execute(
            "SELECT key FROM journal WHERE key >= ? AND key < ?", (prefix, prefix + "\uffff")
        ).fetchall()
    finally:
        conn.close()
    return Counter(str(row[0]) for row in rows)


def recorded_ids(path: Path) -> list[str]:
    """Alarm ids an `ansim simulate --record FILE` wrote (complete lines only)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [line for line in text.split("\n")[:-1] if line]


# --- processes and the broker ------------------------------------------------------------


async def poll(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


async def exited(process: AnsimProcess, timeout_s: float) -> int:
    """Wait for a child to end by itself; its exit code."""
    proc = process.process
    assert proc is not None
    await poll(lambda: proc.poll() is not None, timeout_s, f"{process.args[0]} to exit")
    return int(proc.returncode)


def pause(process: AnsimProcess) -> None:
    """SIGSTOP: the process stops reading its socket and acknowledging (a stalled consumer)."""
    assert process.process is not None
    os.kill(process.process.pid, signal.SIGSTOP)


def resume(process: AnsimProcess) -> None:
    assert process.process is not None
    os.kill(process.process.pid, signal.SIGCONT)


async def summaries_until(
    settings: MqttSettings, predicate: Callable[[Summary], bool], timeout_s: float, what: str
) -> Summary:
    """The first published summary (retained or live) for which ``predicate`` holds."""
    async with Transport(
        settings, f"sum-{time.monotonic_ns()}", subscriptions=[(topics.STATE_SUMMARY, 1)]
    ) as t:
        messages = t.messages()
        async with asyncio.timeout(timeout_s):
            try:
                while True:
                    msg = await anext(messages)
                    if not msg.payload:
                        continue
                    summary: Summary = codec.decode(msg.payload, Summary)
                    if predicate(summary):
                        return summary
            except TimeoutError:
                raise AssertionError(f"no summary with {what} in {timeout_s} s") from None
    raise AssertionError("unreachable")  # pragma: no cover


# --- a small disk -------------------------------------------------------------------------


class TinyDisk:
    """A tmpfs of ``size_kib`` mounted at ``path`` (needs root), to fill and free at will."""

    def __init__(self, path: Path, size_kib: int) -> None:
        self.path = path
        self.size_kib = size_kib
        self.filler = path / "filler"

    @staticmethod
    def available(probe: Path) -> bool:
        """Whether a tmpfs can be mounted here (root, and no sandbox refusing mount)."""
        if os.geteuid() != 0:
            return False
        probe.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True
        )
        if done.returncode != 0:
            return False
        subprocess.run(["umount", str(probe)], capture_output=True)
        return True

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        options = f"size={self.size_kib}k"
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(self.path)], check=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)

    def fill(self) -> None:
        """Take every free byte (ENOSPC ends the write)."""
        chunk = b"\0" * 4096
        with open(self.filler, "ab", buffering=0) as out, contextlib.suppress(OSError):
            while out.write(chunk):
                pass

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def read_only(self, on: bool) -> None:
        mode = "remount,ro" if on else "remount,rw"
        subprocess.run(["mount", "-o", mode, str(self.path)], check=True)


class DefaultQueueMosquitto(MosquittoBroker):
    """Mosquitto with its DEFAULT queue limits (max_queued_messages 1000, 20 in flight).

    The harness's usual broker sets ``max_queued_messages 0`` (no limit); this one
    leaves the default, as an untuned installation does, and publishes $SYS every second.
    """

    def _config(self) -> str:
        lines = [
            line for line in super()._config().splitlines() if not line.startswith("max_queued")
        ]
        return "\n".join([*lines, "sys_interval 1", ""])
