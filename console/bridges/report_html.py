"""The shift report as one self-contained HTML page: inline CSS and SVG, no scripts,
fonts or requests, so it opens the same from a mail attachment years later.

Every text that came over the wire (ids, operator names, notes) is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Final

from console.engine.shift import Times
from protocols.shift import Spread

if TYPE_CHECKING:
    from console.bridges.report import Report

# Bar widths tried in turn: the first giving at most MAX_BARS bars over the period, so a
# 2-hour period is drawn per minute, a 12-hour shift per 15 minutes, a week per day.
BIN_CHOICES_S: Final = (60, 300, 900, 3600, 86400)
MAX_BARS: Final = 120
CHART_W, CHART_H, AXIS_H = 960, 180, 22

CSS: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1040px;padding:0 1rem;color:#1b1f24;background:#fff;line-height:1.4}
h1{font-size:1.6rem;margin:0 0 .2rem}h2{font-size:1.15rem;margin:2rem 0 .5rem;
border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
.sub{color:#57606a;margin:0 0 1rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:.75rem}
.card{border:1px solid #d0d7de;border-radius:6px;padding:.6rem .8rem}
.card .label{font-size:.8rem;color:#57606a}.card .value{font-size:1.6rem;font-weight:600}
.card .detail{font-size:.8rem;color:#57606a}
.ok{color:#1a7f37}.bad{color:#cf222e}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #d0d7de;padding:.3rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f6f8fa}
td.text{text-align:left}.empty{color:#57606a;font-style:italic}
dl{font-size:.9rem}dt{font-weight:600}dd{margin:0 0 .5rem 1rem;color:#424a53}
svg text{font:11px system-ui,sans-serif;fill:#57606a}
@media print{body{margin:0}}
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def local(ts: float, offset_hours: float) -> str:
    zone = timezone(timedelta(hours=offset_hours))
    return datetime.fromtimestamp(ts, UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def zone_name(offset_hours: float) -> str:
    sign = "+" if offset_hours >= 0 else "-"
    minutes = round(abs(offset_hours) * 60)
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def duration(seconds: float | None) -> str:
    """12 s, 12.5 s, 1 min, 3 min 05 s, 2 h 03 min; a dash for none measured."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds == int(seconds) else f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        rest = f" {whole % 60:02d} s" if whole % 60 else ""
        return f"{whole // 60} min{rest}"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def share(spread: Spread) -> str:
    return "–" if spread.within_target is None else f"{spread.within_target * 100:.1f} %"


def _share_class(spread: Spread, goal: float = 0.9) -> str:
    if spread.within_target is None:
        return ""
    return "ok" if spread.within_target >= goal else "bad"


