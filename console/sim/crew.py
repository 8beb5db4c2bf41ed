"""The simulated people who react to the core: the desk's colleagues and the units on a job.

One object for the two drivers of the same pure logic: ``ansim simulate`` feeds it the
core's published state and replies from the broker, and publishes what :meth:`Crew.step`
returns; the accelerated shift test (``tests/sim/test_shift.py``) feeds it the engine's
read side and hands the commands and reports straight to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from console.config import SimulateConfig
from console.engine.settings import DispatchConfig
from console.sim.city import City
from console.sim.desk import Desk
from console.sim.picture import Picture
from console.sim.units import Beat, Units
from protocols.schemas import Command, IncidentState, Reply, ResponderReport, ResponderState


@dataclass
class Step:
    """What the crew does at one moment: commands to the core, unit reports to publish."""

    commands: list[Command] = field(default_factory=list)
    reports: list[ResponderReport] = field(default_factory=list)


class Crew:
    """Colleagues at the desk (``[simulate] desk``) and the city's units (``units``)."""

    def __init__(
        self,
        city: City,
        settings: SimulateConfig,
        dispatch: DispatchConfig,
        *,
        session: str,
        beat: Beat | None = None,
        seed: int = 0,
    ) -> None:
        self.settings = settings
        self.picture = Picture()
        kinds = {unit.id: unit.kind for unit in city.responders}
        homes = {unit.id: unit.district for unit in city.responders}
        self.units = (
            Units(kinds, settings, dispatch, beat=beat, seed=seed, homes=homes)
            if settings.units
            else None
        )
        self.desk = Desk(settings, session=session, seed=seed) if settings.desk > 0 else None

    def attach(self, beat: Beat) -> None:
        """The scenario that patrols the units off a job (it may come after the crew)."""
        if self.units is not None:
            self.units.attach(beat)

    @property
    def active(self) -> bool:
        """Whether anyone reacts at all (otherwise the simulator need not listen)."""
        return self.units is not None or self.desk is not None

    @property
    def operators(self) -> list[str]:
        return self.desk.operators if self.desk is not None else []

    # --- what the core published ----------------------------------------------------------

    def incident(self, state: IncidentState) -> IncidentState | None:
        """An incident's new state; returns the one it replaces."""
        return self.picture.incident(state)

    def incident_gone(self, incident_id: str) -> IncidentState | None:
        return self.picture.incident_gone(incident_id)

    def responder(self, state: ResponderState, now: float) -> None:
        self.picture.responder(state)
        if self.units is not None:
            self.units.observe(state, now)

    def reply(self, reply: Reply, now: float) -> None:
        if self.desk is not None:
            self.desk.reply(reply, now)

    # --- what the crew does ----------------------------------------------------------------

    def step(self, now: float) -> Step:
        step = Step()
        if self.units is not None:
            step.reports = self.units.reports(now, self.picture)
        if self.desk is not None:
            step.commands = self.desk.commands(now, self.picture)
        return step
