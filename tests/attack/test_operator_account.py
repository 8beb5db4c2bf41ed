"""An attacker holding one ordinary operator account (op2), and then an observer's (op3),
against the deploy/ broker, a real core and a headless console.

The victim is op1, who owns the victim's SOS incident and has dispatched the victim's
unit to it; a spare incident and unit (cam-2's, opened by nobody) are what op2 may
legitimately work. One class of attack per test, in order, on one city. After each: the
core is up, the victim's incident and unit are as op1 left them, every refusal is a
Reply with a reason or a dead letter with a reason. The last test restarts the core
and a console renders what is left.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from console.config import Config
from console.core.service import Core
from console.engine.context import REPLY_RETENTION_S
from console.journal.dead import dead_source
from console.journal.sqlite import SqliteJournal
from console.tui.presence import others_online
from console.tui.state_store import StateStore
from protocols import codec, topics
from protocols.mqtt import Incoming
from protocols.schemas import MAX_TIMESTAMP, Action, IncidentState, Role
from protocols.text import printable
from tests.attack.city import ATTACKER, CITY_HALL, VICTIM_UNIT, City, sos, wait
from tests.attack.operators import (
    NOT_AUTHORIZED,
    OBSERVER,
    OPERATOR,
    OWNER,
    SPARE_DEVICE,
    SPARE_UNIT,
    Seat,
    Victim,
    after,
    dead_letters,
    own_the_victim,
    records_with_key,
    refusals,
    retained_payload,
    run_console,
    spare,
    until,
)
from tests.engine.test_engine_support import DAY, cmd, do, engine
from tests.engine.test_engine_support import sos as engine_sos
from tests.state_lookup import must, topic_of

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

HOSTILE = "Lobby\x1b]0;owned\x07\x1b[2J\x9b\u202e[bold]x[/bold][@click=app.quit]q"


@pytest.fixture(scope="module")
def victim(city: City) -> Victim:
    return own_the_victim(city)


@pytest.fixture(scope="module")
def op2(city: City) -> Iterator[Seat]:
    with Seat(city, OPERATOR) as seat:
        yield seat


def test_1_the_victims_incident_and_unit_are_out_of_reach(
    city: City, victim: Victim, op2: Seat
) -> None:
    v, s = victim.incident_id, spare(city)
    owned = f"incident {v} is owned by {OWNER}"
    tries = [
        (op2.command(action, v), owned)
        for action in ("ack", "on-scene", "escalate", "release", "false-alarm", "claim")
    ]
    tries += [
        (op2.command("dispatch", v, responder_id=SPARE_UNIT), owned),
        (op2.command("resolve", v, disposition="resolved"), owned),
        (op2.command("note", v, text="the caller is fine"), owned),
        (op2.command("claim", v, text=OPERATOR), owned),
        (op2.command("cancel-escalation", v), "only a supervisor may cancel an escalation"),
        (
            op2.command("dispatch", s, responder_id=VICTIM_UNIT),
            f"responder {VICTIM_UNIT} is already assigned to {v} (dispatched by {OWNER})",
        ),
        (
            op2.command("handover", text="all quiet " + HOSTILE),
            "only a supervisor may write the handover note",
        ),
    ]
    for target in (OPERATOR, OWNER, "nobody-at-all", "ansim-core", "#", "x" * 4000, HOSTILE):
        tries.append(
            (op2.command("reassign", v, text=target), f"only a supervisor may reassign {v}")
        )
    for action in ("lend", "return"):  # a core's: op2 is no core, whatever it names
        for incident_id, unit in ((v, VICTIM_UNIT), (s, SPARE_UNIT), ("I-999998", "nope")):
            tries.append(
                (
                    op2.command(action, incident_id, responder_id=unit),
                    f"{action}: only a partition's core may ask for a unit",
                )
            )
    tries += [
        (op2.command("note", "I-999998", text="x"), "unknown incident I-999998"),
        (op2.command("handover"), "only a supervisor may write the handover note"),
    ]  # fmt: skip
    replies = op2.ask_all([message for message, _ in tries])
    for (message, reason), reply in zip(tries, replies, strict=True):
        assert not reply.ok and reason in reply.reason, (message["action"], reply)
    after(city, victim)


def test_2_the_topic_says_who_is_asking(city: City, victim: Victim, op2: Seat) -> None:
    before = refusals(city, OPERATOR)
    claims = (OWNER, "ansim-core", "ansim-core-north", "OP2", "op2-")
    for claimed in claims:
        op2.send(op2.command("note", spare(city), text="as someone else", operator=claimed))
    assert refusals(city, OPERATOR) == before + len(claims)
    reasons = [r for _, r in dead_letters(city, topics.cmd(OPERATOR))][-len(claims) :]
    assert all("does not match the topic's 'op2'" in r for r in reasons), reasons
    # Other accounts' topics: the broker's ACL refuses them before any core sees them.
    payload = msgspec.json.encode(op2.command("note", victim.incident_id, text="x"))
    for topic in (
        topics.cmd(OWNER), topics.cmd(OWNER, "city"), topics.cmd("ansim-core"),
        topics.cmd("ansim-core-north", "city"), f"{topics.cmd(OPERATOR, 'city')}/x",
        topics.reply(OWNER), topics.reply("ansim-core"), topics.presence(OWNER),
        topics.presence("ansim-core"), topics.STATE_SUMMARY, topics.raw(OPERATOR, "sos"),
        topics.receipt(OPERATOR, "a-1"),
    ):  # fmt: skip
        assert op2.publish(topic, payload) == NOT_AUTHORIZED, topic
    after(city, victim)


def _hostile_fields(s: str) -> list[dict[str, Any]]:
    return [
        {"text": "x" * 4001}, {"disposition": "y" * 201}, {"cmd_id": "a/b"}, {"cmd_id": "#"},
        {"cmd_id": "+"}, {"cmd_id": "x" * 129}, {"cmd_id": "c\x1b[2J"}, {"cmd_id": ""},
        {"incident_id": f"{s}/#"}, {"incident_id": "\x00"}, {"responder_id": "u nit"},
        {"operator": "op2\n"}, {"ts": MAX_TIMESTAMP + 1}, {"ts": -1}, {"ts": 1e308},
        {"ts": "now"}, {"action": "nuke"}, {"action": "LEND"}, {"type": "reply"},
        {"text": 7}, {"text": ["a"]}, {"cmd_id": None},
    ]  # fmt: skip


def test_3_the_schema_bounds_every_field(city: City, victim: Victim, op2: Seat) -> None:
    s = spare(city)
    bad = [
        msgspec.json.encode({**op2.command("note", s, text="n"), **f}) for f in _hostile_fields(s)
    ]
    for ts in (float("inf"), float("nan"), float("-inf")):  # MessagePack carries them
        bad.append(msgspec.msgpack.encode(op2.command("note", s, text="n", ts=ts)))
    bad += [b"\x00" * 300_000, b"{", b"", msgspec.json.encode([1, 2])]
    before = refusals(city, OPERATOR)
    for payload in bad:
        op2.send(payload)
    assert refusals(city, OPERATOR) == before + len(bad)
    # At the bounds, or with a field the schema does not know: taken, and answered.
    fine = [op2.command("note", s, text="t" * 4000, ts=0.0),
            op2.command("note", s, text="at the end of time", ts=MAX_TIMESTAMP),
            op2.command("note", s, text="extra", junk={"deep": [1, 2]}),
            op2.command("resolve", victim.incident_id, disposition="d" * 200)]  # fmt: skip
    assert [r.ok for r in op2.ask_all(fine)] == [True, True, True, False]
    after(city, victim)


def test_4_escapes_are_cleaned_and_handovers_refused(city: City, victim: Victim, op2: Seat) -> None:
    s = spare(city)
    assert op2.ask(op2.command("note", s, text=HOSTILE)).ok
    empty = op2.ask(op2.command("note", s, text="\x00\x07\u200b\u202e\x1b"))
    assert not empty.ok and empty.reason == "a note needs text"
    notes = must(city.retained(), "incident", s).notes
    assert notes[-1].text == printable(HOSTILE) and "\x1b" not in notes[-1].text
    flood = [op2.command("handover", text=f"{n} {HOSTILE}") for n in range(60)]
    assert not any(r.ok for r in op2.ask_all(flood))
    shift = city.retained().get(topics.state_shift("city"))
    assert shift is not None and shift.handover == ()
    after(city, victim)


def test_5_a_reused_cmd_id_is_answered_once_and_done_once(
    city: City, victim: Victim, op2: Seat
) -> None:
    s = spare(city)
    notes = len(must(city.retained(), "incident", s).notes)
    first = op2.command("note", s, cmd_id="op2-reused", text="once")
    answer = op2.ask(first)
    assert answer.ok
    assert op2.ask(first, count=2) == answer  # a resend: the first answer, nothing again
    other = op2.command("resolve", s, cmd_id="op2-reused", disposition="gone")
    assert op2.ask(other, count=3) == answer  # another command, the same id: folded
    mine = op2.command("note", s, cmd_id=victim.owner_cmd_id, text="op1's id")
    assert op2.ask(mine).ok  # the id of one of op1's commands: op2's own, a new one
    incident = must(city.retained(), "incident", s)
    assert incident.status.value == "new" and len(incident.notes) == notes + 2
    assert records_with_key(city, "cmd:op2:op2-reused") == 1
    after(city, victim)


def test_6_the_partition_level(city: City, victim: Victim, op2: Seat) -> None:
    s = spare(city)
    assert op2.ask(op2.command("note", s, text="to the city"), topics.cmd(OPERATOR, "city")).ok
    # No such partition here: no core reads it, so nothing is journaled, done or answered.
    for partition in ("north", "ansim-core", "city.", "CITY"):
        lost = op2.command("resolve", s, disposition="x")
        op2.send(lost, topics.cmd(OPERATOR, partition))
        assert records_with_key(city, f"cmd:op2:{lost['cmd_id']}") == 0
        assert lost["cmd_id"] not in op2.replies
    assert must(city.retained(), "incident", s).status.value == "new"
    after(city, victim)


def test_7_an_observer_changes_nothing(city: City, victim: Victim) -> None:
    s = spare(city)
    with Seat(city, OBSERVER) as op3:
        tries = [op3.command(action, incident, responder_id=SPARE_UNIT, text="op3")
                 for action in ("ack", "dispatch", "on-scene", "resolve", "false-alarm", "escalate",
                                "cancel-escalation", "note", "claim", "release", "reassign",
                                "lend", "return")
                 for incident in (s, victim.incident_id)]  # fmt: skip
        tries.append(op3.command("handover", text="quiet night"))
        replies = op3.ask_all(tries)
    assert all(not r.ok and r.reason == "observer seat is read-only" for r in replies), replies
    incident = must(city.retained(), "incident", s)
    assert (incident.status.value, incident.owner) == ("new", None)
    after(city, victim)


def _presence(operator: str, **fields: Any) -> dict[str, Any]:
    return {"type": "presence", "operator": operator, "online": True, "ts": time.time(), **fields}


def test_8_presence_at_the_core(city: City, victim: Victim, op2: Seat) -> None:
    spoof = _presence(OWNER, role="supervisor", host=HOSTILE, seat=HOSTILE[:200])
    op2.send(spoof, topics.presence(OPERATOR), retain=True)
    wait(lambda: (summary := city.summary()) is not None and OPERATOR in summary.operators,
         "op2 among the operators")  # fmt: skip
    summary = city.summary()
    assert summary is not None and OWNER not in summary.operators  # the topic's name counts
    before = len(dead_letters(city, topics.presence(OPERATOR)))
    bad = [_presence("#"), _presence(OPERATOR, host="h" * 201), _presence(OPERATOR, ts=1e17),
           _presence(OPERATOR, role="root"), _presence(OPERATOR, online="yes")]  # fmt: skip
    for message in bad:
        op2.send(message, topics.presence(OPERATOR))
    reasons = [r for _, r in dead_letters(city, topics.presence(OPERATOR))]
    assert len(reasons) == before + len(bad) and all(r.strip() for r in reasons)
    after(city, victim)


def test_9_a_console_believes_the_topic_not_the_payload(
    city: City, victim: Victim, op2: Seat
) -> None:
    with Seat(city, OWNER) as op1:  # op1 is at a seat
        op1.send(_presence(OWNER), topics.presence(OWNER), retain=True)
    op2.send(_presence(OPERATOR), topics.presence(OPERATOR), retain=True)

    shown: list[str] = []

    async def script(app: Any, pilot: Any) -> None:
        def summarised(with_op2: bool) -> Callable[[], bool]:
            # The core's summary follows op2's presence; the broker handed the console
            # that presence before the summary it caused.
            def holds() -> bool:
                summary = app.store.summary
                return summary is not None and (OPERATOR in summary.operators) is with_op2

            return holds

        await until(pilot, lambda: app.status_bar.others == [OWNER, OPERATOR], "op1 and op2")
        hide = _presence(OWNER, online=False)  # on op2's own topic: op2 leaves
        await asyncio.to_thread(op2.send, hide, topics.presence(OPERATOR), retain=True)
        await until(pilot, summarised(False), "the summary without op2")
        ghost = _presence("sup-ghost", role="supervisor")  # op2 is back
        await asyncio.to_thread(op2.send, ghost, topics.presence(OPERATOR), retain=True)
        await until(pilot, summarised(True), "the summary with op2")
        await pilot.pause(1.1)  # the status bar's next tick
        shown.extend(app.status_bar.others)

    try:
        app = run_console(city, script)
    finally:  # op2's own, true presence again, for the consoles of the later tests
        op2.send(_presence(OPERATOR, online=False), topics.presence(OPERATOR), retain=True)
    seen = others_online(app.store.presence, app.store.summary, OBSERVER, time.time())
    assert OWNER in seen and "sup-ghost" not in seen, seen
    assert OWNER in shown and "sup-ghost" not in shown, shown


def test_10_long_notes_do_not_hide_an_sos_from_the_consoles(
    city: City, victim: Victim, op2: Seat
) -> None:
    city.send_as(ATTACKER, "sos", sos("b-1", "phone-b", ATTACKER, lat=CITY_HALL[0] - 0.02))
    wait(lambda: bool(city.incidents_of("phone-b")), "the new SOS")
    (incident,) = city.incidents_of("phone-b")
    try:
        # Any operator may note an open incident nobody has taken yet: 24 notes of 4,000
        # Hangul syllables (12 KB each) make its state over 256 KB; it stays new, unowned.
        notes = [op2.command("note", incident.id, text="여" * 4000) for _ in range(24)]
        assert all(r.ok for r in op2.ask_all(notes))
        topic = topic_of(city.retained(), "incident", incident.id)
        assert topic is not None
        payload = retained_payload(city, topic)
        assert payload is not None and len(payload) > codec.MAX_PAYLOAD
        store = StateStore()
        assert store.apply_payload(topic, payload), store.last_error
    finally:
        assert op2.ask(op2.command("false-alarm", incident.id)).ok  # out of later consoles' way
    after(city, victim)


def test_11_what_an_operator_may_do_it_still_may(city: City, victim: Victim, op2: Seat) -> None:
    s = spare(city)
    steps = [op2.command("claim", s), op2.command("ack", s, text="on it"),
             op2.command("dispatch", s, responder_id=SPARE_UNIT, text="t" * 4000),
             op2.command("on-scene", s), op2.command("escalate", s, text=HOSTILE),
             op2.command("resolve", s, text="r" * 4000)]  # fmt: skip
    replies = op2.ask_all(steps)
    assert all(r.ok for r in replies), replies
    wait(lambda: not city.incidents_of(SPARE_DEVICE), "the spare to close")
    unit = city.unit(SPARE_UNIT)
    assert unit is not None and unit.status.value == "available"
    after(city, victim)


def test_12_after_all_that_a_restart_and_a_console(city: City, victim: Victim, op2: Seat) -> None:
    city.restart_core()
    after(city, victim)

    async def script(app: Any, pilot: Any) -> None:
        await until(pilot, lambda: app.queue.rows.index_of(victim.incident_id) is not None,
                    "the victim's SOS")  # fmt: skip
        for key in ("2", "3", "1"):  # cameras, units, back to the queue
            await pilot.press(key)
            await pilot.pause(0.2)
        screens.append(app.export_screenshot())

    screens: list[str] = []
    app = run_console(city, script)
    assert app.store.rejected == 0, app.store.last_error
    assert "\x1b]0;" not in screens[0] and "\x07" not in screens[0]


# --- found on the way, shown without the broker ------------------------------------------------


@pytest.mark.parametrize("action", [Action.RESOLVE, Action.FALSE_ALARM])
def test_a_disposition_taken_from_the_text_fits_the_schema(action: Action) -> None:
    """A resolve with a long ``text`` and no ``disposition`` (test_11) closed the incident
    with a 4,000-character disposition where IncidentState allows 200: the closed state
    (what ``ansim export --format json`` writes) failed the schema's own decoding."""
    eng = engine()
    eng.handle_event(engine_sos(), DAY)
    assert do(eng, action, text="다" * 4000).ok
    state = eng.incident_state("I-000001", DAY + 20)
    assert codec.decode(codec.encode(state), IncidentState) == state
    assert state.disposition == "다" * 200


