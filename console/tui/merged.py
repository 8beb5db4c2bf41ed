"""One picture from several partitions: a city-wide seat receives a summary from each
partition's core and a closed list from each district, and shows them as one.

A seat of one partition gets one summary, shown as it came; the merged one adds
the counts, joins the operators and alarms (an alarm names its partition), and
names the cores, so the status bar of the city supervisor reads "2 cores".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from protocols.schemas import ClosedIncident, ClosedList, IncidentState, IncidentStatus, Summary


def scoped_summary(summary: Summary | None, incidents: Iterable[IncidentState]) -> Summary | None:
    """A seat scoped to some districts counts what it is sent (its districts' incidents),
    not its partitions' summary: "P1 5" over a queue of one P1 would send an operator
    looking for four alarms that are other offices' to answer."""
    if summary is None:
        return None
    by_priority, total, oldest = [0, 0, 0, 0], 0, None
    for incident in incidents:
        if incident.status.is_closed:
            continue
        total += 1
        if 1 <= incident.priority <= 4:
            by_priority[incident.priority - 1] += 1
        if incident.status is IncidentStatus.NEW and (oldest is None or incident.created < oldest):
            oldest = incident.created
    return msgspec.structs.replace(
        summary, open_by_priority=tuple(by_priority), open_total=total, oldest_unacked=oldest
    )


def merge_summaries(summaries: Mapping[str, Summary]) -> Summary | None:
    """The summaries of every partition as one (the only one when there is one)."""
    if len(summaries) <= 1:
        return next(iter(summaries.values()), None)
    parts = [summaries[name] for name in sorted(summaries)]
    newest = max(parts, key=lambda s: s.ts)
    oldest_unacked = [s.oldest_unacked for s in parts if s.oldest_unacked is not None]
    rates = [s.rate_history for s in parts]
    width = min(len(r) for r in rates)
    ignored: dict[str, int] = {}
    for s in parts:
        for reason, count in s.ignored_by_reason:
            ignored[reason] = ignored.get(reason, 0) + count
    return msgspec.structs.replace(
        newest,
        open_by_priority=tuple(sum(s.open_by_priority[i] for s in parts) for i in range(4)),
        open_total=sum(s.open_total for s in parts),
        oldest_unacked=min(oldest_unacked, default=None),
        events_total=sum(s.events_total for s in parts),
        events_per_s=sum(s.events_per_s for s in parts),
        rate_history=tuple(sum(r[len(r) - width + i] for r in rates) for i in range(width)),
        rejected_total=sum(s.rejected_total for s in parts),
        ignored_total=sum(s.ignored_total for s in parts),
        ignored_by_reason=tuple(sorted(ignored.items(), key=lambda kv: (-kv[1], kv[0])))[:48],
        operators=tuple(sorted({op for s in parts for op in s.operators})),
        alarms=tuple(f"{s.partition or '?'}: {alarm}" for s in parts for alarm in s.alarms),
        core_id=f"{len(parts)} cores",
        term=0,
        lease_holder="",
        partition="",
    )


def merge_closed(lists: Mapping[str, ClosedList]) -> ClosedList | None:
    """The closed lists of every district as one, newest first."""
    if len(lists) <= 1:
        return next(iter(lists.values()), None)
    parts = list(lists.values())
    records: list[ClosedIncident] = [r for x in parts for r in x.incidents]
    records.sort(key=lambda r: (r.closed_at, r.id), reverse=True)
    newest = max(parts, key=lambda x: x.ts)
    return msgspec.structs.replace(
        newest, incidents=tuple(records), total=sum(x.total for x in parts)
    )
