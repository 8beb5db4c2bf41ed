"""The wall screen's web server: textual-serve's page and console sessions, behind the guard.

textual-serve's own ``Server.serve`` builds an open application and installs its
logging; here the same public handlers (``handle_index``, ``handle_websocket``) are
mounted on an application of our own, so the token guard sits in front of every
route, no directory listing or download route is offered, and the number of consoles
a seat runs at once is bounded. Each websocket is one ``ansim console`` child process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from textual_serve.server import Server

from console.seats.web_access import quiet_headers, token_guard

log = logging.getLogger("ansim.web")

# Our page: textual-serve's, less the web fonts it fetches from the internet.
PAGE_TEMPLATES = Path(__file__).resolve().parent / "web_page"
# A session asked to stop (its console told to quit) has this long before it is abandoned.
SESSION_STOP_S = 10.0


class WallServer(Server):
    """textual-serve's ``Server``, with a token in front and a bound on sessions."""

    def __init__(
        self,
        command: str,
        *,
        host: str,
        port: int,
        token: str,
        title: str,
        public_url: str = "",
        max_sessions: int = 4,
    ) -> None:
        super().__init__(command, host=host, port=port, title=title,
                         public_url=public_url.rstrip("/") or None,
                         templates_path=PAGE_TEMPLATES)  # fmt: skip
        self.token = token
        self.max_sessions = max_sessions
        self._sessions: set[asyncio.Task[object]] = set()

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    def build_app(self) -> web.Application:
        """The aiohttp application: the page, its static files and the console websocket."""
        secure = self.public_url.startswith("https:")
        app = web.Application(middlewares=[quiet_headers, token_guard(self.token, secure)])
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path))
        # handle_index builds its addresses from these route names.
        app.add_routes(
            [
                web.get("/", self.handle_index, name="index"),
                web.get("/ws", self.handle_session, name="websocket"),
                web.static("/static", self.statics_path, name="static"),
            ]
        )
        app.on_shutdown.append(self._end_sessions)
        return app

    async def handle_session(self, request: web.Request) -> web.StreamResponse:
        """One browser tab: a console child for as long as its websocket is open."""
        if len(self._sessions) >= self.max_sessions:
            log.warning("refused a session from %s: %d consoles already running",
                        request.remote, len(self._sessions))  # fmt: skip
            raise web.HTTPServiceUnavailable(
                text=f"ansim web: {self.max_sessions} consoles already running ([web] max_sessions)\n"
            )
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        log.info("session opened from %s (%d running)", request.remote, len(self._sessions))
        try:
            return await self.handle_websocket(request)
        finally:
            self._sessions.discard(task)
            log.info("session from %s closed (%d running)", request.remote, len(self._sessions))

    async def _end_sessions(self, app: web.Application) -> None:
        """On shutdown, each open session tells its console to quit and waits for it."""
        sessions = list(self._sessions)
        for task in sessions:
            task.cancel()  # handle_websocket closes the socket and stops its console
        if sessions:
            await asyncio.wait(sessions, timeout=SESSION_STOP_S)


async def serve_until_signalled(
    server: WallServer, started: asyncio.Event | None = None, signals: Sequence[int] = ()
) -> None:
    """Listen on the server's host and port until one of ``signals`` (or cancellation)."""
    runner = web.AppRunner(server.build_app(), access_log=None, shutdown_timeout=SESSION_STOP_S)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        site = web.TCPSite(runner, server.host, server.port)
        await site.start()
        for number in signals:
            loop.add_signal_handler(number, stop.set)
        if started is not None:
            started.set()
        await stop.wait()
    finally:
        for number in signals:
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(number)
        await runner.cleanup()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
