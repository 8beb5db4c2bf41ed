"""The city the all-in-one left running: its processes, recorded in var/run/city.json.

`ansim` writes the record once its children are up and removes it when it stops
them. When its console quits with "leave the city running", the record stays: the
next `ansim` in the same folder reads it and attaches a console to that city
instead of starting a second broker on a port already taken, and that console can
stop it. A process counts as running only while its pid is the very process
recorded (same start time, same command), so a pid reused by another program is
never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import msgspec

CITY_FILE = Path("var/run/city.json")
POLL_S = 0.05


class RecordedChild(msgspec.Struct):
    name: str
    pid: int
    argv: list[str]
    log: str
    started: int = 0  # start time in clock ticks after boot (/proc); 0 where unknown


class CityRecord(msgspec.Struct):
    broker: str  # host:port of the broker the city uses, embedded or not
    children: list[RecordedChild]


def write(record: CityRecord, path: Path = CITY_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_bytes(msgspec.json.encode(record))
    partial.replace(path)  # a reader never sees half a record


def read(path: Path = CITY_FILE) -> CityRecord | None:
    """The record, or None when there is none or it cannot be read (then it is no city)."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=CityRecord)
    except (OSError, msgspec.DecodeError):
        return None


def remove(path: Path = CITY_FILE) -> None:
    path.unlink(missing_ok=True)


def start_time(pid: int) -> int:
    """When ``pid`` started, in clock ticks after boot; 0 without /proc or such a process."""
    stat = _stat(pid)
    return int(stat[19]) if stat and len(stat) > 19 else 0


def is_running(child: RecordedChild) -> bool:
    """Whether ``child.pid`` is alive and still the process that was recorded."""
    try:
        os.kill(child.pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or someone else's process
        return False
    if not Path("/proc/self").exists():
        return True  # no /proc on this system: the pid must do
    stat = _stat(child.pid)
    if stat is None or len(stat) <= 19 or stat[0] == "Z":  # gone, or dead and not yet reaped
        return False
    if child.started and int(stat[19]) != child.started:
        return False
    try:
        cmdline = Path(f"/proc/{child.pid}/cmdline").read_bytes()
    except OSError:
        return False
    # Empty for a moment while a process is being started: the start time decided then.
    return not cmdline or cmdline.split(b"\0")[:-1] == [os.fsencode(a) for a in child.argv]


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def stop(children: list[RecordedChild], grace_s: float = 5.0) -> list[str]:
    """Stop the recorded processes, last started first (SIGTERM, then SIGKILL after
    ``grace_s``); return the names of those that had to be killed."""
    killed = []
    for child in reversed(children):  # simulator and core before the broker
        if not _signal(child, signal.SIGTERM):
            continue
        deadline = time.monotonic() + grace_s
        while is_running(child) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        if is_running(child):
            _signal(child, signal.SIGKILL)
            killed.append(child.name)
    return killed


def _signal(child: RecordedChild, sig: signal.Signals) -> bool:
    if not is_running(child):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(child.pid, sig)
    return True


class Watch:
    """News of recorded processes that stopped, for a console attached to them."""

    def __init__(self, children: list[RecordedChild]) -> None:
        self.children = children
        self._reported: set[str] = set()

    def newly_dead(self) -> list[str]:
        news = []
        for child in self.children:
            if child.name not in self._reported and not is_running(child):
                self._reported.add(child.name)
                news.append(f"{child.name} stopped; see {child.log}: {last_lines(Path(child.log))}")
        return news


def last_lines(path: Path, count: int = 3) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in lines[-count:])
