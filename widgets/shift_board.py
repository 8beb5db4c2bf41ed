"""The supervisor's pane: how the shift is doing against its time targets.

A pure view of the core's retained ``ShiftReport`` (one per partition, see
``protocols.shift``): nothing is computed here that the core did not send, so the pane
and ``ansim report`` show the same numbers for the same period. For "this shift" and
"the last hour": alarms, and the time from alarm to acknowledge and to dispatch (p50,
p90, max, share within the target), over all and per priority; per operator, open and
overdue incidents with their own times; the overdue list; alarms per minute as a
sparkline; the handover notes.

A p90 past its target is red: fewer than nine in ten were answered in time (the NFPA
1225 way of stating a target). Lines are built in cells (Hangul is two wide) and cut
to the width; from 120 columns the pane has two columns (figures left, the rest right).
Every text from the wire goes through ``plain()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import zip_longest
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from protocols.shift import OperatorFigures, Overdue, PeriodFigures, ShiftReport, Spread
from widgets.format import (
    PLACEHOLDER,
    PRIORITY_STYLE,
    age,
    clock_time,
    count,
    fit,
    fit_middle,
    fit_right,
    plain,
    priority,
)
from widgets.i18n import N_, language, pgettext
from widgets.status_bar import sparkline

Part = tuple[str, Style | None]
Line = list[Part]

LABEL_W, COUNT_W, TIME_W, SHARE_W = 11, 9, 6, 4
SPREAD_W = 3 * (TIME_W + 1) + SHARE_W  # p50 p90 max ok
TABLE_W = LABEL_W + 1 + COUNT_W + 2 * (1 + SPREAD_W)  # 73: fits 80 columns
TWO_COLUMNS_FROM = 120
GAP = 2

_TITLE = Style(bold=True)
_HEAD = Style(bold=True, underline=True)
_DIM = Style(dim=True)
_LATE = Style(color="red", bold=True)
_MESSAGE = Style(italic=True)


def seconds(value: float | None, width: int = TIME_W) -> str:
    """A measured time in ``width`` cells; none measured: "-". Targets are said in
    seconds (10 s, 60 s), so are times under ten minutes: "4.2s", "75s" ("75초"); an
    age beyond ("12m05s") would lose its seconds in a Korean column of six cells."""
    if value is None:
        return "-"
    if not 0.0 <= value < 600.0:
        return age(value, width)
    unit = "초" if language() == "ko" else "s"
    return f"{value:.1f}{unit}" if value < 9.95 else f"{round(value)}{unit}"


def share(value: float | None) -> str:
    """The share within the target as a percentage ("92%"); none measured: "-"."""
    if value is None:
        return "-"
    if not 0.0 <= value <= 1.0:
        return PLACEHOLDER
    return f"{round(value * 100)}%"


# --- lines -----------------------------------------------------------------------------


def cut(line: Line, width: int) -> Line:
    """``line`` cut (marked "…") or padded to exactly ``width`` cells."""
    out: Line = []
    used = 0
    for text, style in line:
        size = cell_len(text)
        if used + size > width:
            out.append((fit(text, width - used), style))
            return out
        out.append((text, style))
        used += size
    if used < width:
        out.append((" " * (width - used), None))
    return out


def _spread(spread: Spread, target: float) -> Line:
    late = spread.p90 is not None and spread.p90 > target
    return [
        (" " + fit_right(seconds(spread.p50), TIME_W), None),
        (" " + fit_right(seconds(spread.p90), TIME_W), _LATE if late else None),
        (" " + fit_right(seconds(spread.max), TIME_W), None),
        (" " + fit_right(share(spread.within_target), SHARE_W), None),
    ]


def _table_head(report: ShiftReport, first: str, second: str) -> list[Line]:
    """The two header lines of a figures table: the targets, then the columns."""
    ack = pgettext("shift", "Acknowledge ≤ {target}").format(target=seconds(report.ack_target_s, 9))
    disp = pgettext("shift", "Dispatch ≤ {target}").format(
        target=seconds(report.dispatch_target_s, 9)
    )
    lead = " " * (LABEL_W + 1 + COUNT_W)
    targets: Line = [(lead + " " + fit(ack, SPREAD_W) + " " + fit(disp, SPREAD_W), _TITLE)]
    spread = "".join(
        " " + fit_right(word, w)
        for word, w in (
            ("p50", TIME_W),
            ("p90", TIME_W),
            (pgettext("shift", "max"), TIME_W),
            (pgettext("shift", "ok"), SHARE_W),
        )
    )
    columns = fit(first, LABEL_W) + " " + fit_right(second, COUNT_W) + spread + spread
    return [targets, [(columns, _HEAD)]]


def period_lines(report: ShiftReport, title: str, period: PeriodFigures | None) -> list[Line]:
    """One period's figures: over all and per priority, against the targets."""
    if period is None:
        return [
            [(title, _TITLE)],
            [(" " + pgettext("shift", "No figures for this period yet."), _MESSAGE)],
        ]
    since = clock_time(period.since)[:5]
    heading = pgettext("shift", "{title} (since {time}): alarms {alarms}").format(
        title=title, time=since, alarms=count(period.alarms)
    )
    lines: list[Line] = [[(heading, _TITLE)], *_table_head(report, "", pgettext("shift", "Alarms"))]
    rows: list[tuple[str, Style | None, int, Spread, Spread]] = [
        (pgettext("shift", "All"), _TITLE, period.alarms, period.to_ack, period.to_dispatch)
    ]
    for figures in sorted(period.by_priority, key=lambda f: f.priority):
        style = PRIORITY_STYLE.get(figures.priority)
        rows.append((priority(figures.priority), style, figures.alarms, figures.to_ack,
                     figures.to_dispatch))  # fmt: skip
    for label, style, alarms, to_ack, to_dispatch in rows:
        lines.append([
            (fit(label, LABEL_W), style),
            (" " + fit_right(count(alarms), COUNT_W), None),
            *_spread(to_ack, report.ack_target_s),
            *_spread(to_dispatch, report.dispatch_target_s),
        ])  # fmt: skip
    return lines


