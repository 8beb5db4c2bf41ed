"""`ansim ssh`: an SSH server that serves the console and nothing else, keys as identity.

A field office connects with ``ssh -p 2222 op@host``; the key it offers decides the
operator, role, districts and language (console/seats/ssh_keys.py), the user name does
not. Public-key authentication only; no shell but the console, no other command, no
forwarding of ports, agents or X11, no SFTP. Each session gets its own `ansim console`
in a pseudo-terminal (console/seats/ssh_session.py). Logins, logouts and refused keys go
to this process's log with the key's SHA256 fingerprint.

The keys file is read at start (a bad line stops the start, naming file and line) and
again whenever it changes: an added key works at once, a removed key's open seats are
closed. A changed file with a bad line refuses every new login until it is fixed, so a
half-done edit never keeps a revoked key working.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import stat
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from console.config import DEFAULT_PATH, Config, ConfigError
from console.seats.ssh_keys import (
    KeysFileError,
    SeatKey,
    SeatKeys,
    district_names,
    load_keys,
    loose_permissions,
    role_disagreements,
)
from console.seats.ssh_session import ConsoleSession
from widgets.i18n import LANGUAGES

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # asyncssh's import of cryptography's DSA warns
    import asyncssh

log = logging.getLogger("ansim.ssh")

KEYS_CHECK_S = 2.0  # how often the keys file is looked at for changes
HANGUP_GRACE_S = 3.0
MAX_AUTH_TRIES = 6  # refused keys before the connection is cut, as sshd's default
NO_SESSION_CLOSE_S = 60.0  # a login that asks for no console within this is closed
# The server's terminal and session variables describe the server's side, not the office's.
NOT_PASSED = ("TERM", "COLORTERM", "TERM_PROGRAM", "COLUMNS", "LINES", "NO_COLOR", "DISPLAY",
              "TMUX", "STY", "WINDOWID", "VTE_VERSION", "WT_SESSION", "ANSIM_OPERATOR__ID",
              "ANSIM_OPERATOR__ROLE")  # fmt: skip
FROM_CLIENT = ("NO_COLOR", "COLORTERM")  # the office's own wishes for colour


def base_folder(config_path: Path | None) -> Path:
    """Relative [ssh] paths are from the config file's folder; the shipped default's are
    from the current folder, since the package's folder is no place for keys."""
    if config_path is None or config_path.resolve() == DEFAULT_PATH:
        return Path.cwd()
    return config_path.resolve().parent


