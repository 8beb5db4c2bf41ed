"""Hypothesis plays the attacker: well-formed-but-hostile commands from one operator account.

op2 sends what its account lets it: commands on its own command topic (with or without
a partition level), built from a valid command with some fields swapped for what a
hostile operator would try: every action (the supervisor's and the cores' too), the
victim's incident and unit, someone else's operator name, reused cmd_ids, control
characters, wildcards, huge text, impossible times, deep nesting. The core's own reading
(``console.core.ingest.read``) says which of them it must take: each taken command is
answered by a Reply (a refusal with its reason), each other one is a dead letter with a
reason, and one sent to a partition this city does not have is read by nobody.

After each example the invariants hold (the core is up, op1's incident and unit as op1
left them); at the end the core restarts on that journal, they still hold, and a
console renders the state.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.core.ingest import Accepted, read
from protocols import topics
from protocols.schemas import MAX_TIMESTAMP, Action, Command
from tests.attack.city import LIVE_EXAMPLES, VICTIM_UNIT, City
from tests.attack.operators import (
    OBSERVER,
    OPERATOR,
    OWNER,
    SPARE_UNIT,
    Seat,
    Victim,
    after,
    own_the_victim,
    refusals,
    run_console,
    spare,
    until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# Replaced by the victim's and the spare's incident ids when sent.
VICTIM_INCIDENT, SPARE_INCIDENT = "<victim>", "<spare>"
ACTIONS = [a.value for a in Action]
# Someone else's names, the cores' names, and what is no name at all.
NAMES = [OWNER, OBSERVER, "ansim-core", "ansim-core-north", "OP2", "op2 ", "#", "+", "a/b",
         "", "x" * 129, "\x1b[2J", "op2\x00"]  # fmt: skip
INCIDENTS = [VICTIM_INCIDENT, SPARE_INCIDENT, "I-999999", "I-000001/#", "#", "", "x" * 129, "\x07"]
UNITS = [VICTIM_UNIT, SPARE_UNIT, "unit-nope", "+", "x" * 129, ""]

hostile_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(max_codepoint=0x9F), max_size=60),  # C0, DEL, C1
    st.sampled_from(["\x1b]0;owned\x07", "\x1b[2J", "[@click=app.quit]q", "\u202egnp.exe",
                     "#", "+", "a/b/#", "강남구 여성안심지킴이집", "op1", "ansim-core", " "]),
    st.sampled_from([199, 200, 201, 3999, 4000, 4001, 70_000, 300_000]).map(lambda n: "여" * n),
)  # fmt: skip
extreme_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1e17, MAX_TIMESTAMP, MAX_TIMESTAMP + 1, 1.7e308]),
)
FIELDS = {
    "action": st.one_of(st.sampled_from(ACTIONS), st.sampled_from(["nuke", "LEND", ""])),
    "incident_id": st.one_of(st.sampled_from(INCIDENTS), st.none()),
    "responder_id": st.one_of(st.sampled_from(UNITS), st.none()),
    "operator": st.sampled_from(NAMES),
    # A small pool, so examples reuse each other's ids: a resend, or another command.
    "cmd_id": st.one_of(st.sampled_from(["g-1", "g-2", "g-3"]), st.sampled_from(NAMES)),
    "text": st.one_of(hostile_text, st.none(), st.integers()),
    "disposition": st.one_of(hostile_text, st.none()),
    "ts": extreme_number,
    "type": st.sampled_from(["cmd", "reply", "presence", "CMD"]),
    "junk": st.one_of(st.integers(10, 20_000), st.lists(st.integers(), max_size=3)),
}


@st.composite
def hostile_command(draw: st.DrawFn) -> tuple[str | None, dict[str, Any], int, bool]:
    """(partition level, command, nesting depth for "junk" or 0, as JSON)."""
    message: dict[str, Any] = {
        "type": "cmd", "cmd_id": f"g-{draw(st.integers(0, 10**9))}", "operator": OPERATOR,
        "action": draw(st.sampled_from(ACTIONS)), "ts": time.time(),
        "incident_id": draw(st.sampled_from(INCIDENTS[:3])), "text": "op2",
    }  # fmt: skip
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=4, unique=True)):
        message[name] = draw(FIELDS[name])
    depth = message["junk"] if isinstance(message.get("junk"), int) else 0
    partition = draw(st.sampled_from([None, None, "city", "north"]))
    return partition, message, depth, draw(st.booleans())


def encode(message: dict[str, Any], ids: dict[str, str], depth: int, as_json: bool) -> bytes:
    message = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in message.items()}
    if depth:
        message["junk"] = 0
    try:
        payload = msgspec.json.encode(message) if as_json else msgspec.msgpack.encode(message)
    except (OverflowError, msgspec.EncodeError):  # an integer past 64 bits
        payload = msgspec.msgpack.encode({k: str(v) for k, v in message.items()})
    if depth and as_json:  # spliced: msgspec would recurse encoding it
        payload = payload.replace(b'"junk":0', b'"junk":' + b"[" * depth + b"]" * depth, 1)
    return payload


@pytest.fixture(scope="module")
def victim(city: City) -> Victim:
    return own_the_victim(city)


@pytest.fixture(scope="module")
def spare_id(city: City, victim: Victim) -> str:
    return spare(city)  # Hypothesis may close it: looked up once


@pytest.fixture(scope="module")
def op2(city: City) -> Iterator[Seat]:
    with Seat(city, OPERATOR) as seat:
        yield seat


@LIVE_EXAMPLES
@given(st.lists(hostile_command(), min_size=1, max_size=5))
def test_hostile_commands_change_nothing_of_anyone_else(
    city: City,
    victim: Victim,
    spare_id: str,
    op2: Seat,
    commands: list[tuple[str | None, dict[str, Any], int, bool]],
) -> None:
    refused_before = refusals(city, OPERATOR)
    op2.collect()
    replied = {cmd_id: len(replies) for cmd_id, replies in op2.replies.items()}
    answers: Counter[str] = Counter()  # cmd_id -> replies owed by this example
    refused = 0
    ids = {VICTIM_INCIDENT: victim.incident_id, SPARE_INCIDENT: spare_id}
    for partition, message, depth, as_json in commands:
        topic = topics.cmd(OPERATOR, partition)
        payload = encode(message, ids, depth, as_json)
        assert op2.publish(topic, payload) < 0x80, "the broker refused op2's own topic"
        if partition == "north":
            continue  # no such partition here: no core reads it
        taken = read(topic, payload)
        if isinstance(taken, Accepted):
            assert isinstance(taken.message, Command)
            answers[taken.message.cmd_id] += 1
        else:
            refused += 1
    op2.send(op2.command("note", "I-999999", text="end of example"))
    assert refusals(city, OPERATOR) == refused_before + refused
    for cmd_id, owed in answers.items():
        reply = op2.reply(cmd_id, replied.get(cmd_id, 0) + owed)
        assert reply.ok or reply.reason.strip(), reply
    after(city, victim)


def test_after_the_storm_a_restart_and_a_console(city: City, victim: Victim, op2: Seat) -> None:
    city.restart_core()
    after(city, victim)
    assert refusals(city, OPERATOR) > 0, "Hypothesis sent nothing the core refused?"

    async def script(app: Any, pilot: Any) -> None:
        await until(pilot, lambda: app.queue.rows.index_of(victim.incident_id) is not None,
                    "the victim's SOS")  # fmt: skip
        screens.append(app.export_screenshot())

    screens: list[str] = []
    app = run_console(city, script)
    assert app.store.rejected == 0, app.store.last_error
    assert "\x1b]0;" not in screens[0] and "\x07" not in screens[0]
