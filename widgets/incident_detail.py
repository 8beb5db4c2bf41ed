"""Everything about one incident. Personal data (name, phone) appears only here."""

from __future__ import annotations

from collections.abc import Mapping

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from protocols.schemas import IncidentState, Recommendation, ResponderState, ResponderStatus
from protocols.topics import DEFAULT_PARTITION
from widgets.format import (
    CAMERA_STYLE,
    PRIORITY_STYLE,
    RESPONDER_STYLE,
    STATUS_STYLE,
    age,
    ago,
    camera_status,
    clock_time,
    coordinate,
    count,
    distance,
    district_name,
    history_action,
    incident_status_word,
    kind_label,
    pad,
    pad_left,
    plain,
    plausible_time,
    priority,
    shelter_kind,
    since,
    unit_kind,
    unit_status,
)
from widgets.i18n import _


class IncidentDetail(VerticalScroll, can_focus=True):
    DEFAULT_CSS = """
    IncidentDetail { height: 1fr; scrollbar-size-vertical: 1; padding: 0 1; }
    IncidentDetail > Static { width: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.incident: IncidentState | None = None
        self.responders: Mapping[str, ResponderState] = {}
        self.now = 0.0
        # Kept: show() may come before compose ran. No markup: the body is wire data.
        self.body = Static(id="detail-body", markup=False)

    def compose(self) -> ComposeResult:
        yield self.body

    def show(
        self,
        incident: IncidentState | None,
        now: float,
        responders: Mapping[str, ResponderState] | None = None,
    ) -> None:
        self.incident, self.now = incident, now
        if responders is not None:
            self.responders = responders
        # A layout pass arranges the whole screen again (~8 ms under a storm, in the frame
        # that answers a keypress): only when the body's height changes.
        body = self.body
        size = body.content_size
        body.update(self.render_text(), layout=not size.width)
        if size.width and body.get_content_height(size, size, size.width) != size.height:
            body.refresh(layout=True)

    def render_text(self) -> Text:
        """The detail as a Rich ``Text`` built with ``append`` (never parsed as markup);
        every wire text through ``plain`` and every number through a formatter."""
        inc, now = self.incident, self.now
        if inc is None:
            return Text(_("No incident selected."), style="dim")
        t = Text()
        t.append(f"{plain(inc.id)}  ", style="bold")
        t.append(priority(inc.priority), style=PRIORITY_STYLE.get(inc.priority, ""))
        t.append(f"  {kind_label(inc.kind)}  ")
        t.append(incident_status_word(inc.status), style=STATUS_STYLE.get(inc.status, ""))
        if inc.escalated:
            t.append("  " + _("ESCALATED"), style="bold reverse red")
        t.append(f"\n{plain(inc.title)}\n", style="bold")
        t.append(f"{district_name(inc.district)} · {plain(inc.place)}  "
                 f"({coordinate(inc.lat, 90)}, {coordinate(inc.lon, 180)})\n")  # fmt: skip
        sos = (
            " · " + _("{count} SOS").format(count=count(inc.sos_count))
            if _more_than_one(inc.sos_count)
            else ""
        )
        _field(t, _("Source"), plain(inc.source) + sos)
        if inc.person or inc.phone:
            _field(t, _("Person"), "  ".join(plain(x) for x in (inc.person, inc.phone) if x))
        _field(t, _("Opened"), f"{clock_time(inc.created)} ({ago(since(inc.created, now))})")
        if inc.acknowledged_at:
            _field(t, _("Acked"), clock_time(inc.acknowledged_at))
        elif inc.ack_deadline:
            _field(t, _("Ack by"), clock_time(inc.ack_deadline) + _due(inc.ack_deadline, now))
        if inc.dispatch_deadline and not inc.responders:
            _field(t, _("Disp. by"), clock_time(inc.dispatch_deadline))
        if inc.closed_at:
            _field(t, _("Closed"), f"{clock_time(inc.closed_at)} {plain(inc.disposition)}")
        if inc.partition and inc.partition != DEFAULT_PARTITION:
            # A city-wide seat sees every partition: whose core this incident is.
            _field(t, _("Core"), _("partition {name}").format(name=plain(inc.partition)))
        _field(t, _("Owner"), plain(inc.owner) or "-")
        _field(t, _("Units"), ", ".join(plain(r) for r in inc.responders) or "-")
        if inc.alert:
            # The core's word that a unit left: the incident may need a new dispatch.
            t.append(f"\n! {plain(inc.alert)}", style="bold reverse yellow")
            if plausible_time(inc.alert_ts):
                t.append(f"  {clock_time(inc.alert_ts)}", style="bold")
            t.append("\n")
        if inc.recommended:
            # As the dispatch dialog: never a unit this console knows is busy or off duty.
            t.append("\n" + _("Recommended units (fastest first)") + "\n", style="bold underline")
            free = free_recommendations(inc, self.responders)
            if not free:
                t.append(
                    "  " + _("none free now: the list refreshes as units report") + "\n",
                    style="dim",
                )
            for rec in free:
                unit = self.responders.get(rec.responder_id)
                status = unit.status if unit else None
                t.append("  " + _("ETA") + f" {pad_left(eta(rec.eta_s), 6)}  "
                         f"{pad(plain(rec.responder_id), 16)} {pad(unit_kind(rec.kind), 6)} "
                         f"{pad_left(distance(rec.distance_m), 8)}  ")  # fmt: skip
                t.append(unit_status(status) if status else "?",
                         style=RESPONDER_STYLE.get(status or "", "dim"))  # fmt: skip
                t.append("\n")
        if inc.cameras:
            t.append("\n" + _("Nearest cameras") + "\n", style="bold underline")
            for cam in inc.cameras:
                t.append(f"  {pad(plain(cam.camera_id), 14)} ")
                t.append(pad(camera_status(cam.status), 9), style=CAMERA_STYLE.get(cam.status, ""))
                t.append(f" {pad_left(distance(cam.distance_m), 8)}  {plain(cam.name)}\n")
                if cam.snapshot_url:
                    t.append(f"    {plain(cam.snapshot_url)}\n", style="dim")
        if inc.shelters:
            t.append("\n" + _("Nearest shelters") + "\n", style="bold underline")
            for sh in inc.shelters:
                t.append(
                    f"  {plain(sh.name)}  {shelter_kind(sh.kind)}  {distance(sh.distance_m)}\n"
                )
        if inc.events:
            t.append("\n" + _("Correlated events") + "\n", style="bold underline")
            for ev in inc.events:
                t.append(f"  {clock_time(ev.ts)} {pad(plain(ev.kind), 10)} {plain(ev.source)}  "
                         f"{plain(ev.detail)}\n")  # fmt: skip
                if ev.snapshot_url:
                    t.append(f"    {plain(ev.snapshot_url)}\n", style="dim")
        if inc.notes:
            t.append("\n" + _("Notes") + "\n", style="bold underline")
            for note in inc.notes:
                t.append(f"  {clock_time(note.ts)} {plain(note.operator)}: {plain(note.text)}\n")
        if inc.history:
            t.append("\n" + _("History") + "\n", style="bold underline")
            for h in inc.history:
                t.append(f"  {clock_time(h.ts)} {pad(plain(h.actor), 8)} {history_action(h.action)}  "
                         f"{plain(h.detail)}\n")  # fmt: skip
        return t


def _more_than_one(n: object) -> bool:
    return isinstance(n, int | float) and n > 1  # nan and non-numbers: no count shown


def _due(deadline: float, now: float) -> str:
    """How late, or how long left; nothing when the deadline is no real time."""
    if not plausible_time(deadline):
        return ""
    late = now - deadline
    if late > 0:
        return "  " + _("OVERDUE {age}").format(age=age(late))
    return "  " + _("in {age}").format(age=age(-late))


def _field(t: Text, label: str, value: str) -> None:
    # In cells, and at least one space after: a Korean label may be as wide as the column.
    t.append(pad(label, 9) if cell_len(label) < 9 else label + " ", style="dim")
    t.append(value + "\n")


def eta(seconds: object) -> str:
    """An ETA as a dispatcher says it: ``0:45``, ``5:24`` under ten minutes, then ``16 min``,
    ``2h05``; at most 6 cells."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "-"
    if not 0 <= seconds < 100 * 3600:  # nan fails both; negative and absurd alike
        return "-" if not seconds >= 0 else ">99h"
    s = round(seconds)
    if s < 600:
        return f"{s // 60}:{s % 60:02d}"
    if s < 5400:
        return _("{minutes} min").format(minutes=round(s / 60))
    return _("{hours}h{minutes:02d}").format(hours=s // 3600, minutes=s % 3600 // 60)


def free_recommendations(
    incident: IncidentState, responders: Mapping[str, ResponderState]
) -> list[Recommendation]:
    """The recommended units, fastest first, less any this console knows to be busy or off
    duty now (its responder state can be newer than the incident's); no unit twice."""
    out: list[Recommendation] = []
    seen: set[str] = set()
    for rec in incident.recommended:
        unit = responders.get(rec.responder_id)
        if rec.responder_id in seen or (
            unit is not None and unit.status != ResponderStatus.AVAILABLE
        ):
            continue
        seen.add(rec.responder_id)
        out.append(rec)
    return out


def first_free(incident: IncidentState, responders: Mapping[str, ResponderState]) -> str | None:
    """The fastest recommended unit that is available now (the dispatch default), or None."""
    free = free_recommendations(incident, responders)
    return free[0].responder_id if free else None
