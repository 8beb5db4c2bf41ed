"""`ansim gateway`: the HTTP ingest, for systems that do not speak MQTT.

``POST /v1/sos``    an SOS alarm in JSON (the raw SOS schema), answered 202 with the
                    incident id only once the core's receipt is back, that is once the
                    alarm is in the journal; 504 (503 with no broker) when no receipt
                    comes within ``[gateway] receipt_timeout_s``: retry with the same
                    ``alarm_id``, resends fold by id.
``POST /v1/cap``    an OASIS CAP 1.2 ``<alert>`` → :class:`protocols.cap.PublicAlert`,
                    published with QoS 1 to ``ansim/v1/raw/<source>/alert``; 202 once the
                    broker acknowledged it.
``GET /v1/health``  broker connection, receipts pending, counts and rates; the core's
                    system alarms (journal, broker) as its last summary listed them.

Every request is authenticated with the bearer token of one source
(``[gateway.tokens]``), rate limited per source, size limited before its body is
read, and every refusal is a JSON ``{"error", "reason"[, "field"]}``, counted by
reason and logged once. Nothing a client sends can stop the gateway.

The gateway keeps no state of its own worth saving: the core is the authority and
the journal the record. It is one more MQTT source, publishing under the ids of
the sources it vouches for.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import contextvars
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
from aiohttp import web

from console.config import Config, GatewayConfig
from console.connect import mqtt_settings
from console.gateway_limits import RateLimiter, RateMeter, TokenTable, field_of, retry_after
from console.seoul import DISTRICTS
from protocols import cap, codec, topics
from protocols.mqtt import ConnectionState, Incoming, MqttSettings, NotConnected, Transport
from protocols.schemas import Receipt, SosAlarm, Summary

log = logging.getLogger("ansim.gateway")

SOS_TYPES: Final = frozenset(
    {"application/json", "application/msgpack", "application/x-msgpack", "application/vnd.msgpack"}
)
CAP_TYPES: Final = frozenset({"application/cap+xml", "application/xml", "text/xml"})
REMEMBERED_RECEIPTS: Final = 10_000  # repeated POSTs of these answer at once
IN_FLIGHT: Final = 10  # publishes awaiting their PUBACK at once (aiomqtt warns above 10)
LINGER_S: Final = 1.0  # after a refused body, discard what is still coming this long, then close
LOG_INTERVAL_S: Final = 60.0
ENDPOINTS: Final = frozenset({"/v1/sos", "/v1/cap", "/v1/health"})

# The authenticated source of the request being handled (each request runs in its own task).
_SOURCE: contextvars.ContextVar[str] = contextvars.ContextVar("gateway_source", default="-")


def seoul_districts() -> dict[str, tuple[float, float]]:
    """District centroids for CAP areas: ``{name: (lat, lon)}``."""
    return {d.name: (d.lat, d.lon) for d in DISTRICTS}


class Refusal(Exception):
    """A request the gateway will not take: the status, a code, and a reason for people."""

    def __init__(
        self,
        status: int,
        error: str,
        reason: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason
        self.field = field
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error, "reason": self.reason}
        if self.field is not None:
            out["field"] = self.field
        out.update(self.extra)
        return out


@dataclass
class GatewayStats:
    requests: collections.Counter[str] = field(default_factory=collections.Counter)
    accepted: collections.Counter[str] = field(default_factory=collections.Counter)
    refusals: collections.Counter[str] = field(default_factory=collections.Counter)
    resent: int = 0
    receipts: int = 0
    request_rate: RateMeter = field(default_factory=RateMeter)
    refusal_rate: RateMeter = field(default_factory=RateMeter)


class Receipts:
    """SOS alarms awaiting the core's receipt, and the receipts seen lately.

    Concurrent POSTs of one alarm share one future; a POST of an alarm already
    receipted is answered from memory (the core would answer a resend with the
    same receipt anyway).
    """

    def __init__(self, remember: int = REMEMBERED_RECEIPTS) -> None:
        self.remember = remember
        self._pending: dict[tuple[str, str], tuple[asyncio.Future[Receipt], int]] = {}
        self._done: collections.OrderedDict[tuple[str, str], Receipt] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def known(self, key: tuple[str, str]) -> Receipt | None:
        receipt = self._done.get(key)
        if receipt is not None:
            self._done.move_to_end(key)
        return receipt

    def wait_for(self, key: tuple[str, str]) -> asyncio.Future[Receipt]:
        entry = self._pending.get(key)
        if entry is None:
            entry = (asyncio.get_running_loop().create_future(), 0)
        self._pending[key] = (entry[0], entry[1] + 1)
        return entry[0]

    def release(self, key: tuple[str, str]) -> None:
        entry = self._pending.get(key)
        if entry is None:
            return
        if entry[1] <= 1:
            del self._pending[key]
        else:
            self._pending[key] = (entry[0], entry[1] - 1)

    def arrived(self, receipt: Receipt) -> bool:
        """Record a receipt; True if a request was waiting for it."""
        key = (receipt.source, receipt.alarm_id)
        self._done[key] = receipt
        self._done.move_to_end(key)
        while len(self._done) > self.remember:
            self._done.popitem(last=False)
        entry = self._pending.get(key)
        if entry is not None and not entry[0].done():
            entry[0].set_result(receipt)
            return True
        return False


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Gateway:
    """The gateway: an MQTT transport and an aiohttp server. ``async with Gateway(...) as g``."""

    def __init__(
        self,
        cfg: GatewayConfig,
        settings: MqttSettings,
        *,
        districts: Mapping[str, tuple[float, float]] | None = None,
        client_id: str | None = None,
        host: str | None = None,
        port: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.tokens = TokenTable(cfg.tokens)
        self.districts = dict(districts) if districts is not None else seoul_districts()
        self.host = host if host is not None else cfg.host
        self.port = port if port is not None else cfg.port
        self.clock = clock
        self.started = clock()
        self.stats = GatewayStats()
        self.limiter = RateLimiter(cfg.rate_per_minute, cfg.rate_burst)
        self.receipts = Receipts()
        self.summary: Summary | None = None
        self.summary_seen: float | None = None
        self._limited: set[str] = set()  # sources being refused 429 (logged once per episode)
        self._publishing = asyncio.Semaphore(IN_FLIGHT)
        subscriptions = [(topics.receipts_for(s), 1) for s in self.tokens.sources]
        subscriptions.append((topics.STATE_SUMMARY, 0))
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

    # --- MQTT --------------------------------------------------------------------------

    def _on_state(self, state: ConnectionState, detail: str) -> None:
        if state is ConnectionState.CONNECTED:
            log.info("broker connected: %s", detail)

    async def _listen(self) -> None:
        async for message in self.transport.messages():
            try:
                self._incoming(message)
            except Exception:  # one odd message must not end the listener
                log.exception("cannot handle a message on %s", message.topic)

    def _incoming(self, message: Incoming) -> None:
        if message.topic == topics.STATE_SUMMARY:
            if message.payload:
                with contextlib.suppress(codec.WireError):
                    self.summary = codec.decode(message.payload, Summary)
                    self.summary_seen = self.clock()
            return
        parts = message.topic.split("/")
        if len(parts) != 5 or parts[2] != "receipt":
            return
        try:
            receipt: Receipt = codec.decode(message.payload, Receipt)
        except codec.WireError as exc:
            log.warning("unreadable receipt on %s: %s", message.topic, exc.reason)
            return
        if (receipt.source, receipt.alarm_id) != (parts[3], parts[4]):
            log.warning(
                "receipt on %s names %s/%s", message.topic, receipt.source, receipt.alarm_id
            )
            return
        self.stats.receipts += 1
        self.receipts.arrived(receipt)

    async def _publish(self, topic: str, payload: bytes, timeout_s: float) -> None:
        """QoS 1, back once the broker's PUBACK is in; TimeoutError after ``timeout_s`` in all."""
        async with asyncio.timeout(max(0.05, timeout_s)), self._publishing:
            await self.transport.publish(topic, payload, qos=1, timeout=None)

    # --- HTTP --------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        largest = max(self.cfg.max_body_bytes, self.cfg.max_cap_bytes)
        app = web.Application(client_max_size=largest, middlewares=[self._guard])
        app.router.add_post("/v1/sos", self.post_sos)
        app.router.add_post("/v1/cap", self.post_cap)
        app.router.add_get("/v1/health", self.get_health)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count every request, and turn every refusal (and any bug) into one JSON answer."""
        now = self.clock()
        _SOURCE.set("-")
        self.stats.requests[request.path if request.path in ENDPOINTS else "other"] += 1
        self.stats.request_rate.add(now)
        try:
            return await handler(request)
        except Refusal as refusal:
            return self._refuse(request, refusal)
        except web.HTTPException as exc:  # routing: 404, 405
            if exc.status < 400:
                raise
            code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status, "http-error")
            return self._refuse(request, Refusal(exc.status, code, exc.reason))
        except Exception:
            log.exception("internal error on %s %s", request.method, request.path)
            return self._refuse(
                request, Refusal(500, "internal", "internal error; the request was not taken")
            )

    def _refuse(self, request: web.Request, refusal: Refusal) -> web.Response:
        self.stats.refusals[refusal.error] += 1
        self.stats.refusal_rate.add(self.clock())
        source = _SOURCE.get()
        if refusal.error != "rate-limited" or source not in self._limited:
            log.warning(
                "refused %s %s from %s (source %s): %d %s: %s",
                request.method,
                request.path,
                request.remote,
                source,
                refusal.status,
                refusal.error,
                refusal.reason,
            )
        if refusal.error == "rate-limited":
            self._limited.add(source)
        response = web.json_response(refusal.body(), status=refusal.status)
        response.headers.update(refusal.headers)
        if refusal.error in ("too-large", "timeout", "bad-body"):
            response.force_close()  # a body left unread is not wanted on this connection
        return response

    def _authenticate(self, request: web.Request) -> str:
        source = self.tokens.source_for(request.headers.get("Authorization"))
        if source is None:
            given = "Authorization" in request.headers
            raise Refusal(
                401,
                "unauthorized",
                "unknown bearer token" if given else "an 'Authorization: Bearer <token>' is needed",
                headers={"WWW-Authenticate": 'Bearer realm="ansim"'},
            )
        _SOURCE.set(source)
        wait = self.limiter.check(source, self.clock())
        if wait > 0:
            raise Refusal(
                429,
                "rate-limited",
                f"source '{source}' is over {self.cfg.rate_per_minute:g} requests per minute "
                f"(burst {self.cfg.rate_burst}); retry after {wait:.1f} s",
                headers={"Retry-After": retry_after(wait)},
            )
        self._limited.discard(source)
        return source

    async def _body(self, request: web.Request, types: frozenset[str], limit: int) -> bytes:
        """The body, refused (415, 413, 408) before it is read whole when it cannot be right."""
        if request.content_type not in types:
            raise Refusal(
                415,
                "unsupported-media-type",
                f"Content-Type '{request.content_type}' is not one of {', '.join(sorted(types))}",
            )
        declared = request.content_length
        if declared is not None and declared > limit:
            raise Refusal(
                413, "too-large", f"body of {declared} bytes exceeds the {limit}-byte limit"
            )
        buffer = bytearray()
        try:
            async with asyncio.timeout(self.cfg.read_timeout_s):
                while chunk := await request.content.readany():
                    buffer += chunk
                    if len(buffer) > limit:
                        raise Refusal(
                            413, "too-large", f"body exceeds the {limit}-byte limit (chunked)"
                        )
        except TimeoutError:
            raise Refusal(
                408, "timeout", f"body not received within {self.cfg.read_timeout_s:g} s"
            ) from None
        except (aiohttp.ClientPayloadError, ConnectionError, EOFError) as exc:
            raise Refusal(400, "bad-body", f"the body was cut off or malformed: {exc}") from None
        return bytes(buffer)

    async def post_sos(self, request: web.Request) -> web.Response:
        source = self._authenticate(request)
        body = await self._body(request, SOS_TYPES, self.cfg.max_body_bytes)
        if request.content_type == "application/json" and not codec.looks_like_json(body):
            raise Refusal(422, "invalid", "the body must be a JSON object (the raw SOS schema)")
        try:
            alarm: SosAlarm = codec.decode(body, SosAlarm)
        except codec.WireError as exc:
            raise Refusal(422, "invalid", exc.reason, field=field_of(exc.reason)) from None
        if alarm.source != source:
            raise Refusal(
                403,
                "forbidden",
                f"the token is for source '{source}', the alarm names source '{alarm.source}'",
                field="source",
            )
        receipt = await self._deliver_sos(alarm)
        self.stats.accepted["sos"] += 1
        return web.json_response(
            {"incident_id": receipt.incident_id, "alarm_id": alarm.alarm_id, "source": source},
            status=202,
        )

    async def _deliver_sos(self, alarm: SosAlarm) -> Receipt:
        """Publish and resend until the core's receipt, or refuse with 504/503 at the deadline."""
        key = (alarm.source, alarm.alarm_id)
        known = self.receipts.known(key)
        if known is not None:
            return known
        topic, payload = topics.raw(alarm.source, topics.RAW_SOS), codec.encode(alarm)
        deadline = self.clock() + self.cfg.receipt_timeout_s
        future = self.receipts.wait_for(key)
        published = 0
        try:
            while True:
                left = deadline - self.clock()
                if left <= 0:
                    break
                if self.transport.connected:
                    try:
                        await self._publish(topic, payload, left)
                        published += 1
                        if published > 1:
                            self.stats.resent += 1
                    except (NotConnected, TimeoutError):
                        pass
                left = deadline - self.clock()
                if left <= 0 or future.done():
                    break
                await asyncio.wait({future}, timeout=min(self.cfg.resend_s, left))
                if future.done():
                    break
        finally:
            self.receipts.release(key)
        if future.done():
            return future.result()
        retry = "it may still arrive; retry with the same alarm_id (resends fold by id)"
        if published:
            raise Refusal(
                504,
                "no-receipt",
                f"published, but the core did not confirm it within "
                f"{self.cfg.receipt_timeout_s:g} s: {retry}",
                headers={"Retry-After": "1"},
                alarm_id=alarm.alarm_id,
            )
        raise Refusal(
            503,
            "broker-unavailable",
            f"the broker at {self.transport.settings.address} is not reachable: {retry}",
            headers={"Retry-After": "1"},
            alarm_id=alarm.alarm_id,
        )

    async def post_cap(self, request: web.Request) -> web.Response:
        source = self._authenticate(request)
        body = await self._body(request, CAP_TYPES, self.cfg.max_cap_bytes)
        result = cap.parse(
            body, self.districts, geocodes=self.cfg.geocodes, max_bytes=self.cfg.max_cap_bytes
        )
        if result.error is not None:
            raise Refusal(400, "cap-refused", result.error)
        if not result.messages:
            self.stats.accepted["cap-ignored"] += 1
            return web.json_response({"ignored": result.ignored or "nothing to act upon"})
        alert = result.messages[0]
        topic = topics.raw(source, topics.RAW_ALERT)  # a MessagePack PublicAlert
        deadline = self.clock() + self.cfg.receipt_timeout_s
        while True:
            left = deadline - self.clock()
            if left <= 0:
                raise Refusal(
                    503,
                    "broker-unavailable",
                    f"the broker at {self.transport.settings.address} did not take the alert "
                    f"within {self.cfg.receipt_timeout_s:g} s; retry (the alert key is the same)",
                    headers={"Retry-After": "1"},
                )
            try:
                if self.transport.connected:
                    await self._publish(topic, codec.encode(alert), left)
                    break
            except (NotConnected, TimeoutError):
                pass
            with contextlib.suppress(TimeoutError):
                await self.transport.wait_connected(min(self.cfg.resend_s, max(0.01, left)))
        self.stats.accepted["cap"] += 1
        return web.json_response(
            {
                "key": {"sender": alert.sender, "identifier": alert.identifier},
                "msg_type": alert.msg_type,
                "priority": alert.priority,
                "districts": list(alert.districts),
                "topic": topic,
            },
            status=202,
        )

    async def get_health(self, request: web.Request) -> web.Response:
        return web.json_response(self.health(), status=200 if self.transport.connected else 503)

    def health(self) -> dict[str, Any]:
        now = self.clock()
        s = self.stats
        core: dict[str, Any] = {"summary_age_s": None, "alarms": []}
        if self.summary is not None and self.summary_seen is not None:
            core = {
                "summary_age_s": round(now - self.summary_seen, 1),
                "alarms": list(self.summary.alarms),
                "core_id": self.summary.core_id,
            }
        return {
            "status": "ok" if self.transport.connected else "broker-unavailable",
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
        return (
            f"broker {h['broker']['state']}; requests {sum(self.stats.requests.values())}, "
            f"accepted {dict(self.stats.accepted)}, refused {dict(self.stats.refusals)}, "
            f"{h['receipts_pending']} receipts pending"
        )


# --- `ansim gateway` -------------------------------------------------------------------


async def serve(
    cfg: Config, *, host: str | None = None, port: int | None = None, stop: asyncio.Event
) -> None:
    """Run the gateway until ``stop`` is set."""
    async with Gateway(cfg.gateway, mqtt_settings(cfg), host=host, port=port) as gateway:
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
