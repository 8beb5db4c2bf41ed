"""The private paho and aiomqtt names the transport relies on are still there, in the same shape.

``protocols.mqtt_connection.PRIVATE_API`` lists them; pyproject.toml pins both libraries
exactly. After an upgrade, this file says which names are gone or changed, all at once,
before any behavioural test fails somewhere deep in the fast path.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
import tomllib
from pathlib import Path
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from protocols.mqtt_connection import PRIVATE_API, _Connection
from protocols.mqtt_fastpath import PUBACK

REPO = Path(__file__).resolve().parents[2]
Shape = tuple[str, ...] | type[Any]


def problems(owner: str, subject: Any, cls: Any, names: dict[str, Shape]) -> list[str]:
    """One line per name of ``names`` that ``subject`` lacks or has in another shape.

    A tuple shape is a method of ``cls`` (a function of a module) with those parameters
    after ``self``; a type is the type of the attribute's value on ``subject``.
    """
    found = []
    for name, shape in names.items():
        where = f"{owner}.{name}"
        if not hasattr(subject, name):
            found.append(f"{where}: missing")
            continue
        if isinstance(shape, tuple):
            target = getattr(cls, name, None)
            if not callable(target):
                found.append(f"{where}: no longer a method or function")
                continue
            try:
                params = list(inspect.signature(target).parameters)
            except ValueError:  # a C function (time.monotonic): callable is all we can tell
                continue
            if inspect.isclass(cls):
                params = params[1:]  # self
            if params != list(shape):
                found.append(f"{where}: parameters {params}, expected {list(shape)}")
        elif not isinstance(getattr(subject, name), shape):
            value = getattr(subject, name)
            found.append(f"{where}: a {type(value).__name__}, expected a {shape.__name__}")
    return found


async def test_every_private_name_is_still_there_in_the_same_shape() -> None:
    # Fresh library objects (not our subclass, which replaces some of these names).
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    wrapper = aiomqtt.Client("127.0.0.1", port=1)
    subjects: dict[str, tuple[Any, Any]] = {
        "paho.Client": (client, paho.Client),
        "aiomqtt.Client": (wrapper, aiomqtt.Client),
    }
    found: list[str] = []
    for owner, names in PRIVATE_API.items():
        if owner in subjects:
            subject, cls = subjects[owner]
        else:
            subject = cls = importlib.import_module(owner)
        found += problems(owner, subject, cls, names)
    versions = {name: importlib.metadata.version(name) for name in ("paho-mqtt", "aiomqtt")}
    assert not found, (
        f"{len(found)} private name(s) of {versions} that protocols/mqtt_connection.py "
        "uses are gone or changed (see PRIVATE_API there and docs/transport.md):\n  "
        + "\n  ".join(found)
    )


def test_the_check_names_every_missing_or_changed_name() -> None:
    class Renamed:
        _last_msg_in = 1.0  # the paho 2.1 name of _last_bytes_received
        _out_packet: list[Any] = []  # noqa: RUF012 - a list where a deque was

        def _packet_queue(self, command: int, packet: bytes) -> None: ...

    names: dict[str, Shape] = {
        "_last_bytes_received": float,
        "_out_packet": paho.collections.deque,
        "_packet_queue": ("command", "packet", "mid", "qos", "info"),
        "_sock_close": (),
    }
    found = problems("paho.Client", Renamed(), Renamed, names)
    assert found == [
        "paho.Client._last_bytes_received: missing",
        "paho.Client._out_packet: a list, expected a deque",
        "paho.Client._packet_queue: parameters ['command', 'packet'], "
        "expected ['command', 'packet', 'mid', 'qos', 'info']",
        "paho.Client._sock_close: missing",
    ]


async def test_our_overrides_are_the_callbacks_paho_calls() -> None:
    # aiomqtt hands paho its _on_* methods; a rename there would leave ours never called.
    conn = _Connection(lambda _: None, True, hostname="127.0.0.1", port=1)
    for name in PRIVATE_API["aiomqtt.Client"]:
        if name.startswith("_on_"):
            assert getattr(conn._client, name[1:]) == getattr(conn, name), name
    assert conn._client._sock_recv == conn._buffered_recv


def test_a_queued_packet_is_ours_to_grow_until_paho_starts_it() -> None:
    # _send_raw appends to the bytearray it queued and bumps "to_process": that only works
    # while paho keeps the very object, not a copy, and counts what is left to write.
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    packet = bytearray(b"\x40\x02\x00\x01")
    client._packet_queue(PUBACK, packet, 0, 0)
    queued = client._out_packet[-1]
    assert queued["packet"] is packet
    assert (queued["pos"], queued["to_process"]) == (0, len(packet))
    mids = [client._mid_generate() for _ in range(3)]
    assert mids[1] == mids[0] + 1 and all(1 <= m <= 65535 for m in mids)


def test_paho_and_aiomqtt_are_pinned_to_what_is_installed() -> None:
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for name in ("paho-mqtt", "aiomqtt"):
        [spec] = [d for d in dependencies if re.match(rf"{name}\s*[=<>!~]", d)]
        installed = importlib.metadata.version(name)
        assert spec.replace(" ", "") == f"{name}=={installed}", (
            f"pyproject.toml has {spec!r}, .venv has {name} {installed}: pin it exactly "
            "(protocols/mqtt_connection.py PRIVATE_API relies on its private names)"
        )
