"""`ansim forward-sia`: new SOS incidents to an alarm-receiving centre, as SIA DC-09 / Contact ID.

The forwarder reads the core's incident state (``ansim/v1/state/incident/+``, retained,
MessagePack ``IncidentState``) like any console. The first time it sees an open SOS
incident that opened less than ``[sia] max_age_s`` ago, it sends one ADM-CID frame
(``1120`` panic, ``1121`` duress, per trigger, see ``[sia.codes]``) over TCP to the
centre, waits for its ACK, and retries NAKs, silences and refused connections with
backoff, a bounded number of times. Updates of an incident it has seen send nothing
(optionally one restore, ``3120``, when it closes). See docs/sia.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from console.config import Config, SiaConfig, mqtt_settings
from protocols import codec, sia, topics
from protocols.mqtt import MqttSettings, Transport, backoff_delay
from protocols.schemas import IncidentKind, IncidentState, SosTrigger

log = logging.getLogger("ansim.forward_sia")


@dataclass
class ForwardStats:
    seen: int = 0  # SOS incidents seen for the first time
    too_old: int = 0  # ... of which not sent: opened before max_age_s (or already closed)
    accepted: int = 0  # frames the centre acknowledged
    failed: int = 0  # frames given up on (attempts exhausted, or DUH)
    naks: int = 0
    retries: int = 0
    heartbeats: int = 0
    undecodable: int = 0


@dataclass(frozen=True)
class Job:
    incident_id: str
    event: sia.ContactId
    what: str  # "alarm" or "restore", for the log


@dataclass
class _Seen:
    event: sia.ContactId | None  # what we sent; None: seen but not forwarded
    restored: bool = False


def trigger_of(state: IncidentState) -> SosTrigger:
    """The SOS trigger, from the engine's own event detail ("button, ±12 m, ..."); else button."""
    for event in state.events:
        if event.kind == "sos":
            head = event.detail.split(",", 1)[0].strip()
            with contextlib.suppress(ValueError):
                return SosTrigger(head)
    return SosTrigger.BUTTON


