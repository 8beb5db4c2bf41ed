"""Personal data: `[privacy] retention_days` redacts closed SOS incidents (docs/privacy.md).

Engine-level tests are pure and fast; the journal tests replay a real (tmp) SQLite
journal the way the live core writes it, including its SYSTEM "tick" records.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.bridges.export import closed_incidents, export
from console.config import Config, PrivacyConfig
from console.core.foreign import pack_snapshot
from console.core.rebuild import TICK_KEY, rebuild
from console.core.service import Core
from console.engine.effects import Effect, PersonalDataRedacted
from console.engine.engine import Engine
from console.engine.privacy import REDACTED, has_personal_data
from console.journal.store import Journal, RecordKind, open_journal
from protocols import codec, topics
from protocols.mqtt import Incoming
from protocols.schemas import (
    Action,
    CctvKind,
    Command,
    IncidentState,
    SosAlarm,
)
from tests.engine import test_engine_props as props
from tests.engine.test_engine_support import (
    DAY,
    LAT,
    LON,
    camera,
    cctv,
    cmd,
    reply_of,
    responder,
    sos,
)

ROOT = Path(__file__).resolve().parents[2]
DAYS = 2
CFG = Config(privacy=PrivacyConfig(retention_days=DAYS))
RETENTION = DAYS * 86400.0
I1, I2 = "I-000001", "I-000002"
NAME, PHONE, DEVICE = "Kim Minji", "010-0000-0000", "dev1"


def _engine(cfg: Config = CFG) -> Engine:
    e = Engine(cfg.engine_settings(), cfg.city.district_map())
    e.handle_event(camera("cam1"), DAY - 10)
    e.handle_event(responder("P-1"), DAY - 10)
    return e


def _closed_sos(e: Engine, closed_at: float = DAY + 600) -> float:
    """I-000001: an SOS, acknowledged, resolved at ``closed_at``. Returns its redaction time."""
    e.handle_event(sos("a1", device=DEVICE), DAY)
    assert reply_of(e.handle_command(cmd(Action.ACK, I1), DAY + 20)).ok
    assert reply_of(
        e.handle_command(cmd(Action.RESOLVE, I1, disposition="escorted home"), closed_at)
    ).ok
    return closed_at + RETENTION


def _assert_intact(state: IncidentState) -> None:
    assert (state.person, state.phone, state.source) == (NAME, PHONE, DEVICE)
    assert all(ev.source == DEVICE for ev in state.events if ev.kind == "sos")


def _assert_redacted(state: IncidentState, actor: str = "core") -> None:
    assert state.person is None and state.phone is None
    assert state.source == REDACTED
    assert all(ev.source == REDACTED for ev in state.events if ev.kind == "sos")
    last = state.history[-1]
    assert (last.actor, last.action, last.detail) == (
        actor,
        "redacted",
        f"personal data redacted after {DAYS} days",
    )
    text = msgspec.json.encode(state).decode()
    assert NAME not in text and PHONE not in text and DEVICE not in text


# --- the engine (pure) ---------------------------------------------------------------------


def _redactions(effects: list[Effect]) -> list[str]:
    return [x.incident_id for x in effects if isinstance(x, PersonalDataRedacted)]


def test_closed_incident_is_redacted_exactly_at_the_due_time_not_before() -> None:
    e = _engine()
    due = _closed_sos(e)
    assert e.tick(due - 0.001) == []
    _assert_intact(e.incident_state(I1, due))
    assert e.tick(due) == [PersonalDataRedacted(I1)]
    state = e.incident_state(I1, due)
    _assert_redacted(state)
    assert state.history[-1].ts == due and state.updated == due
    # Everything that is not personal stays: the record of what happened.
    assert (state.status.value, state.disposition, state.closed_at) == (
        "resolved",
        "escorted home",
        DAY + 600,
    )
    assert [h.action for h in state.history][:3] == ["opened", "acknowledged", "resolved"]
    assert e.tick(due + 86400.0) == []  # once


def test_a_late_tick_redacts_what_is_overdue() -> None:
    e = _engine()
    due = _closed_sos(e)
    assert e.tick(due + 3600.0) == [PersonalDataRedacted(I1)]
    assert e.incident_state(I1, due).history[-1].ts == due + 3600.0


def test_open_incidents_are_never_redacted() -> None:
    e = _engine()
    e.handle_event(sos("a1", device="d1"), DAY)  # new
    e.handle_event(sos("a2", device="d2", lat=LAT + 0.02), DAY)
    assert reply_of(e.handle_command(cmd(Action.DISPATCH, I2, responder_id="P-1"), DAY + 5)).ok
    later = DAY + 365 * 86400.0
    assert _redactions(e.tick(later)) == []
    for iid in (I1, I2):
        state = e.incident_state(iid, later)
        assert state.person == NAME and state.phone == PHONE
        assert all(h.action != "redacted" for h in state.history)


def test_the_same_person_raising_a_new_sos_after_closing_is_not_affected() -> None:
    e = _engine()
    due = _closed_sos(e)
    e.handle_event(sos("a2", device=DEVICE), due - 60.0)  # a new incident, still open
    assert e.open_incident_ids() == [I2]
    assert _redactions(e.tick(due)) == [I1]  # (its SLA escalates I-000002 too)
    _assert_redacted(e.incident_state(I1, due))
    _assert_intact(e.incident_state(I2, due))
    # Her next SOS still folds into the open incident: the device table is untouched.
    e.handle_event(sos("a3", device=DEVICE), due + 10)
    assert e.incident_state(I2, due + 10).sos_count == 2
    assert _redactions(e.tick(due + 365 * 86400.0)) == []


def test_incidents_without_personal_data_are_not_scheduled() -> None:
    e = _engine()
    e.handle_event(cctv("e1", "cam1", CctvKind.FIGHT), DAY)
    assert reply_of(e.handle_command(cmd(Action.FALSE_ALARM, I1), DAY + 60)).ok
    assert e.tick(DAY + 10 * RETENTION) == []
    assert e.privacy.queue == []


def test_several_due_in_one_tick_go_in_due_order() -> None:
    e = _engine()
    for n, device in ((1, "d1"), (2, "d2")):
        e.handle_event(sos(f"a{n}", device=device, lat=LAT + n * 0.01), DAY)
    assert reply_of(e.handle_command(cmd(Action.FALSE_ALARM, I2), DAY + 10)).ok
    assert reply_of(e.handle_command(cmd(Action.FALSE_ALARM, I1), DAY + 20)).ok
    assert e.tick(DAY + 20 + RETENTION) == [PersonalDataRedacted(I2), PersonalDataRedacted(I1)]


def test_sla_escalation_and_redaction_share_one_tick() -> None:
    e = _engine()
    due = _closed_sos(e)
    e.handle_event(sos("a2", device="d2", lat=LAT + 0.02), due - 5.0)  # its ack SLA runs out
    effects = e.tick(due + CFG.sla.ack_p1_s)
    assert [type(x).__name__ for x in effects] == [
        "Escalated",
        "IncidentChanged",
        "PersonalDataRedacted",
    ]


def test_forgotten_incidents_leave_no_schedule_behind(monkeypatch: Any) -> None:
    monkeypatch.setattr("console.engine.incidents.MAX_CLOSED", 3)
    monkeypatch.setattr("console.engine.privacy._COMPACT_SLACK", 0)
    e = _engine()
    for n in range(1, 21):
        e.handle_event(sos(f"a{n}", device=f"d{n}"), DAY + n)
        assert reply_of(e.handle_command(cmd(Action.FALSE_ALARM, f"I-{n:06d}"), DAY + n)).ok
    assert len(e.st.closed) == 3
    assert len(e.privacy.queue) <= 2 * 3
    assert len(e.tick(DAY + 100 + RETENTION)) == 3  # only those it still holds


def test_snapshot_restore_then_redaction_equals_uninterrupted() -> None:
    live = _engine()
    due = _closed_sos(live)
    # A snapshot of a closed, not yet redacted incident: the schedule is rebuilt on restore
    # (it is derived from the closed incidents, so older snapshots restore with it too).
    restored = Engine.restore(CFG.engine_settings(), CFG.city.district_map(), live.snapshot())
    assert restored.snapshot() == live.snapshot()
    assert restored.tick(due - 1.0) == live.tick(due - 1.0) == []
    assert restored.tick(due) == live.tick(due) == [PersonalDataRedacted(I1)]
    assert restored.snapshot() == live.snapshot()
    assert restored.incident_state(I1, due) == live.incident_state(I1, due)
    # And a snapshot after the redaction restores redacted, with nothing left to do.
    again = Engine.restore(CFG.engine_settings(), CFG.city.district_map(), live.snapshot())
    _assert_redacted(again.incident_state(I1, due))
    assert again.privacy.queue == [] and again.tick(due + RETENTION) == []


# --- the journal: replay, rebuild and export -------------------------------------------------


class LiveCore:
    """What `ansim core` does with the journal, minus MQTT: journal each input, then apply it;
    journal a tick only when it returns effects (console.core.service.Core.tick)."""

    def __init__(self, journal: Journal, cfg: Config = CFG) -> None:
        self.journal, self.cfg = journal, cfg
        self.engine = Engine(cfg.engine_settings(), cfg.city.district_map())

    def event(self, message: Any, now: float, source: str = "app", kind: str = "sos") -> None:
        self.journal.append(now, RecordKind.EVENT, topics.raw(source, kind), codec.encode(message))
        self.engine.handle_event(message, now, source=source)  # as the core: the topic's source

    def command(self, command: Command, now: float) -> None:
        topic = topics.cmd(command.operator)
        self.journal.append(now, RecordKind.COMMAND, topic, codec.encode(command))
        assert reply_of(self.engine.handle_command(command, now, self.cfg.role_of("op1"))).ok

    def tick(self, now: float) -> list[Effect]:
        effects = self.engine.tick(now)
        if effects:
            self.journal.append(now, RecordKind.SYSTEM, "", b"", key=TICK_KEY)
        self.journal.commit()
        return effects

    def snapshot(self, now: float) -> None:
        self.journal.commit()
        self.journal.write_snapshot(
            now, pack_snapshot(self.engine.snapshot(), b""), self.journal.last_seq
        )


def _run_core(path: Path, *, until: float, snapshot_at: float | None = None) -> LiveCore:
    """An SOS closed at DAY+600; ticks every hour from then until ``until``."""
    journal = open_journal(CFG.journal, str(path))
    core = LiveCore(journal)
    core.event(responder("P-1"), DAY - 10, source="fleet", kind="responder")
    core.event(sos("a1", device=DEVICE), DAY)
    core.command(cmd(Action.ACK, I1), DAY + 20)
    core.command(cmd(Action.RESOLVE, I1, disposition="escorted home"), DAY + 600)
    now = DAY + 600
    while now < until:
        now = min(now + 3600.0, until)
        if snapshot_at is not None and now >= snapshot_at:
            core.snapshot(now)
            snapshot_at = None
        core.tick(now)
    journal.commit()
    return core


def test_journal_replay_reproduces_the_redaction(tmp_path: Path) -> None:
    due = DAY + 600 + RETENTION
    core = _run_core(tmp_path / "j.db", until=due + 7200.0)
    journal = core.journal
    ticks = [r for r in journal.records(kinds={RecordKind.SYSTEM}) if r.key == TICK_KEY]
    # Exactly one tick changed something (the redaction), at the first tick at or after due.
    assert len(ticks) == 1 and due <= ticks[0].ts < due + 3600.0
    rebuilt, last = rebuild(CFG, journal)
    assert last == journal.last_seq
    assert rebuilt.snapshot() == core.engine.snapshot()
    _assert_redacted(rebuilt.incident_state(I1, due))
    assert rebuilt.incident_state(I1, due).history[-1].ts == ticks[0].ts
    # The raw record is append-only and keeps the original payload (docs/privacy.md).
    (raw,) = [r for r in journal.records(kinds={RecordKind.EVENT}) if r.topic.endswith("/sos")]
    assert codec.decode(raw.payload, SosAlarm).name == NAME
    assert "journal ok" in str(journal.verify()).lower()
    journal.close()


def test_rebuild_from_a_snapshot_taken_before_the_due_time(tmp_path: Path) -> None:
    due = DAY + 600 + RETENTION
    core = _run_core(tmp_path / "j.db", until=due + 7200.0, snapshot_at=due - 86400.0)
    assert core.journal.latest_snapshot() is not None
    rebuilt, _ = rebuild(CFG, core.journal)
    assert rebuilt.snapshot() == core.engine.snapshot()
    _assert_redacted(rebuilt.incident_state(I1, due))
    core.journal.close()


def _exported(journal: Journal, fmt: str) -> str:
    text, count = export(CFG, journal, fmt)
    assert count == 1
    return text


def test_export_after_the_retention_date_has_no_personal_data(tmp_path: Path) -> None:
    due = DAY + 600 + RETENTION
    core = _run_core(tmp_path / "j.db", until=due + 7200.0)
    for fmt in ("json", "csv", "eido"):
        text = _exported(core.journal, fmt)
        assert NAME not in text and PHONE not in text and DEVICE not in text, fmt
    (state,) = closed_incidents(CFG, core.journal)
    _assert_redacted(state)
    assert state == core.engine.incident_state(I1, due)  # exactly what the live core holds
    doc = json.loads(_exported(core.journal, "json"))[0]
    assert "person" not in doc and "phone" not in doc
    assert doc["history"][-1]["detail"] == f"personal data redacted after {DAYS} days"
    core.journal.close()


def test_export_before_the_retention_date_keeps_the_person(tmp_path: Path) -> None:
    due = DAY + 600 + RETENTION
    core = _run_core(tmp_path / "j.db", until=due - 60.0)
    (state,) = closed_incidents(CFG, core.journal)
    _assert_intact(state)
    assert NAME in _exported(core.journal, "json")
    core.journal.close()


def test_export_redacts_an_overdue_copy_the_engine_had_forgotten(tmp_path: Path) -> None:
    """No redaction tick in the journal (the engine no longer held the incident when it
    came due), yet the journal runs past the due time: the export's copy is redacted."""
    due = DAY + 600 + RETENTION
    journal = open_journal(CFG.journal, str(tmp_path / "j.db"))
    core = LiveCore(journal)
    core.event(sos("a1", device=DEVICE), DAY)
    core.command(cmd(Action.RESOLVE, I1, disposition="escorted home"), DAY + 600)
    core.event(responder("P-1"), due + 10.0, source="fleet", kind="responder")  # no tick
    journal.commit()
    (state,) = closed_incidents(CFG, journal)
    _assert_redacted(state, actor="export")
    assert state.history[-1].ts == due
    journal.close()


