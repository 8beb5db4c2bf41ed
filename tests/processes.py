"""Real Ansim processes for integration tests: a config file per test, `ansim core` as a child."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from protocols import codec, topics
from protocols.mqtt import MqttSettings, Transport


def write_config(tmp_path: Path, port: int, **sections: dict[str, Any]) -> Path:
    """A config.toml for a test: an external broker on ``port`` and a journal under tmp_path."""
    values: dict[str, dict[str, Any]] = {
        "broker": {"mode": "external", "host": "127.0.0.1", "port": port, "protocol": 5},
        "journal": {"path": str(tmp_path / "journal.db"), "batch_max": 200},
        "core": {"publish_interval_s": 0.05, "tick_s": 0.2, "log_interval_s": 5},
        # No simulated colleagues or units: a test's incidents stay where the test left them
        # (tests/sim/test_crew_live.py turns them on).
        "simulate": {
            "cameras": 200,
            "responders": 20,
            "shelters": 30,
            "resend_s": 0.5,
            "desk": 0,
            "units": False,
        },
    }
    for name, overrides in sections.items():
        values.setdefault(name, {}).update(overrides)
    lines = []
    for name, table in values.items():
        lines.append(f"[{name}]")
        for key, value in table.items():
            lines.append(f"{key} = {_toml(value)}")
        lines.append("")
    path = tmp_path / "ansim.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


class AnsimProcess:
    """`ansim <command>` as a child process, its output in a log file beside the config."""

    def __init__(self, config: Path, *args: str) -> None:
        self.config = config
        self.args = args
        self.log_path = config.parent / f"{args[0]}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> AnsimProcess:
        log = self.log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIM_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "console.cli", "--config", str(self.config), *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        log.close()
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


async def retained_state(
    settings: MqttSettings, quiet_s: float = 0.5, timeout_s: float = 10.0
) -> dict[str, Any]:
    """What a fresh console would see: every retained state message, decoded, by topic."""
    found: dict[str, Any] = {}
    async with Transport(
        settings, f"probe-{time.monotonic_ns()}", subscriptions=[(topics.STATE_ALL, 1)]
    ) as t:
        await t.wait_connected(timeout_s)
        messages = t.messages()
        while True:
            try:
                msg = await asyncio.wait_for(anext(messages), quiet_s)
            except TimeoutError:
                return found
            if not msg.retain:
                return found  # live traffic: the retained picture has been delivered
            if msg.payload:
                found[msg.topic] = codec.decode_any(msg.payload, max_bytes=codec.MAX_STATE_PAYLOAD)


async def until(
    predicate: Callable[[], bool], timeout_s: float = 15.0, what: str = "condition"
) -> None:
    """Poll a condition (no fixed sleeps): the processes under test set the pace."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


async def core_ready(settings: MqttSettings, timeout_s: float = 20.0) -> None:
    """Wait until a started core has subscribed: it publishes its summary only after connecting."""
    deadline = time.monotonic() + timeout_s
    async with Transport(
        settings, f"ready-{time.monotonic_ns()}", subscriptions=[(topics.STATE_SUMMARIES, 1)]
    ) as t:
        await t.wait_connected(timeout_s)
        messages = t.messages()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the core did not publish its summary in time")
            try:
                msg = await asyncio.wait_for(anext(messages), left)
            except TimeoutError:
                continue
            if msg.payload and not msg.retain:
                return
