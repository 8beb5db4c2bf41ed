"""A private PostgreSQL server for fault tests that must stop and start it.

The shared server on 127.0.0.1:5432 serves everyone's tests and is never restarted;
a test that restarts PostgreSQL gets its own cluster instead: ``initdb`` into a fresh
directory, listening on 127.0.0.1 and a free port only, its unix socket beside its
data, trust authentication. initdb and the server refuse to run as root, so as root
they run as the ``postgres`` system user (``runuser``) in a directory it owns.

Skipped, saying why, when the binaries (or, as root, that user) are missing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers import HOST, free_port

START_TIMEOUT_S = 30


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin directory (initdb, pg_ctl, postgres)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(found).resolve().parent)
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def unavailable() -> str:
    """Why no private server can be made here, or "" when one can."""
    if find_bindir() is None:
        return "no PostgreSQL binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or PATH"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root and there is no runuser to run initdb as 'postgres'"
    return ""


class PgServer:
    """One private cluster: ``start()``, ``stop(mode)``, ``dsn(dbname)``; see the module."""

    def __init__(self, root: Path, bindir: Path) -> None:
        self.root = root
        self.bindir = bindir
        self.data = root / "data"
        self.log_path = root / "postgres.log"
        self.port = free_port()
        self.running = False

    def _run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bindir / command[0]), *command[1:]]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root
        )

    def _check(self, done: subprocess.CompletedProcess[str], what: str) -> None:
        if done.returncode != 0:
            raise RuntimeError(f"{what} failed ({done.returncode}): {done.stdout}{done.stderr}")

    def init(self) -> None:
        done = self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        self._check(done, "initdb")
        settings = {
            "listen_addresses": f"'{HOST}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "shared_buffers": "'16MB'",  # several people's tests share the machine
            "max_connections": "30",
        }
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# tests/pg_server.py\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def start(self) -> None:
        """Start and wait until it accepts connections (after crash recovery, if any)."""
        done = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w",
            "-t", str(START_TIMEOUT_S), "start", timeout=START_TIMEOUT_S + 10,
        )  # fmt: skip
        self._check(done, f"pg_ctl start (log: {self.log_text()[-2000:]})")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """``immediate``: every backend killed at once, no checkpoint (a crash, to clients)."""
        done = self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        self._check(done, f"pg_ctl stop -m {mode}")
        self.running = False

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A fresh database with a random name; its DSN."""
        import psycopg

        name = f"ansim_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


@contextlib.contextmanager
def private_postgres() -> Iterator[PgServer]:
    """A started private server, stopped and deleted afterwards whatever happens.

    Its directory is made under the system's temp directory, not a test's tmp_path: as
    root, pytest's directories are closed to the ``postgres`` user, and a unix socket's
    path must stay short.
    """
    why = unavailable()
    if why:
        pytest.skip(why)
    bindir = find_bindir()
    assert bindir is not None
    root = Path(tempfile.mkdtemp(prefix="ansim-pg-"))
    try:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(root, user.pw_uid, user.pw_gid)
        server = PgServer(root, bindir)
        server.init()
        server.start()
        try:
            yield server
        finally:
            if (server.data / "postmaster.pid").exists():
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    server.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PgServer]:
    """A private server shared by a module's tests (pull it in by assignment)."""
    with private_postgres() as server:
        yield server