def operator_lines(report: ShiftReport, operators: Sequence[OperatorFigures]) -> list[Line]:
    """Each operator's load now (open, overdue) and times over the shift."""
    lines: list[Line] = [[(pgettext("shift", "Operators (this shift)"), _TITLE)]]
    if not operators:
        return [*lines, [(" " + pgettext("shift", "No operator owns an incident."), _MESSAGE)]]
    head = _table_head(report, pgettext("shift", "Operator"), pgettext("shift", "Open/late"))
    lines += head
    for op in sorted(operators, key=lambda o: (-o.overdue, -o.open, o.operator)):
        load = f"{count(op.open)}/{count(op.overdue)}"
        lines.append([
            (fit_middle(plain(op.operator), LABEL_W), None),
            (" " + fit_right(load, COUNT_W), _LATE if op.overdue else None),
            *_spread(op.to_ack, report.ack_target_s),
            *_spread(op.to_dispatch, report.dispatch_target_s),
        ])  # fmt: skip
    return lines


def _waiting(what: str) -> str:
    """What an overdue incident waits for, as the core words it; a word it does not know as sent."""
    if what == "acknowledge":
        return pgettext("shift", "acknowledge")
    if what == "dispatch":
        return pgettext("shift", "dispatch")
    return plain(what, 20)


def overdue_lines(overdue: Sequence[Overdue]) -> list[Line]:
    """The incidents past a target, the latest first."""
    title = pgettext("shift", "Overdue: {count}").format(count=count(len(overdue)))
    lines: list[Line] = [[(title, _LATE if overdue else _TITLE)]]
    if not overdue:
        return [*lines, [(" " + pgettext("shift", "Nothing is past its target."), _MESSAGE)]]
    for item in sorted(overdue, key=lambda o: -o.late_s):
        lines.append([
            (" " + fit(plain(item.incident_id), 9), None),
            (" " + fit(priority(item.priority), 2), PRIORITY_STYLE.get(item.priority)),
            (" " + fit(_waiting(item.what), 11), None),
            (" +" + fit(seconds(item.late_s, 9), 9), _LATE),
            (" " + (plain(item.owner) or pgettext("shift", "nobody")), None if item.owner else _DIM),
        ])  # fmt: skip
    return lines


def chart_lines(period: PeriodFigures | None, width: int) -> list[Line]:
    """Alarms per minute over the last hour, oldest left, as bars."""
    per_minute = period.per_minute if period else ()
    top = max(per_minute, default=0)
    title = pgettext("shift", "Alarms per minute, last hour (top {top})").format(top=count(top))
    lines: list[Line] = [[(title, _TITLE)]]
    if not per_minute:
        return [*lines, [(" " + pgettext("shift", "No alarm counted yet."), _MESSAGE)]]
    bars = sparkline(per_minute, width=max(1, min(len(per_minute), width - 1)))
    lines.append([(" " + bars, Style(color="yellow"))])
    ago = pgettext("shift", "{minutes} min ago").format(minutes=len(per_minute))
    now = pgettext("shift", "now")
    gap = max(1, cell_len(bars) - cell_len(ago) - cell_len(now))
    lines.append([(" " + ago + " " * gap + now, _DIM)])
    return lines


