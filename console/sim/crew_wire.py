"""The crew on the wire: what ``ansim simulate`` reads for it and publishes of it.

The simulated colleagues and units (:mod:`console.sim.crew`) see what a console sees:
the core's retained incident and responder states, and the replies to the colleagues'
own commands. This module turns those messages into the crew's inputs, and its steps
into (topic, payload) pairs; the simulator does the publishing.
"""

from __future__ import annotations

import logging
from typing import Final

from console.sim.crew import Crew, Step
from console.sim.picture import Picture
from protocols import codec, topics
from protocols.schemas import Command, IncidentState, Reply, ResponderState

log = logging.getLogger("ansim.simulate")

STATE_RESPONDER_PREFIX: Final = f"{topics.ROOT}/state/responder/"
REPLY_PREFIX: Final = f"{topics.ROOT}/reply/"


def subscriptions(crew: Crew) -> list[tuple[str, int]]:
    """What the crew listens to: nothing when nobody reacts."""
    if not crew.active:
        return []
    # Every district's, whichever partition publishes them: the crew works the whole city.
    subs = [(topics.STATE_INCIDENTS, 1), (topics.STATE_RESPONDERS, 1)]
    return subs + [(topics.reply(operator), 1) for operator in crew.operators]


class CrewInbox:
    """Feeds the crew from the broker. A message it cannot read is counted and skipped."""

    def __init__(self, crew: Crew) -> None:
        self.crew = crew
        self.unreadable = 0
        self.failed = 0

    def handle(self, topic: str, payload: bytes, now: float) -> bool:
        """Take one message; False if it is not one of the crew's topics."""
        try:
            if topic.startswith(topics.STATE_INCIDENT_PREFIX):
                if payload:
                    state: IncidentState = codec.decode(
                        payload, IncidentState, max_bytes=codec.MAX_STATE_PAYLOAD
                    )
                    self.crew.incident(state)
                else:  # a cleared retained state: the incident closed
                    self.crew.incident_gone(topics.last_level(topic))
            elif topic.startswith(STATE_RESPONDER_PREFIX):
                if payload:
                    self.crew.responder(codec.decode(payload, ResponderState), now)
            elif topic.startswith(REPLY_PREFIX):
                self.crew.reply(codec.decode(payload, Reply), now)
            else:
                return False
        except codec.WireError:
            self.unreadable += 1
        except Exception:  # a bug in the crew must not stop the receipts behind it
            self.failed += 1
            if self.failed == 1:
                log.exception("the crew failed on %s (logged once); the scenario goes on", topic)
        return True


def outgoing(step: Step, source: str, picture: Picture) -> list[tuple[str, bytes]]:
    """The crew's step as messages: unit reports as the simulator's, into each unit's home
    district; commands as their colleague's, to the core of the incident's partition
    (``ansim/v1/cmd/<operator>/<partition>``, as a console sends them)."""
    out = [
        (topics.raw(source, topics.RAW_RESPONDER, report.district), codec.encode(report))
        for report in step.reports
    ]
    out += [
        (topics.cmd(c.operator, _partition(c, picture)), codec.encode(c)) for c in step.commands
    ]
    return out


def _partition(command: Command, picture: Picture) -> str | None:
    """The partition whose core owns the command's incident (None: the default's)."""
    state = picture.incidents.get(command.incident_id or "")
    return (state.partition or None) if state is not None else None
