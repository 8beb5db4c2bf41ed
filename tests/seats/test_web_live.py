"""`ansim web` end to end: Mosquitto, `ansim core`, `ansim web`, its consoles, and Chromium.

A test source raises an SOS; the browser opens the seat with its token and reads the
terminal's screen until the queue shows the incident; a screenshot of that screen is
kept as an artifact of the run ($ANSIM_ARTIFACTS, else var/test-artifacts/ in the
repository: web_seat.png). Without the token, the page and the websocket are refused.

Chromium is Debian's (/usr/bin/chromium, installed by .ci/run), driven by the
playwright package; no browser is downloaded. Every wait polls with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest

from protocols import codec, topics
from protocols.mqtt import MqttSettings, Transport
from protocols.schemas import SosAlarm, SosTrigger
from tests.brokers import HOST, free_port
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.processes import AnsimProcess, core_ready, write_config

TOKEN = "wall-browser-test-token-42"
SOURCE = "tst"
T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
# Generous: a loaded 2-core machine starts Chromium, a core and a console child slowly.
DEADLINE_S = 60.0
pytestmark = pytest.mark.timeout(180)
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium (.ci/run installs it)"
)

# The page keeps its xterm.js terminal to itself; this catches it as it is made (the first
# object stored under the name ``terminal`` that is a terminal), to read its screen.
CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  set(value) {
    if (value && typeof value.write === "function" && "buffer" in value) {
      window.ansimTerminal = value;
    }
    Object.defineProperty(this, "terminal",
      {value, writable: true, configurable: true, enumerable: true});
  },
});
"""
SCREEN_TEXT = """() => {
  const terminal = window.ansimTerminal;
  if (!terminal) return "";
  const buffer = terminal.buffer.active, lines = [];
  for (let row = 0; row < terminal.rows; row++) {
    const line = buffer.getLine(buffer.viewportY + row);
    lines.push(line ? line.translateToString(true) : "");
  }
  return lines.join("\\n");
}"""


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("ANSIM_ARTIFACTS") or REPO / "var" / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def poll(predicate: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.1)


async def apoll(probe: Callable[[], Awaitable[T]], what: str, timeout_s: float = DEADLINE_S) -> T:
    """Poll a coroutine until it returns something true; return that."""
    deadline = time.monotonic() + timeout_s
    while not (found := await probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.2)
    return found


