"""Everything about one incident. Personal data (name, phone) appears only here."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from protocols.schemas import IncidentState, ResponderState, ResponderStatus
from widgets.format import (
    CAMERA_STYLE,
    KIND_LABEL,
    PRIORITY_STYLE,
    RESPONDER_STYLE,
    STATUS_STYLE,
    age,
    clock_time,
    distance,
)


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
        self.body = Static(id="detail-body")  # kept: show() may come before compose ran

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
        inc, now = self.incident, self.now
        if inc is None:
            return Text("No incident selected.", style="dim")
        t = Text()
        t.append(f"{inc.id}  ", style="bold")
        t.append(f"P{inc.priority}", style=PRIORITY_STYLE.get(inc.priority, ""))
        t.append(f"  {KIND_LABEL.get(inc.kind, inc.kind)}  ")
        t.append(str(inc.status).upper(), style=STATUS_STYLE.get(inc.status, ""))
        if inc.escalated:
            t.append("  ESCALATED", style="bold reverse red")
        t.append(f"\n{inc.title}\n", style="bold")
        t.append(f"{inc.district} · {inc.place}  ({inc.lat:.5f}, {inc.lon:.5f})\n")
        _field(t, "Source", inc.source + (f" · {inc.sos_count} SOS" if inc.sos_count > 1 else ""))
        if inc.person or inc.phone:
            _field(t, "Person", "  ".join(x for x in (inc.person, inc.phone) if x))
        _field(t, "Opened", f"{clock_time(inc.created)} ({age(now - inc.created)} ago)")
        if inc.acknowledged_at:
            _field(t, "Acked", clock_time(inc.acknowledged_at))
        elif inc.ack_deadline:
            late = now - inc.ack_deadline
            _field(t, "Ack by", clock_time(inc.ack_deadline)
                   + (f"  OVERDUE {age(late)}" if late > 0 else f"  in {age(-late)}"))  # fmt: skip
        if inc.dispatch_deadline and not inc.responders:
            _field(t, "Disp. by", clock_time(inc.dispatch_deadline))
        if inc.closed_at:
            _field(t, "Closed", f"{clock_time(inc.closed_at)} {inc.disposition or ''}")
        _field(t, "Owner", inc.owner or "-")
        _field(t, "Units", ", ".join(inc.responders) or "-")
        if inc.recommended:
            t.append("\nRecommended units\n", style="bold underline")
            for rec in inc.recommended:
                unit = self.responders.get(rec.responder_id)
                status = unit.status if unit else None
                t.append(f"  {rec.responder_id:<16} {rec.kind:<7} {distance(rec.distance_m):>8}"
                         f"  ETA {age(rec.eta_s):>6}  ")  # fmt: skip
                t.append(str(status or "?"), style=RESPONDER_STYLE.get(status or "", "dim"))
                t.append("\n")
        if inc.cameras:
            t.append("\nNearest cameras\n", style="bold underline")
            for cam in inc.cameras:
                t.append(f"  {cam.camera_id:<14} ")
                t.append(f"{cam.status:<9}", style=CAMERA_STYLE.get(cam.status, ""))
                t.append(f" {distance(cam.distance_m):>8}  {cam.name}\n")
                if cam.snapshot_url:
                    t.append(f"    {cam.snapshot_url}\n", style="dim")
        if inc.shelters:
            t.append("\nNearest shelters\n", style="bold underline")
            for sh in inc.shelters:
                t.append(f"  {sh.name}  {sh.kind}  {distance(sh.distance_m)}\n")
        if inc.events:
            t.append("\nCorrelated events\n", style="bold underline")
            for ev in inc.events:
                t.append(f"  {clock_time(ev.ts)} {ev.kind:<10} {ev.source}  {ev.detail}\n")
                if ev.snapshot_url:
                    t.append(f"    {ev.snapshot_url}\n", style="dim")
        if inc.notes:
            t.append("\nNotes\n", style="bold underline")
            for note in inc.notes:
                t.append(f"  {clock_time(note.ts)} {note.operator}: {note.text}\n")
        if inc.history:
            t.append("\nHistory\n", style="bold underline")
            for h in inc.history:
                t.append(f"  {clock_time(h.ts)} {h.actor:<8} {h.action}  {h.detail}\n")
        return t


def _field(t: Text, label: str, value: str) -> None:
    t.append(f"{label:<9}", style="dim")
    t.append(value + "\n")


def first_free(incident: IncidentState, responders: Mapping[str, ResponderState]) -> str | None:
    """The nearest recommended unit that is available now (the dispatch default)."""
    for rec in incident.recommended:
        unit = responders.get(rec.responder_id)
        if unit is None or unit.status == ResponderStatus.AVAILABLE:
            return rec.responder_id
    return incident.recommended[0].responder_id if incident.recommended else None