def host_key(path: Path) -> asyncssh.SSHKey:
    """The server's key: read it, or make an ed25519 key on first start (mode 0600)."""
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"[ssh] host_key: {path} is open to others (mode {mode:04o}); chmod 600 {path}"
            )
        try:
            return asyncssh.read_private_key(str(path))
        except (asyncssh.KeyImportError, OSError, ValueError) as exc:
            raise ConfigError(f"[ssh] host_key: {path}: not a private key: {exc}") from None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = asyncssh.generate_private_key("ssh-ed25519", comment="ansim ssh host key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.export_private_key())
    path.with_name(path.name + ".pub").write_bytes(key.export_public_key())
    log.info("made a new host key %s (%s)", path, key.get_fingerprint("sha256"))
    return key


def seat_language(wanted: str) -> str | None:
    """The console language a key's ``language=`` asks for (``ko``, ``ko-KR`` and ``ko_KR``
    are Korean), or None when it sets none or one the console has no catalog of."""
    primary = wanted.replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LANGUAGES else None


class SeatServer:
    """The listener's shared state: the keys, the open seats, how to start a console."""

    def __init__(self, cfg: Config, config_path: Path | None, keys_path: Path) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.keys_path = keys_path
        self.idle_close_s = cfg.ssh.idle_close_s
        self.hangup_grace_s = HANGUP_GRACE_S
        self.sessions: set[ConsoleSession] = set()
        self._districts = district_names(cfg)
        self.keys: SeatKeys | None = self._load()  # raises at start: a bad file never serves
        self._stamp = self._file_stamp()
        self._closing = False
        self._all_gone = asyncio.Event()

    def _load(self) -> SeatKeys:
        keys = load_keys(self.keys_path, self._districts)
        for sentence in role_disagreements(keys, self.cfg):
            log.warning("%s", sentence)
        for entry in keys.entries:
            if entry.language and seat_language(entry.language) is None:
                log.warning("%s line %d: language=%s has no catalog (%s); that seat uses "
                            "[console] language", self.keys_path, entry.line, entry.language,
                            ", ".join(LANGUAGES))  # fmt: skip
        unsafe = loose_permissions(self.keys_path)
        if unsafe:
            log.warning("%s", unsafe)
        return keys

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.keys_path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def check_keys(self) -> None:
        """Re-read the keys file if it changed; close the seats of keys no longer in it."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            keys = self._load()
        except KeysFileError as exc:
            self.keys = None
            log.error("keys file changed and is now refused; no new logins until fixed: %s", exc)
            return
        self.keys = keys
        log.info("keys file re-read: %d keys", len(keys))
        present = keys.fingerprints()
        for session in list(self.sessions):
            if session.seat.fingerprint not in present:
                log.warning(
                    "key revoked: closing the seat of operator %s (%s)",
                    session.seat.operator, session.seat.fingerprint,
                )  # fmt: skip
                session.end("this key was revoked; the seat is closed.")

    def lookup(self, key: asyncssh.SSHKey) -> SeatKey | None:
        self.check_keys()
        return self.keys.lookup(key) if self.keys is not None else None

    # --- SeatHost, for the sessions ---------------------------------------------------

    def admit(self, session: ConsoleSession) -> str | None:
        if self._closing:
            return "ansim: the server is shutting down."
        if self.keys is None or session.seat.fingerprint not in self.keys.fingerprints():
            return "ansim: this key is no longer authorized."
        if len(self.sessions) >= self.cfg.ssh.max_sessions:
            log.warning("seat refused, all %d taken: operator %s", self.cfg.ssh.max_sessions,
                        session.seat.operator)  # fmt: skip
            return f"ansim: all {self.cfg.ssh.max_sessions} seats are taken; try again later."
        self.sessions.add(session)
        return None

    def release(self, session: ConsoleSession) -> None:
        self.sessions.discard(session)
        if not self.sessions:
            self._all_gone.set()

    def console_argv(self, seat: SeatKey) -> Sequence[str]:
        config = ["--config", str(self.config_path.resolve())] if self.config_path else []
        districts = ["--districts", ",".join(seat.districts)] if seat.districts else []
        language = seat_language(seat.language)
        languages = ["--language", language] if language else []
        return [sys.executable, "-m", "console.cli", *config, "console",
                "--operator", seat.operator, "--role", seat.role_in(self.cfg).value,
                *districts, *languages]  # fmt: skip

    def console_env(
        self, seat: SeatKey, term: str, client_env: Mapping[str, str]
    ) -> Mapping[str, str]:
        env = {
            k: v for k, v in os.environ.items() if k not in NOT_PASSED and not k.startswith("SSH_")
        }
        env.update({k: client_env[k] for k in FROM_CLIENT if k in client_env})
        env["TERM"] = term
        env["ANSIM_ROLE"] = seat.role_in(self.cfg).value
        env["ANSIM_SEAT"] = "ssh"
        return env

    async def close_all(self, timeout_s: float) -> None:
        self._closing = True
        for session in list(self.sessions):
            session.end("the server is shutting down.")
        if self.sessions:
            self._all_gone.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_gone.wait(), timeout_s)


class SeatConnection(asyncssh.SSHServer):
    """One client connection: public-key authentication against the keys file."""

    def __init__(self, server: SeatServer) -> None:
        self.server = server
        self.conn: asyncssh.SSHServerConnection | None = None
        self.peer = "?"
        self.username = ""
        self.seat: SeatKey | None = None
        self.login_at: float | None = None
        self.refused = 0
        self.sessions = 0

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"

    def begin_auth(self, username: str) -> bool:
        self.username = username
        return True  # always authenticate, whatever the user name

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        seat = self.server.lookup(key)
        if seat is None:
            why = "keys file refused" if self.server.keys is None else "not in the keys file"
            log.warning("refused key %s (%s) for user %r from %s", key.get_fingerprint("sha256"),
                        why, username[:40], self.peer)  # fmt: skip
            self.refused += 1
            if self.refused >= MAX_AUTH_TRIES and self.conn is not None:
                # As sshd's MaxAuthTries: a client may not try a whole bag of keys.
                log.warning("disconnected %s after %d refused keys", self.peer, self.refused)
                conn = self.conn
                asyncio.get_running_loop().call_soon(
                    conn.disconnect, asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE,
                    "too many keys refused",
                )  # fmt: skip
            return False
        self.seat = seat  # the key the client then signs with is the one last accepted
        return True

    def auth_completed(self) -> None:
        assert self.seat is not None
        self.login_at = time.monotonic()
        log.info(
            "login: operator %s role %s key %s (%s) user %r from %s",
            self.seat.operator, self.seat.role_in(self.server.cfg).value,
            self.seat.fingerprint, self.server.keys_path.name + f":{self.seat.line}",
            self.username[:40], self.peer,
        )  # fmt: skip
        asyncio.get_running_loop().call_later(NO_SESSION_CLOSE_S, self._without_session)

    def _without_session(self) -> None:
        # A logged-in connection that never asks for the console (ssh -N) holds a slot
        # and a socket for nothing: close it.
        if self.sessions == 0 and self.conn is not None:
            log.warning("closed %s (operator %s): no console asked for in %.0f s", self.peer,
                        self.seat.operator if self.seat else "?", NO_SESSION_CLOSE_S)  # fmt: skip
            self.conn.close()

    def session_requested(self) -> ConsoleSession | bool:
        if self.seat is None:
            return False
        self.sessions += 1
        return ConsoleSession(self.server, self.seat, self.peer)

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                             orig_port: int) -> bool:  # fmt: skip
        self._refused(f"a tunnel to {dest_host[:60]}:{dest_port}")
        return False

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        self._refused(f"a listener on {listen_host[:60]}:{listen_port}")
        return False

    def unix_connection_requested(self, dest_path: str) -> bool:
        self._refused("a tunnel to a unix socket")
        return False

    def unix_server_requested(self, listen_path: str) -> bool:
        self._refused("a unix socket listener")
        return False

    def _refused(self, what: str) -> None:
        who = self.seat.operator if self.seat else "?"
        log.warning("refused %s: operator %s from %s", what, who, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn = None
        if self.seat is None or self.login_at is None:
            return
        log.info(
            "logout: operator %s key %s from %s after %.0f s%s",
            self.seat.operator, self.seat.fingerprint, self.peer,
            time.monotonic() - self.login_at, f" ({exc})" if exc else "",
        )  # fmt: skip


async def serve(cfg: Config, config_path: Path | None, stop: asyncio.Event) -> int:
    base = base_folder(config_path)
    keys_path = base / cfg.ssh.keys
    server = SeatServer(cfg, config_path, keys_path)
    key = host_key(base / cfg.ssh.host_key)
    try:
        acceptor = await _listen(cfg, server, key)
    except OSError as exc:
        raise ConfigError(
            f"[ssh] cannot listen on {cfg.ssh.host}:{cfg.ssh.port}: {exc.strerror or exc}"
        ) from None
    log.info(
        "ansim ssh: listening on %s:%d, host key %s, %d keys from %s",
        cfg.ssh.host, cfg.ssh.port, key.get_fingerprint("sha256"), len(server.keys or ()),
        keys_path,
    )  # fmt: skip
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), KEYS_CHECK_S)
            server.check_keys()
    finally:
        # The seats first, so each office reads why before its connection goes.
        await server.close_all(HANGUP_GRACE_S + 2.0)
        acceptor.close()
        await acceptor.wait_closed()
    return 0


async def _listen(cfg: Config, server: SeatServer, key: asyncssh.SSHKey) -> asyncssh.SSHAcceptor:
    return await asyncssh.listen(
        cfg.ssh.host,
        cfg.ssh.port,
        server_factory=lambda: SeatConnection(server),
        server_host_keys=[key],
        encoding=None,
        line_editor=False,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_scp=False,
        gss_host=None,
        public_key_auth=True,
        password_auth=False,
        kbdint_auth=False,
        host_based_auth=False,
        login_timeout=30,
        keepalive_interval=30,
        keepalive_count_max=4,
    )


def run(args: argparse.Namespace, cfg: Config) -> int:
    """`ansim ssh`: serve consoles until SIGTERM or SIGINT."""
    if not args.verbose:
        logging.getLogger("asyncssh").setLevel(logging.WARNING)
    if getattr(args, "host", None):
        cfg.ssh.host = args.host
    if getattr(args, "port", None):
        cfg.ssh.port = args.port
    config_path = Path(args.config) if args.config else None

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await serve(cfg, config_path, stop)

    try:
        return asyncio.run(main())
    except ConfigError as exc:
        print(f"ansim ssh: configuration error: {exc}", file=sys.stderr)
        return 2