def descendants(pid: int) -> set[int]:
    """The processes below ``pid`` (the seat's shells and consoles), from /proc."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                children = {int(c) for c in (task / "children").read_text().split()}
                todo += children - found
                found |= children
    return found


@contextlib.asynccontextmanager
async def ansim(config: Path, *args: str) -> AsyncIterator[AnsimProcess]:
    process = AnsimProcess(config, *args).start()
    try:
        yield process
    finally:
        process.stop()


async def listening(url: str) -> bool:
    with contextlib.suppress(aiohttp.ClientError):
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status == 401
    return False


async def refused_status(
    url: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> int:
    """The status that refuses a websocket handshake (101: it was not refused)."""
    async with aiohttp.ClientSession() as session:
        try:
            socket = await session.ws_connect(url, params=params, headers=headers)
        except aiohttp.WSServerHandshakeError as refused:
            return refused.status
        await socket.close()
        return 101


@needs_chromium
async def test_the_wall_seat_shows_the_queue_in_chromium(
    tmp_path: Path, mqtt_settings: MqttSettings
) -> None:
    from playwright.async_api import async_playwright

    port = free_port()
    config = write_config(
        tmp_path,
        mqtt_settings.port,
        broker={"protocol": mqtt_settings.protocol, "keepalive": 5,
                "reconnect_min_s": 0.05, "reconnect_max_s": 0.5},
        console={"bell": False},
        web={"host": HOST, "port": port, "token": TOKEN},
        roles={"op1": "operator", "wall": "observer"},
    )  # fmt: skip
    base = f"http://{HOST}:{port}"
    started = time.monotonic()
    async with ansim(config, "core"), ansim(config, "web") as seat:
        assert seat.process is not None
        seat_pid = seat.process.pid
        await core_ready(mqtt_settings)
        await apoll(lambda: listening(f"{base}/"), "ansim web to listen")

        # Refused without the token, and with a wrong one: the page and the websocket.
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/") as response:
                assert response.status == 401
            async with session.get(f"{base}/", params={"token": "x" * 30}) as response:
                assert response.status == 403
            async with session.get(f"{base}/static/js/textual.js") as response:
                assert response.status == 401
        assert await refused_status(f"{base}/ws") == 401
        assert await refused_status(f"{base}/ws", params={"token": "y" * 30}) == 403
        assert (
            await refused_status(f"{base}/ws", headers={"Cookie": "ansim_web=" + "z" * 26}) == 401
        )
        assert descendants(seat_pid) == set()

        async with Transport(mqtt_settings, f"src-{time.monotonic_ns()}") as source:
            await source.wait_connected(10)
            alarm = SosAlarm(alarm_id="web-1", source=SOURCE, device_id="phone-web",
                             name="Person W", lat=37.5663, lon=126.9779, accuracy_m=10,
                             trigger=SosTrigger.BUTTON, ts=time.time())  # fmt: skip
            await source.publish(topics.raw(SOURCE, topics.RAW_SOS), codec.encode(alarm))

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 720})
                # Loopback only: a request anywhere else fails the test.
                elsewhere: list[str] = []
                page.on(
                    "request",
                    lambda request: (
                        None if request.url.startswith(base) else elsewhere.append(request.url)
                    ),
                )
                await page.add_init_script(CATCH_TERMINAL)
                opened = time.monotonic()
                await page.goto(f"{base}/?token={TOKEN}")
                assert page.url == f"{base}/"  # the token left the address bar

                async def queue_row() -> str:
                    screen = str(await page.evaluate(SCREEN_TEXT))
                    rows = [line for line in screen.splitlines() if "SOS" in line]
                    return rows[0] if rows and "wall (observer)" in screen else ""

                try:
                    row = await apoll(queue_row, "the SOS in the wall screen's queue")
                except AssertionError:
                    # What the wall showed instead, for whoever reads the failed run.
                    await page.screenshot(path=str(artifacts_dir() / "web_seat_failed.png"))
                    (artifacts_dir() / "web_seat_failed.txt").write_text(
                        str(await page.evaluate(SCREEN_TEXT)) + "\n", encoding="utf-8"
                    )
                    raise
                first_screen_s = time.monotonic() - opened
                assert "NEW" in row
                screen = str(await page.evaluate(SCREEN_TEXT))
                await page.screenshot(path=str(artifacts_dir() / "web_seat.png"))
                (artifacts_dir() / "web_seat.txt").write_text(screen + "\n", encoding="utf-8")
                assert elsewhere == []
                consoles = descendants(seat_pid)
                assert consoles, "a console child runs for the open page"
            finally:
                await browser.close()
        print(f"\nweb seat: page to SOS on screen {first_screen_s:.1f} s, "
              f"whole test {time.monotonic() - started:.1f} s")  # fmt: skip

        # The tab is gone: its console ends (the browser closed the websocket).
        await poll(lambda: not (consoles & descendants(seat_pid)), "the console to end")
        assert seat.stop() == 0, seat.log()
    assert "session opened" in seat.log() and "refused" in seat.log()
    assert TOKEN not in seat.log()


async def drain(socket: aiohttp.ClientWebSocketResponse) -> None:
    async for _ in socket:
        pass


async def test_a_made_token_is_printed_once_and_sessions_are_bounded(tmp_path: Path) -> None:
    # No broker needed: the seat's consoles start and show "disconnected".
    port = free_port()
    config = write_config(tmp_path, free_port(), web={"host": HOST, "port": port,
                                                     "max_sessions": 1})  # fmt: skip
    base = f"http://{HOST}:{port}"
    async with ansim(config, "web") as seat:
        assert seat.process is not None
        seat_pid = seat.process.pid
        await apoll(lambda: listening(f"{base}/"), "ansim web to listen")
        printed = [line for line in seat.log().splitlines() if "?token=" in line]
        assert len(printed) == 1, seat.log()
        assert f"wall (observer) seat at {base}/?token=" in printed[0]
        token = printed[0].rsplit("?token=", 1)[1].strip()
        assert len(token) >= 32

        # unsafe: a jar that keeps cookies of an IP address such as 127.0.0.1.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.get(f"{base}/", params={"token": token},
                                   allow_redirects=False) as response:  # fmt: skip
                assert response.status == 303
            async with session.get(f"{base}/") as response:  # with the cookie now
                assert response.status == 200
                page = await response.text()
            assert f"ws://{HOST}:{port}/ws" in page
            assert "googleapis" not in page  # nothing fetched from the internet

            socket = await session.ws_connect(f"{base}/ws", params={"width": "80", "height": "24"})
            first = await asyncio.wait_for(socket.receive(), DEADLINE_S)
            assert first.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT)
            await poll(lambda: bool(descendants(seat_pid)), "the session's console")
            assert await refused_status(f"{base}/ws", params={"token": token}) == 503

            # Stopping the seat ends the consoles it runs, and exits cleanly. The client
            # reads on, as a browser does, so it answers the seat's closing handshake.
            consoles = descendants(seat_pid)
            reader = asyncio.create_task(drain(socket))
            stopping = time.monotonic()
            assert await asyncio.to_thread(seat.stop) == 0, seat.log()
            print(f"\nweb seat: stopped with a session open in {time.monotonic() - stopping:.1f} s")
            await asyncio.wait_for(reader, DEADLINE_S)
        await poll(lambda: not any(Path(f"/proc/{pid}").exists() for pid in consoles),
                   "the seat's consoles to end")  # fmt: skip
    assert seat.log().count(token) == 1
    assert "1 consoles already running" in seat.log()