@pytest.mark.parametrize("target", ["ansim-core", "ansim-core-north", "op 2", "x" * 65])
def test_a_supervisor_assigns_an_incident_to_operators_only(target: str) -> None:
    """CLAIM with another operator's id is the older way to reassign; it took a core's
    account (``ansim-core-north``), which REASSIGN refuses."""
    eng = engine()
    eng.handle_event(engine_sos(), DAY)
    reply = do(eng, Action.CLAIM, operator="sup1", role=Role.SUPERVISOR, text=target)
    assert not reply.ok and reply.reason == f"not an operator id: {target[:80]!r}"
    assert eng.incident_state("I-000001", DAY + 20).owner is None


def test_a_reused_cmd_id_is_never_done_unjournaled(tmp_path: Path) -> None:
    clock = [DAY]
    journal = SqliteJournal(tmp_path / "journal.db")
    core = Core(Config(), journal, clock=lambda: clock[0])
    taken = itertools.count(1)

    def take(topic: str, message: object) -> None:
        payload = codec.encode(message)
        core.handle(Incoming(topic, payload, 1, False, next(taken), lambda _m, _q: None))
        core.journal.commit()

    take(topics.raw("app", "sos"), engine_sos())
    command = cmd(Action.NOTE, operator=OPERATOR, cmd_id="c-1", text="first")
    take(topics.cmd(OPERATOR), command)
    clock[0] += REPLY_RETENTION_S + 3600  # a later command makes the engine forget c-1
    take(topics.cmd(OPERATOR), cmd(Action.NOTE, operator=OPERATOR, cmd_id="c-2", text="x"))
    take(topics.cmd(OPERATOR), cmd(Action.RESOLVE, operator=OPERATOR, cmd_id="c-1",
                                   disposition="gone"))  # fmt: skip
    live = "I-000001" in core.engine.ctx.st.incidents
    journal.close()
    replayed = Core(Config(), SqliteJournal(tmp_path / "journal.db"), clock=lambda: clock[0])
    replayed.journal.close()
    assert live == ("I-000001" in replayed.engine.ctx.st.incidents)
    assert live, "a command the journal folded as a resend was done"


def test_a_bad_presence_is_charged_to_its_own_account() -> None:
    assert dead_source(topics.presence(OPERATOR)) != dead_source(topics.presence(OWNER))