def bins(rows: Iterable[Times], since: float, until: float) -> tuple[int, list[int]]:
    """The bar width (seconds) and the alarms opened in each bar, oldest first."""
    span = until - since
    width = next((w for w in BIN_CHOICES_S if span / w <= MAX_BARS), BIN_CHOICES_S[-1])
    counts = [0] * max(1, -(-int(span) // width))
    for t in rows:
        if since <= t.created < until:
            counts[min(len(counts) - 1, int((t.created - since) // width))] += 1
    return width, counts


def chart(rows: Sequence[Times], since: float, until: float, offset_hours: float) -> str:
    width, counts = bins(rows, since, until)
    top = max(counts) or 1
    bar_w = CHART_W / len(counts)
    unit = {60: "minute", 300: "5 minutes", 900: "15 minutes", 3600: "hour", 86400: "day"}
    parts = [
        f'<svg role="img" viewBox="0 0 {CHART_W} {CHART_H + AXIS_H}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="alarms per {unit[width]}">',
        f'<line x1="0" y1="{CHART_H}" x2="{CHART_W}" y2="{CHART_H}" stroke="#8c959f"/>',
    ]
    for i, n in enumerate(counts):
        h = (CHART_H - 14) * n / top
        x = i * bar_w
        start = local(since + i * width, offset_hours)
        parts.append(
            f'<rect x="{x + 0.5:.1f}" y="{CHART_H - h:.1f}" width="{max(bar_w - 1, 0.5):.1f}" '
            f'height="{h:.1f}" fill="#0969da"><title>{esc(start)}: {n}</title></rect>'
        )
    ticks = max(1, len(counts) // 8)
    for i in range(0, len(counts), ticks):
        label = local(since + i * width, offset_hours)[11:] if width < 86400 else ""
        label = label or local(since + i * width, offset_hours)[:10]
        parts.append(f'<text x="{i * bar_w + 2:.1f}" y="{CHART_H + 15}">{esc(label)}</text>')
    parts.append(f'<text x="{CHART_W - 4}" y="11" text-anchor="end">max {top} per bar</text>')
    parts.append("</svg>")
    caption = (
        f"Alarms opened per {unit[width]} ({len(counts)} bars; local time, "
        f"{zone_name(offset_hours)}). Hover a bar for its count."
    )
    return "\n".join(parts) + f'<p class="sub">{esc(caption)}</p>'


def _card(label: str, value: str, detail: str = "", cls: str = "") -> str:
    return (
        f'<div class="card"><div class="label">{esc(label)}</div>'
        f'<div class="value {cls}">{esc(value)}</div>'
        f'<div class="detail">{esc(detail)}</div></div>'
    )


def _spread_cells(spread: Spread) -> str:
    cells = (str(spread.count), share(spread), duration(spread.p50), duration(spread.p90),
             duration(spread.max))  # fmt: skip
    cls = _share_class(spread)
    return "".join(
        f'<td class="{cls}">{esc(c)}</td>' if i == 1 and cls else f"<td>{esc(c)}</td>"
        for i, c in enumerate(cells)
    )


SPREAD_HEAD: Final = "<th>n</th><th>within target</th><th>p50</th><th>p90</th><th>max</th>"


def _table(head: str, rows: Sequence[str], empty: str) -> str:
    if not rows:
        return f'<p class="empty">{esc(empty)}</p>'
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _two_level_head(first: str, extra: str = "") -> str:
    return (
        f'<tr><th rowspan="2">{first}</th>{extra}<th colspan="5">Alarm → acknowledged</th>'
        f'<th colspan="5">Alarm → first unit dispatched</th></tr><tr>{SPREAD_HEAD}{SPREAD_HEAD}</tr>'
    )


def render(report: Report) -> str:
    f, t, tz = report.figures, report.targets, report.utc_offset_hours
    zone = zone_name(tz)
    title = f"Shift report {local(report.since, tz)} – {local(report.until, tz)} ({zone})"
    cards = [
        _card("Alarms", str(f.alarms), "incidents opened in the period"),
        _card(
            "Acknowledged within target",
            share(f.to_ack),
            f"{f.to_ack.count} acknowledged; target {duration(t.ack_s)}",
            _share_class(f.to_ack),
        ),
        _card(
            "Dispatched within target",
            share(f.to_dispatch),
            f"{f.to_dispatch.count} dispatched; target {duration(t.dispatch_s)}",
            _share_class(f.to_dispatch),
        ),
        _card(
            "Time to acknowledge",
            f"p50 {duration(f.to_ack.p50)}",
            f"p90 {duration(f.to_ack.p90)} · max {duration(f.to_ack.max)}",
        ),
        _card(
            "Time to dispatch",
            f"p50 {duration(f.to_dispatch.p50)}",
            f"p90 {duration(f.to_dispatch.p90)} · max {duration(f.to_dispatch.max)}",
        ),
        _card("Overdue at the end", str(len(report.overdue)), "open incidents past a target"),
    ]
    by_priority = [
        f"<tr><td>P{p.priority}</td><td>{p.alarms}</td>"
        f"{_spread_cells(p.to_ack)}{_spread_cells(p.to_dispatch)}</tr>"
        for p in f.by_priority
    ]
    by_operator = [
        f"<tr><td>{esc(o.operator)}</td><td>{o.open}</td><td>{o.overdue}</td>"
        f"{_spread_cells(o.to_ack)}{_spread_cells(o.to_dispatch)}</tr>"
        for o in f.by_operator
    ]
    late = [
        f"<tr><td>{esc(o.incident_id)}</td><td>P{o.priority}</td><td class='text'>"
        f"{esc(o.what)}</td><td>{esc(duration(o.late_s))}</td>"
        f"<td class='text'>{esc(o.owner or 'nobody')}</td></tr>"
        for o in report.overdue
    ]
    notes = [
        f"<li><strong>{esc(local(n.ts, tz))}</strong>, {esc(n.operator)}: {esc(n.text)}</li>"
        for n in report.handover
    ]
    body = [
        f"<h1>{esc(title)}</h1>",
        f'<p class="sub">Partition {esc(report.partition)} · from the journal '
        f"({report.records} records replayed) · incidents opened from "
        f"{esc(local(report.since, tz))} up to {esc(local(report.until, tz))} {esc(zone)}.</p>",
        "<h2>Targets</h2>",
        f"<p>Acknowledge an alarm within <strong>{esc(duration(t.ack_s))}</strong>; dispatch "
        f"its first unit within <strong>{esc(duration(t.dispatch_s))}</strong> of the alarm. "
        "NFPA 1225 asks that 90 % of alarms meet each; shares of 90 % or more are green.</p>",
        "<h2>Headline</h2>",
        f'<div class="cards">{"".join(cards)}</div>',
        "<h2>Alarms over the period</h2>",
        chart(report.rows, report.since, report.until, tz),
        "<h2>Per priority</h2>",
        _table(
            _two_level_head("Priority", '<th rowspan="2">alarms</th>'),
            by_priority,
            "No alarms in the period.",
        ),
        "<h2>Per operator</h2>",
        '<p class="sub">Open and overdue: the incidents each operator owns at the end of '
        "the period. Times: the incidents opened in the period it owns now.</p>",
        _table(
            _two_level_head("Operator", '<th rowspan="2">open</th><th rowspan="2">overdue</th>'),
            by_operator,
            "No operator owned an incident.",
        ),
        f"<h2>Overdue at {esc(local(report.until, tz))}</h2>",
        _table(
            "<tr><th>Incident</th><th>Priority</th><th>waiting to</th><th>late by</th>"
            "<th>owner</th></tr>",
            late,
            "Nothing overdue.",
        ),
        "<h2>Handover notes</h2>",
        f"<ul>{''.join(notes)}</ul>" if notes else '<p class="empty">No handover notes.</p>',
        "<h2>How to read this report</h2>",
        GLOSSARY,
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


GLOSSARY: Final = """<dl>
<dt>Alarms</dt><dd>Incidents opened in the period (an SOS, a CCTV detection, an alert
that became an incident). Resends and events folded into an incident are not counted again.</dd>
<dt>Time to acknowledge / to dispatch</dt><dd>Seconds from the incident's opening to its
acknowledgement by an operator, and to the first unit dispatched to it. Only steps that had
happened by the end of the period are measured; n is how many were.</dd>
<dt>Within target</dt><dd>Of the measured ones, the share done within the target.</dd>
<dt>p50, p90, max</dt><dd>Nearest-rank percentiles: the p90 of ten values is the ninth
smallest, a time that really happened, never an interpolation. p50 is the median.</dd>
<dt>Overdue</dt><dd>Open incidents at the end of the period not acknowledged within the
acknowledge target, or acknowledged but without a unit past the dispatch target.</dd>
<dt>Where the numbers come from</dt><dd>The journal, replayed through the core's own engine
up to the end of the period; the figures are computed by the same code as the supervisor's
pane, so both agree for the same period.</dd>
</dl>"""
