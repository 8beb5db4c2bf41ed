"""Who else is at a console, from presence and the core's summary. Pure: time is an argument.

A seat's presence counts while it is online and renewed (``Presence.is_current``):
seats re-announce themselves every ``PRESENCE_HEARTBEAT_S``, so one that vanished
without its last will drops out after ``PRESENCE_TTL_S``. The core's
``Summary.operators`` follows the same rule; it is added here because a console
that joined late or lost presence messages still learns who the core sees.
"""

from __future__ import annotations

from collections.abc import Mapping

from protocols.schemas import PRESENCE_TTL_S, Presence, Summary


def others_online(
    presence: Mapping[str, Presence],
    summary: Summary | None,
    operator: str,
    now: float,
) -> list[str]:
    """Operators other than ``operator`` at a console at ``now``, sorted.

    A summary older than the presence TTL (the core is down or cut off) is not
    evidence of anyone; an operator whose own presence says offline is believed
    over a summary that has not caught up yet."""
    names = {p.operator for p in presence.values() if p.is_current(now)}
    if summary is not None and abs(now - summary.ts) <= PRESENCE_TTL_S:
        gone = {name for name, p in presence.items() if not p.online}
        names |= set(summary.operators) - gone
    names.discard(operator)
    return sorted(names)
