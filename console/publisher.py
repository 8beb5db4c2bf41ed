"""Coalesced, retained state publication.

Effects mark things dirty; every publish interval each dirty incident, district
and responder is published once, however many events touched it meanwhile.
Replies and receipts are not coalesced: they go out right after their batch
is committed.
"""

from __future__ import annotations

import asyncio
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
    sends = [
        transport.publish(topics.reply(reply.operator), codec.encode(reply))
        for reply in outbox.replies
    ]
    sends += [
        transport.publish(topics.receipt(r.source, r.alarm_id), codec.encode(r))
        for r in outbox.receipts
    ]
    await asyncio.gather(*sends)


async def publish_state(transport: Transport, engine: Engine, dirty: Dirty, now: float) -> int:
    """Publish every dirty thing once, retained. Returns how many messages went out."""
    sends = []
    for incident_id in dirty.incidents:
        state = engine.incident_state(incident_id, now)
        sends.append(_retain(transport, topics.state_incident(incident_id), codec.encode(state)))
    for incident_id in dirty.closed:
        # An empty retained payload deletes the retained message: closed incidents leave the queue.
        sends.append(_retain(transport, topics.state_incident(incident_id), b""))
    for district in dirty.districts:
        cams = engine.district_cameras(district, now)
        sends.append(_retain(transport, topics.state_cameras(district), codec.encode(cams)))
    for responder_id in dirty.responders:
        responder = engine.responder_state(responder_id)
        sends.append(
            _retain(transport, topics.state_responder(responder_id), codec.encode(responder))
        )
    await asyncio.gather(*sends)
    return len(sends)


async def publish_summary(transport: Transport, summary: Summary) -> None:
    await _retain(transport, topics.STATE_SUMMARY, codec.encode(summary))


async def _retain(transport: Transport, topic: str, payload: bytes) -> None:
    await transport.publish(topic, payload, qos=1, retain=True)


def everything(engine: Engine) -> Dirty:
    """All state, for the first publication after a start."""
    return Dirty(
        incidents=set(engine.open_incident_ids()),
        districts=set(engine.districts()),
        responders=set(engine.responder_ids()),
    )
