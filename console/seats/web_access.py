"""Who may open the wall screen: the seat's token, where it comes from, and the guard.

textual-serve has no authentication of its own: whoever reaches its page gets a
console. So every route (the page, its static files and the websocket that starts a
console) sits behind :func:`token_guard`. A browser brings the token once in the
address (``/?token=...``); the page answers with a cookie and sends the browser to the
same page without the token, so the token leaves the address bar and the history.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import secrets
import stat
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from console.config import WebConfig

log = logging.getLogger("ansim.web")

TOKEN_PARAM = "token"
COOKIE = "ansim_web"
# The characters [web] token allows: a token travels in a URL, so unreserved ones only.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9._~-]{16,512}")


class WebSetupError(Exception):
    """Why `ansim web` will not start, phrased for the person starting it."""


@dataclass(frozen=True)
class SeatToken:
    value: str
    # Made at this start (nothing configured): printed once with the address.
    generated: bool


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (a name counts only if 'localhost')."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # another name may resolve to anything: treat it as the network


def resolve_token(web_cfg: WebConfig, base: Path) -> SeatToken:
    """The token from [web] token or token_file, or a new one when the seat is loopback only."""
    if web_cfg.token and web_cfg.token_file:
        raise WebSetupError("[web] token and token_file are both set: keep one of them")
    if web_cfg.token_file:
        return SeatToken(_read_token_file(base / web_cfg.token_file), generated=False)
    if web_cfg.token:
        return SeatToken(web_cfg.token, generated=False)
    if not is_loopback(web_cfg.host):
        raise WebSetupError(
            f"[web] host = {web_cfg.host!r} is not a loopback address, and no token is "
            "configured: set [web] token_file (or ANSIM_WEB__TOKEN) before opening the "
            "wall screen to the network (docs/web.md)"
        )
    return SeatToken(secrets.token_urlsafe(32), generated=True)


def _read_token_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise WebSetupError(f"{path}: [web] token_file: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WebSetupError(f"{path}: [web] token_file: cannot read: {exc}") from None
    token = text.strip()
    if not _TOKEN_SHAPE.fullmatch(token):
        raise WebSetupError(
            f"{path}: [web] token_file: expected one token of 16 to 512 characters "
            "A-Z a-z 0-9 . _ ~ - (and nothing else in the file)"
        )
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s: the token file is readable by others; chmod 600 it", path)
    return token


def token_guard(token: str, secure_cookie: bool) -> Middleware:
    """Middleware: 401 without a token, 403 with a wrong one, for every route."""
    expected = token.encode()

    def matches(offered: str | None) -> bool:
        # compare_digest: the time taken says nothing about how much of the token was right.
        return offered is not None and hmac.compare_digest(offered.encode(), expected)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        offered = request.query.get(TOKEN_PARAM)
        if offered is not None:
            if not matches(offered):
                log.warning("refused %s %s from %s: wrong token", request.method,
                            request.path, request.remote)  # fmt: skip
                raise web.HTTPForbidden(text="ansim web: wrong token\n")
            if request.path == "/" and not _is_websocket(request):
                return _trade_for_cookie(request, token, secure_cookie)
            return await handler(request)
        if matches(request.cookies.get(COOKIE)):
            return await handler(request)
        log.warning("refused %s %s from %s: no token", request.method, request.path,
                    request.remote)  # fmt: skip
        raise web.HTTPUnauthorized(
            text="ansim web: open the address printed at start, with its ?token=...\n"
        )

    return guard


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"


def _trade_for_cookie(request: web.Request, token: str, secure: bool) -> web.Response:
    """See-other to the same page without the token, setting the cookie that replaces it."""
    rest = request.rel_url.with_query(
        [(key, value) for key, value in request.query.items() if key != TOKEN_PARAM]
    )
    # Relative, so the redirect stays right behind a reverse proxy that adds a path prefix.
    location = "./" + (f"?{rest.query_string}" if rest.query_string else "")
    response = web.Response(status=303, headers={hdrs.LOCATION: location})
    # Strict: another site's page cannot open the websocket with it (no cross-site hijack).
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=secure, path="/")
    return response


@web.middleware
async def quiet_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No page of the seat is cached, framed by another site or names its address onwards."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _harden(exc.headers)
        raise
    if not response.prepared:
        _harden(response.headers)
    return response


def _harden(headers: MutableMapping[str, str]) -> None:
    headers[hdrs.CACHE_CONTROL] = "no-store"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
