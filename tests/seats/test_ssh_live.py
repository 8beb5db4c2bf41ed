"""`ansim ssh` end to end: the real OpenSSH client, a real Mosquitto, a real `ansim core`.

Each test starts `ansim ssh` as a process on a free loopback port with a keys file in
tmp_path, connects with ``/usr/bin/ssh -tt`` from a pseudo-terminal of the test's own,
and reads the screen bytes the office would see. Every wait polls with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from console import config as config_module
from console.seats.ssh_pty import get_size
from protocols import codec, topics
from protocols.mqtt import MqttSettings, Transport
from protocols.schemas import (
    IncidentState,
    IncidentStatus,
    ResponderReport,
    ResponderStatus,
    SosAlarm,
    SosTrigger,
    UnitKind,
)
from tests.brokers import AmqttBroker, MosquittoBroker
from tests.processes import AnsimProcess, core_ready, retained_state, until
from tests.seats.ssh_client import (
    SshTerminal,
    alive,
    console_pids,
    fingerprint,
    make_key,
    needs_ssh,
    seat_config,
    start_ssh_server,
)

pytestmark = [needs_ssh, pytest.mark.timeout(150), pytest.mark.slow]
SOURCE = "tst"
CITY_HALL = (37.5663, 126.9779)


@contextlib.asynccontextmanager
async def ssh_server(config: Path) -> AsyncIterator[AnsimProcess]:
    server = await start_ssh_server(config)
    try:
        yield server
    finally:
        assert server.stop() == 0, server.log()


@contextlib.asynccontextmanager
async def core(config: Path, settings: MqttSettings) -> AsyncIterator[None]:
    process = AnsimProcess(config, "core").start()
    try:
        await core_ready(settings, timeout_s=40)
        yield
    finally:
        assert process.stop() == 0, process.log()


def config_for(tmp_path: Path, broker: MosquittoBroker | AmqttBroker, keys: str) -> Path:
    (tmp_path / "authorized_keys").write_text(keys, encoding="utf-8")
    protocol = 5 if isinstance(broker, MosquittoBroker) else 4
    return seat_config(
        tmp_path,
        broker.port,
        broker={"protocol": protocol, "keepalive": 5, "reconnect_min_s": 0.05,
                "reconnect_max_s": 0.5},
        roles={"op1": "operator", "watch1": "observer"},
    )  # fmt: skip


def ssh_port(config: Path) -> int:
    return config_module.load(config, environ={}).ssh.port


async def incidents(settings: MqttSettings) -> list[IncidentState]:
    state = await retained_state(settings, quiet_s=0.3)
    return [value for value in state.values() if isinstance(value, IncidentState)]


async def wait_incident(settings: MqttSettings, what: str, predicate: Any) -> IncidentState:
    deadline = time.monotonic() + 40
    seen: list[IncidentState] = []
    while time.monotonic() < deadline:
        seen = await incidents(settings)
        for incident in seen:
            if predicate(incident):
                return incident
    raise AssertionError(f"timed out waiting for {what}; incidents: {seen}")


async def test_a_known_key_lands_as_its_operator_and_dispatches_with_a_d_enter(
    tmp_path: Path, broker: MosquittoBroker | AmqttBroker, mqtt_settings: MqttSettings
) -> None:
    key, public = make_key(tmp_path, "office")
    config = config_for(tmp_path, broker, f"operator=op1 role=operator districts=jung {public}\n")
    async with core(config, mqtt_settings), ssh_server(config) as server:
        seat = SshTerminal(key, ssh_port(config), size=(80, 24)).start()
        try:
            await seat.wait_text("op1 (operator) ● connected", timeout_s=60)
            assert f"login: operator op1 role operator key {fingerprint(key)}" in server.log()
            [pid] = console_pids(server)
            with open(f"/proc/{pid}/cmdline", "rb") as file:  # noqa: ASYNC230 (procfs, instant)
                argv = file.read().split(b"\0")
            assert argv[-7:-1] == [
                b"--operator", b"op1", b"--role", b"operator", b"--districts", b"Jung-gu"
            ]  # fmt: skip
            assert str(config).encode() in argv

            async with Transport(mqtt_settings, f"src-{time.monotonic_ns()}") as src:
                await src.wait_connected(10)
                unit = ResponderReport(responder_id="u-near", kind=UnitKind.POLICE,
                                       status=ResponderStatus.AVAILABLE, lat=CITY_HALL[0] + 0.001,
                                       lon=CITY_HALL[1], ts=time.time())  # fmt: skip
                await src.publish(topics.raw(SOURCE, topics.RAW_RESPONDER), codec.encode(unit))
                sos = SosAlarm(alarm_id="ssh-1", source=SOURCE, device_id="phone-1",
                               name="Person 1", lat=CITY_HALL[0], lon=CITY_HALL[1],
                               accuracy_m=10, trigger=SosTrigger.BUTTON, ts=time.time())  # fmt: skip
                await src.publish(topics.raw(SOURCE, topics.RAW_SOS), codec.encode(sos))
            incident = await wait_incident(
                mqtt_settings, "the SOS with a recommended unit", lambda i: bool(i.recommended)
            )
            await seat.wait_text("phone-1", timeout_s=30)  # the detail of the selected SOS

            seat.type(b"a")
            await wait_incident(
                mqtt_settings, "the acknowledgement",
                lambda i: i.id == incident.id and i.status is IncidentStatus.ACKNOWLEDGED,
            )  # fmt: skip
            before_dialog = seat.mark()
            seat.type(b"d")
            await seat.wait_text("u-near", start=before_dialog)  # the dialog offers the unit
            seat.type(b"\r")
            dispatched = await wait_incident(
                mqtt_settings, "the dispatch",
                lambda i: i.id == incident.id and i.status is IncidentStatus.DISPATCHED,
            )  # fmt: skip
            assert dispatched.responders == ("u-near",) and dispatched.owner == "op1"

            seat.type(b"q")
            seat.type(b"y")
            assert await seat.wait_exit(timeout_s=30) == 0
            await until(lambda: not alive(pid), timeout_s=15, what="the console to end")
        finally:
            seat.close()


async def test_an_unknown_key_is_refused_and_logged_with_its_fingerprint(
    tmp_path: Path, broker: MosquittoBroker | AmqttBroker
) -> None:
    _, public = make_key(tmp_path, "known")
    stranger, _ = make_key(tmp_path, "stranger")
    config = config_for(tmp_path, broker, f"operator=op1 {public}\n")
    async with ssh_server(config) as server:
        seat = SshTerminal(stranger, ssh_port(config)).start()
        assert await seat.wait_exit() != 0
        assert "Permission denied (publickey)" in seat.text()
        await until(lambda: fingerprint(stranger) in server.log(), what="the refusal logged")
        assert f"refused key {fingerprint(stranger)} (not in the keys file)" in server.log()
        assert console_pids(server) == []


async def test_a_client_trying_a_bag_of_keys_is_cut_off_before_the_right_one(
    tmp_path: Path, broker: MosquittoBroker | AmqttBroker
) -> None:
    known, public = make_key(tmp_path, "known")
    config = config_for(tmp_path, broker, f"operator=op1 {public}\n")
    guesses = [make_key(tmp_path, f"guess{n}")[0] for n in range(6)]
    offered = [arg for path in [*guesses, known] for arg in ("-i", str(path))]
    async with ssh_server(config) as server:
        seat = SshTerminal(known, ssh_port(config), options=tuple(offered)).start()
        assert await seat.wait_exit() != 0
        assert "op1 (operator)" not in seat.text()
        assert "after 6 refused keys" in server.log()
        assert "login:" not in server.log() and console_pids(server) == []


async def test_a_resize_reaches_the_console_and_closing_the_client_ends_it(
    tmp_path: Path, broker: MosquittoBroker | AmqttBroker
) -> None:
    key, public = make_key(tmp_path, "wall")
    config = config_for(tmp_path, broker, f"operator=watch1 role=observer language=ko {public}\n")
    async with ssh_server(config) as server:
        # The office's wish for no colour passes; its other variables do not.
        options = ("-o", "SetEnv=NO_COLOR=1 ANSIM_OPERATOR__ID=root LD_PRELOAD=/x.so")
        seat = SshTerminal(key, ssh_port(config), size=(80, 24), options=options).start()
        try:
            # The role is in the seat's language (Korean here): wait for the operator alone.
            await seat.wait_text("watch1", timeout_s=40)
            [pid] = console_pids(server)
            # The console's own terminal: its pty slave, as the console reads its size.
            pts = os.readlink(f"/proc/{pid}/fd/0")
            assert get_size_of(pts) == (80, 24)
            with open(f"/proc/{pid}/environ", "rb") as file:  # noqa: ASYNC230 (procfs, instant)
                environ = file.read().split(b"\0")
            assert b"ANSIM_ROLE=observer" in environ
            # The key's language reaches the console as its option, not as a variable.
            with open(f"/proc/{pid}/cmdline", "rb") as file:  # noqa: ASYNC230 (procfs, instant)
                assert b"\0--language\0ko" in file.read()
            assert not [v for v in environ if v.startswith(b"ANSIM_LANGUAGE")]
            assert b"TERM=xterm-256color" in environ and b"NO_COLOR=1" in environ
            assert not [v for v in environ if v.startswith((b"LD_PRELOAD", b"ANSIM_OPERATOR"))]

            before = seat.mark()
            seat.resize(120, 30)
            await until(lambda: get_size_of(pts) == (120, 30), what="the pty to be 120x30")
            # Textual re-lays out on SIGWINCH: it draws row 30, which 24 rows did not have.
            await until(lambda: b"\x1b[30;" in bytes(seat.output[before:]),
                        timeout_s=30, what="the console to draw at 120x30")  # fmt: skip

            seat.close()  # the office closes its window
            await until(lambda: not alive(pid), timeout_s=30, what="the console to end")
            await until(lambda: "console ended: operator watch1" in server.log(),
                        what="the end logged")  # fmt: skip
            await until(lambda: "logout: operator watch1" in server.log(), what="the logout")
        finally:
            seat.close()


def get_size_of(pts: str) -> tuple[int, int]:
    fd = os.open(pts, os.O_RDONLY | os.O_NOCTTY)
    try:
        return get_size(fd)
    finally:
        os.close(fd)


async def test_a_command_is_refused_with_a_sentence(
    tmp_path: Path, broker: MosquittoBroker | AmqttBroker
) -> None:
    key, public = make_key(tmp_path, "office")
    config = config_for(tmp_path, broker, f"operator=op1 role=supervisor {public}\n")
    async with ssh_server(config) as server:
        # At start: the key claims more than the core's [roles] grants op1.
        assert "authorized_keys:1: operator op1 has role supervisor here" in server.log()
        seat = SshTerminal(key, ssh_port(config), command=("cat", "/etc/passwd")).start()
        assert await seat.wait_exit() == 1
        assert "serves only the console" in seat.text()
        assert "root:" not in seat.text()
        assert console_pids(server) == []
        assert "refused a command: operator op1" in server.log()


async def test_forwarding_is_refused(tmp_path: Path, broker: MosquittoBroker | AmqttBroker) -> None:
    key, public = make_key(tmp_path, "office")
    config = config_for(tmp_path, broker, f"operator=op1 {public}\n")
    async with ssh_server(config) as server:
        seat = SshTerminal(key, ssh_port(config), options=(
            "-N", "-o", "ExitOnForwardFailure=yes", "-R", f"127.0.0.1:0:127.0.0.1:{broker.port}",
        )).start()  # fmt: skip
        assert await seat.wait_exit() != 0
        assert "forwarding failed" in seat.text()
        await until(lambda: "refused a listener" in server.log(), what="the refusal logged")
        assert console_pids(server) == []


async def test_a_revoked_key_loses_its_open_seat_and_cannot_log_in_again(
    tmp_path: Path, broker: MosquittoBroker | AmqttBroker
) -> None:
    key, public = make_key(tmp_path, "leaver")
    _, other = make_key(tmp_path, "stayer")
    config = config_for(tmp_path, broker, f"operator=op1 {public}\noperator=op2 {other}\n")
    async with ssh_server(config) as server:
        seat = SshTerminal(key, ssh_port(config)).start()
        try:
            await seat.wait_text("op1 (operator)", timeout_s=40)
            [pid] = console_pids(server)
            (tmp_path / "authorized_keys").write_text(f"operator=op2 {other}\n")
            await seat.wait_text("this key was revoked", timeout_s=30)
            assert await seat.wait_exit() != 0
            await until(lambda: not alive(pid), timeout_s=15, what="the console to end")

            again = SshTerminal(key, ssh_port(config)).start()
            assert await again.wait_exit() != 0
            assert "Permission denied (publickey)" in again.text()
        finally:
            seat.close()


async def test_an_idle_seat_is_closed_with_a_message(
    tmp_path: Path, broker: MosquittoBroker | AmqttBroker
) -> None:
    key, public = make_key(tmp_path, "office")
    (tmp_path / "authorized_keys").write_text(f"operator=op1 {public}\n")
    config = seat_config(tmp_path, broker.port, ssh={"idle_close_s": 3.0})
    async with ssh_server(config) as server:
        seat = SshTerminal(key, ssh_port(config)).start()
        try:
            await seat.wait_text("op1 (operator)", timeout_s=40)
            [pid] = console_pids(server)
            await seat.wait_text("without a keystroke", timeout_s=40)
            await seat.wait_exit()
            await until(lambda: not alive(pid), timeout_s=15, what="the console to end")
            assert "idle seat closed: operator op1" in server.log()
        finally:
            seat.close()


async def test_one_seat_too_many_is_refused_and_a_stopped_server_closes_its_seats(
    tmp_path: Path, broker: MosquittoBroker | AmqttBroker
) -> None:
    key, public = make_key(tmp_path, "office")
    (tmp_path / "authorized_keys").write_text(f"operator=op1 {public}\n")
    config = seat_config(tmp_path, broker.port, ssh={"max_sessions": 1})
    server = await start_ssh_server(config)
    first = SshTerminal(key, ssh_port(config)).start()
    try:
        await first.wait_text("op1 (operator)", timeout_s=40)
        [pid] = console_pids(server)
        second = SshTerminal(key, ssh_port(config)).start()
        assert await second.wait_exit() == 1
        assert "all 1 seats are taken" in second.text()

        assert server.stop() == 0, server.log()  # SIGTERM: every seat is told and ended
        await first.wait_text("the server is shutting down", timeout_s=15)
        await first.wait_exit()
        assert not alive(pid)
    finally:
        first.close()
        server.kill()
