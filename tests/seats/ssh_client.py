"""The real OpenSSH client against a real `ansim ssh`, for the seat tests.

The client runs in a pseudo-terminal of the test's own (console.seats.ssh_pty.PtyChild,
the same code the server gives each console), so it has a terminal of a chosen size,
sends window changes when the test resizes it, and its screen bytes are read as an
office's terminal would receive them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from console.seats.ssh_pty import PtyChild
from tests.brokers import free_port
from tests.processes import AnsimProcess, until, write_config

SSH = shutil.which("ssh") or "/usr/bin/ssh"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
# CSI ... final byte, OSC ... BEL/ST, and single-character escapes: what a screen strips.
ANSI = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_=>()][0-9A-Za-z]?"
)
STARTED = re.compile(r"console started: operator (\S+) pid (\d+)")

needs_ssh = pytest.mark.skipif(
    not (os.access(SSH, os.X_OK) and os.access(SSH_KEYGEN, os.X_OK)),
    reason="needs the OpenSSH client (ssh, ssh-keygen); .ci/run installs it",
)


def make_key(folder: Path, name: str) -> tuple[Path, str]:
    """A fresh ed25519 key pair without passphrase: (private key path, public key line)."""
    path = folder / name
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@test", "-f",
                    str(path)], check=True)  # fmt: skip
    return path, path.with_name(name + ".pub").read_text().strip()


def fingerprint(private_key: Path) -> str:
    out = subprocess.run([SSH_KEYGEN, "-l", "-E", "sha256", "-f", str(private_key)],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return out.split()[1]


def seat_config(tmp_path: Path, broker_port: int, **sections: dict[str, Any]) -> Path:
    """A test config with an [ssh] section on a free loopback port, keys beside it."""
    ssh: dict[str, Any] = {
        "port": free_port(),
        "keys": "authorized_keys",
        "host_key": "ssh/host_ed25519",
    }
    ssh.update(sections.pop("ssh", {}))
    sections.setdefault("console", {"bell": False})
    return write_config(tmp_path, broker_port, ssh=ssh, **sections)


async def start_ssh_server(config: Path) -> AnsimProcess:
    server = AnsimProcess(config, "ssh").start()
    await until(
        lambda: "listening on" in server.log() or server.process.poll() is not None,  # type: ignore[union-attr]
        timeout_s=30,
        what="`ansim ssh` to listen",
    )
    assert server.process is not None and server.process.poll() is None, server.log()
    return server


def console_pids(server: AnsimProcess) -> list[int]:
    """The console processes `ansim ssh` started, from its log, in order."""
    return [int(m.group(2)) for m in STARTED.finditer(server.log())]


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


class SshTerminal:
    """`ssh -tt op@127.0.0.1` in a pty of the test's; collects every byte it prints."""

    def __init__(self, key: Path, port: int, size: tuple[int, int] = (80, 24),
                 command: tuple[str, ...] = (), options: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.output = bytearray()
        self.returncode: int | None = None
        argv = [
            SSH, "-tt", "-F", "/dev/null",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=30", *options,
            "-i", str(key), "-p", str(port), "op@127.0.0.1", *command,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SSH_", "ANSIM_"))}
        env["TERM"] = "xterm-256color"
        self.child = PtyChild(argv, env, size, self.output.extend, self._exited)

    def _exited(self, returncode: int) -> None:
        self.returncode = returncode

    def start(self) -> SshTerminal:
        self.child.start()
        return self

    def type(self, keys: bytes) -> None:
        self.child.write(keys)

    def resize(self, cols: int, rows: int) -> None:
        self.child.resize(cols, rows)  # the client's SIGWINCH: it sends a window change

    def close(self) -> None:
        """The office closes its terminal window: SIGHUP to the ssh client."""
        self.child.hangup(grace_s=5.0)

    def text(self, start: int = 0) -> str:
        """What was printed from byte ``start`` on, escape sequences removed."""
        return ANSI.sub(b"", bytes(self.output[start:])).decode("utf-8", errors="replace")

    def mark(self) -> int:
        return len(self.output)

    async def wait_text(self, needle: str, start: int = 0, timeout_s: float = 30.0) -> None:
        try:
            await until(lambda: needle in self.text(start), timeout_s, f"{needle!r} on screen")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen had:\n{self.text(start)[-3000:]}") from None

    async def wait_exit(self, timeout_s: float = 30.0) -> int:
        await until(lambda: self.returncode is not None, timeout_s, "the ssh client to exit")
        assert self.returncode is not None
        return self.returncode
