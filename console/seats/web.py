"""`ansim web`: the console in a browser, for a control room's wall screen (docs/web.md).

Each browser tab that brings the token gets its own ``ansim console`` child, as the
configured seat ([web] operator, observer by default), through textual-serve. The
seat listens on loopback unless configured otherwise, and never on another address
without a configured token.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import sys
from pathlib import Path

import msgspec

from console.config import Config, WebConfig
from console.seats.web_access import SeatToken, WebSetupError, is_loopback, resolve_token
from console.seats.web_server import STOP_SIGNALS, WallServer, serve_until_signalled
from protocols.schemas import Role

log = logging.getLogger("ansim.web")

_RANK = {Role.OBSERVER: 0, Role.OPERATOR: 1, Role.SUPERVISOR: 2}


def console_command(config_path: str | None, web_cfg: WebConfig) -> str:
    """The shell line textual-serve runs per session: this Python, this config, this seat."""
    argv = [sys.executable, "-m", "console.cli"]
    if config_path:
        argv += ["--config", str(Path(config_path).resolve())]
    argv += ["console", "--operator", web_cfg.operator, "--role", web_cfg.role.value]
    return shlex.join(argv)


def check_role(cfg: Config, web_cfg: WebConfig) -> None:
    """Refuse a seat the core would trust with more than the seat shows (its [roles])."""
    granted = cfg.role_of(web_cfg.operator)
    if _RANK[granted] > _RANK[web_cfg.role]:
        raise WebSetupError(
            f"[roles] grants {web_cfg.operator!r} the role {granted.value}, more than "
            f"[web] role = {web_cfg.role.value!r}: the core would accept its commands; add "
            f'{web_cfg.operator} = "{web_cfg.role.value}" to [roles] (or another [web] operator)'
        )


def address(server: WallServer, token: SeatToken) -> str:
    """The address to open; with the token only when it was made now (it is nowhere else)."""
    base = server.public_url.rstrip("/") + "/"
    return f"{base}?token={token.value}" if token.generated else f"{base}?token=<[web] token>"


def run(args: argparse.Namespace, cfg: Config) -> int:
    web_cfg = cfg.web
    overrides = {k: v for k in ("host", "port") if (v := getattr(args, k, None)) is not None}
    if overrides:
        try:
            web_cfg = msgspec.convert({**msgspec.to_builtins(web_cfg), **overrides}, WebConfig)
        except msgspec.ValidationError as exc:
            print(f"ansim web: --host/--port: {exc}", file=sys.stderr)
            return 2
    config_path: str | None = getattr(args, "config", None)
    base = Path(config_path).resolve().parent if config_path else Path.cwd()
    try:
        token = resolve_token(web_cfg, base)
        check_role(cfg, web_cfg)
    except WebSetupError as exc:
        print(f"ansim web: {exc}", file=sys.stderr)
        return 2
    # The consoles this seat starts inherit the environment; they have no use for the token.
    os.environ.pop("ANSIM_WEB__TOKEN", None)
    server = WallServer(
        console_command(config_path, web_cfg),
        host=web_cfg.host,
        port=web_cfg.port,
        token=token.value,
        title=f"Ansim — {web_cfg.operator} ({web_cfg.role.value})",
        public_url=web_cfg.public_url,
        max_sessions=web_cfg.max_sessions,
    )
    if not is_loopback(web_cfg.host) and not web_cfg.public_url.startswith("https:"):
        log.warning("[web] host %s is on the network without TLS: put a TLS reverse proxy "
                    "in front and set [web] public_url (docs/web.md)", web_cfg.host)  # fmt: skip
    started = asyncio.Event()

    async def main() -> None:
        task = asyncio.create_task(serve_until_signalled(server, started, STOP_SIGNALS))
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if started.is_set():
            # Once, on stderr: the only place a generated token is ever written.
            print(f"ansim web: {web_cfg.operator} ({web_cfg.role.value}) seat at "
                  f"{address(server, token)}", file=sys.stderr, flush=True)  # fmt: skip
        waiter.cancel()
        await task

    try:
        asyncio.run(main())
    except OSError as exc:
        print(f"ansim web: cannot listen on {web_cfg.host}:{web_cfg.port}: {exc.strerror or exc}",
              file=sys.stderr)  # fmt: skip
        return 2
    return 0
