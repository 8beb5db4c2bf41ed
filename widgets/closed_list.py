"""The recently closed incidents, newest first, with a search of their own.

A Line-API list (see ``line_list``) over the core's retained ``ClosedList``: when it
closed, the id, priority, kind, how it ended, district and place, the disposition
and who closed it (its owner when the core did not say); from 96 columns also how
long it took, then the units that served it and its title. ``set_query(text)`` keeps
the incidents matching every word (case-insensitive) in the id, district, place,
title, disposition, owner, closer, kind, ending, priority (``p1``) or a unit's id. The cursor stays on its incident when the
list is republished or the search changes.

A closed record carries no personal data (``docs/privacy.md``); every text in it
came from the wire and goes through ``plain()`` before it is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.style import Style
from textual.strip import Strip

from protocols.schemas import ClosedIncident, ClosedList
from widgets.format import (
    PLACEHOLDER,
    PRIORITY_STYLE,
    STATUS_LABEL,
    STATUS_STYLE,
    age,
    age_width,
    clock_time,
    district_name,
    fit,
    fit_middle,
    fit_right,
    kind_label,
    matches,
    place_label,
    plain,
    plausible_time,
    priority,
    search_query,
    search_text,
    status_label,
)
from widgets.i18n import _, language
from widgets.line_list import LineList, cells

TIME_W, ID_W, PRI_W, KIND_W, END_W = 6, 8, 2, 5, 5
_BASE_W = TIME_W + ID_W + PRI_W + KIND_W + END_W + 5  # five separators, one before "where"
OWNER_W, TOOK_W, UNITS_W, TITLE_W = 8, 6, 17, 24  # "unit-police-01+1" is 16
WHERE_MIN_W, WHERE_MAX_W, DISPOSITION_MIN_W, DISPOSITION_MAX_W = 8, 40, 8, 48
_DIM = Style(dim=True)
_MESSAGE = Style(italic=True)


@dataclass(frozen=True)
class _Layout:
    where: int
    disposition: int
    owner: int
    took: int
    units: int
    title: int


def _layout(width: int) -> _Layout:
    """Fixed columns, the optional ones as the width allows; where and disposition share the rest."""
    owner = OWNER_W if width >= 64 else 0
    took = (age_width() if language() == "ko" else TOOK_W) if width >= 96 else 0
    units = UNITS_W if width >= 110 else 0
    title = TITLE_W if width >= 130 else 0
    rest = width - _BASE_W - sum(w + 1 for w in (owner, took, units, title) if w) - 1
    where = min(WHERE_MAX_W, max(WHERE_MIN_W, rest * 11 // 20))
    disposition = max(DISPOSITION_MIN_W, rest - where)
    if title and disposition > DISPOSITION_MAX_W:  # a wide screen: the rest to the title
        title += disposition - DISPOSITION_MAX_W
        disposition = DISPOSITION_MAX_W
    return _Layout(where, disposition, owner, took, units, title)


def closed_time(ts: object) -> str:
    """HH:MM of the local clock (the list covers a day); ``?`` for a time no clock gives."""
    shown = clock_time(ts)
    return shown if shown == PLACEHOLDER else shown[:5]


def _newest_first(record: ClosedIncident) -> tuple[float, str]:
    """Sort key (reversed): a time no clock gives sorts as the oldest, never on top."""
    when = record.closed_at if plausible_time(record.closed_at) else 0.0
    return (when, plain(record.id))


def _haystack(r: ClosedIncident) -> str:
    # The district as shown too: a search typed in Hangul ("강남") finds it in Korean.
    return search_text(
        r.id, r.district, r.place, r.title, r.disposition or "", r.owner or "",
        r.closed_by or "", r.kind, r.status, priority(r.priority), " ".join(r.responders),
        district_name(r.district),
    )  # fmt: skip


class ClosedIncidentList(LineList):
    """The closed list: newest first, searchable; pure view of the retained ``ClosedList``."""

    DEFAULT_CSS = """
    ClosedIncidentList { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.records: list[ClosedIncident] = []  # shown: matching the search, newest first
        self.query_text = ""
        self.total = 0  # closed in the window, as the core counted (may exceed what it sent)
        self.window_s = 86400.0
        self._all: list[ClosedIncident] = []
        self._haystacks: dict[int, str] = {}  # id(record) -> its searchable text

    # --- data in -----------------------------------------------------------------

    def set_closed(self, listing: ClosedList | Sequence[ClosedIncident] | None) -> None:
        """The core's latest list (``None``: nothing received yet)."""
        if listing is None:
            records: Sequence[ClosedIncident] = ()
        elif isinstance(listing, ClosedList):
            records = listing.incidents
            self.window_s = listing.window_s
        else:
            records = listing
        self._all = sorted(records, key=_newest_first, reverse=True)
        self._haystacks = {id(r): _haystack(r) for r in self._all}
        received = listing.total if isinstance(listing, ClosedList) else 0
        self.total = max(received, len(self._all))
        self._rebuild()

    def set_query(self, text: str) -> None:
        """Show only the incidents matching every word of ``text`` (case-insensitive)."""
        query = search_query(text)
        if query != self.query_text:
            self.query_text = query
            self._rebuild()

    # --- reading ------------------------------------------------------------------

    def selected_record(self) -> ClosedIncident | None:
        return self.records[self.cursor] if self.records else None

    def describe(self) -> str:
        """What the pane shows, for a status line: counts and the search."""
        hours = _("{hours} h").format(hours=f"{self.window_s / 3600:g}")
        if self.query_text:
            return _('"{query}" {shown}/{listed} closed').format(
                query=self.query_text, shown=len(self.records), listed=len(self._all)
            )
        if self.total > len(self._all):
            return _("latest {listed} of {total} closed in {hours}").format(
                listed=len(self._all), total=self.total, hours=hours
            )
        return _("{listed} closed in {hours}").format(listed=len(self._all), hours=hours)

    def _rebuild(self) -> None:
        selected = self.records[self.cursor].id if self.records else None
        if self.query_text:
            hay, query = self._haystacks, self.query_text
            self.records = [r for r in self._all if matches(hay[id(r)], query)]
        else:
            self.records = list(self._all)
        if selected is not None:
            ids = [r.id for r in self.records]
            self.cursor = ids.index(selected) if selected in ids else self.cursor
        self.rows_changed()

    # --- rendering ------------------------------------------------------------------

    def row_count(self) -> int:
        return len(self.records)

    def render_header(self, width: int) -> Strip:
        lay = _layout(width)
        text = " ".join((
            fit(_("Closed"), TIME_W),
            fit(_("Incident"), ID_W),
            fit(_("P"), PRI_W),
            fit(_("Kind"), KIND_W),
            fit(_("End"), END_W),
            fit(_("District / place"), lay.where),
            fit(_("Disposition"), lay.disposition),
        ))  # fmt: skip
        for label, w in ((_("By"), lay.owner), (_("Took"), lay.took), (_("Units"), lay.units)):
            if w:
                text += " " + fit(label, w)
        if lay.title:
            text += " " + fit(_("Title"), lay.title)
        return cells((text, None))

    def render_line(self, y: int) -> Strip:
        if y == 1 and not self.records:  # say why the pane is empty rather than show nothing
            width = self.scrollable_content_region.width
            hours = f"{self.window_s / 3600:g}"
            if self._all:
                text = " " + _('Nothing closed matches "{query}" ({listed} listed).').format(
                    query=self.query_text, listed=len(self._all)
                )
            else:
                text = " " + _("No incident closed in the last {hours} h.").format(hours=hours)
            return cells((fit(text, width), _MESSAGE)).apply_style(self.rich_style)
        return super().render_line(y)

    def render_row(self, index: int, width: int) -> Strip:
        r = self.records[index]
        lay = _layout(width)
        where = place_label(r.district, r.place)
        parts: list[tuple[str, Style | None]] = [
            (
                fit_right(closed_time(r.closed_at), TIME_W) + " " + fit(plain(r.id), ID_W) + " ",
                None,
            ),
            (fit(priority(r.priority), PRI_W), PRIORITY_STYLE.get(r.priority)),
            (" " + fit(kind_label(r.kind), KIND_W) + " ", None),
            (fit(_ending(r.status), END_W), STATUS_STYLE.get(r.status)),
            (" " + fit(where, lay.where), None),
            (" " + fit(plain(r.disposition) or "-", lay.disposition), None),
        ]
        if lay.owner:
            by = plain(r.closed_by or r.owner)
            parts.append((" " + fit_middle(by or "-", lay.owner), None if by else _DIM))
        if lay.took:
            known = plausible_time(r.created) and plausible_time(r.closed_at)
            took = age(r.closed_at - r.created, lay.took) if known else PLACEHOLDER
            parts.append((" " + fit_right(took, lay.took), None))
        if lay.units:
            units = r.responders
            label = (
                plain(units[0]) + (f"+{len(units) - 1}" if len(units) > 1 else "") if units else "-"
            )
            parts.append((" " + fit_middle(label, lay.units), None if units else _DIM))
        if lay.title:
            parts.append((" " + fit(plain(r.title), lay.title), None))
        return cells(*parts)


def _ending(status: object) -> str:
    """How it ended, in the column's word (DONE, FALSE); a status of no label as it came."""
    return status_label(status) if status in STATUS_LABEL else plain(status)
