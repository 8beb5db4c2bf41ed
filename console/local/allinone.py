"""`ansim` with no arguments: everything on one machine.

The embedded broker (when [broker] mode = "embedded"), the core and the
training simulator run as child processes with their output in var/logs/;
the console runs in this process. Quitting the console stops the children;
a child that dies is shown in the console, not hidden.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from console.config import Config, mqtt_settings
from protocols import topics
from protocols.mqtt import Transport

LOG_DIR = Path("var/logs")
CORE_READY_S = 15.0
SHELTERS_PATH = Path("var/shelters.json")


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)  # this child's own ANSIM_* overrides
    process: subprocess.Popen[bytes] | None = None
    reported: bool = False

    def start(self, env: dict[str, str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**env, **self.env},
        )
        log.close()

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, grace_s: float = 5.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def last_lines(self, count: int = 3) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in lines[-count:])


@dataclass
class Supervisor:
    """The children of the all-in-one default, and news of any that died."""

    children: list[Child] = field(default_factory=list)

    def start_all(self, env: dict[str, str]) -> None:
        for child in self.children:
            child.start(env)

    def stop_all(self) -> None:
        for child in reversed(self.children):  # simulator and core before the broker
            child.stop()

    def newly_dead(self) -> list[str]:
        """One sentence per child that has died since the last call."""
        news = []
        for child in self.children:
            code = child.exit_code()
            if code is not None and not child.reported:
                child.reported = True
                news.append(
                    f"{child.name} stopped (exit {code}); see {child.log_path}: {child.last_lines()}"
                )
        return news


def build(args: argparse.Namespace, cfg: Config) -> Supervisor:
    base = [sys.executable, "-m", "console.cli"]
    if getattr(args, "config", None):
        base += ["--config", args.config]
    children = []
    if cfg.broker.mode == "embedded":
        children.append(Child("broker", [*base, "broker"], LOG_DIR / "broker.log"))
    core_env = {}
    if not cfg.core.shelters:
        core_env["ANSIM_CORE__SHELTERS"] = str(write_training_shelters(cfg))
    children.append(Child("core", [*base, "core"], LOG_DIR / "core.log", env=core_env))
    children.append(Child("simulator", [*base, "simulate", "--quiet"], LOG_DIR / "simulate.log"))
    if cfg.gateway.enabled:
        children.append(Child("gateway", [*base, "gateway"], LOG_DIR / "gateway.log"))
    return Supervisor(children)


def write_training_shelters(cfg: Config) -> Path:
    """The simulated city's shelters as the JSON file the core reads (same seed, same list)."""
    from console.sim.city import build_city  # numpy work only the all-in-one needs

    sim = cfg.simulate
    shelters = build_city(sim.seed, 0, 0, sim.shelters).shelters
    SHELTERS_PATH.parent.mkdir(parents=True, exist_ok=True)
    SHELTERS_PATH.write_bytes(msgspec.json.encode(list(shelters)))
    return SHELTERS_PATH


def wait_for_core(cfg: Config, timeout_s: float, alive: Callable[[], bool]) -> bool:
    """Whether the core published its summary (it does once subscribed) within ``timeout_s``."""

    async def summary() -> bool:
        async with Transport(
            mqtt_settings(cfg),
            f"ansim-launcher-{os.getpid()}",
            subscriptions=[(topics.STATE_SUMMARY, 1)],
        ) as transport:
            messages = transport.messages()
            deadline = time.monotonic() + timeout_s
            while alive() and (left := deadline - time.monotonic()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(anext(messages), min(left, 0.5))
                    return True
            return False

    return asyncio.run(summary())


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def run(args: argparse.Namespace, cfg: Config) -> int:
    supervisor = build(args, cfg)
    env = dict(os.environ)
    broker = supervisor.children[0] if cfg.broker.mode == "embedded" else None
    try:
        if broker is not None:
            broker.start(env)
            if not wait_for_port(cfg.broker.host, cfg.broker.port, 15.0):
                print(
                    f"ansim: the embedded broker did not start on {cfg.broker.host}:{cfg.broker.port}; "
                    f"see {broker.log_path}: {broker.last_lines()}",
                    file=sys.stderr,
                )
                return 1
        core = next(c for c in supervisor.children if c.name == "core")
        core.start(env)
        # The core subscribes when it connects: what the simulator publishes before that
        # is lost on a fresh broker (its camera registrations, and then their events).
        if not wait_for_core(cfg, CORE_READY_S, alive=lambda: core.exit_code() is None):
            print(f"ansim: the core is not ready yet; see {core.log_path}", file=sys.stderr)
        for child in supervisor.children:
            if child not in (broker, core):
                child.start(env)
        from console.tui import app

        return app.run(args, cfg, child_news=supervisor.newly_dead)
    finally:
        supervisor.stop_all()
