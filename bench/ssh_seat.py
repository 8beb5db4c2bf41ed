"""A field office's seat over SSH: `ansim ssh` against the sshd ForceCommand recipe.

Both serve the same console (`python -m console.cli --config C console --operator op1`)
to the real OpenSSH client, run in a pseudo-terminal of 80x24 with TERM=xterm-256color:

- connect-to-first-screen: from starting `ssh` to the console's status bar (with the
  operator id) on the office's screen, ROUNDS times each, alternating;
- bytes per second: one seat through each, connected at the same time, under the same
  simulated storm (`ansim simulate --scenario storm`), counting the terminal bytes the
  office receives over WINDOW_S seconds (after SSH decryption: what the console writes).

The sshd is private: its own config, host key, AuthorizedKeysFile and ForceCommand, on a
free loopback port, run as this user (root: it needs /run/sshd). Without /usr/sbin/sshd
only `ansim ssh` is measured. Run: ``.venv/bin/python -m bench.ssh_seat [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._cluster import Core, Mosquitto, free_port, wait_until, write_config
from console.seats.ssh_pty import PtyChild
from protocols import topics
from protocols.mqtt import MqttSettings, Transport

HOST = "127.0.0.1"
SSHD = "/usr/sbin/sshd"
ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_=>()]")
FIRST_SCREEN = "op1 (operator)"
SIZE = (80, 24)


class Seat:
    """`ssh -tt` in a pty; the time its first screen appeared, the bytes it received."""

    def __init__(self, key: Path, port: int, user: str) -> None:
        self.output = bytearray()
        self.first_screen: float | None = None
        self.ended = asyncio.Event()
        self.screen = asyncio.Event()
        argv = ["ssh", "-tt", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-i", str(key),
                "-p", str(port), f"{user}@{HOST}"]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SSH_", "ANSIM_"))}
        env["TERM"] = "xterm-256color"
        self.child = PtyChild(argv, env, SIZE, self._received, self._exited)

    def _received(self, data: bytes) -> None:
        self.output += data
        if self.first_screen is None and FIRST_SCREEN in _text(self.output[-8192:]):
            self.first_screen = time.monotonic()
            self.screen.set()

    def _exited(self, code: int) -> None:
        self.ended.set()
        self.screen.set()

    async def connect(self, timeout_s: float = 60) -> float:
        started = time.monotonic()
        self.child.start()
        await asyncio.wait_for(self.screen.wait(), timeout_s)
        if self.first_screen is None:
            raise RuntimeError(f"no first screen: {_text(self.output)[-500:]!r}")
        return self.first_screen - started

    async def close(self) -> None:
        self.child.hangup(3.0)
        await asyncio.wait_for(self.ended.wait(), 10)


def _text(data: bytes | bytearray) -> str:
    return ANSI.sub(b"", bytes(data)).decode("utf-8", errors="replace")


def _sshd_config(folder: Path, port: int, config: Path) -> Path:
    host_key = folder / "sshd_host_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
                   check=True)  # fmt: skip
    command = f"{sys.executable} -m console.cli --config {config} console --operator op1"
    path = folder / "sshd_config"
    path.write_text(
        f"Port {port}\nListenAddress {HOST}\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {folder / 'sshd_authorized_keys'}\nPidFile none\n"
        "UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nAllowTcpForwarding no\nX11Forwarding no\n"
        "AllowAgentForwarding no\nPermitTunnel no\nPermitTTY yes\nPrintMotd no\n"
        f"PrintLastLog no\nForceCommand {command}\n",
        encoding="utf-8",
    )
    return path


async def _core_ready(settings: MqttSettings, timeout_s: float = 60) -> None:
    async with Transport(settings, f"ready-{time.monotonic_ns()}",
                         subscriptions=[(topics.STATE_SUMMARY, 1)]) as t:  # fmt: skip
        await t.wait_connected(timeout_s)
        messages = t.messages()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = await asyncio.wait_for(anext(messages), timeout_s)
            if msg.payload and not msg.retain:
                return
    raise RuntimeError("the core did not publish its summary")


def _logged(path: Path, needle: str) -> bool:
    return needle in path.read_text(errors="replace")


async def first_screens(
    paths: dict[str, tuple[int, str]], key: Path, rounds: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, (port, user) in paths.items():
            seat = Seat(key, port, user)
            times[name].append(await seat.connect())
            await seat.close()
    return times


async def storm_bytes(
    paths: dict[str, tuple[int, str]], key: Path, window_s: float
) -> dict[str, float]:
    """Both seats at once, so they see the same storm; terminal bytes per second each."""
    seats = {name: Seat(key, port, user) for name, (port, user) in paths.items()}
    await asyncio.gather(*(seat.connect() for seat in seats.values()))
    await asyncio.sleep(5.0)  # the retained picture has landed on both
    marks = {name: len(seat.output) for name, seat in seats.items()}
    begun = time.monotonic()
    await asyncio.sleep(window_s)
    elapsed = time.monotonic() - begun
    rates = {name: (len(seat.output) - marks[name]) / elapsed for name, seat in seats.items()}
    for seat in seats.values():
        await seat.close()
    return rates


def measure(rounds: int, window_s: float, rate: float) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix="ansim-ssh-bench-"))
    broker = Mosquitto(folder / "broker")
    ssh_port, sshd_port = free_port(), free_port()
    config = write_config(folder / "ansim.toml", {
        "broker": {"mode": "external", "host": HOST, "port": broker.port, "protocol": 5},
        "journal": {"path": str(folder / "journal.db")},
        "console": {"bell": False},
        "ssh": {"port": ssh_port, "keys": "authorized_keys", "host_key": "ssh/host_ed25519"},
    })  # fmt: skip
    key = folder / "office"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = key.with_suffix(".pub").read_text().strip()
    (folder / "authorized_keys").write_text(f"operator=op1 role=operator {public}\n")
    (folder / "sshd_authorized_keys").write_text(public + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIM_")}
    core = Core(config, folder / "core.log")
    processes: list[subprocess.Popen[bytes]] = []
    results: dict[str, object] = {}

    def start(argv: list[str], log: Path) -> None:
        with log.open("ab") as out:
            processes.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL, env=env))  # fmt: skip

    try:
        asyncio.run(_core_ready(MqttSettings(host=HOST, port=broker.port, protocol=5)))
        start([sys.executable, "-m", "console.cli", "--config", str(config), "ssh"],
              folder / "ssh.log")  # fmt: skip
        wait_until(lambda: _logged(folder / "ssh.log", "listening on"), 30, "ansim ssh")
        paths = {"ansim ssh": (ssh_port, "op")}
        if os.access(SSHD, os.X_OK) and os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
            start([SSHD, "-D", "-e", "-f", str(_sshd_config(folder, sshd_port, config))],
                  folder / "sshd.log")  # fmt: skip
            wait_until(lambda: _logged(folder / "sshd.log", "Server listening"), 30, "sshd")
            paths["sshd ForceCommand"] = (sshd_port, os.environ.get("USER", "root"))
        else:
            results["sshd"] = "not measured: needs /usr/sbin/sshd and root"

        for name, values in asyncio.run(first_screens(paths, key, rounds)).items():
            results[f"first screen, {name} (s)"] = (
                f"median {statistics.median(values):.3f}, min {min(values):.3f}, "
                f"max {max(values):.3f} over {len(values)}"
            )
        start([sys.executable, "-m", "console.cli", "--config", str(config), "simulate",
               "--scenario", "storm", "--rate", str(rate), "--quiet"], folder / "sim.log")  # fmt: skip
        for name, bps in asyncio.run(storm_bytes(paths, key, window_s)).items():
            results[f"storm {rate:g}/s, {name} (terminal bytes/s to the office)"] = f"{bps:,.0f}"
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
        core.stop()
        broker.kill()
    if os.environ.get("ANSIM_BENCH_KEEP") == "1":
        results["folder"] = str(folder)
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds, a 10 s window")
    parser.add_argument("--rate", type=float, default=50.0, help="storm events per second")
    args = parser.parse_args()
    rounds, window = (3, 10.0) if args.quick else (7, 30.0)
    for name, value in measure(rounds, window, args.rate).items():
        print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
