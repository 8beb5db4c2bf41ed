"""Real MQTT brokers for tests: Mosquitto when installed, the embedded amqtt broker otherwise.

Each broker gets its own loopback port, configuration, persistence directory and
log file under the test's tmp_path, so tests never share state.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

HOST = "127.0.0.1"  # never anything else: tests must not reach the network
START_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class Broker(Protocol):
    host: str
    port: int
    persistent: bool  # survives stop()/start() with sessions and queued messages

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def kill(self) -> None: ...
    def restart(self) -> None: ...
    def log_text(self) -> str: ...


class _ProcessBroker:
    """A broker child process on a fixed port: start, stop (SIGTERM), kill (SIGKILL), restart."""

    host = HOST
    persistent = False

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = workdir / "broker.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def _command(self) -> list[str]:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        with open(self.workdir / "stdout.log", "ab") as out:
            self._proc = subprocess.Popen(
                self._command(), cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT
            )
        self._wait_listening()

    def stop(self) -> None:
        """SIGTERM: a clean shutdown that writes the persistence file."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: a crash; whatever was only in memory is gone."""
        self._end(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        parts = []
        for name in (self.log_path, self.workdir / "stdout.log"):
            with contextlib.suppress(OSError):
                parts.append(name.read_text(errors="replace"))
        return "\n".join(parts)

    def _end(self, sig: signal.Signals) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"broker exited at start:\n{self.log_text()[-2000:]}")
            with contextlib.suppress(OSError):
                socket.create_connection((HOST, self.port), timeout=0.2).close()
                return
            time.sleep(0.01)
        self.kill()
        raise RuntimeError(
            f"broker not listening on {HOST}:{self.port}:\n{self.log_text()[-2000:]}"
        )

    def __enter__(self) -> _ProcessBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


class MosquittoBroker(_ProcessBroker):
    """Mosquitto 2.x with persistence and without its default drop of QoS 1 for slow subscribers."""

    persistent = True

    def __init__(
        self,
        workdir: Path,
        executable: str | None = None,
        *,
        listener_config: str = "",
        allow_anonymous: bool = True,
        password_file: Path | None = None,
        max_inflight: int = 20,
    ) -> None:
        super().__init__(workdir)
        self.max_inflight = max_inflight  # deploy/mosquitto.conf uses 1000
        found = executable or find_mosquitto()
        if found is None:
            raise RuntimeError("mosquitto not found")
        self.executable = found
        self.listener_config = listener_config  # lines for this listener: TLS files
        self.allow_anonymous = allow_anonymous
        self.password_file = password_file
        self.persistence_dir = workdir / "persistence"
        self.persistence_dir.mkdir(exist_ok=True)
        self.config_path = workdir / "mosquitto.conf"
        self.config_path.write_text(self._config())

    def _config(self) -> str:
        return f"""\
listener {self.port} {HOST}
{self.listener_config}
allow_anonymous {str(self.allow_anonymous).lower()}
{f"password_file {self.password_file}" if self.password_file else ""}
# Run as root, mosquitto would switch to the 'mosquitto' user, who cannot write in tmp_path.
user {getpass.getuser()}
persistence true
persistence_location {self.persistence_dir}/
autosave_interval 1
# The default (1000) drops QoS 1 messages for a slow or absent persistent subscriber
# while the publisher still gets its PUBACK. 0 means no limit.
max_queued_messages 0
max_inflight_messages {self.max_inflight}
log_dest file {self.log_path}
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
"""

    def _command(self) -> list[str]:
        return [self.executable, "-c", str(self.config_path)]


class AmqttBroker(_ProcessBroker):
    """The embedded amqtt broker: the fallback when Mosquitto is not installed (no persistence)."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.config_path = workdir / "amqtt.yaml"
        self.config_path.write_text(
            f"""\
listeners:
  default:
    type: tcp
    bind: {HOST}:{self.port}
plugins:
  amqtt.plugins.authentication.AnonymousAuthPlugin:
    allow_anonymous: true
  amqtt.plugins.sys.broker.BrokerSysPlugin:
    sys_interval: 0
"""
        )

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(self.config_path)]


def make_tls_files(workdir: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 (openssl, a fraction of a second)."""
    workdir.mkdir(parents=True, exist_ok=True)
    files = {name: workdir / name for name in ("ca.crt", "ca.key", "server.crt", "server.key")}
    csr, ext = workdir / "server.csr", workdir / "san.ext"
    ext.write_text(f"subjectAltName=IP:{HOST}\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"]
    ca_key, ca_crt = files["ca.key"], files["ca.crt"]
    signed_by_ca = ["-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-extfile", ext]
    steps = [
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca_crt, "-subj", "/CN=ansim test CA"],
        ["req", *ec, "-keyout", files["server.key"], "-out", csr, "-subj", f"/CN={HOST}"],
        ["x509", "-req", "-days", "1", "-in", csr, *signed_by_ca, "-out", files["server.crt"]],
    ]
    for args in steps:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
    return files


def make_password_file(workdir: Path, user: str, password: str) -> Path:
    path = workdir / "passwords"
    path.write_text("")
    command = ["mosquitto_passwd", "-b", str(path), user, password]
    subprocess.run(command, check=True, capture_output=True)
    return path


def make_broker(workdir: Path) -> MosquittoBroker | AmqttBroker:
    """Mosquitto if installed, unless ANSIM_TEST_BROKER=amqtt asks for the fallback."""
    if os.environ.get("ANSIM_TEST_BROKER") != "amqtt" and find_mosquitto() is not None:
        return MosquittoBroker(workdir)
    return AmqttBroker(workdir)


# --- helpers for tests that talk to a broker ------------------------------------------


async def receive(messages: AsyncIterator[Any], count: int, within: float = 5.0) -> list[Any]:
    """The next ``count`` items of ``messages``; fails the test after ``within`` seconds."""
    got: list[Any] = []
    try:
        async with asyncio.timeout(within):
            while len(got) < count:
                got.append(await anext(messages))
    except TimeoutError:
        raise AssertionError(f"received {len(got)} of {count} messages in {within} s") from None
    return got


async def nothing_more(messages: AsyncIterator[Any], within: float = 0.3) -> None:
    """Assert that no item arrives within ``within`` seconds (for "was not redelivered")."""
    try:
        async with asyncio.timeout(within):
            extra = await anext(messages)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message: {extra!r}")


async def until(predicate: Callable[[], bool], within: float = 5.0, what: str = "") -> None:
    """Poll ``predicate`` until true; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.01)
