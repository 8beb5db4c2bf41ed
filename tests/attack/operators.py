"""The city of tests/attack/city.py attacked from an operator's (or observer's) account.

A :class:`Seat` is one operator account's own connection: commands out, its replies in.
It is not ``City.client``: the broker gives each account one connection (its user name
is its client id), and ``City.retained`` reads through op3, so the observer's seat is
opened and closed around its commands (``with Seat(city, OBSERVER) as seat``).

The victim is op1: it owns the victim's SOS incident and has dispatched the victim's
unit to it. ``watched`` is what op2 must not change of that; ``after`` checks it with the
invariants of every attack (``city.after_each``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from console import config as config_module
from console.tui.app import AnsimApp
from protocols import codec, topics
from protocols.schemas import Reply
from tests.attack.city import (
    ATTACKER,
    CITY_HALL,
    VICTIM_DEVICE,
    VICTIM_UNIT,
    City,
    after_each,
    sos,
    victim_now,
    wait,
)
from tests.secure_broker import Client
from tests.state_lookup import must

OWNER, OPERATOR, OBSERVER = "op1", "op2", "op3"
SPARE_DEVICE, SPARE_UNIT = "phone-spare", "unit-spare"  # cam-2's: nobody's incident and unit
NOT_AUTHORIZED = 0x87  # the broker's PUBACK for a topic the ACL does not grant
_markers = itertools.count(1)


class Seat:
    """One operator account's connection: it sends commands and collects their replies."""

    def __init__(self, city: City, user: str) -> None:
        self.city, self.user = city, user
        self.client = Client(
            city.broker, user, username=user, password=city.broker.passwords[user], tls=False
        ).connected()
        self.client.subscribe(topics.reply(user))
        self.replies: dict[str, list[Reply]] = {}
        # A console's cmd_ids name its session: a seat opened again must reuse none, or
        # the core would fold its commands into the first seat's (test_5).
        self._session = secrets.token_hex(3)
        self._ids = itertools.count(1)

    def __enter__(self) -> Seat:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    # --- out ------------------------------------------------------------------------------

    def command(self, action: str, incident_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """A well-formed command of this seat's operator; ``fields`` override or add."""
        message: dict[str, Any] = {
            "type": "cmd", "cmd_id": f"{self.user}-{self._session}-{next(self._ids)}", "operator": self.user,
            "action": action, "ts": time.time(),
        }  # fmt: skip
        if incident_id is not None:
            message["incident_id"] = incident_id
        message.update(fields)
        return message

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Publish at QoS 1; the PUBACK's reason code (0 when the broker took it)."""
        return int(self.client.publish(topic, payload, retain=retain).value)

    def send(
        self, message: dict[str, Any] | bytes, topic: str | None = None, *, retain: bool = False
    ) -> None:
        """Publish (to the seat's command topic by default), then wait until the core has
        taken it: a marker command follows on the same connection, so once the marker is
        journaled so is whatever came before it (journaled, folded or dead-lettered)."""
        payload = message if isinstance(message, bytes) else msgspec.json.encode(message)
        rc = self.publish(topic or topics.cmd(self.user), payload, retain=retain)
        # 0x10, "no matching subscribers", is taken too: only 0x80 and up is a refusal.
        assert rc < 0x80, f"the broker refused {topic} for {self.user}: {rc:#x}"
        token = f"marker-{self.user}-{next(_markers)}"
        marker = self.command("note", "I-999999", text=token)
        assert self.publish(topics.cmd(self.user), msgspec.json.encode(marker)) < 0x80
        wait(
            lambda: journaled(self.city, token) or not self.city.core_alive(),
            f"the core to take {self.user}'s message",
        )

    def ask(self, message: dict[str, Any], topic: str | None = None, count: int = 1) -> Reply:
        """Send a command and return its ``count``-th reply (a resend is answered again)."""
        self.send(message, topic)
        return self.reply(str(message["cmd_id"]), count)

    def ask_all(self, messages: list[dict[str, Any]]) -> list[Reply]:
        """Send commands back to back (the core takes them in order), then their replies."""
        for message in messages[:-1]:
            assert self.publish(topics.cmd(self.user), msgspec.json.encode(message)) < 0x80
        self.send(messages[-1])
        return [self.reply(str(message["cmd_id"])) for message in messages]

    # --- in -------------------------------------------------------------------------------

    def reply(self, cmd_id: str, count: int = 1, timeout_s: float = 10.0) -> Reply:
        def arrived() -> bool:
            self.collect()
            return len(self.replies.get(cmd_id, ())) >= count or not self.city.core_alive()

        wait(arrived, f"reply {count} to {cmd_id}", timeout_s)
        assert self.city.core_alive(), self.city.core.log() if self.city.core else ""
        return self.replies[cmd_id][count - 1]

    def collect(self) -> None:
        """Take the replies that have arrived."""
        while True:
            try:
                got = self.client.inbox.get_nowait()
            except queue.Empty:
                return
            reply: Reply = codec.decode(got.payload, Reply)
            self.replies.setdefault(reply.cmd_id, []).append(reply)


def journaled(city: City, token: str) -> bool:
    """A record (not a dead letter) holds ``token``: the core has committed it."""
    with _journal(city) as db:
        row = db.execute(
            "SELECT 1 FROM journal WHERE kind <> 'dead' AND instr(payload, ?) > 0 LIMIT 1",
            (token.encode(),),
        ).fetchone()
    return row is not None


def records_with_key(city: City, key: str) -> int:
    with _journal(city) as db:
        return int(db.execute("SELECT count(*) FROM journal WHERE key = ?", (key,)).fetchone()[0])


def dead_letters(city: City, topic_prefix: str) -> list[tuple[str, str]]:
    """(topic, reason) of the stored dead letters on topics starting with ``topic_prefix``."""
    with _journal(city) as db:
        rows = db.execute("SELECT topic, reason FROM journal WHERE kind = 'dead'").fetchall()
    return [(t, r) for t, r in rows if t.startswith(topic_prefix)]


def refusals(city: City, user: str) -> int:
    """Dead letters of ``user``'s command topics, stored or (past its budget) counted."""
    stored = len(dead_letters(city, f"{topics.ROOT}/cmd/{user}"))
    with _journal(city) as db:
        row = db.execute(
            "SELECT coalesce(sum(suppressed), 0) FROM dead_counts WHERE source = ?",
            (f"cmd:{user}",),
        ).fetchone()
    return stored + int(row[0])


@contextlib.contextmanager
def _journal(city: City) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(f"file:{city.journal_path}?mode=ro", uri=True, timeout=5)
    try:
        yield db
    finally:
        db.close()


# --- the victim ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Victim:
    incident_id: str
    first: dict[str, Any]  # city.victim_now(): the victim's incident, unit, camera, alerts
    owned: dict[str, Any]  # watched(): what op1 made of it
    owner_cmd_id: str  # one of op1's commands


def own_the_victim(city: City) -> Victim:
    """op1 takes the victim's SOS and sends the victim's unit; cam-2 adds a spare SOS and
    unit that nobody has taken (what op2 may legitimately work)."""
    (incident,) = city.incidents_of(VICTIM_DEVICE)
    with Seat(city, OWNER) as op1:
        commands = [
            op1.command("ack", incident.id),
            op1.command("dispatch", incident.id, responder_id=VICTIM_UNIT),
            op1.command("note", incident.id, text="caller hiding in the stairwell"),
        ]
        replies = op1.ask_all(commands)
        assert all(r.ok for r in replies), replies
    city.send_as(ATTACKER, "sos", sos("spare-1", SPARE_DEVICE, ATTACKER, lat=CITY_HALL[0] + 0.02))
    city.send_as(ATTACKER, "responder", {
        "type": "responder", "responder_id": SPARE_UNIT, "kind": "police", "status": "available",
        "lat": CITY_HALL[0] + 0.021, "lon": CITY_HALL[1], "ts": time.time(),
    })  # fmt: skip
    wait(lambda: bool(city.incidents_of(SPARE_DEVICE)), "the spare SOS")
    owned = watched(city, incident.id)
    return Victim(incident.id, victim_now(city, incident.id), owned, commands[0]["cmd_id"])


def spare(city: City) -> str:
    (incident,) = city.incidents_of(SPARE_DEVICE)
    return incident.id


def watched(city: City, incident_id: str) -> dict[str, Any]:
    """What op1 did with the victim's incident and unit, and op2 must not undo."""
    state = city.retained()
    incident = must(state, "incident", incident_id)
    unit = city.unit(VICTIM_UNIT, state)
    assert unit is not None
    return {
        "incident": (incident.owner, incident.status, incident.escalated, incident.responders,
                     incident.disposition, incident.notes),
        "history": [h for h in incident.history if h.actor != "core"],
        "unit": (unit.status, unit.incident_id),
    }  # fmt: skip


def after(city: City, victim: Victim) -> None:
    """The invariants of every attack, and op1's incident and unit as op1 left them."""
    after_each(city, victim.first)
    assert watched(city, victim.incident_id) == victim.owned
    presence = dead_letters(city, f"{topics.ROOT}/presence/")
    assert all(reason.strip() for _, reason in presence), presence


def retained_payload(city: City, topic: str) -> bytes | None:
    """The bytes a console is given for ``topic`` (``City.retained`` decodes them)."""
    probe = Client(
        city.broker, OBSERVER, username=OBSERVER, password=city.broker.passwords[OBSERVER],
        tls=False,
    ).connected()  # fmt: skip
    try:
        probe.subscribe(topic)
        for got in probe.drain(quiet=0.4):
            if got.retain and got.topic == topic:
                return got.payload
        return None
    finally:
        probe.close()


# --- a console -----------------------------------------------------------------------------


def run_console(
    city: City, script: Callable[[AnsimApp, Any], Awaitable[None]], operator: str = OBSERVER
) -> AnsimApp:
    """A headless console of ``operator`` (by default the observer) on the city; ``script``
    drives it (``await script(app, pilot)``). The app is returned for what it holds."""
    cfg = config_module.load(city.config, environ={})
    broker = msgspec.structs.replace(
        cfg.broker, username=operator, password=city.broker.passwords[operator]
    )
    cfg = msgspec.structs.replace(cfg, broker=broker)
    app = AnsimApp(cfg, operator=operator, role=city_role(operator), connect=True)

    async def drive() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await script(app, pilot)

    asyncio.run(drive())
    return app


def city_role(operator: str) -> str:
    return "observer" if operator == OBSERVER else "operator"


async def until(pilot: Any, holds: Callable[[], bool], what: str, timeout_s: float = 15) -> None:
    """Let the console run until ``holds()``."""
    deadline = time.monotonic() + timeout_s
    while not holds():
        assert time.monotonic() < deadline, f"the console never showed {what}"
        await pilot.pause(0.05)
