"""What the simulated people of the city know: the core's published state, as last seen.

The simulated colleagues (:mod:`console.sim.desk`) and units (:mod:`console.sim.units`)
react to the core's state as a console does, never to the engine's insides: live, the
picture is fed from the retained ``ansim/v1/state/...`` topics; in the accelerated shift
test, from the engine's read side. Either way it is the same data.
"""

from __future__ import annotations

from protocols.schemas import IncidentState, ResponderState, ResponderStatus


class Picture:
    """Open incidents and responders by id, as the core last published them."""

    def __init__(self) -> None:
        self.incidents: dict[str, IncidentState] = {}
        self.responders: dict[str, ResponderState] = {}

    def incident(self, inc: IncidentState) -> IncidentState | None:
        """Take an incident's new state; returns the one it replaces (None: new to us)."""
        before = self.incidents.get(inc.id)
        if inc.status.is_closed:
            self.incidents.pop(inc.id, None)
        else:
            self.incidents[inc.id] = inc
        return before

    def incident_gone(self, incident_id: str) -> IncidentState | None:
        """The incident closed (its retained state was cleared)."""
        return self.incidents.pop(incident_id, None)

    def responder(self, state: ResponderState) -> ResponderState | None:
        before = self.responders.get(state.id)
        self.responders[state.id] = state
        return before

    def available(self, responder_id: str) -> bool:
        """Free to take a job, as far as the picture says (unknown units are not)."""
        state = self.responders.get(responder_id)
        return (
            state is not None
            and state.status is ResponderStatus.AVAILABLE
            and state.incident_id is None
        )