class _Transport:
    """Stands in for the MQTT transport of an in-process Core: records what it publishes."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, payload: bytes, **_: Any) -> None:
        self.published.append((topic, payload))


async def test_the_real_core_journals_the_redacting_tick_and_a_restart_keeps_it(
    tmp_path: Path,
) -> None:
    """`ansim core` in process (no broker): its tick journals the redaction, publishes
    nothing for the closed incident, and a core restarted on that journal is redacted."""
    clock = [DAY]
    journal = open_journal(CFG.journal, str(tmp_path / "j.db"))
    core = Core(CFG, journal, clock=lambda: clock[0])
    transport = _Transport()
    core.transport = transport  # type: ignore[assignment]
    inputs = [
        (DAY, topics.raw("app", topics.RAW_SOS), sos("a1", device=DEVICE)),
        (DAY + 600, topics.cmd("op1"), cmd(Action.FALSE_ALARM, I1)),
    ]
    for mid, (ts, topic, message) in enumerate(inputs, 1):
        clock[0] = ts
        core.handle(Incoming(topic, codec.encode(message), 1, False, mid))
        await core.commit_and_release()
    await core.flush(DAY + 600)  # the close clears the incident's retained state
    home = core.engine.incident_home(I1) or ""
    assert (topics.state_incident(home, I1), b"") in transport.published
    transport.published.clear()
    due = DAY + 600 + RETENTION
    await core.tick(due - 1.0)
    ticks = [r for r in journal.records(kinds={RecordKind.SYSTEM}) if r.key == TICK_KEY]
    assert ticks == []
    await core.tick(due)
    ticks = [r for r in journal.records(kinds={RecordKind.SYSTEM}) if r.key == TICK_KEY]
    assert [r.ts for r in ticks] == [due]
    _assert_redacted(core.engine.incident_state(I1, due))
    await core.flush(due)  # the redaction publishes nothing: a closed incident stays cleared
    assert not [t for t, _ in transport.published if t == topics.state_incident(home, I1)]
    live = core.engine.snapshot()
    journal.close()
    journal = open_journal(CFG.journal, str(tmp_path / "j.db"))
    restarted = Core(CFG, journal, clock=lambda: clock[0])
    assert restarted.engine.snapshot() == live
    journal.close()


# --- properties over random sequences -------------------------------------------------------

SHORT = Config(privacy=PrivacyConfig(retention_days=1))
# A supervisor closing incident 1-4 (any owner, any open status): closed SOS come often.
close_input = st.tuples(
    st.just("cmd"),
    st.just(2),
    st.sampled_from([Action.FALSE_ALARM, Action.RESOLVE]),
    st.integers(1, 4),
    st.none(),
    st.just(True),
    st.integers(100, 100_000),
)
redaction_steps = st.lists(
    st.tuples(
        st.one_of(props.step.map(lambda s: s[0]), props.sos_input, close_input, props.tick_input),
        st.sampled_from([0.0, 7.0, 700.0, 30_000.0, 90_000.0]),  # jumps past a day
    ),
    min_size=12,
    max_size=50,
)


def _run(
    seq: list[tuple[tuple[Any, ...], float]], engine: Engine | None = None, start: float = DAY
) -> tuple[Engine, list[list[Effect]], float]:
    engine = engine or Engine(SHORT.engine_settings(), SHORT.city.district_map())
    if not engine.st.cameras:
        for message, t in props.setup_inputs():
            engine.handle_event(message, t)
    now, out = start, []
    for raw, dt in seq:
        now += dt
        out.append(props.apply(engine, raw, now))
    return engine, out, now


PROPS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPS
@given(redaction_steps, st.integers(0, 50))
def test_redaction_survives_snapshot_restore_and_replay(
    seq: list[tuple[tuple[Any, ...], float]], cut: int
) -> None:
    whole, effects_whole, end = _run(seq)
    again, effects_again, _ = _run(seq)
    assert again.snapshot() == whole.snapshot() and effects_again == effects_whole
    cut = min(cut, len(seq))
    first, effects_first, mid = _run(seq[:cut])
    restored = Engine.restore(SHORT.engine_settings(), SHORT.city.district_map(), first.snapshot())
    _, effects_rest, _ = _run(seq[cut:], restored, start=mid)
    assert restored.snapshot() == whole.snapshot()
    assert effects_first + effects_rest == effects_whole
    # After a final tick: nothing overdue holds personal data, and no open incident lost any.
    final = end + 1.0
    whole.tick(final)
    for inc in whole.st.closed.values():
        if inc.closed_at is not None and inc.closed_at + 86400.0 <= final:
            assert not has_personal_data(inc), inc.id
    for inc in whole.st.incidents.values():
        if inc.device_id is not None:
            assert inc.person is not None and inc.source == inc.device_id


# --- what is personal, and where it is shown ------------------------------------------------


def test_every_sos_field_is_classified() -> None:
    """A new SosAlarm field must be classified here and, if personal, redacted in
    console/engine/privacy.py (and said in docs/privacy.md)."""
    personal = {"name", "phone", "device_id"}
    operational = {"alarm_id", "source", "lat", "lon", "accuracy_m", "trigger", "ts", "battery"}
    assert set(SosAlarm.__struct_fields__) == personal | operational


def test_widgets_show_personal_data_only_in_the_incident_detail() -> None:
    pattern = re.compile(r"\.(person|phone)\b")
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("widgets", "console/screens")
        for path in sorted((ROOT / folder).glob("*.py"))
        if path.name != "incident_detail.py" and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    assert pattern.search((ROOT / "widgets/incident_detail.py").read_text(encoding="utf-8"))


def test_sos_incident_position_is_kept() -> None:
    """Where it happened is the record (statistics, EIDO); who it was is not."""
    e = _engine()
    due = _closed_sos(e)
    e.tick(due)
    state = e.incident_state(I1, due)
    assert (state.lat, state.lon) == (LAT, LON)
