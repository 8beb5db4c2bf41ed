"""An attacker holding one ordinary account, against the deploy/ broker and a real core.

One class of attack per test, in the order the trust-boundary issue found them; the
city (broker, core, the victim's camera, unit and open SOS) is shared and the tests
run in order. After each: the core is up, the victim's incident, unit and camera are
as they were, and every refusal is a dead letter with a reason. The last test restarts
the core and starts a console on what is left.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import pytest

from console import config as config_module
from console.tui.app import AnsimApp
from protocols import topics
from tests.attack.city import (
    ATTACKER,
    CITY_HALL,
    SENDER,
    VICTIM,
    VICTIM_CAMERA,
    VICTIM_DEVICE,
    VICTIM_UNIT,
    City,
    after_each,
    sos,
    wait,
)
from tests.secure_broker import Client

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

FAR = (CITY_HALL[0] + 0.108, CITY_HALL[1])  # 12 km north: still Seoul


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_1_deep_nesting_does_not_stop_the_core(city: City, victim: dict[str, Any]) -> None:
    poison = msgspec.json.encode({**sos("m-deep", "phone-m", ATTACKER), "junk": 0})
    poison = poison.replace(b'"junk":0', b'"junk":' + _nested(5_000))
    city.send(ATTACKER, topics.raw(ATTACKER, "sos"), poison)
    command = {"type": "cmd", "cmd_id": "c-deep", "operator": "op2", "action": "note",
               "incident_id": "I-000001", "ts": time.time(), "text": "x", "junk": 0}  # fmt: skip
    city.send("op2", topics.cmd("op2"), msgspec.json.encode(command).replace(
        b'"junk":0', b'"junk":' + _nested(5_000)))  # fmt: skip
    # Presence is not journaled: the proof that it was read is a later message taken.
    city.client("op2").publish(topics.presence("op2"), b'{"junk":' + _nested(5_000) + b"}")
    city.send_as(ATTACKER, "sos", sos("m-after", "phone-m", ATTACKER))
    after_each(city, victim, refusals=2)
    reasons = {reason for _, reason in city.dead_letters(ATTACKER) + city.dead_letters("op2")}
    assert "malformed: nested too deep" in reasons


@pytest.mark.parametrize("district", ["#", "+", "Jung-gu/x", "Mapo-gu\x07", "Mapo-gu\n"])
def test_2_a_topic_level_from_a_payload_is_an_identifier(
    city: City, victim: dict[str, Any], district: str
) -> None:
    report = {"type": "camera", "camera_id": "cam-m", "status": "online", "ts": time.time(),
              "district": district, "lat": CITY_HALL[0], "lon": CITY_HALL[1]}  # fmt: skip
    before = len(city.dead_letters())
    city.send_as(ATTACKER, "camera", report)
    after_each(city, victim)
    assert len(city.dead_letters()) == before + 1


@pytest.mark.parametrize("ts", [1e17, float("inf"), 1.7e308, float("nan")])
def test_3_impossible_times_are_refused(city: City, victim: dict[str, Any], ts: float) -> None:
    before = len(city.dead_letters())
    payload = msgspec.msgpack.encode(sos(f"m-ts-{ts}", "phone-m", ATTACKER, ts=ts))
    city.send(ATTACKER, topics.raw(ATTACKER, "sos"), payload)
    after_each(city, victim)
    assert len(city.dead_letters()) == before + 1
    assert all(i.created < 4.2e9 for i in city.incidents_of("phone-m"))


def test_4_the_cores_session_cannot_be_taken(city: City, victim: dict[str, Any]) -> None:
    thief = Client(city.broker, "ansim-core", username=ATTACKER, tls=False,
                   password=city.broker.passwords[ATTACKER], persistent=True)  # fmt: skip
    try:
        thief.connected()
        thief.subscribe(topics.RAW_ALL)
        city.send_as(VICTIM, "sos", sos("v-after-theft", "phone-v2", VICTIM))
        assert thief.drain(quiet=0.3) == [], "the attacker received the core's traffic"
    finally:
        thief.close()
    after_each(city, victim)


def test_5_another_sources_ids_cannot_be_changed(city: City, victim: dict[str, Any]) -> None:
    now = time.time()
    attacks = [
        ("sos", sos("m-steal", VICTIM_DEVICE, ATTACKER, name="Mallory", phone="010-0000-0000",
                    lat=FAR[0], lon=FAR[1])),
        ("responder", {"type": "responder", "responder_id": VICTIM_UNIT, "kind": "police",
                       "status": "off-duty", "lat": 33.4996, "lon": 126.5312, "ts": now}),
        ("responder", {"type": "responder", "responder_id": VICTIM_UNIT, "kind": "police",
                       "status": "off-duty", "lat": CITY_HALL[0], "lon": CITY_HALL[1], "ts": now}),
        ("camera", {"type": "camera", "camera_id": VICTIM_CAMERA, "status": "tampered",
                    "ts": now, "name": "hacked", "lat": FAR[0], "lon": FAR[1]}),
        ("cctv", {"type": "cctv", "event_id": "m-fight", "camera_id": VICTIM_CAMERA,
                  "kind": "fight", "confidence": 0.99, "ts": now}),
        ("alert", {"type": "alert", "identifier": "m-cancel", "sender": SENDER, "sent": now,
                   "msg_type": "Cancel", "priority": 1,
                   "references": [{"sender": SENDER, "identifier": "flood-1", "sent": now}]}),
        ("alert", {"type": "alert", "identifier": "m-fake", "sender": SENDER, "sent": now,
                   "msg_type": "Alert", "priority": 1, "headline": "Evacuate now",
                   "districts": ["Mapo-gu"]}),
    ]  # fmt: skip
    before = len(city.dead_letters())
    for kind, message in attacks:
        city.send_as(ATTACKER, kind, message)
    after_each(city, victim)
    # The stolen SOS may open an incident of the attacker's own, never touch the victim's.
    assert len(city.dead_letters()) >= before + len(attacks) - 1
    fakes = [s for s in city.retained().values() if getattr(s, "title", "") == "Evacuate now"]
    assert fakes == [], "a source raised an alert for a sender it does not speak for"


def test_6_escapes_in_names_never_reach_the_state(city: City, victim: dict[str, Any]) -> None:
    hostile = "Lobby\x1b]0;owned\x07\x1b[2J\x9b\u202e[bold]x[/bold]"
    city.send_as(ATTACKER, "camera", {
        "type": "camera", "camera_id": "cam-m-name", "status": "online", "ts": time.time(),
        "name": hostile, "lat": CITY_HALL[0] + 0.002, "lon": CITY_HALL[1],
    })  # fmt: skip
    wait(lambda: city.camera("cam-m-name") is not None, "the attacker's own camera")
    name = city.camera("cam-m-name").name
    assert name == "Lobby]0;owned[2J[bold]x[/bold]"
    after_each(city, victim)


def test_7_refusals_cannot_fill_the_disk(city: City, victim: dict[str, Any]) -> None:
    before = city.dead_letter_bytes()
    junk = b"\x00" * 250_000  # under the core's 256 KB limit: read, refused, dead-lettered
    for n in range(3):
        city.send(ATTACKER, topics.raw(ATTACKER, "sos"), junk[: 250_000 - n])
    for n in range(100):
        city.client(ATTACKER).publish(topics.raw(ATTACKER, "sos"), b"not a message %d" % n)
    city.send_as(ATTACKER, "sos", sos("m-last", "phone-m", ATTACKER))
    after_each(city, victim)
    # 103 refusals, 750 KB refused: a digest, a size and 512 bytes each at most.
    assert city.dead_letter_bytes() - before < 103 * 1_000, "dead letters kept whole payloads"


def test_8_positions_and_times_are_checked(city: City, victim: dict[str, Any]) -> None:
    city.send_as(ATTACKER, "sos", sos("p-1", "phone-p", ATTACKER))
    wait(lambda: bool(city.incidents_of("phone-p")), "the attacker's own SOS")
    (opened,) = city.incidents_of("phone-p")
    city.send_as(ATTACKER, "sos", sos("p-2", "phone-p", ATTACKER, lat=0.0, lon=0.0))
    city.send_as(ATTACKER, "sos", sos("p-3", "phone-p", ATTACKER, lat=FAR[0], lon=FAR[1]))
    (now,) = city.incidents_of("phone-p")
    assert (now.lat, now.lon) == (opened.lat, opened.lon), "a fix 12 km away in a second"
    year_old = time.time() - 365 * 86400
    city.send_as(ATTACKER, "sos", sos("q-1", "phone-q", ATTACKER, ts=year_old))
    city.send_as(ATTACKER, "sos", sos("q-2", "phone-r", ATTACKER, ts=time.time() + 86400 * 3650))
    for device in ("phone-q", "phone-r"):
        for incident in city.incidents_of(device):
            assert abs(incident.created - time.time()) < 600, "a time taken at its word"
    after_each(city, victim)


def test_9_after_all_that_a_restart_and_a_console(city: City, victim: dict[str, Any]) -> None:
    city.restart_core()
    after_each(city, victim)
    incident_id = victim["incident"][0]
    cfg = config_module.load(city.config, environ={})
    broker = msgspec.structs.replace(
        cfg.broker, username="op1", password=city.broker.passwords["op1"]
    )
    cfg = msgspec.structs.replace(cfg, broker=broker)

    async def drive() -> str:
        app = AnsimApp(cfg, operator="op1", connect=True)
        async with app.run_test(size=(80, 24)) as pilot:
            deadline = time.monotonic() + 15
            while app.queue.rows.index_of(incident_id) is None:
                assert time.monotonic() < deadline, "the console never showed the victim's SOS"
                await pilot.pause(0.05)
            await pilot.press("2")  # the cameras, with the attacker's hostile name among them
            await pilot.pause(0.2)
            await pilot.press("1")
            return app.export_screenshot()

    screen = asyncio.run(drive())  # SVG text: an escape would be in it verbatim
    assert "\x1b]0;" not in screen and "\x07" not in screen
