"""`ansim web`'s access rules without a browser: the token, the guard, the seat's role.

The guard is exercised on a real aiohttp server on loopback with a real client: a page
and a websocket route stand in for textual-serve's, whose handlers need a console.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from console import config as config_module
from console.config import Config, WebConfig
from console.seats.web import check_role, console_command
from console.seats.web_access import (
    COOKIE,
    WebSetupError,
    is_loopback,
    quiet_headers,
    resolve_token,
    token_guard,
)
from protocols.schemas import Role

TOKEN = "wall-test-token-0123456789"
REPO = Path(__file__).resolve().parents[2]


def web_config(**values: object) -> WebConfig:
    return msgspec.convert(values, WebConfig)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("", False), ("10.1.2.3", False), ("::", False),
     ("wall.example.org", False)],
)  # fmt: skip
def test_only_loopback_addresses_count_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_loopback_seat_without_a_token_makes_one() -> None:
    first = resolve_token(web_config(), Path.cwd())
    second = resolve_token(web_config(), Path.cwd())
    assert first.generated and len(first.value) >= 32
    assert first.value != second.value


def test_a_network_seat_without_a_configured_token_is_refused() -> None:
    with pytest.raises(WebSetupError, match=r"not a loopback address.*token_file"):
        resolve_token(web_config(host="0.0.0.0"), Path.cwd())


def test_a_network_seat_with_a_configured_token_starts() -> None:
    token = resolve_token(web_config(host="0.0.0.0", token=TOKEN), Path.cwd())
    assert token.value == TOKEN and not token.generated


def test_the_token_file_is_read_from_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "wall.token").write_text(TOKEN + "\n", encoding="utf-8")
    os.chmod(tmp_path / "wall.token", 0o600)
    token = resolve_token(web_config(host="0.0.0.0", token_file="wall.token"), tmp_path)
    assert token.value == TOKEN and not token.generated


@pytest.mark.parametrize(
    ("content", "why"),
    [(None, "no such file"), ("short", "16 to 512"), (f"{TOKEN} extra", "16 to 512"),
     ("", "16 to 512")],
)  # fmt: skip
def test_a_bad_token_file_names_the_file_and_why(
    tmp_path: Path, content: str | None, why: str
) -> None:
    path = tmp_path / "wall.token"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(WebSetupError, match=why) as caught:
        resolve_token(web_config(token_file="wall.token"), tmp_path)
    assert str(path) in str(caught.value)


def test_token_and_token_file_together_are_refused() -> None:
    with pytest.raises(WebSetupError, match="both set"):
        resolve_token(web_config(token=TOKEN, token_file="x"), Path.cwd())


def test_a_short_token_in_the_config_fails_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text('[broker]\nmode = "external"\n\n[web]\ntoken = "short"\n', encoding="utf-8")
    with pytest.raises(config_module.ConfigError, match=r"a\.toml:5: \[web\] token"):
        config_module.load(path, environ={})


def test_the_shipped_config_makes_the_wall_an_observer_seat() -> None:
    cfg = config_module.load(environ={})
    assert (cfg.web.host, cfg.web.operator, cfg.web.role) == ("127.0.0.1", "wall", Role.OBSERVER)
    assert cfg.role_of("wall") is Role.OBSERVER
    check_role(cfg, cfg.web)  # no refusal


def test_a_seat_the_core_would_trust_with_more_is_refused() -> None:
    cfg = msgspec.convert({"roles": {"wall": "operator"}}, Config)
    with pytest.raises(WebSetupError, match=r"grants .wall. the role operator.*wall = .observer."):
        check_role(cfg, cfg.web)


def test_the_console_command_is_the_seat_in_its_role(tmp_path: Path) -> None:
    command = console_command(str(tmp_path / "my config.toml"), web_config(operator="wall-2"))
    assert command.startswith(f"{sys.executable} -m console.cli --config ")
    assert f"'{tmp_path / 'my config.toml'}'" in command  # quoted for the shell
    assert command.endswith("console --operator wall-2 --role observer")


# --- the guard on a real server ---------------------------------------------------


async def _page(request: web.Request) -> web.Response:
    return web.Response(text="the console page")


async def _socket(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    await socket.send_str("console")
    await socket.close()
    return socket


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[quiet_headers, token_guard(TOKEN, secure_cookie=False)])
    app.add_routes([web.get("/", _page), web.get("/ws", _socket)])
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


async def test_no_token_is_401_for_the_page_and_the_websocket(client: TestClient) -> None:
    response = await client.get("/")
    assert response.status == 401
    assert "?token=" in await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws")
    assert refused.value.status == 401


async def test_a_wrong_token_is_403_for_the_page_and_the_websocket(client: TestClient) -> None:
    assert (await client.get("/", params={"token": TOKEN[:-1] + "x"})).status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", params={"token": "x" * 40})
    assert refused.value.status == 403
    client.session.cookie_jar.update_cookies({COOKIE: "x" * 26})
    assert (await client.get("/")).status == 401


async def test_the_token_becomes_a_cookie_and_leaves_the_address(client: TestClient) -> None:
    first = await client.get("/", params={"token": TOKEN, "fontsize": "20"}, allow_redirects=False)
    assert first.status == 303
    assert first.headers["Location"] == "./?fontsize=20"
    cookie = first.cookies[COOKIE]
    assert cookie.value == TOKEN
    assert cookie["httponly"] and cookie["samesite"] == "Strict"

    page = await client.get("/")  # the cookie jar now carries it
    assert page.status == 200 and await page.text() == "the console page"
    socket = await client.ws_connect("/ws")
    assert (await socket.receive_str()) == "console"
    await socket.close()


def test_ansim_web_on_the_network_without_a_token_fails_at_start(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text('[broker]\nmode = "external"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIM_")}
    done = subprocess.run(
        [sys.executable, "-m", "console.cli", "--config", str(path), "web", "--host", "0.0.0.0"],
        capture_output=True, text=True, timeout=60, env=env, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 2
    assert "ansim web: [web] host = '0.0.0.0' is not a loopback address" in done.stderr
    assert "token_file" in done.stderr
