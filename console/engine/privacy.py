"""Personal data retention: redact closed SOS incidents ``retention_days`` after closing.

An SOS carries the person's name, phone and her phone's device id. Once a closed
incident's ``closed_at + [privacy] retention_days`` has passed, ``tick(now)``
redacts them from the engine's memory, records the redaction in the incident's
history (actor ``core``) and emits ``PersonalDataRedacted``, so the core journals
that tick and a replay of the journal redacts at the very same moment.

The schedule is a heap of ``(due, incident id)``. It is *derived* state: every
closed incident that still holds personal data is due at ``closed_at +
retention``, so the heap is rebuilt from ``State.closed`` on restore and is not
part of the snapshot. Old snapshots therefore restore with their schedule, and
equal states still give equal bytes. Stale entries (an incident already
redacted, or forgotten: the engine keeps only the most recent closed incidents)
are dropped lazily when they come due. See ``docs/privacy.md``.
"""

from __future__ import annotations

import heapq

import msgspec

from console.engine.context import Context
from console.engine.effects import Effect, PersonalDataRedacted
from console.engine.incidents import CORE, record_history
from console.engine.model import Incident
from protocols.schemas import (
    CorrelatedEvent,
    HistoryEntry,
    IncidentKind,
    IncidentState,
)

REDACTED = "redacted"  # stands in for the device id (an incident's ``source``, an SOS event's)
REDACTED_ACTION = "redacted"
SOS_EVENT_KIND = "sos"  # CorrelatedEvent.kind of an SOS (its ``source`` is the device id)
_COMPACT_SLACK = 1024  # stale heap entries tolerated beyond twice the closed incidents


def redaction_detail(days: int) -> str:
    return f"personal data redacted after {days} days"


def has_personal_data(inc: Incident | IncidentState) -> bool:
    """Whether the incident still holds anything that came from the person's device."""
    if inc.person is not None or inc.phone is not None:
        return True
    if isinstance(inc, Incident):
        return inc.device_id is not None
    return inc.kind is IncidentKind.SOS and inc.source != REDACTED


def _redact_events(
    events: list[CorrelatedEvent] | tuple[CorrelatedEvent, ...],
) -> list[CorrelatedEvent]:
    """SOS events name the device; their detail is the engine's own (trigger, accuracy, battery)."""
    return [
        msgspec.structs.replace(ev, source=REDACTED) if ev.kind == SOS_EVENT_KIND else ev
        for ev in events
    ]


def redact_incident(inc: Incident) -> None:
    """Strip the personal fields of an engine incident in place (no history: the caller's)."""
    inc.person = None
    inc.phone = None
    if inc.device_id is not None:
        inc.device_id = None
        inc.source = REDACTED
    inc.events = _redact_events(inc.events)


def redact_state(state: IncidentState, at: float, days: int, actor: str = CORE) -> IncidentState:
    """The same redaction on a published/exported ``IncidentState`` (used by the export)."""
    entry = HistoryEntry(ts=at, actor=actor, action=REDACTED_ACTION, detail=redaction_detail(days))
    return msgspec.structs.replace(
        state,
        person=None,
        phone=None,
        source=REDACTED if state.kind is IncidentKind.SOS else state.source,
        events=tuple(_redact_events(state.events)),
        history=(*state.history, entry),
    )


class Privacy:
    """The retention schedule: when each closed incident's personal data is redacted."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.st = ctx.st
        self.retention_days = ctx.settings.privacy.retention_days
        self.retention_s = self.retention_days * 86400.0
        # (due, incident id), a heap built from State.closed: derived, not snapshotted.
        self.queue: list[tuple[float, str]] = []
        self.rebuild()

    def due(self, inc: Incident) -> float | None:
        """When a closed incident's personal data is redacted; None if never (open, or none left)."""
        if inc.closed_at is None or not inc.status.is_closed or not has_personal_data(inc):
            return None
        return inc.closed_at + self.retention_s

    def rebuild(self) -> None:
        heap = []
        for inc in self.st.closed.values():
            due = self.due(inc)
            if due is not None:
                heap.append((due, inc.id))
        heapq.heapify(heap)
        self.queue = heap

    def schedule(self, inc: Incident) -> None:
        """Queue a just-closed incident (``Incidents.close`` calls this, and only it)."""
        due = self.due(inc)
        if due is not None:
            heapq.heappush(self.queue, (due, inc.id))
            # Incidents forgotten before they came due leave stale entries: compact now and then.
            if len(self.queue) > 2 * len(self.st.closed) + _COMPACT_SLACK:
                self.rebuild()

    def redact_due(self, now: float) -> list[Effect]:
        """Redact every closed incident due by ``now``. O(log n) per due entry, O(1) otherwise."""
        heap = self.queue
        effects: list[Effect] = []
        days = self.retention_days
        while heap and heap[0][0] <= now:
            due, incident_id = heapq.heappop(heap)
            inc = self.st.closed.get(incident_id)
            if inc is None or self.due(inc) != due:
                continue  # forgotten, already redacted, or scheduled under another retention
            redact_incident(inc)
            record_history(inc, now, CORE, REDACTED_ACTION, redaction_detail(days))
            effects.append(PersonalDataRedacted(incident_id))
        return effects
