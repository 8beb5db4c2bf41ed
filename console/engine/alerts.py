"""CAP public alerts into incidents: an Alert opens one, an Update changes it, a Cancel closes it.

A ``PublicAlert`` (``protocols.public_alert``) is known by ``(sender, identifier)``. Every
message's own key is remembered with the incident it touched, so a resend folds
and a later Update or Cancel finds the incident through any of its ``references``
(CAP senders refer to the first alert, or to the latest update, or to all of them).
A source may only refer to the alerts of senders it may speak for
(``console.engine.trust``); a district is taken only if it is one of the city's.
"""

from __future__ import annotations

from console.engine.context import Context
from console.engine.effects import Effect, IncidentChanged
from console.engine.incidents import CORE, Incidents, record_history
from console.engine.model import PART_ALERT, Incident
from console.engine.rules import alert_title, coords
from console.engine.trust import Trust
from protocols.public_alert import PublicAlert
from protocols.schemas import CorrelatedEvent, IncidentKind, IncidentStatus

CANCELLED = "cancelled by sender"


def alert_key(sender: str, identifier: str) -> str:
    return f"{sender}/{identifier}"


class PublicAlerts:
    """CAP messages into incidents, found again through their references."""

    def __init__(self, ctx: Context, incidents: Incidents, trust: Trust) -> None:
        self.ctx = ctx
        self.st = ctx.st
        self.incidents = incidents
        self.trust = trust

    def handle(self, alert: PublicAlert, now: float, source: str | None = None) -> list[Effect]:
        st = self.st
        key = alert_key(alert.sender, alert.identifier)
        if key in st.alerts:
            return []  # the same CAP message again
        target = self._referenced(alert, source)
        self.ctx.prune(now)
        st.events_total += 1
        effects: list[Effect] = []
        event = self._event(alert, now)
        if alert.msg_type == "Cancel":
            if target is not None:
                self._cancel(target, alert, event, now, effects)
            # A Cancel of an alert that is closed, forgotten or never seen changes nothing.
            st.alerts[key] = (target.id if target is not None else "", now)
            return effects
        if alert.msg_type == "Update" and target is not None:
            self._update(target, alert, event, now, effects)
        else:
            # An Alert, or an Update whose alert is closed or unknown: CAP messages are
            # complete, so the Update opens an incident of its own.
            target = self._open(alert, event, now, effects)
        st.alerts[key] = (target.id, now)
        return effects

    def _referenced(self, alert: PublicAlert, source: str | None) -> Incident | None:
        """The open incident of the latest referenced message that still has one.

        Only messages of senders ``source`` may speak for count: another sender's alert
        is not this source's to update or cancel.
        """
        for ref in reversed(alert.references):
            if ref.sender != alert.sender and not self.trust.may_speak_for(source, ref.sender):
                continue
            seen = self.st.alerts.get(alert_key(ref.sender, ref.identifier))
            if seen is not None and seen[0] in self.st.incidents:
                return self.st.incidents[seen[0]]
        return None

    def _event(self, alert: PublicAlert, now: float) -> CorrelatedEvent:
        judged = "/".join(x for x in (alert.urgency, alert.severity, alert.certainty) if x)
        detail = f"{alert.msg_type} {alert.identifier}" + (f": {judged}" if judged else "")
        sent, _ = self.trust.believed_time(alert.sent, now, self.trust.rules.max_age_s)
        return CorrelatedEvent(
            ts=sent,
            kind="public-alert",
            source=alert.sender[:200],
            detail=detail[:200],
        )

    def _where(self, alert: PublicAlert) -> tuple[float, float, str, str] | None:
        """(lat, lon, district, place) of an alert with a position in the area, else None."""
        if alert.lat is None or alert.lon is None:
            return None
        lat, lon = float(alert.lat), float(alert.lon)
        if not self.trust.in_area(lat, lon):
            return None  # it names one of the districts (Trust.refusal): placed by that
        district = self.trust.our_district(alert.districts) or self.ctx.district(lat, lon)
        place = alert.area_desc or coords(lat, lon)
        return lat, lon, district[:200], place[:200]

    def _open(
        self, alert: PublicAlert, event: CorrelatedEvent, now: float, effects: list[Effect]
    ) -> Incident:
        where = self._where(alert)
        if where is None:
            lat, lon = 0.0, 0.0  # like a camera never positioned: nothing is "near" it
            district = self.trust.our_district(alert.districts) or "unknown"
            place = (alert.area_desc or "position unknown")[:200]
        else:
            lat, lon, district, place = where
        inc = Incident(
            id=self.incidents.next_id(),
            kind=IncidentKind.PUBLIC_ALERT,
            priority=alert.priority,
            status=IncidentStatus.NEW,
            lat=lat,
            lon=lon,
            district=district,
            place=place,
            source=alert.sender[:200],
            title=alert_title(alert.headline, alert.event),
            created=now,
            updated=now,
            events=[event],
            parts={PART_ALERT: alert.priority},
            last_event=now,
        )
        record_history(inc, now, CORE, "opened", _describe(alert))
        self.incidents.open(inc, now, effects)
        return inc

    def _update(
        self,
        inc: Incident,
        alert: PublicAlert,
        event: CorrelatedEvent,
        now: float,
        effects: list[Effect],
    ) -> None:
        self.incidents.add_event(inc, event, now)
        record_history(inc, now, CORE, "updated", _describe(alert))
        inc.title = alert_title(alert.headline, alert.event, inc.title)
        where = self._where(alert)
        if where is not None:
            inc.lat, inc.lon, inc.district, inc.place = where
        else:
            inc.district = self.trust.our_district(alert.districts) or inc.district
        inc.last_event = now
        inc.parts[PART_ALERT] = alert.priority
        self.incidents.reprioritise(inc, now, effects)
        effects.append(IncidentChanged(inc.id))

    def _cancel(
        self,
        inc: Incident,
        alert: PublicAlert,
        event: CorrelatedEvent,
        now: float,
        effects: list[Effect],
    ) -> None:
        self.incidents.add_event(inc, event, now)
        if inc.responders:
            # Units are out there: the operator decides, as with a withdrawn CCTV event.
            record_history(inc, now, CORE, "cancelled", f"{_describe(alert)}; units still assigned")
            effects.append(IncidentChanged(inc.id))
            return
        self.incidents.close(inc, IncidentStatus.RESOLVED, now, CORE, CANCELLED, effects)


def _describe(alert: PublicAlert) -> str:
    text = f"CAP {alert.msg_type} {alert.identifier} from {alert.sender}"
    if alert.description:
        text += f": {alert.description}"
    return text[:4000]
