"""What an incident's change should tell this operator, as notification texts.

Pure: the app passes the incident as it was (None: not seen before) and as it is now,
and shows what comes back (a toast, the status bar). Today that is the core's alert on
an incident ("police-07 left: reported available; no unit assigned, dispatch again"):

- shown to the incident's owner, when the alert is new (set, or set again with another
  time); an incident seen for the first time with an alert counts as new, so a console
  that starts (or reconnects) is told about its own incidents' alerts once;
- shown to every operator when the incident has no owner: nobody else would act on it;
- not shown to other operators for an incident someone owns, whatever its priority: the
  owner is told, and the bell and the queue are for new P1s (issue 18, alarm fatigue);
- never for a closed incident, nor when an alert is cleared.

Every text comes from the wire, so it goes through ``plain``.
"""

from __future__ import annotations

from protocols.schemas import IncidentState
from widgets.format import district_name, plain


def incident_notices(
    operator: str, before: IncidentState | None, after: IncidentState
) -> list[str]:
    """The notification texts ``operator`` should see for this change (often none)."""
    if not after.alert or after.status.is_closed:
        return []
    if before is not None and (before.alert, before.alert_ts) == (after.alert, after.alert_ts):
        return []  # the same alert, republished for another reason
    if after.owner is not None and after.owner != operator:
        return []
    where = " ".join(
        x for x in (plain(district_name(after.district), 40), plain(after.place, 60)) if x
    )
    return [f"{plain(after.id)} P{after.priority} {where}: {plain(after.alert)}"]
