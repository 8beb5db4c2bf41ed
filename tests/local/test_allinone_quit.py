"""Quitting the all-in-one never stops what other seats use (issue 18, point 4).

The dialog (pilot tests on a tiny app holding what ``ask_quit`` reads), the record
of a city left running (var/run/city.json), and `ansim` end to end: its embedded
broker, core and simulator, a second seat connected while the first quits with
"leave running", a newcomer connecting afterwards, and a second `ansim` that
attaches and stops it all. Every wait polls; the processes are killed by their
recorded pids whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Label, OptionList, Static

from console import config as config_module
from console.config import Config, mqtt_settings
from console.local import allinone, running
from console.tui.link import Link
from console.tui.presence import others_online
from console.tui.quitting import CityChoice, LocalCity
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.quit import QuitScreen, default_choice, seats_line
from console.tui.state_store import StateStore
from protocols.schemas import Presence, Role, Summary
from tests.brokers import free_port
from tests.local.quit_app import QuitApp
from tests.processes import core_ready, until, write_config

NOW = 1_750_000_000.0
SIZE = (80, 24)


def store_with(*presence: Presence, summary: Summary | None = None) -> StateStore:
    store = StateStore()
    for p in presence:
        store.apply(p)
    if summary is not None:
        store.apply(summary)
    return store


def text_of(screen: QuitScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).content)


async def wait_for(pilot: Pilot[int], predicate: Callable[[], bool], what: str,
                   timeout_s: float = 15) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


# --- the dialog ------------------------------------------------------------------------


def test_the_dialog_names_the_other_seats_and_prefers_keeping_them_connected() -> None:
    assert seats_line([], 0) == "No other seat is connected."
    assert default_choice([], 0) is CityChoice.STOP
    line = seats_line(["op2"], 0)
    assert line.startswith("1 other seat is connected: op2.")
    assert default_choice(["op2"], 0) is CityChoice.LEAVE
    assert default_choice([], 1) is CityChoice.LEAVE  # another seat signed in as me
    many = seats_line([f"op{i}" for i in range(2, 9)], 1)
    assert many.startswith("8 other seats are connected: op2, op3, op4, op5, 3 more, 1 more")
    assert "\x1b" not in seats_line(["op\x1b[2J"], 0)  # a name from the wire is plain text


def test_services_name_what_keeps_running() -> None:
    assert allinone.services(["broker", "core", "simulator"]) == "the broker, core and simulator"
    assert allinone.services(["core", "simulator", "gateway"]) == (
        "the core, simulator and HTTP gateway"
    )


async def test_with_another_seat_online_enter_leaves_the_city_running() -> None:
    city = LocalCity()
    store = store_with(Presence(operator="op2", online=True, ts=NOW - 10))
    app = QuitApp(store=store, local_city=city, clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        screen = app.screen
        assert isinstance(screen, QuitScreen)
        assert "1 other seat is connected: op2" in text_of(screen, "#seats")
        choices = screen.query_one(OptionList)
        assert choices.highlighted == choices.get_option_index("leave")
        # Everything fits at 80x24: the last line of the dialog is on screen.
        keys = screen.query_one(".dialog-keys", Label)
        assert keys.region.bottom <= SIZE[1] and keys.region.height >= 1
        await pilot.press("enter")
        await pilot.pause()
    assert city.choice is CityChoice.LEAVE
    assert app.return_value == 0


async def test_alone_enter_stops_everything_and_expired_presence_is_nobody() -> None:
    city = LocalCity()
    # op2 vanished without its last will two minutes ago: its presence has expired.
    store = store_with(Presence(operator="op2", online=True, ts=NOW - 120),
                       Presence(operator="op1", online=True, ts=NOW))  # fmt: skip
    app = QuitApp(store=store, local_city=city, clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        screen = app.screen
        assert isinstance(screen, QuitScreen)
        assert text_of(screen, "#seats") == "No other seat is connected."
        await pilot.press("enter")
        await pilot.pause()
    assert city.choice is CityChoice.STOP


async def test_keys_choose_directly_and_escape_stays() -> None:
    city = LocalCity()
    store = store_with(Presence(operator="op2", online=True, ts=NOW))
    app = QuitApp(store=store, local_city=city, clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q", "escape")
        assert not isinstance(app.screen, QuitScreen) and app.is_running
        assert city.choice is None
        await pilot.press("q", "s")  # stop everything, although op2 is connected
        await pilot.pause()
    assert city.choice is CityChoice.STOP


async def test_a_plain_console_just_asks_quit() -> None:
    app = QuitApp(clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question == "Quit?" and "stay with the core" in app.screen.detail
        await pilot.press("n")
        assert app.is_running
        await pilot.press("q", "y")
        await pilot.pause()
    assert app.return_value == 0


# --- the record of a city left running ---------------------------------------------------


SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(SLEEPER)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_the_record_round_trips_and_a_bad_one_is_no_city(tmp_path: Path) -> None:
    path = tmp_path / "run" / "city.json"
    assert running.read(path) is None
    record = running.CityRecord("127.0.0.1:1", [running.RecordedChild("core", 1, ["x"], "l")])
    running.write(record, path)
    assert running.read(path) == record
    path.write_text("{not json", encoding="utf-8")
    assert running.read(path) is None
    running.remove(path)
    running.remove(path)  # twice is fine
    assert not path.exists()


def test_a_pid_counts_only_while_it_runs_the_recorded_command(
    sleeper: subprocess.Popen[bytes],
) -> None:
    started = running.start_time(sleeper.pid)
    child = running.RecordedChild("core", sleeper.pid, SLEEPER, "core.log", started=started)
    assert started > 0 and running.is_running(child)
    # The same pid, but another process (a pid reused since): not ours to signal.
    reused = running.RecordedChild("core", sleeper.pid, SLEEPER, "", started=started - 1)
    assert not running.is_running(reused)
    watch = running.Watch([child])
    assert watch.newly_dead() == []
    assert running.stop([child], grace_s=5) == []
    sleeper.wait(5)  # reaped: gone for good
    assert not running.is_running(child)
    news = watch.newly_dead()
    assert len(news) == 1 and news[0].startswith("core stopped")
    assert watch.newly_dead() == []  # reported once


# --- `ansim` end to end --------------------------------------------------------------------


@pytest.fixture
def city_cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Config]]:
    """An embedded-broker all-in-one in tmp_path; whatever it leaves running is killed after."""
    monkeypatch.chdir(tmp_path)  # var/ (logs, the city record, shelters) goes there
    path = write_config(
        tmp_path,
        free_port(),
        broker={
            "mode": "embedded",
            "protocol": 4,
            "keepalive": 5,
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.5,
        },
        console={"bell": False},
        roles={"op1": "operator", "op2": "operator", "op3": "operator"},
    )
    seen: list[running.RecordedChild] = []
    monkeypatch.setattr(running, "write", _remembering(running.write, seen))
    try:
        yield path, config_module.load(path, environ={})
    finally:
        for child in seen:
            if running.is_running(child):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)


def _remembering(
    write: Callable[..., None], seen: list[running.RecordedChild]
) -> Callable[..., None]:
    def remember(record: running.CityRecord, *args: object) -> None:
        seen.extend(record.children)
        write(record, *args)

    return remember


@pytest.mark.timeout(150)
def test_leave_running_keeps_the_city_for_other_seats_and_ansim_again_stops_it(
    city_cfg: tuple[Path, Config],
) -> None:
    path, cfg = city_cfg
    args = argparse.Namespace(config=str(path))
    settings = mqtt_settings(cfg)

    def quit_leaving_it_running(news: Callable[[], list[str]], city: LocalCity) -> int:
        async def drive() -> int:
            other = StateStore()
            link2 = Link(cfg, "op2", Role.OPERATOR, other, lambda message: None)
            second = asyncio.create_task(link2.run())
            app = QuitApp(cfg, "op1", local_city=city)
            try:
                async with app.run_test(size=SIZE) as pilot:
                    await wait_for(
                        pilot,
                        lambda: app.connected and "op2" in others_online(
                            app.store.presence, app.store.summary, "op1", time.time()),
                        "op1 connected and seeing op2",
                    )  # fmt: skip
                    await pilot.press("q")
                    assert isinstance(app.screen, QuitScreen)
                    assert app.screen.default is CityChoice.LEAVE
                    await pilot.press("enter")
                # The second seat is still connected, and op1 left its list at once.
                await until(
                    lambda: "op1" not in others_online(other.presence, None, "op2", time.time()),
                    timeout_s=5,
                    what="op2 to see op1 go",
                )
                assert link2.connected
                assert news() == []  # nothing of the city has stopped
            finally:
                second.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await second
            return app.return_value or 0

        return asyncio.run(drive())

    assert allinone.run(args, cfg, console=quit_leaving_it_running) == 0
    assert (city := running.read()) is not None
    assert [c.name for c in city.children] == ["broker", "core", "simulator"]
    assert all(running.is_running(c) for c in city.children)

    async def newcomer() -> None:
        await core_ready(settings)  # the core still publishes: it is alive and connected
        store = StateStore()
        link3 = Link(cfg, "op3", Role.OPERATOR, store, lambda message: None)
        task = asyncio.create_task(link3.run())
        try:
            await until(lambda: link3.connected and store.summary is not None, 15, "op3 in")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(newcomer())

    def quit_stopping_it(news: Callable[[], list[str]], city: LocalCity) -> int:
        async def drive() -> int:
            app = QuitApp(cfg, "op1", local_city=city)
            async with app.run_test(size=SIZE) as pilot:
                await wait_for(pilot, lambda: app.connected, "op1 to attach")
                await pilot.press("q")
                assert isinstance(app.screen, QuitScreen)
                await pilot.press("s")
            return app.return_value or 0

        return asyncio.run(drive())

    # `ansim` again finds the running city, attaches instead of starting a second one,
    # and stopping from there stops it all.
    assert allinone.run(args, cfg, console=quit_stopping_it) == 0
    assert running.read() is None
    assert not any(running.is_running(c) for c in city.children)
