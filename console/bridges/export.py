"""`ansim export`: closed incidents from the journal, as EIDO, JSON or CSV.

The journal is replayed from its first record through a fresh engine, exactly as
:mod:`console.core.rebuild` does (snapshots are not used: an incident closed before the
latest snapshot must be exported too). Each time the engine closes an incident
(the ``IncidentClosed`` effect), the incident is captured as it stood at that
moment: full history, notes, events, and the units it had. Personal data follows
``[privacy] retention_days`` (``docs/privacy.md``): a redaction the live core made
(a journaled tick, the ``PersonalDataRedacted`` effect) replaces the captured copy,
and an incident whose retention had passed by the journal's last record is
exported redacted even if the engine had forgotten it before it came due.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Final

import msgspec

from console.config import Config
from console.core.rebuild import REPLAYED, apply_record
from console.engine.effects import IncidentClosed, PersonalDataRedacted
from console.engine.engine import Engine
from console.engine.privacy import has_personal_data, redact_state
from console.journal.cli import NoJournal, open_existing
from console.journal.store import Journal, JournalError
from protocols import eido
from protocols.schemas import IncidentState

FORMATS: Final = ("eido", "json", "csv")

CSV_COLUMNS: Final = (
    "id",
    "kind",
    "priority",
    "district",
    "place",
    "lat",
    "lon",
    "created",
    "acknowledged_at",
    "closed_at",
    "status",
    "disposition",
    "owner",
    "responders",
    "events",
    "notes",
)


class ExportError(Exception):
    """A problem with the request or the journal, phrased for the person at the prompt."""


@dataclass(frozen=True, slots=True)
class Window:
    """Closed incidents with ``since <= closed_at < until`` (UNIX seconds; None: open-ended)."""

    since: float | None = None
    until: float | None = None
    incident: str | None = None

    def admits(self, inc: IncidentState) -> bool:
        closed = inc.closed_at if inc.closed_at is not None else inc.updated
        if self.incident is not None and inc.id != self.incident:
            return False
        if self.since is not None and closed < self.since:
            return False
        return not (self.until is not None and closed >= self.until)


def parse_time(text: str, *, end_of_day: bool = False) -> float:
    """ISO 8601 to UNIX seconds.

    A datetime must carry its offset (``Z``, ``+09:00``): a closing time in an
    audit export must not depend on the machine's timezone. A bare date is a UTC
    day: its start, or with ``end_of_day`` the start of the next day (so
    ``--until 2024-05-01`` includes all of 1 May).
    """
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime.combine(day, time(0), tzinfo=UTC)
            return (start + timedelta(days=1 if end_of_day else 0)).timestamp()
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ExportError(
            f"not an ISO 8601 date or datetime: {text!r} (e.g. 2024-05-01 or "
            "2024-05-01T18:00:00+09:00)"
        ) from None
    if moment.tzinfo is None:
        raise ExportError(
            f"{text!r} has no timezone: add one (2024-05-01T18:00:00+09:00, or Z for UTC)"
        )
    return moment.timestamp()


def closed_incidents(
    cfg: Config, journal: Journal, window: Window | None = None
) -> Iterator[IncidentState]:
    """Every incident the journal shows closed (and the window admits), in closing order.

    Yielded once the whole journal is replayed, so that later redactions apply.
    """
    window = window or Window()
    engine = Engine(cfg.engine_settings(), cfg.city.district_map())
    captured: dict[str, IncidentState] = {}
    end: float | None = None
    for record in journal.records(kinds=REPLAYED):
        end = record.ts if end is None else max(end, record.ts)
        for effect in apply_record(engine, cfg, record):
            if isinstance(effect, IncidentClosed):
                state = engine.incident_state(effect.incident_id, record.ts)
                if window.admits(state):
                    captured[state.id] = state
            elif isinstance(effect, PersonalDataRedacted) and effect.incident_id in captured:
                captured[effect.incident_id] = engine.incident_state(effect.incident_id, record.ts)
    days = cfg.privacy.retention_days
    for state in captured.values():
        if end is not None and state.closed_at is not None and has_personal_data(state):
            due = state.closed_at + days * 86400.0
            if due <= end:  # the engine forgot it before it came due: redact the copy
                state = redact_state(state, due, days, actor="export")
        yield state


def iso(ts: float | None) -> str:
    """UNIX seconds as ISO 8601 UTC (seconds precision), "" for none."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _responders(inc: IncidentState) -> list[str]:
    """Units that served the incident: at close the engine has freed them, so read the history."""
    seen: dict[str, None] = dict.fromkeys(inc.responders)
    for entry in inc.history:
        if entry.action == "dispatched" and entry.detail:
            seen.setdefault(entry.detail.split(" ", 1)[0], None)
    return list(seen)


def to_csv(incidents: Sequence[IncidentState]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for inc in incidents:
        writer.writerow(
            (
                inc.id,
                inc.kind.value,
                inc.priority,
                inc.district,
                inc.place,
                f"{inc.lat:.6f}",
                f"{inc.lon:.6f}",
                iso(inc.created),
                iso(inc.acknowledged_at),
                iso(inc.closed_at),
                inc.status.value,
                inc.disposition or "",
                inc.owner or "",
                ";".join(_responders(inc)),
                len(inc.events),
                len(inc.notes),
            )
        )
    return out.getvalue()


def to_json(incidents: Sequence[IncidentState]) -> str:
    raw = msgspec.json.encode(list(incidents))
    return msgspec.json.format(raw, indent=2).decode() + "\n"


def to_eido(incidents: Sequence[IncidentState], source: eido.EidoSource) -> str:
    docs = eido.build_eidos(incidents, source)
    return json.dumps(docs, indent=2, ensure_ascii=False) + "\n"


def render(
    fmt: str, incidents: Sequence[IncidentState], source: eido.EidoSource | None = None
) -> str:
    if fmt == "csv":
        return to_csv(incidents)
    if fmt == "json":
        return to_json(incidents)
    if fmt == "eido":
        return to_eido(incidents, source or eido.EidoSource())
    raise ExportError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")


def export(
    cfg: Config,
    journal: Journal,
    fmt: str,
    window: Window | None = None,
    source: eido.EidoSource | None = None,
) -> tuple[str, int]:
    """The export as text, and how many incidents it holds."""
    incidents = list(closed_incidents(cfg, journal, window))
    return render(fmt, incidents, source), len(incidents)


def run(args: argparse.Namespace, cfg: Config) -> int:
    try:
        window = Window(
            since=parse_time(args.since) if args.since else None,
            until=parse_time(args.until, end_of_day=True) if args.until else None,
            incident=args.incident,
        )
        agency = args.agency or f"{cfg.core.client_id}.ansim.invalid"
        source = eido.EidoSource(agency_id=agency, element_id=f"core.{agency}")
        with open_existing(cfg, args.journal) as journal:
            text, count = export(cfg, journal, args.format, window, source)
    except (ExportError, NoJournal, JournalError) as exc:
        print(f"ansim export: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, JournalError) else 2
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"ansim export: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    where = f" to {args.output}" if args.output else ""
    print(f"exported {count} closed incident(s) as {args.format}{where}", file=sys.stderr)
    return 0
