"""`ansim export`: closed incidents replayed from a real SQLite journal, as JSON, CSV and EIDO."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import msgspec
import pytest

from console.bridges.export import ExportError, Window, closed_incidents, export, parse_time
from console.config import Config
from console.journal.store import RecordKind, open_journal
from protocols import codec, eido, topics
from protocols.schemas import (
    Action,
    Command,
    HistoryEntry,
    IncidentKind,
    IncidentState,
    IncidentStatus,
    ResponderReport,
    ResponderStatus,
    SosAlarm,
    SosTrigger,
    UnitKind,
)

ROOT = Path(__file__).resolve().parents[2]
LAT, LON = 37.5665, 126.9780  # Seoul City Hall
DAY = 1_704_078_000.0  # 2024-01-01T03:00:00Z
NEXT_DAY = DAY + 86_400.0
I1, I2, I3 = "I-000001", "I-000002", "I-000003"


def _sos(alarm_id: str, device: str, lat: float, ts: float) -> SosAlarm:
    return SosAlarm(
        alarm_id=alarm_id,
        source="app",
        device_id=device,
        name="Kim Minji",
        phone="010-0000-0000",
        lat=lat,
        lon=LON,
        accuracy_m=8.0,
        trigger=SosTrigger.BUTTON,
        ts=ts,
    )


def _cmd(n: int, action: Action, incident: str, ts: float, **kw: str) -> Command:
    return Command(cmd_id=f"c{n}", operator="op1", action=action, ts=ts, incident_id=incident, **kw)


def build_journal(path: Path) -> None:
    """I-000001 resolved on day 1 (acked, noted, dispatched, on scene); I-000002 left open;
    I-000003 a false alarm on day 2. Plus a dead letter and an event that no longer decodes."""
    unit = ResponderReport(
        responder_id="P-1",
        kind=UnitKind.POLICE,
        status=ResponderStatus.AVAILABLE,
        lat=LAT + 0.001,
        lon=LON,
        ts=DAY - 60,
    )
    rows: list[tuple[float, RecordKind, str, bytes, str]] = [
        (DAY - 60, RecordKind.EVENT, topics.raw("fleet", "responder"), codec.encode(unit), ""),
        (
            DAY,
            RecordKind.EVENT,
            topics.raw("app", "sos"),
            codec.encode(_sos("a1", "d1", LAT, DAY)),
            "",
        ),
        (DAY + 5, RecordKind.DEAD, topics.raw("app", "sos"), b"\xc1garbage", "malformed: bad"),
        # Accepted once, undecodable now (as after a schema change): replay skips it loudly.
        (DAY + 6, RecordKind.EVENT, topics.raw("app", "sos"), b"\xc1\xc1", ""),
        (
            DAY + 10,
            RecordKind.EVENT,
            topics.raw("app", "sos"),
            codec.encode(_sos("a2", "d2", LAT + 0.05, DAY + 10)),
            "",
        ),
        (
            DAY + 20,
            RecordKind.COMMAND,
            topics.cmd("op1"),
            codec.encode(_cmd(1, Action.ACK, I1, DAY + 20)),
            "",
        ),
        (
            DAY + 30,
            RecordKind.COMMAND,
            topics.cmd("op1"),
            codec.encode(_cmd(2, Action.NOTE, I1, DAY + 30, text="caller says <followed>")),
            "",
        ),
        (
            DAY + 40,
            RecordKind.COMMAND,
            topics.cmd("op1"),
            codec.encode(_cmd(3, Action.DISPATCH, I1, DAY + 40, responder_id="P-1")),
            "",
        ),
        (
            DAY + 300,
            RecordKind.COMMAND,
            topics.cmd("op1"),
            codec.encode(_cmd(4, Action.ON_SCENE, I1, DAY + 300)),
            "",
        ),
        (
            DAY + 600,
            RecordKind.COMMAND,
            topics.cmd("op1"),
            codec.encode(_cmd(5, Action.RESOLVE, I1, DAY + 600, disposition="escorted home")),
            "",
        ),
        (
            NEXT_DAY,
            RecordKind.EVENT,
            topics.raw("app", "sos"),
            codec.encode(_sos("a3", "d3", LAT - 0.05, NEXT_DAY)),
            "",
        ),
        (
            NEXT_DAY + 60,
            RecordKind.COMMAND,
            topics.cmd("op1"),
            codec.encode(_cmd(6, Action.FALSE_ALARM, I3, NEXT_DAY + 60, text="pocket dial")),
            "",
        ),
    ]
    with open_journal(Config().journal, str(path)) as journal:
        for ts, kind, topic, payload, reason in rows:
            journal.append(ts, kind, topic, payload, reason=reason)
        journal.commit()


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    path = tmp_path / "journal.db"
    build_journal(path)
    return path


def _closed(path: Path, window: Window | None = None) -> list[IncidentState]:
    with open_journal(Config().journal, str(path)) as journal:
        return list(closed_incidents(Config(), journal, window))


def _validator() -> jsonschema.Draft202012Validator:
    schema = eido.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _check_eido(doc: dict[str, object]) -> None:
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    ids, refs = eido.references(doc)
    assert refs <= ids, f"dangling references: {refs - ids}"


# --- what is exported -----------------------------------------------------------------------


def test_closed_incidents_only_with_their_history(journal_path: Path) -> None:
    closed = _closed(journal_path)
    assert [inc.id for inc in closed] == [I1, I3]  # I2 is still open
    first = closed[0]
    assert first.status is IncidentStatus.RESOLVED
    assert first.disposition == "escorted home"
    assert first.closed_at == DAY + 600
    assert [h.action for h in first.history] == [
        "opened",
        "acknowledged",
        "note",
        "dispatched",
        "on-scene",
        "resolved",
    ]
    assert [n.text for n in first.notes] == ["caller says <followed>"]
    assert closed[1].status is IncidentStatus.FALSE_ALARM


def test_window_and_incident_filters(journal_path: Path) -> None:
    day2 = parse_time("2024-01-02")
    assert [i.id for i in _closed(journal_path, Window(since=day2))] == [I3]
    assert [i.id for i in _closed(journal_path, Window(until=day2))] == [I1]
    until_day1 = parse_time("2024-01-01", end_of_day=True)
    assert [i.id for i in _closed(journal_path, Window(until=until_day1))] == [I1]
    exact = parse_time("2024-01-01T12:10:00+09:00")  # = DAY + 600, I1's close: included
    assert [i.id for i in _closed(journal_path, Window(since=exact))] == [I1, I3]
    assert [i.id for i in _closed(journal_path, Window(until=exact))] == []
    assert [i.id for i in _closed(journal_path, Window(incident=I3))] == [I3]
    assert _closed(journal_path, Window(incident=I2)) == []  # open: never exported


def test_time_arguments() -> None:
    assert parse_time("2024-01-01T03:00:00Z") == DAY
    assert parse_time("2024-01-01T12:00:00+09:00") == DAY
    with pytest.raises(ExportError, match="no timezone"):
        parse_time("2024-01-01T12:00:00")
    with pytest.raises(ExportError, match="not an ISO 8601"):
        parse_time("yesterday")


def test_json_round_trips_as_incident_states(journal_path: Path) -> None:
    with open_journal(Config().journal, str(journal_path)) as journal:
        text, count = export(Config(), journal, "json")
    assert count == 2
    states = msgspec.json.decode(text.encode(), type=list[IncidentState])
    assert [s.id for s in states] == [I1, I3]
    assert states[0].history[-1].action == "resolved"


def test_csv_one_row_per_incident(journal_path: Path) -> None:
    with open_journal(Config().journal, str(journal_path)) as journal:
        text, _ = export(Config(), journal, "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["id"] for r in rows] == [I1, I3]
    first = rows[0]
    assert first["status"] == "resolved"
    assert first["responders"] == "P-1"  # freed at close, still on record
    assert first["created"] == "2024-01-01T03:00:00Z"
    assert first["closed_at"] == "2024-01-01T03:10:00Z"
    assert first["acknowledged_at"] == "2024-01-01T03:00:20Z"
    assert (first["events"], first["notes"], first["owner"]) == ("1", "1", "op1")
    assert rows[1]["responders"] == ""


def test_eido_validates_and_carries_the_record(journal_path: Path) -> None:
    with open_journal(Config().journal, str(journal_path)) as journal:
        text, _ = export(Config(), journal, "eido")
    docs = json.loads(text)
    assert len(docs) == 2
    for doc in docs:
        _check_eido(doc)
    doc = docs[0]
    assert doc["eidoVersion"] == "1.0"
    assert doc["incidentComponent"]["internalIncidentId"] == I1
    assert doc["incidentComponent"]["incidentStatusInternalText"] == ["resolved", "escorted home"]
    location = doc["locationComponent"][0]
    assert f"<gml:pos>{LAT:.6f} {LON:.6f}</gml:pos>" in location["locationByValue"]
    # Every history entry is an action note by its agent, at its time.
    actions = [n for n in doc["notesComponent"] if ":action:" in n["$id"]]
    assert len(actions) == 6
    assert actions[3]["notesActionComments"].startswith("dispatched: P-1 (police")
    assert actions[3]["lastUpdateTimeStamp"] == "2024-01-01T03:00:40.000Z"
    agents = {a["$id"]: a["agentRoleRegistryText"] for a in doc["agentComponent"]}
    op1 = next(k for k in agents if k.startswith("op1@"))
    assert set(agents[op1]) == {"Call Taking", "Dispatching"}
    # The operator's note, HTML-escaped.
    notes = [n for n in doc["notesComponent"] if ":note:" in n["$id"]]
    assert notes[0]["notesActionComments"] == "caller says &lt;followed&gt;"
    # Dispatch: who sent which unit, when.
    (dispatch,) = doc["dispatchComponent"]
    assert dispatch["agentReference"] == {"$ref": op1}
    (resource,) = doc["emergencyResourceComponent"]
    assert resource["emergencyResourceName"] == "P-1"
    assert dispatch["emergencyResourceReference"] == [{"$ref": resource["$id"]}]
    # Its times: dispatched, on scene (marked by the operator), freed at resolve.
    assert [r["$ref"].rsplit(":", 1)[1] for r in resource["notesReference"]] == ["3", "4", "5"]


def test_eido_schema_refuses_what_nena_would() -> None:
    validator = _validator()
    good = eido.build_eido(_closed_state())
    _check_eido(good)
    assert "&lt;north&gt;" in good["locationComponent"][0]["locationByValue"]
    bare = eido.build_eido(msgspec.structs.replace(_closed_state(), history=()))
    _check_eido(bare)  # no history: the core still stands as the agent
    for broken in (
        {k: v for k, v in good.items() if k != "eidoVersion"},
        {**good, "eidoVersion": "2.0"},
        {**good, "lastUpdateTimeStamp": "yesterday"},
        {**good, "incidentComponent": {**good["incidentComponent"], "incidentCommon": 1}},
        {**good, "agentComponent": [{**good["agentComponent"][0], "agentRoleRegistryText": []}]},
    ):
        assert not validator.is_valid(broken)


def test_schema_registry_values_follow_the_code() -> None:
    defs = eido.schema()["$defs"]
    incident = defs["incident"]["properties"]
    assert set(incident["incidentTypeInternalCode"]["enum"]) == {k.value for k in IncidentKind}
    assert set(eido.INCIDENT_TYPES.values()) < set(
        incident["incidentTypeCommonRegistryText"]["enum"]
    )
    resource = defs["emergencyResource"]["properties"]
    assert set(eido.RESOURCE_TYPES.values()) < set(
        resource["emergencyResourceTypeCommonRegistryText"]["enum"]
    )
    assert set(eido.RESOURCE_TYPES) == {k.value for k in UnitKind}


def _closed_state() -> IncidentState:
    return IncidentState(
        id="I-000009",
        kind=IncidentKind.CCTV,
        priority=2,
        status=IncidentStatus.FALSE_ALARM,
        lat=LAT,
        lon=LON,
        district="Jung-gu",
        place="Seoul Plaza & <north>",
        source="cam-7",
        title="scream on cam-7",
        created=DAY,
        updated=DAY + 9,
        closed_at=DAY + 9,
        disposition="false alarm",
        history=(
            HistoryEntry(ts=DAY, actor="core", action="opened", detail="scream on cam-7"),
            HistoryEntry(ts=DAY + 9, actor="op2", action="false-alarm", detail="false alarm"),
        ),
    )


# --- the command line ---------------------------------------------------------------------------


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text(f'[journal]\npath = "{tmp_path / "journal.db"}"\n', encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "console.cli", "--config", str(config), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_export_eido_and_csv(journal_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = _cli(tmp_path, "export", "--format", "eido", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert "exported 2 closed incident(s)" in done.stderr
    docs = json.loads(out.read_text(encoding="utf-8"))
    for doc in docs:
        _check_eido(doc)

    done = _cli(tmp_path, "export", "--format", "csv", "--since", "2024-01-02", "--incident", I3)
    assert done.returncode == 0, done.stderr
    assert [r["id"] for r in csv.DictReader(io.StringIO(done.stdout))] == [I3]


def test_cli_refuses_bad_requests(tmp_path: Path) -> None:
    done = _cli(tmp_path, "export", "--journal", str(tmp_path / "missing.db"))
    assert done.returncode == 2
    assert "no journal at" in done.stderr
    assert not (tmp_path / "missing.db").exists()  # not created just to be read
    build_journal(tmp_path / "journal.db")
    done = _cli(tmp_path, "export", "--since", "2024-01-01T00:00:00")
    assert done.returncode == 2
    assert "no timezone" in done.stderr
