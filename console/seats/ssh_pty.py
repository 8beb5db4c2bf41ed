"""One console in its own pseudo-terminal, bridged to the event loop.

The child is a session leader with the pty as its controlling terminal, so a window
change (TIOCSWINSZ on the master) reaches it as SIGWINCH and a hang-up reaches its
whole process group. Output is read with ``add_reader`` on the master; the child's
exit is noticed through a pidfd, so no thread waits on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import pty
import signal
import struct
import termios
from collections.abc import Callable, Mapping, Sequence

READ_CHUNK = 65536
MAX_PENDING_INPUT = 256 * 1024  # typed or pasted bytes the console has not taken yet


def set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def get_size(fd: int) -> tuple[int, int]:
    """(columns, rows) of the terminal ``fd`` belongs to."""
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return cols, rows


class PtyChild:
    """A command in a new pty: feed it input, get its output, resize it, hang it up."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        size: tuple[int, int],
        on_output: Callable[[bytes], None],
        on_exit: Callable[[int], None],
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.size = size
        self._on_output = on_output
        self._on_exit = on_exit
        self._loop = asyncio.get_running_loop()
        self.pid: int | None = None
        self._master = -1
        self._pidfd = -1
        self._pending = bytearray()  # input the console has not taken yet
        self._reading = False
        self._paused = False
        self._kill_timer: asyncio.TimerHandle | None = None
        self.returncode: int | None = None

    def start(self) -> None:
        master, slave = pty.openpty()  # both close-on-exec: no other console inherits them
        try:
            set_size(slave, *self.size)
            # posix_spawn: no Python runs in the child, so a thread of this process holding
            # a lock at the fork cannot hang it. setsid comes before the file actions, and
            # opening the slave by name in a new session makes it the controlling terminal:
            # the kernel then sends the console SIGWINCH on a resize and SIGHUP on hang-up.
            pid = os.posix_spawnp(
                self.argv[0],
                self.argv,
                self.env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.ttyname(slave), os.O_RDWR, 0),
                    (os.POSIX_SPAWN_DUP2, 0, 1),
                    (os.POSIX_SPAWN_DUP2, 0, 2),
                ],
                setsid=True,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.pid = pid
        self._master = master
        os.set_blocking(master, False)
        self._pidfd = os.pidfd_open(pid)
        self._loop.add_reader(self._pidfd, self._reaped)
        self._start_reading()

    # --- input and output ------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._master < 0 or self.returncode is not None:
            return
        if len(self._pending) + len(data) > MAX_PENDING_INPUT:
            return  # a console that reads nothing loses keys, not the server its memory
        was_empty = not self._pending
        self._pending += data
        if was_empty:
            self._flush()

    def _flush(self) -> None:
        try:
            while self._pending:
                sent = os.write(self._master, self._pending)
                del self._pending[:sent]
        except BlockingIOError:
            self._loop.add_writer(self._master, self._flush)
            return
        except OSError:
            self._pending.clear()  # the console is gone; its exit ends the session
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_writer(self._master)

    def pause_output(self) -> None:
        """The SSH channel's buffer is full: stop reading, so the console waits on its pty."""
        self._paused = True
        self._stop_reading()

    def resume_output(self) -> None:
        self._paused = False
        if self.returncode is None:
            self._start_reading()

    def _start_reading(self) -> None:
        if not self._reading and self._master >= 0 and not self._paused:
            self._loop.add_reader(self._master, self._read)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._master)
            self._reading = False

    def _read(self) -> None:
        try:
            data = os.read(self._master, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:  # EIO: every slave closed, the console is done
                raise
            data = b""
        if data:
            self._on_output(data)
        else:
            self._stop_reading()

    def _drain(self) -> None:
        """What the console wrote just before it exited, still in the pty."""
        for _ in range(64):
            try:
                data = os.read(self._master, READ_CHUNK)
            except OSError:
                return
            if not data:
                return
            self._on_output(data)

    # --- size and end ----------------------------------------------------------------

    def resize(self, cols: int, rows: int) -> None:
        if self._master < 0 or cols <= 0 or rows <= 0:
            return
        self.size = (cols, rows)
        # The kernel sends SIGWINCH to the pty's foreground process group: the console.
        set_size(self._master, cols, rows)

    def current_size(self) -> tuple[int, int] | None:
        """(columns, rows) the pty has now, as the console would read it."""
        if self._master < 0:
            return None
        return get_size(self._master)

    def hangup(self, grace_s: float) -> None:
        """SIGHUP to the console's process group, SIGKILL if it is still there after grace_s."""
        if self.pid is None or self.returncode is not None:
            return
        self._signal_group(signal.SIGHUP)
        if self._kill_timer is None:
            self._kill_timer = self._loop.call_later(grace_s, self._signal_group, signal.SIGKILL)

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.pid is None or self.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def _reaped(self) -> None:
        assert self.pid is not None
        # Whatever the console's own children were, they go with it; signalled before the
        # wait, while the zombie leader still holds the group's id.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        _, status = os.waitpid(self.pid, 0)
        self.returncode = os.waitstatus_to_exitcode(status)
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        self._stop_reading()
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_writer(self._master)
        self._drain()
        os.close(self._master)
        self._master = -1
        self._on_exit(self.returncode)
