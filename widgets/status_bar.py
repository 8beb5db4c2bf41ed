"""One line (two with system alarms) that always tells the truth about the seat.

Operator and role, broker link, the active filter, news (a new P1 waiting), open
P1/P2, the oldest unacknowledged age, event-rate sparkline, who else is on, and
the core's system alarms in red. The line is cut at the terminal's width, so what
must never be cut comes first: at 80 columns the filter and the news always show.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text
from textual.widget import Widget

from protocols.schemas import Summary
from widgets.format import count, fit, plain, rate, since
from widgets.i18n import _, pgettext

_SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 8) -> str:
    """The last ``width`` rates as bars. A rate that is no real rate (negative, inf,
    nan) draws as the lowest bar: an int() of it would raise or index off the end."""
    values = [v if _rate_ok(v) else 0.0 for v in list(values)[-width:]]
    if not values:
        return ""
    top = max(values) or 1.0
    return "".join(_SPARK[min(7, int(v / top * 7.999))] for v in values)


def _rate_ok(value: object) -> bool:
    return isinstance(value, int | float) and 0.0 <= value < 1e300  # inf and nan fail too


class StatusBar(Widget):
    DEFAULT_CSS = """
    StatusBar { height: auto; max-height: 2; background: $panel; }
    """

    def __init__(self, operator: str, role: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.operator, self.role = operator, role
        self.link: str | None = None  # as the app words it, translated; None: offline
        self.link_ok = False
        self.summary: Summary | None = None
        self.others: list[str] = []
        self.local_alarms: list[str] = []  # known to this console only, e.g. a child process died
        self.filter_text = ""
        self.news = ""  # e.g. "NEW P1 I-000042 Gangnam [space]": something that needs eyes
        self.now = 0.0
        self._term = 0  # the active core's lease term, as last seen (0: a lone core)
        self._term_changed_at: float | None = None

    def update_state(
        self,
        *,
        link: str | None = None,
        link_ok: bool | None = None,
        summary: Summary | None = None,
        others: Iterable[str] | None = None,
        filter_text: str | None = None,
        news: str | None = None,
        now: float | None = None,
        local_alarms: Iterable[str] | None = None,
    ) -> None:
        lines = self._lines()
        if local_alarms is not None:
            self.local_alarms = list(local_alarms)
        if link is not None:
            self.link = link
        if link_ok is not None:
            self.link_ok = link_ok
        if summary is not None:
            self.summary = summary
            if summary.term and self._term and summary.term != self._term:
                self._term_changed_at = self.now  # another core took over: say so
            self._term = summary.term or self._term
        if others is not None:
            self.others = sorted(others)
        if filter_text is not None:
            self.filter_text = filter_text
        if news is not None:
            self.news = news
        if now is not None:
            self.now = now
        # A relayout repaints the whole screen: only when the alarm line comes or goes.
        self.refresh(layout=self._lines() != lines)

    def _lines(self) -> int:
        alarms = bool(self.local_alarms) or bool(self.summary is not None and self.summary.alarms)
        return 2 if alarms else 1

    def _link_text(self) -> str:
        return pgettext("link", "offline") if self.link is None else plain(self.link)

    def render(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        # Operator names, alarms and the link's words may come from the wire: all plain().
        t.append(f" {plain(self.operator)}", style="bold")
        t.append(f" ({pgettext('role', plain(self.role))}) ")
        t.append(("● " if self.link_ok else "✖ ") + self._link_text(),
                 style="green" if self.link_ok else "bold reverse red")  # fmt: skip
        if self.filter_text:
            # Reversed: a queue that shows less than everything must look different.
            t.append("  ")
            t.append(f" /{fit(plain(self.filter_text), 24).rstrip()} ", style="bold reverse cyan")
        if self.news:
            t.append("  ")
            t.append(f" {plain(self.news, 60)} ", style="bold reverse red")
        s = self.summary
        if s is not None:
            p1, p2 = (*s.open_by_priority, 0, 0)[:2]
            t.append("  P1 ", style="bold")
            t.append(count(p1), style="bold red" if p1 else "")
            t.append(" P2 ", style="bold")
            t.append(count(p2), style="bold yellow" if p2 else "")
            t.append(" " + _("open {count}").format(count=count(s.open_total)))
            if s.oldest_unacked is not None:
                t.append("  " + _("unacked") + " ")
                t.append(since(s.oldest_unacked, self.now), style="bold red")
            t.append(f"  {sparkline(s.rate_history)} {rate(s.events_per_s)}/s")
            if s.term:
                t.append(
                    "  "
                    + _("core {host} t{term}").format(
                        host=active_host(s.lease_holder), term=s.term
                    ),
                    style="dim",
                )
                changed = self._term_changed_at
                if changed is not None and 0 <= self.now - changed < TAKEOVER_SHOWN_S:
                    t.append(" " + _("TAKEN OVER") + " ", style="bold reverse yellow")
            elif s.core_id.endswith(" cores"):  # a city-wide seat: several partitions merged
                t.append(f"  {_cores(plain(s.core_id, 12))}", style="dim")
        if self.others:
            t.append("  " + _("ops:") + " " + " ".join(plain(o) for o in self.others), style="dim")
        # One line, cut to the width: a wrapped status bar would push the queue down.
        t.truncate(max(1, self.size.width), overflow="ellipsis")
        alarms = [*(s.alarms if s is not None else ()), *self.local_alarms]
        if alarms:
            t.append("\n")
            t.append(
                " " + _("ALARM:") + " " + " | ".join(plain(a) for a in alarms),
                style="bold white on red",
            )
        return t


TAKEOVER_SHOWN_S = 15.0  # how long a change of active core stays marked


def active_host(holder: str) -> str:
    """The host of a lease holder id (``client@host:pid:nonce``), for a short label."""
    host = holder.partition("@")[2].partition(":")[0]
    return plain(host, 20) or "?"


def _cores(label: str) -> str:
    """A city-wide seat's "3 cores" in the active language."""
    number, _space, word = label.partition(" ")
    return _("{count} cores").format(count=number) if word == "cores" else label
