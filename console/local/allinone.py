"""`ansim` with no arguments: everything on one machine.

The embedded broker (when [broker] mode = "embedded"), the core and the
training simulator run as child processes with their output in var/logs/;
the console runs in this process. A child that dies is shown in the console,
not hidden.

Other seats (a second console, an office over SSH) may be using these services,
so quitting asks (console.tui.quitting): stop everything, or leave the city
running. Left running, the children carry on detached (each in its own session,
so closing the terminal does not stop them either), recorded in var/run/city.json
(console.local.running); the next `ansim` in this folder finds them and attaches
its console instead of starting a second city, and quitting that one can stop them.
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
from console.local import running
from console.tui.quitting import CityChoice, LocalCity
from protocols import topics
from protocols.mqtt import Transport

LOG_DIR = Path("var/logs")
CORE_READY_S = 15.0
SHELTERS_PATH = Path("var/shelters.json")

# The console: given the launcher's news of dead children and what it may decide at
# quit; returns the exit code. Tests drive one of their own.
ConsoleRunner = Callable[[Callable[[], list[str]], LocalCity], int]


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
            # Out of the terminal's session: its hangup or ctrl+c must not stop a city that
            # other seats use. Only the launcher stops it, when the operator says so.
            start_new_session=True,
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

    def record(self, cfg: Config) -> running.CityRecord:
        return running.CityRecord(
            broker=broker_address(cfg),
            children=[
                running.RecordedChild(
                    c.name,
                    c.process.pid,
                    c.argv,
                    str(c.log_path),
                    started=running.start_time(c.process.pid),
                )
                for c in self.children
                if c.process is not None
            ],
        )

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


def broker_address(cfg: Config) -> str:
    return f"{cfg.broker.host}:{cfg.broker.port}"


def services(names: list[str]) -> str:
    """The dialog's name for what would keep running: "the broker, core and simulator"."""
    shown = [name for name in names if name != "gateway"] + (
        ["HTTP gateway"] if "gateway" in names else []
    )
    if len(shown) < 2:
        return "the " + "".join(shown)
    return "the " + ", ".join(shown[:-1]) + " and " + shown[-1]


def left_running(cfg: Config, what: str) -> str:
    return (
        f"ansim: {what} keep running in the background (broker {broker_address(cfg)}, "
        f"logs in {LOG_DIR}/).\n"
        "  Back to them: `ansim` (or `make run`) in this folder attaches a console; "
        "`ansim console` joins too.\n"
        "  To stop them: run `ansim` in this folder and quit with s (stop everything)."
    )


def run(args: argparse.Namespace, cfg: Config, console: ConsoleRunner | None = None) -> int:
    console = console or app_console(args, cfg)
    found = running.read()
    if found is not None and any(running.is_running(c) for c in found.children):
        return attach(cfg, found, console)
    running.remove()  # a record of processes long gone (the machine restarted)

    supervisor = build(args, cfg)
    city = LocalCity(services=services([c.name for c in supervisor.children]))
    try:
        if not start(supervisor, cfg):
            return 1
        running.write(supervisor.record(cfg))
        return console(supervisor.newly_dead, city)
    finally:
        if city.choice is CityChoice.LEAVE:
            print(left_running(cfg, city.services.capitalize()))
        else:  # stop everything, or the launcher itself failed or was interrupted
            supervisor.stop_all()
            running.remove()


def start(supervisor: Supervisor, cfg: Config) -> bool:
    """Start the children in order: the broker, the core once it listens, then the rest."""
    env = dict(os.environ)
    broker = supervisor.children[0] if cfg.broker.mode == "embedded" else None
    if broker is not None:
        broker.start(env)
        if not wait_for_port(cfg.broker.host, cfg.broker.port, 15.0):
            print(
                f"ansim: the embedded broker did not start on {broker_address(cfg)}; "
                f"see {broker.log_path}: {broker.last_lines()}",
                file=sys.stderr,
            )
            return False
    core = next(c for c in supervisor.children if c.name == "core")
    core.start(env)
    # The core subscribes when it connects: what the simulator publishes before that
    # is lost on a fresh broker (its camera registrations, and then their events).
    if not wait_for_core(cfg, CORE_READY_S, alive=lambda: core.exit_code() is None):
        print(f"ansim: the core is not ready yet; see {core.log_path}", file=sys.stderr)
    for child in supervisor.children:
        if child not in (broker, core):
            child.start(env)
    return True


def attach(cfg: Config, found: running.CityRecord, console: ConsoleRunner) -> int:
    """A console on the city an earlier `ansim` left running here; it may stop that city."""
    if found.broker != broker_address(cfg):
        print(
            f"ansim: a city started in this folder is still running, with its broker on "
            f"{found.broker}, not {broker_address(cfg)}. Run `ansim` with the configuration "
            "that started it, to use it or to stop it (quit with s).",
            file=sys.stderr,
        )
        return 1
    names = [c.name for c in found.children]
    print(f"ansim: attaching to the city already running here ({', '.join(names)}).")
    city = LocalCity(services=services(names))
    try:
        return console(running.Watch(found.children).newly_dead, city)
    finally:
        # Only a deliberate "stop everything" stops what this launcher did not start.
        if city.choice is CityChoice.STOP:
            killed = running.stop(found.children)
            running.remove()
            if killed:
                print(f"ansim: had to kill {', '.join(killed)}", file=sys.stderr)
        else:
            print(left_running(cfg, city.services.capitalize()))


def app_console(args: argparse.Namespace, cfg: Config) -> ConsoleRunner:
    def run_console(child_news: Callable[[], list[str]], city: LocalCity) -> int:
        from console.tui import app

        return app.run(args, cfg, child_news=child_news, local_city=city)

    return run_console
