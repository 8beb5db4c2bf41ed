"""The recently closed incidents, as one compact list the core publishes retained.

The queue shows open incidents only: a closed incident's retained state is cleared, so
without this list a console could not see what was closed a minute ago, by whom and
how. ``State.closed`` already keeps the most recent closed incidents in closing order
(snapshotted and rebuilt by replay), so the list is read off it, newest first: the
last ``CLOSED_LIST_MAX`` closed within ``CLOSED_WINDOW_S`` of ``now``.

It is one retained message, so it is bounded whatever sources and operators typed:
each text is cut, at most ``CLOSED_RESPONDERS_MAX`` units are named, and records stop
before the encoded list passes ``CLOSED_LIST_MAX_BYTES`` (far below the broker's packet
limit, and below ``codec.MAX_PAYLOAD`` so any decoder of the wire reads it).

No personal data: a record has no person, phone or device id (the incident's
``source`` of an SOS is its device), only what ``docs/privacy.md`` calls the record
of what happened. Operators' dispositions are their own record and are shown.
"""

from __future__ import annotations

import re
from typing import Final, get_args

import msgspec

from console.engine.model import Incident
from protocols.schemas import ClosedIncident, ClosedList, Ident

CLOSED_LIST_MAX: Final = 200  # records in the list
CLOSED_WINDOW_S: Final = 86400.0  # only incidents closed this recently
CLOSED_LIST_MAX_BYTES: Final = 128 * 1024  # the encoded list; older records drop first
CLOSED_TEXT_MAX: Final = 120  # characters of each text (district, place, title, ...)
CLOSED_RESPONDERS_MAX: Final = 6  # units named per incident

_IDENT: Final = re.compile(get_args(Ident)[1].pattern or "")
_LIST_OVERHEAD: Final = 64  # the list's own fields around its records, generously
_encode = msgspec.msgpack.Encoder().encode
_check = msgspec.msgpack.Decoder(ClosedIncident).decode


def served_by(inc: Incident) -> tuple[str, ...]:
    """The units that were on the incident, in dispatch order (at most a few).

    A close frees its units (``Incident.responders`` is then empty), so they are read
    from the history: a "dispatched" entry's detail starts with the unit's id (the same
    reading as ``ansim export``); anything that is not an identifier is left out.
    """
    seen: dict[str, None] = dict.fromkeys(r for r in inc.responders if _IDENT.fullmatch(r))
    for entry in inc.history:
        if len(seen) >= CLOSED_RESPONDERS_MAX:
            break
        if entry.action == "dispatched" and entry.detail:
            unit = entry.detail.split(" ", 1)[0]
            if len(unit) <= 128 and _IDENT.fullmatch(unit):
                seen.setdefault(unit, None)
    return tuple(seen)[:CLOSED_RESPONDERS_MAX]


def closed_by(inc: Incident) -> str | None:
    """Who closed it: the actor of its closing history entry (an operator, or "core")."""
    for entry in reversed(inc.history):  # a redaction may follow the close
        if entry.action == inc.status.value:
            return entry.actor
    return None


def _cut(text: str | None) -> str | None:
    return None if text is None else text[:CLOSED_TEXT_MAX]


def closed_record(inc: Incident) -> ClosedIncident:
    """The compact, personal-data-free record of one closed incident."""
    closed_at = inc.closed_at if inc.closed_at is not None else inc.updated
    return ClosedIncident(
        id=inc.id,
        kind=inc.kind,
        priority=inc.priority,
        status=inc.status,
        district=_cut(inc.district) or "",
        place=_cut(inc.place) or "",
        title=_cut(inc.title) or "",
        created=inc.created,
        closed_at=closed_at,
        disposition=_cut(inc.disposition),
        owner=_cut(inc.owner),
        responders=served_by(inc),
        closed_by=_cut(closed_by(inc)),
    )


def _when_closed(inc: Incident) -> float:
    return inc.closed_at if inc.closed_at is not None else inc.updated


def closed_list(
    closed: dict[str, Incident],
    now: float,
    *,
    limit: int = CLOSED_LIST_MAX,
    window_s: float = CLOSED_WINDOW_S,
    max_bytes: int = CLOSED_LIST_MAX_BYTES,
) -> ClosedList:
    """The newest closed incidents of ``closed`` (in closing order), newest first.

    ``closed`` is ``State.closed``: its order is the order incidents closed in, so the
    walk goes back from its end and stops at the first one closed before the window.
    A record that would not decode on a console (a value outside the wire's bounds) is
    left out rather than spoil the whole list.
    """
    cutoff = now - window_s
    in_window: list[Incident] = []
    for incident_id in reversed(closed):
        inc = closed[incident_id]
        if _when_closed(inc) < cutoff:
            break
        in_window.append(inc)
    # Closing order is arrival order; a clock stepped back could interleave a few.
    in_window.sort(key=lambda i: (_when_closed(i), i.id), reverse=True)
    records: list[ClosedIncident] = []
    size = _LIST_OVERHEAD
    for inc in in_window:
        if len(records) >= limit:
            break
        record = closed_record(inc)
        encoded = _encode(record)
        try:
            _check(encoded)
        except msgspec.ValidationError:
            continue
        if size + len(encoded) > max_bytes:
            break
        size += len(encoded)
        records.append(record)
    return ClosedList(ts=now, incidents=tuple(records), total=len(in_window), window_s=window_s)


def expires_at(listing: ClosedList) -> float:
    """When the oldest record of ``listing`` leaves the window: the list must go out again."""
    if not listing.incidents:
        return float("inf")
    return min(r.closed_at for r in listing.incidents) + listing.window_s
