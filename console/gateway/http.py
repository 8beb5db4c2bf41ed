"""The gateway's HTTP side: the aiohttp application, its handlers and the request checks.

Authentication, rate limiting, endpoint scopes and CAP sender bindings
(:mod:`console.gateway.grants`), media type, size and read-time limits, and the one JSON
answer every refusal gets (:class:`Refusal`). The MQTT side (publishing, waiting for
receipts) is :mod:`console.gateway.mqtt`; :class:`console.gateway.service.Gateway` joins both.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from aiohttp import web

from console.config import GatewayConfig
from console.gateway.grants import Grants
from console.gateway.limits import RateLimiter, RateMeter, TokenTable, field_of, retry_after
from protocols import cap, codec, topics
from protocols.mqtt import Transport
from protocols.schemas import Receipt, SosAlarm

log = logging.getLogger("ansim.gateway")

SOS_TYPES: Final = frozenset(
    {"application/json", "application/msgpack", "application/x-msgpack", "application/vnd.msgpack"}
)
CAP_TYPES: Final = frozenset({"application/cap+xml", "application/xml", "text/xml"})
ENDPOINTS: Final = frozenset({"/v1/sos", "/v1/cap", "/v1/health"})

# The authenticated source of the request being handled (each request runs in its own task).
_SOURCE: contextvars.ContextVar[str] = contextvars.ContextVar("gateway_source", default="-")


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


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class GatewayHttp:
    """The HTTP half of :class:`console.gateway.service.Gateway` (a mixin: the state is set there)."""

    cfg: GatewayConfig
    tokens: TokenTable
    grants: Grants
    districts: dict[str, tuple[float, float]]
    clock: Callable[[], float]
    transport: Transport
    stats: GatewayStats
    limiter: RateLimiter
    _limited: set[str]  # sources being refused 429 (logged once per episode)

    if TYPE_CHECKING:  # provided by GatewayMqtt and Gateway

        async def _deliver_sos(self, alarm: SosAlarm) -> Receipt: ...

        async def _publish_alert(self, topic: str, alert: cap.PublicAlert) -> None: ...

        def health(self) -> dict[str, Any]: ...

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

    def _authenticate(self, request: web.Request, endpoint: str) -> str:
        """The token's source, once it is known, within its rate and scoped to ``endpoint``."""
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
        denied = self.grants.may_use(source, endpoint)
        if denied is not None:
            raise Refusal(403, "out-of-scope", denied, endpoint=endpoint)
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
        source = self._authenticate(request, "sos")
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

    async def post_cap(self, request: web.Request) -> web.Response:
        source = self._authenticate(request, "cap")
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
        denied = self.grants.check_alert(
            source, alert.sender, (ref.sender for ref in alert.references)
        )
        if denied is not None:
            raise Refusal(403, "sender-forbidden", denied[1], field=denied[0])
        topic = topics.raw(source, topics.RAW_ALERT)  # a MessagePack PublicAlert
        await self._publish_alert(topic, alert)
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
        health = self.health()
        return web.json_response(health, status=200 if health["status"] == "ok" else 503)
