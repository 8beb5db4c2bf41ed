"""Coalesced, retained state publication.

Effects mark things dirty; every publish interval each dirty incident, district
and responder is published once, however many events touched it meanwhile.
Replies and receipts are not coalesced: they go out right after their batch
is committed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from console.effects import (
    CameraChanged,
    Effect,
    IncidentChanged,
    IncidentClosed,
    ResponderChanged,
    SendReceipt,
    SendReply,
)
from console.engine import Engine
from protocols import codec, topics
from protocols.mqtt import Transport
from protocols.schemas import Receipt, Reply, Summary


@dataclass
class Dirty:
    incidents: set[str] = field(default_factory=set)
    closed: set[str] = field(default_factory=set)
    districts: set[str] = field(default_factory=set)
    responders: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.incidents or self.closed or self.districts or self.responders)


@dataclass
class Outbox:
    """What a committed batch owes the world."""

    replies: list[Reply] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)


def sort_effects(effects: Iterable[Effect], dirty: Dirty, outbox: Outbox) -> None:
    for effect in effects:
        match effect:
            case IncidentChanged():
                dirty.incidents.add(effect.incident_id)
                dirty.closed.discard(effect.incident_id)
            case IncidentClosed():
                dirty.closed.add(effect.incident_id)
                dirty.incidents.discard(effect.incident_id)
            case CameraChanged():
                dirty.districts.add(effect.district)
            case ResponderChanged():
                dirty.responders.add(effect.responder_id)
            case SendReply():
                outbox.replies.append(effect.reply)
            case SendReceipt():
                outbox.receipts.append(effect.receipt)
            case _:
                pass  # escalations and bells are visible through the incident state


async def publish_outbox(transport: Transport, outbox: Outbox) -> None:
    items = [(topics.reply(reply.operator), codec.encode(reply), False) for reply in outbox.replies]
    items += [
        (topics.receipt(r.source, r.alarm_id), codec.encode(r), False) for r in outbox.receipts
    ]
    await _publish_all(transport, items)


async def publish_state(
    transport: Transport,
    engine: Engine,
    dirty: Dirty,
    now: float,
    *,
    backlog: OrderedDict[str, None] | None = None,
    budget_s: float | None = None,
) -> int:
    """Publish every dirty thing once, retained. Returns how many messages went out.

    With a ``backlog`` (incident ids waiting, oldest first), the dirty incidents join it
    and states are computed for about ``budget_s`` seconds at most (None: all of them);
    the rest wait in the backlog for the next tick, oldest first, so a storm spreads its
    publication over ticks instead of stalling the receive path. Closed incidents,
    cameras and responders are always published at once (cheap). If publishing fails,
    the incidents taken are put back at the head of the backlog.
    """
    encode = codec.encode
    if backlog is None:
        backlog = OrderedDict.fromkeys(dirty.incidents)
    else:
        for incident_id in dirty.closed:
            backlog.pop(incident_id, None)
        for incident_id in dirty.incidents:
            backlog.setdefault(incident_id, None)
    deadline = math.inf if budget_s is None else time.perf_counter() + budget_s
    taken: list[str] = []
    items: list[tuple[str, bytes, bool]] = []
    while backlog:
        if len(taken) % 32 == 31 and time.perf_counter() > deadline:
            break
        incident_id = backlog.popitem(last=False)[0]
        taken.append(incident_id)
        state = engine.incident_state(incident_id, now)
        items.append((topics.state_incident(incident_id), encode(state), True))
    # An empty retained payload deletes the retained message: closed incidents leave the queue.
    items += [(topics.state_incident(i), b"", True) for i in dirty.closed]
    items += [
        (topics.state_cameras(d), encode(engine.district_cameras(d, now)), True)
        for d in dirty.districts
    ]
    items += [
        (topics.state_responder(r), encode(engine.responder_state(r)), True)
        for r in dirty.responders
    ]
    try:
        await _publish_all(transport, items)
    except BaseException:
        for incident_id in reversed(taken):
            backlog[incident_id] = None
            backlog.move_to_end(incident_id, last=False)
        raise
    return len(items)


async def _publish_all(transport: Transport, items: list[tuple[str, bytes, bool]]) -> None:
    """One batch (one future for all the PUBACKs), not a gather of thousands of publishes."""
    many = getattr(transport, "publish_many", None)
    if many is not None:
        await many(items)
    else:  # a stand-in transport (tests) with publish() only
        await asyncio.gather(*(transport.publish(t, p, qos=1, retain=r) for t, p, r in items))


async def publish_summary(transport: Transport, summary: Summary) -> None:
    await _publish_all(transport, [(topics.STATE_SUMMARY, codec.encode(summary), True)])


def everything(engine: Engine) -> Dirty:
    """All state, for the first publication after a start."""
    return Dirty(
        incidents=set(engine.open_incident_ids()),
        districts=set(engine.districts()),
        responders=set(engine.responder_ids()),
    )
