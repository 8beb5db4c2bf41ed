"""One SSH session of `ansim ssh`: a pty request and a shell, answered by a console.

Nothing else is served: a command (``ssh host ls``) and a subsystem (SFTP) are refused
with a sentence; a session without a terminal is refused too (``ssh -t``). The console
runs in its own pty sized to the client's terminal and follows its resizes; the session
ends when either side does: a closed channel hangs the console up (SIGHUP, then SIGKILL),
and the console's exit closes the channel with its exit status.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from console.seats.ssh_keys import SeatKey
from console.seats.ssh_pty import PtyChild

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # asyncssh's import of cryptography's DSA warns
    import asyncssh

log = logging.getLogger("ansim.ssh")

# Leave the alternate screen, show the cursor, stop mouse reports and bracketed paste:
# a console that was hung up had no chance to restore the office's terminal itself.
RESTORE_TERMINAL = (
    "\x1b[0m\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?2004l\x1b[?25h\x1b[?1049l"
)
DEFAULT_TERM = "xterm-256color"


class SeatHost(Protocol):
    """What a session needs from the server that accepted it."""

    idle_close_s: float
    hangup_grace_s: float

    def admit(self, session: ConsoleSession) -> str | None:
        """None to start a console, else why not (shown to the client)."""

    def release(self, session: ConsoleSession) -> None: ...

    def console_argv(self, seat: SeatKey) -> Sequence[str]: ...

    def console_env(
        self, seat: SeatKey, term: str, client_env: Mapping[str, str]
    ) -> Mapping[str, str]: ...


class ConsoleSession(asyncssh.SSHServerSession[bytes]):
    """The console of one authenticated key, in a pty, for as long as the channel lives."""

    def __init__(self, host: SeatHost, seat: SeatKey, peer: str) -> None:
        self.host = host
        self.seat = seat
        self.peer = peer
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.child: PtyChild | None = None
        self.term = ""
        self.size = (80, 24)
        self.has_pty = False
        self.refusal: str | None = None
        self.started_at = time.monotonic()
        self.last_input = time.monotonic()
        self.closing_reason: str | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- the client's requests ---------------------------------------------------------

    def connection_made(self, chan: Any) -> None:
        assert isinstance(chan, asyncssh.SSHServerChannel)
        self.chan = chan

    def pty_requested(
        self, term_type: str, term_size: tuple[int, int, int, int], term_modes: Mapping[int, int]
    ) -> bool:
        self.has_pty = True
        self.term = term_type or DEFAULT_TERM
        cols, rows = term_size[0], term_size[1]
        self.size = (cols or 80, rows or 24)
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        # Accepted only to say why it is refused: a bare refusal reads as a network error.
        log.warning(
            "refused a command: operator %s key %s from %s asked to run %r",
            self.seat.operator, self.seat.fingerprint, self.peer, command[:80],
        )  # fmt: skip
        self.refusal = "ansim: this seat serves only the console; it runs no other command."
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        log.warning(
            "refused subsystem %r: operator %s key %s from %s",
            subsystem[:40], self.seat.operator, self.seat.fingerprint, self.peer,
        )  # fmt: skip
        return False

    def break_received(self, msec: int) -> bool:
        return False

    def session_started(self) -> None:
        assert self.chan is not None
        if self.refusal is None and not self.has_pty:
            self.refusal = "ansim: the console needs a terminal: connect with ssh -t."
        if self.refusal is None:
            self.refusal = self.host.admit(self)
        if self.refusal is not None:
            self.chan.write_stderr((self.refusal + "\r\n").encode())
            self.chan.exit(1)
            return
        self._start_console()

    def _start_console(self) -> None:
        assert self.chan is not None
        self._loop = asyncio.get_running_loop()
        env = self.host.console_env(self.seat, self.term, _client_env(self.chan))
        self.child = PtyChild(
            self.host.console_argv(self.seat), env, self.size, self._output, self._exited
        )
        try:
            self.child.start()
        except OSError as exc:
            log.error("cannot start a console for operator %s: %s", self.seat.operator, exc)
            self.child = None
            self.host.release(self)
            self.chan.write_stderr(b"ansim: the console could not start; see the server log.\r\n")
            self.chan.exit(1)
            return
        log.info(
            "console started: operator %s pid %s size %dx%d TERM=%s",
            self.seat.operator, self.child.pid, self.size[0], self.size[1], self.term,
        )  # fmt: skip
        self._arm_idle(self.host.idle_close_s)

    # --- bytes both ways -----------------------------------------------------------------

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.last_input = time.monotonic()
        if self.child is not None:
            self.child.write(data)

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        if width <= 0 or height <= 0:
            return
        self.size = (width, height)
        if self.child is not None:
            self.child.resize(width, height)

    def pause_writing(self) -> None:
        if self.child is not None:
            self.child.pause_output()

    def resume_writing(self) -> None:
        if self.child is not None:
            self.child.resume_output()

    def eof_received(self) -> bool:
        return False  # the client's input ended: close, which hangs the console up

    def _output(self, data: bytes) -> None:
        if self.chan is not None:
            self.chan.write(data)

    # --- the end ------------------------------------------------------------------------

    def end(self, reason: str) -> None:
        """Close this seat from the server's side (idle, revoked key, shutdown), saying why."""
        if self.closing_reason is None:
            self.closing_reason = reason
        if self.child is not None and self.child.returncode is None:
            self.child.hangup(self.host.hangup_grace_s)
        elif self.chan is not None:
            self.chan.close()

    def _exited(self, returncode: int) -> None:
        self._cancel_idle()
        self.host.release(self)
        status = returncode if returncode >= 0 else 128 - returncode
        log.info(
            "console ended: operator %s pid %s exit %d%s",
            self.seat.operator, self.child.pid if self.child else "-", status,
            f" ({self.closing_reason})" if self.closing_reason else "",
        )  # fmt: skip
        if self.chan is None:
            return
        if self.closing_reason:
            message = f"{RESTORE_TERMINAL}\r\nansim: {self.closing_reason}\r\n"
            self.chan.write(message.encode())
        self.chan.exit(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_idle()
        if self.child is not None and self.child.returncode is None:
            # The office closed the window or the link broke: nothing stays running.
            self.child.hangup(self.host.hangup_grace_s)
        self.chan = None
        if self.child is None:
            self.host.release(self)

    # --- idle seats ---------------------------------------------------------------------

    def _arm_idle(self, delay_s: float) -> None:
        if self.host.idle_close_s > 0 and self._loop is not None:
            self._idle_timer = self._loop.call_later(max(delay_s, 0.05), self._check_idle)

    def _cancel_idle(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _check_idle(self) -> None:
        quiet_s = time.monotonic() - self.last_input
        limit = self.host.idle_close_s
        if quiet_s < limit:
            self._arm_idle(limit - quiet_s)
            return
        log.info("idle seat closed: operator %s after %.0f s without input", self.seat.operator,
                 quiet_s)  # fmt: skip
        self.end(f"seat closed after {limit:g} s without a keystroke; connect again to go on.")


def _client_env(chan: asyncssh.SSHServerChannel[bytes]) -> dict[str, str]:
    env = chan.get_environment()
    return {str(k): str(v) for k, v in env.items()}