def handover_lines(report: ShiftReport) -> list[Line]:
    """The notes for the next shift, newest last (as the core keeps them)."""
    lines: list[Line] = [[(pgettext("shift", "Handover notes"), _TITLE)]]
    if not report.handover:
        return [*lines, [(" " + pgettext("shift", "No handover note yet."), _MESSAGE)]]
    for note in report.handover:
        when = clock_time(note.ts)[:5]
        lines.append([(f" {when} ", _DIM), (plain(note.operator, 40) + ": ", _TITLE),
                      (plain(note.text), None)])  # fmt: skip
    return lines


def report_blocks(report: ShiftReport, width: int) -> tuple[list[Line], list[Line]]:
    """(the periods, the rest): one above the other on a narrow screen, side by side wide."""
    figures = [
        *period_lines(report, pgettext("shift", "This shift"), report.shift),
        [],
        *period_lines(report, pgettext("shift", "Last hour"), report.hour),
    ]
    rest = [
        *operator_lines(report, report.shift.by_operator if report.shift else ()),
        [],
        *overdue_lines(report.overdue),
        [],
        *chart_lines(report.hour, width),
        [],
        *handover_lines(report),
    ]
    return figures, rest


def board_lines(reports: Iterable[ShiftReport], width: int) -> list[Line]:
    """Every line of the pane at ``width`` cells, each exactly that wide."""
    reports = list(reports)
    if not reports:
        return [cut([(" " + pgettext("shift", "No shift figures yet: the core sends them once a tick."),
                      _MESSAGE)], width)]  # fmt: skip
    lines: list[Line] = []
    for report in reports:
        if len(reports) > 1 or report.partition:
            label = pgettext("shift", "Partition {name}").format(
                name=plain(report.partition, 40) or "-"
            )
            lines.append(cut([(label, _HEAD)], width))
        if width >= TWO_COLUMNS_FROM:
            left_w = max(TABLE_W, (width - GAP) // 2)
            right_w = width - left_w - GAP
            left, right = report_blocks(report, right_w)
            no_line: Line = []
            for a, b in zip_longest(left, right, fillvalue=no_line):
                lines.append([*cut(a, left_w), (" " * GAP, None), *cut(b, right_w)])
        else:
            left, right = report_blocks(report, width)
            lines += [cut(line, width) for line in (*left, [], *right)]
        lines.append(cut([], width))
    return lines


def board_text(reports: Iterable[ShiftReport], width: int) -> list[str]:
    """The pane as plain text lines (for tests and a quick look)."""
    return ["".join(text for text, _style in line) for line in board_lines(reports, width)]


# --- the widget ------------------------------------------------------------------------------


class ShiftBoard(ScrollView, can_focus=True, inherit_bindings=False):
    """The supervisor pane: a scrollable view of the latest ``ShiftReport`` of each partition."""

    DEFAULT_CSS = """
    ShiftBoard { height: 1fr; overflow-x: hidden; scrollbar-size-vertical: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "scroll_down", N_("Scroll down"), show=False, id="shift.down"),
        Binding("k,up", "scroll_up", N_("Scroll up"), show=False, id="shift.up"),
        Binding("pagedown,ctrl+f", "page_down", N_("Page down"), show=False, id="shift.pagedown"),
        Binding("pageup,ctrl+b", "page_up", N_("Page up"), show=False, id="shift.pageup"),
        Binding("home,g", "scroll_home", N_("Top"), show=False, id="shift.top"),
        Binding("end,G", "scroll_end", N_("Bottom"), show=False, id="shift.bottom"),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.reports: tuple[ShiftReport, ...] = ()
        self._lines: list[Strip] = []
        self._drawn_for: tuple[int, str] | None = None  # (width, language) of _lines

    def set_reports(self, reports: Mapping[str, ShiftReport]) -> None:
        """The latest report of each partition (by partition name)."""
        self.reports = tuple(reports[name] for name in sorted(reports))
        self._drawn_for = None
        self._relayout()

    def _relayout(self) -> None:
        width = self.scrollable_content_region.width
        key = (width, language())
        if self._drawn_for != key:
            self._drawn_for = key
            self._lines = [
                Strip([Segment(text, style) for text, style in line if text], width)
                for line in board_lines(self.reports, max(1, width))
            ]
        self.virtual_size = Size(width, len(self._lines))
        self.refresh()

    def on_resize(self) -> None:
        self._relayout()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if self._drawn_for != (width, language()):
            self._relayout()
        row = round(self.scroll_y) + y
        base = self.rich_style
        if 0 <= row < len(self._lines):
            return self._lines[row].adjust_cell_length(width).apply_style(base)
        return Strip([Segment(" " * width, base)], width)