class Forwarder:
    """Decides what to send (``consider``, no I/O) and sends it (``work``), one frame at a time."""

    def __init__(self, cfg: SiaConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock
        self.stats = ForwardStats()
        self.sequence = sia.Sequence()
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self._seen: dict[str, _Seen] = {}
        self._clock_offset = 0.0  # from a NAK's timestamp: the centre's clock minus ours

    # --- deciding ------------------------------------------------------------------------

    def consider(self, state: IncidentState, now: float) -> Job | None:
        """The frame this incident state calls for, if any; remembers what it has seen."""
        if state.kind is not IncidentKind.SOS:
            return None
        seen = self._seen.get(state.id)
        if seen is None:
            self.stats.seen += 1
            age = now - state.created
            if state.status.is_closed or age > self.cfg.max_age_s:
                self.stats.too_old += 1
                self._remember(state.id, _Seen(None))
                log.debug(
                    "incident %s: not forwarded (%s, %.0f s old)", state.id, state.status, age
                )
                return None
            event = self.cfg.event(trigger_of(state))
            self._remember(state.id, _Seen(event))
            return Job(state.id, event, "alarm")
        if (
            self.cfg.restore_on_close
            and state.status.is_closed
            and seen.event is not None
            and not seen.restored
        ):
            seen.restored = True
            restore = sia.ContactId(
                sia.Qualifier.RESTORE, seen.event.code, seen.event.group, seen.event.zone
            )
            return Job(state.id, restore, "restore")
        return None

    def _remember(self, incident_id: str, seen: _Seen) -> None:
        self._seen[incident_id] = seen
        while len(self._seen) > self.cfg.max_tracked:
            del self._seen[next(iter(self._seen))]

    def offer(self, payload: bytes) -> Job | None:
        """Decode one state message and queue what it calls for."""
        if not payload:  # a cleared retained message
            return None
        try:
            state: IncidentState = codec.decode(payload, IncidentState)
        except codec.WireError as exc:
            self.stats.undecodable += 1
            log.warning("undecodable incident state: %s", exc.reason)
            return None
        job = self.consider(state, self.clock())
        if job is not None:
            self.queue.put_nowait(job)
        return job

    # --- sending -------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{self.cfg.host}:{self.cfg.port}"

    def _when(self) -> dt.datetime | None:
        if not self.cfg.timestamp:
            return None
        return dt.datetime.fromtimestamp(int(self.clock() + self._clock_offset), dt.UTC)

    def _frame(self, seq: int, event: sia.ContactId | None) -> sia.Frame:
        receiver = self.cfg.receiver or None
        if event is None:
            return sia.null_message(
                self.cfg.account, prefix=self.cfg.prefix, receiver=receiver, when=self._when()
            )
        return sia.adm_cid(
            seq,
            self.cfg.account,
            event,
            prefix=self.cfg.prefix,
            receiver=receiver,
            when=self._when(),
        )

    async def exchange(self, frame: sia.Frame) -> sia.Answer:
        """One attempt: connect, send the frame, read the centre's answer, hang up."""
        async with asyncio.timeout(self.cfg.timeout_s):
            reader, writer = await asyncio.open_connection(self.cfg.host, self.cfg.port)
            try:
                writer.write(sia.encode(frame))
                await writer.drain()
                buffer = b""
                while True:
                    chunk = await reader.read(4096)
                    if not chunk:
                        raise ConnectionError("the centre hung up without answering")
                    frames, buffer = sia.split_frames(buffer + chunk)
                    if frames:
                        return sia.parse_answer(frames[0], frame)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    async def deliver(self, job: Job) -> bool:
        """Send one event until the centre ACKs it, DUHs it, or the attempts run out."""
        seq = self.sequence.next()  # retransmissions repeat the sequence number
        label = f"incident {job.incident_id}: {job.what} {job.event.text} seq {seq:04d}"
        for attempt in range(self.cfg.attempts):
            frame = self._frame(seq, job.event)
            try:
                answer = await self.exchange(frame)
            except TimeoutError:
                outcome = f"no answer within {self.cfg.timeout_s:g} s"
            except (OSError, sia.SiaError) as exc:
                outcome = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            else:
                if answer.accepted:
                    self.stats.accepted += 1
                    log.info("%s: accepted by %s", label, self.address)
                    return True
                if answer.kind is sia.MessageId.DUH:
                    self.stats.failed += 1
                    log.error(
                        "%s: %s does not understand it (DUH); not retried", label, self.address
                    )
                    return False
                self.stats.naks += 1
                self._correct_clock(answer.frame)
                outcome = "refused (NAK)"
            if attempt + 1 >= self.cfg.attempts:
                break
            delay = backoff_delay(attempt, self.cfg.retry_min_s, self.cfg.retry_max_s)
            self.stats.retries += 1
            log.warning(
                "%s: %s from %s; attempt %d of %d in %.1f s",
                label,
                outcome,
                self.address,
                attempt + 2,
                self.cfg.attempts,
                delay,
            )
            await asyncio.sleep(delay)
        self.stats.failed += 1
        log.error(
            "%s: NOT delivered to %s after %d attempts (last: %s)",
            label,
            self.address,
            self.cfg.attempts,
            outcome,
        )
        return False

    def _correct_clock(self, nak: sia.Frame) -> None:
        if self.cfg.timestamp and nak.timestamp is not None:
            self._clock_offset = nak.timestamp.timestamp() - self.clock()

    async def heartbeat(self) -> bool:
        """One NULL supervision message, one attempt."""
        try:
            answer = await self.exchange(self._frame(0, None))
        except TimeoutError:
            outcome = "no answer"
        except (OSError, sia.SiaError) as exc:
            outcome = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        else:
            if answer.accepted:
                self.stats.heartbeats += 1
                log.debug("NULL supervision accepted by %s", self.address)
                return True
            if answer.kind is sia.MessageId.NAK:
                self._correct_clock(answer.frame)
            outcome = str(answer.kind)
        log.warning("NULL supervision to %s failed: %s", self.address, outcome)
        return False

    async def work(self) -> None:
        """Send queued jobs in order, for ever; NULL supervision while idle, if configured."""
        idle = self.cfg.heartbeat_s or None
        while True:
            try:
                async with asyncio.timeout(idle):
                    job = await self.queue.get()
            except TimeoutError:
                await self.heartbeat()
                continue
            await self.deliver(job)

    # --- running -------------------------------------------------------------------------

    async def run(self, settings: MqttSettings, stop: asyncio.Event) -> None:
        """Follow the incident state until ``stop`` is set."""
        transport = Transport(
            settings, self.cfg.client_id, subscriptions=[(topics.STATE_INCIDENTS, 1)]
        )
        async with transport:
            worker = asyncio.create_task(self.work(), name="forward-sia:send")
            reader = asyncio.create_task(self._read(transport), name="forward-sia:read")
            try:
                await stop.wait()
            finally:
                for task in (reader, worker):
                    task.cancel()
                for task in (reader, worker):
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if not self.queue.empty():
            log.warning("stopped with %d frame(s) not sent", self.queue.qsize())

    async def _read(self, transport: Transport) -> None:
        async for message in transport.messages():
            self.offer(message.payload)

    def log_line(self) -> str:
        return " ".join(f"{k}={v}" for k, v in dataclasses.asdict(self.stats).items())


def run(args: argparse.Namespace, cfg: Config) -> int:
    overrides = {
        key: value for key in ("host", "port") if (value := getattr(args, key, None)) is not None
    }
    sia_cfg = msgspec.structs.replace(cfg.sia, **overrides)
    if not sia_cfg.enabled:
        print(
            "ansim forward-sia: [sia] enabled is false; set it to true (or ANSIM_SIA__ENABLED=true)"
            " once the centre expects our frames",
            file=sys.stderr,
        )
        return 2
    forwarder = Forwarder(sia_cfg)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info(
            "forwarding new SOS incidents to %s as account %s", forwarder.address, sia_cfg.account
        )
        await forwarder.run(mqtt_settings(cfg), stop)
        log.info("stopped: %s", forwarder.log_line())

    asyncio.run(main())
    return 0


__all__ = ["ForwardStats", "Forwarder", "Job", "run", "trigger_of"]
