"""`ansim gateway`: the HTTP ingest, for systems that do not speak MQTT.

``POST /v1/sos``    an SOS alarm in JSON (the raw SOS schema), answered 202 with the
                    incident id only once the core's receipt is back, that is once the
                    alarm is in the journal; 504 (503 with no broker) when no receipt
                    comes within ``[gateway] receipt_timeout_s``: retry with the same
                    ``alarm_id``, resends fold by id.
``POST /v1/cap``    an OASIS CAP 1.2 ``<alert>`` → :class:`protocols.cap.PublicAlert`,
                    published with QoS 1 to ``ansim/v1/raw/<source>/alert``; 202 once the
                    broker acknowledged it.
``GET /v1/health``  200 "ok" only while the broker link is up and every partition's core
                    summary is fresher than ``[gateway] summary_stale_s``, else 503 "degraded" with
                    the reason; broker connection, receipts pending, counts and rates;
                    the core's system alarms as its last summary listed them.

Every request is authenticated with the bearer token of one source
(``[gateway.tokens]``), rate limited per source, held to the endpoints its token is
scoped to (``[gateway.scopes]``) and, for CAP, to the senders it may speak for
(``[gateway.cap_senders]``), size limited before its body is read, and every refusal
is a JSON ``{"error", "reason"[, "field"]}``, counted by reason and logged once.
Nothing a client sends can stop the gateway.

The gateway keeps no state of its own worth saving: the core is the authority and
the journal the record. It is one more MQTT source, publishing under the ids of
the sources it vouches for.

The HTTP side (handlers, request checks, :class:`Refusal`) is :mod:`console.gateway.http`,
the MQTT side (publishing, receipts) :mod:`console.gateway.mqtt`, tokens and rate limits
:mod:`console.gateway.limits`, scopes and CAP senders :mod:`console.gateway.grants`;
:class:`Gateway` joins them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from aiohttp import web

from console.config import Config, GatewayConfig, default_districts, mqtt_settings
from console.gateway.grants import Grants
from console.gateway.http import GatewayHttp, GatewayStats, Refusal
from console.gateway.limits import RateLimiter, TokenTable
from console.gateway.mqtt import IN_FLIGHT, GatewayMqtt, Receipts
from protocols import topics
from protocols.mqtt import MqttSettings, Transport
from protocols.schemas import Summary

log = logging.getLogger("ansim.gateway")

LINGER_S: Final = 1.0  # after a refused body, discard what is still coming this long, then close
LOG_INTERVAL_S: Final = 60.0


def default_centroids() -> dict[str, tuple[float, float]]:
    """District centroids of the shipped configuration, for CAP areas: ``{name: (lat, lon)}``."""
    return {d.name: (d.lat, d.lon) for d in default_districts()}


class Gateway(GatewayHttp, GatewayMqtt):
    """The gateway: an MQTT transport and an aiohttp server. ``async with Gateway(...) as g``."""

    def __init__(
        self,
        cfg: GatewayConfig,
        settings: MqttSettings,
        *,
        districts: Mapping[str, tuple[float, float]] | None = None,
        partitions: Sequence[str] = (topics.DEFAULT_PARTITION,),
        client_id: str | None = None,
        host: str | None = None,
        port: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.tokens = TokenTable(cfg.tokens)
        self.grants = Grants(cfg.scopes, cfg.cap_senders)
        self.districts = dict(districts) if districts is not None else default_centroids()
        self.host = host if host is not None else cfg.host
        self.port = port if port is not None else cfg.port
        self.clock = clock
        self.wall = wall
        self.started = clock()
        self.stats = GatewayStats()
        self.limiter = RateLimiter(cfg.rate_per_minute, cfg.rate_burst)
        self.receipts = Receipts()
        self.summary: Summary | None = None
        self.summary_seen: float | None = None
        self.partitions = tuple(partitions)
        self.heard: dict[str, tuple[Summary, float]] = {}
        self._limited: set[str] = set()  # sources being refused 429 (logged once per episode)
        self._publishing = asyncio.Semaphore(IN_FLIGHT)
        subscriptions = [(topics.receipts_for(s), 1) for s in self.tokens.sources]
        subscriptions.append((topics.STATE_SUMMARIES, 0))
        self.transport = Transport(
            settings,
            client_id or f"ansim-gateway-{os.getpid()}",
            subscriptions=subscriptions,
            on_state=self._on_state,
        )
        self.app = self._build_app()
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Gateway:
        await self.transport.__aenter__()
        self._listener = asyncio.create_task(self._listen(), name="gateway:mqtt")
        # Handlers waiting for a receipt may finish during shutdown, within their timeout.
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            handle_signals=False,
            lingering_time=LINGER_S,
            shutdown_timeout=self.cfg.receipt_timeout_s + 1.0,
        )
        try:
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port)
            await site.start()
        except BaseException:
            await self._close()
            raise
        for address in self._runner.addresses:
            if isinstance(address, tuple):
                self.port = int(address[1])
                break
        if not self.tokens:
            log.warning("no [gateway.tokens]: every request will be refused (401)")
        for warning in self.grants.warnings(self.tokens.sources):
            log.warning("%s", warning)
        if self.host not in ("127.0.0.1", "::1", "localhost"):
            log.warning(
                "listening on %s: bearer tokens travel in clear without a TLS proxy in front",
                self.host,
            )
        log.info(
            "gateway on http://%s:%d for %d sources; broker %s",
            self.host,
            self.port,
            len(self.tokens),
            self.transport.settings.address,
        )
        for source in self.tokens.sources:
            endpoints = self.grants.endpoints_of(source)
            log.info("source %s may use: %s", source, ", ".join(endpoints) or "nothing")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    async def _close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        await self.transport.__aexit__(None, None, None)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def degraded(self) -> list[str]:
        """Why the gateway cannot vouch for the path to the core now; empty: it can."""
        reasons = []
        if not self.transport.connected:
            reasons.append(
                f"broker link {self.transport.state.value} ({self.transport.settings.address})"
            )
        several = len(self.partitions) > 1
        for partition, age in self.partition_ages().items():
            core = f"core of {partition}: " if several else ""
            if age is None:
                reasons.append(f"{core}no summary yet" if several else "no core summary yet")
            elif age > self.cfg.summary_stale_s:
                reasons.append(f"{core or 'core '}summary stale for {age:.0f} s")
        return reasons

    def _partition_health(self, partition: str, age: float | None) -> dict[str, Any]:
        heard = self.heard.get(partition)
        if heard is None:
            return {"summary_age_s": None, "alarms": []}
        summary = heard[0]
        return {
            "summary_age_s": None if age is None else round(age, 1),
            "alarms": list(summary.alarms),
            "core_id": summary.core_id,
        }

    def health(self) -> dict[str, Any]:
        now = self.clock()
        s = self.stats
        age = self.summary_age()
        core: dict[str, Any] = {
            "summary_age_s": None if age is None else round(age, 1),
            "stale_after_s": self.cfg.summary_stale_s,
            "alarms": [],
        }
        if self.summary is not None:
            core["alarms"] = list(self.summary.alarms)
            core["core_id"] = self.summary.core_id
        if len(self.partitions) > 1:
            core["partitions"] = {
                partition: self._partition_health(partition, age)
                for partition, age in self.partition_ages().items()
            }
        reasons = self.degraded()
        status: dict[str, Any] = {"status": "degraded" if reasons else "ok"}
        if reasons:
            status["reason"] = "; ".join(reasons)
        return {
            **status,
            "broker": {
                "state": self.transport.state.value,
                "address": self.transport.settings.address,
                "reconnects": self.transport.stats.reconnects,
            },
            "core": core,
            "receipts_pending": len(self.receipts),
            "sources": len(self.tokens),
            "requests": dict(s.requests),
            "accepted": dict(s.accepted),
            "refusals": dict(s.refusals),
            "resent": s.resent,
            "receipts": s.receipts,
            "rates": {
                "requests_per_s": round(s.request_rate.rate(now), 3),
                "refusals_per_s": round(s.refusal_rate.rate(now), 3),
            },
            "uptime_s": round(now - self.started, 1),
        }

    def log_line(self) -> str:
        h = self.health()
        status = f"{h['status']} ({h['reason']})" if "reason" in h else h["status"]
        requests = sum(self.stats.requests.values())
        return (
            f"{status}; broker {h['broker']['state']}; requests {requests}, "
            f"accepted {dict(self.stats.accepted)}, refused {dict(self.stats.refusals)}, "
            f"{h['receipts_pending']} receipts pending"
        )


# --- `ansim gateway` -------------------------------------------------------------------


async def serve(
    cfg: Config, *, host: str | None = None, port: int | None = None, stop: asyncio.Event
) -> None:
    """Run the gateway until ``stop`` is set."""
    centroids = {d.name: (d.lat, d.lon) for d in cfg.city.districts}
    async with Gateway(
        cfg.gateway,
        mqtt_settings(cfg),
        districts=centroids,
        partitions=cfg.partition_map().names,
        host=host,
        port=port,
    ) as gateway:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LOG_INTERVAL_S)
            if not stop.is_set():
                log.info("%s", gateway.log_line())
        log.info("stopping: %s", gateway.log_line())


def run(args: argparse.Namespace, cfg: Config) -> int:
    try:
        TokenTable(cfg.gateway.tokens)
    except ValueError as exc:
        print(f"ansim gateway: configuration error: [gateway.tokens]: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(
            cfg, host=getattr(args, "host", None), port=getattr(args, "port", None), stop=stop
        )
        log.info("gateway stopped cleanly")

    try:
        asyncio.run(main())
    except OSError as exc:  # the port is taken, the address is not ours
        log.error("cannot listen: %s", exc)
        return 1
    return 0


__all__ = ["Gateway", "GatewayStats", "Receipts", "Refusal", "run", "serve"]
