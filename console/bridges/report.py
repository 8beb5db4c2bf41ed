"""`ansim report`: the shift's figures for any period, from the journal, as a
self-contained HTML page and a CSV of the incidents behind it.

The journal is replayed from its first record through a fresh engine, as
:mod:`console.bridges.export` does, up to the end of the period: the engine is then
where the live core was at that moment. Its ``shift_times()`` (the open incidents, and
the closed ones it keeps ``[supervisor] keep_s``, here stretched to cover the period)
go through :func:`console.engine.shift.period` and :func:`~console.engine.shift.overdue`,
the same functions behind the supervisor's pane, so both show the same numbers for the
same period.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from console.bridges.export import ExportError, iso, parse_time
from console.bridges.report_html import render
from console.config import Config
from console.core.rebuild import REPLAYED, apply_record
from console.engine.engine import Engine
from console.engine.shift import Targets, Times, overdue, period, shift_start
from console.journal.cli import NoJournal, open_existing
from console.journal.store import Journal, JournalError
from protocols.schemas import Note
from protocols.shift import Overdue, PeriodFigures

DEFAULT_PERIOD_S: Final = 86400.0
# Margin on keep_s so that an incident closed right at ``since`` is still remembered.
KEEP_MARGIN_S: Final = 3600.0

CSV_COLUMNS: Final = (
    "id",
    "priority",
    "created",
    "acked",
    "dispatched",
    "owner",
    "closed",
    "seconds_to_ack",
    "seconds_to_dispatch",
)


class ReportError(Exception):
    """A problem with the request, phrased for the person at the prompt."""


@dataclass(frozen=True, slots=True)
class ShiftPeriod:
    """The incidents opened in ``[since, until)`` (UNIX seconds)."""

    since: float
    until: float


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the page and the CSV are made of."""

    since: float
    until: float
    partition: str
    targets: Targets
    utc_offset_hours: float
    figures: PeriodFigures
    overdue: tuple[Overdue, ...]
    handover: tuple[Note, ...]
    rows: tuple[Times, ...]  # opened in the period, oldest first
    records: int  # journal records replayed


def choose_period(
    cfg: Config,
    now: float,
    since: str | None = None,
    until: str | None = None,
    *,
    shift: bool = False,
) -> ShiftPeriod:
    """The period asked for: ``--since``/``--until``, the shift running at ``--until``
    (else now) with ``--shift``, or by default the 24 hours before ``--until`` (else now)."""
    try:
        end = parse_time(until, end_of_day=True) if until else now
        if shift:
            if since:
                raise ReportError("--shift picks its own start: give --until, not --since")
            # A moment exactly on a shift's start names the shift that just ended.
            start = shift_start(
                end - 1e-6, cfg.supervisor.shift_start_hours, cfg.priority.utc_offset_hours
            )
        else:
            start = parse_time(since) if since else end - DEFAULT_PERIOD_S
    except ExportError as exc:
        raise ReportError(str(exc)) from None
    if start >= end:
        raise ReportError(f"the period is empty: {iso(start)} is not before {iso(end)}")
    return ShiftPeriod(since=start, until=end)


def report_engine(cfg: Config, span_s: float) -> Engine:
    """A fresh engine that remembers closed incidents for at least ``span_s``."""
    settings = cfg.engine_settings()
    keep = max(settings.supervisor.keep_s, span_s + KEEP_MARGIN_S)
    supervisor = msgspec.structs.replace(settings.supervisor, keep_s=keep)
    settings = msgspec.structs.replace(settings, supervisor=supervisor)
    return Engine(settings, cfg.city.district_map())


def build(cfg: Config, journal: Journal, when: ShiftPeriod) -> Report:
    """Replay the journal up to ``when.until`` and compute the period's figures."""
    engine = report_engine(cfg, when.until - when.since)
    records = 0
    for record in journal.records(kinds=REPLAYED):
        if record.ts > when.until:
            # The live core at ``until`` had seen nothing later (records are in seq
            # order, which is time order up to clock jitter: keep reading, skip those).
            continue
        apply_record(engine, cfg, record)
        records += 1
    settings = engine.ctx.settings
    targets = Targets(
        ack_s=settings.supervisor.ack_target_s, dispatch_s=settings.supervisor.dispatch_target_s
    )
    times = engine.shift_times()
    figures = period(times, when.since, when.until, when.until, targets)
    rows = sorted(
        (t for t in times if when.since <= t.created < when.until),
        key=lambda t: (t.created, t.incident_id),
    )
    return Report(
        since=when.since,
        until=when.until,
        partition=settings.partition,
        targets=targets,
        utc_offset_hours=settings.priority.utc_offset_hours,
        figures=figures,
        overdue=tuple(overdue(times, when.until, targets)),
        handover=tuple(engine.ctx.st.handover),
        rows=tuple(rows),
        records=records,
    )


def _seconds(start: float, end: float | None) -> str:
    return "" if end is None else f"{max(0.0, end - start):.1f}"


def to_csv(rows: Sequence[Times]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for t in rows:
        writer.writerow(
            (
                t.incident_id,
                t.priority,
                iso(t.created),
                iso(t.acked),
                iso(t.dispatched),
                t.owner or "",
                iso(t.closed),
                _seconds(t.created, t.acked),
                _seconds(t.created, t.dispatched),
            )
        )
    return out.getvalue()


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write {path}: {exc.strerror}") from None


def run(args: argparse.Namespace, cfg: Config) -> int:
    try:
        when = choose_period(cfg, time.time(), args.since, args.until, shift=args.shift)
        with open_existing(cfg, args.journal) as journal:
            report = build(cfg, journal, when)
        output = args.output or "report.html"
        _write(output, render(report))
        if args.csv:
            _write(args.csv, to_csv(report.rows))
    except (ReportError, NoJournal, JournalError) as exc:
        print(f"ansim report: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, JournalError) else 2
    extra = f" and {args.csv}" if args.csv else ""
    print(
        f"report of {iso(when.since)} to {iso(when.until)}: {report.figures.alarms} alarm(s), "
        f"{len(report.overdue)} overdue at the end; wrote {output}{extra}",
        file=sys.stderr,
    )
    return 0
