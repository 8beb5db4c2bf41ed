"""The pure incident engine: the heart of ``ansim core``.

State in, an event or a command in (with the time), new state and a list of
effects out. No I/O, no clock, no randomness: replaying the journal through a
fresh engine gives the state the live core had. See ``docs/engine.md``.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import TypeVar

import msgspec

from console.config import Config
from console.engine.alerts import AlertHandlers
from console.engine.base import CORE
from console.engine.commands import CommandHandlers
from console.engine.effects import Effect, Escalated, IncidentChanged
from console.engine.events import EventHandlers
from console.engine.model import DEADLINE_ACK, SNAPSHOT_VERSION, State
from console.engine.privacy import PrivacyHandlers
from console.engine.read import ReadSide
from protocols.cap import PublicAlert
from protocols.schemas import (
    CameraHealth,
    CctvEvent,
    Command,
    IncidentStatus,
    RawEvent,
    ResponderReport,
    Role,
    Shelter,
    SosAlarm,
)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(State)


class Engine(PrivacyHandlers, EventHandlers, AlertHandlers, CommandHandlers, ReadSide):
    """One authority's incident state. Not thread-safe: one owner calls it."""

    def __init__(self, config: Config, *, prefer_numpy: bool = True) -> None:
        super().__init__(config, prefer_numpy=prefer_numpy)

    # --- inputs --------------------------------------------------------------------------

    def handle_event(
        self,
        event: SosAlarm | CctvEvent | CameraHealth | ResponderReport | PublicAlert,
        now: float,
    ) -> list[Effect]:
        now = float(now)
        if isinstance(event, PublicAlert):
            return self._on_alert(_floats(event), now)
        event = _floats(event)
        if isinstance(event, SosAlarm):
            return self._on_sos(event, now)
        if isinstance(event, CctvEvent):
            return self._on_cctv(event, now)
        if isinstance(event, CameraHealth):
            return self._on_camera(event, now)
        if isinstance(event, ResponderReport):
            return self._on_responder(event, now)
        raise TypeError(f"not a raw event: {type(event).__name__}")

    def handle_command(self, cmd: Command, now: float, role: Role = Role.OPERATOR) -> list[Effect]:
        """Apply one operator command; the effects hold exactly one ``SendReply``."""
        return self._on_command(cmd, float(now), role)

    def tick(self, now: float) -> list[Effect]:
        """Fire the SLA deadlines, then the personal-data redactions, due by ``now``.

        O(log n) per due deadline or redaction, O(1) otherwise.

        A tick that returns no effects changes nothing observable (it may drop
        deadlines that can no longer fire), so the core need not journal it.
        """
        now = float(now)
        heap = self.st.deadlines
        effects: list[Effect] = []
        sla = self.cfg.sla
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if not self._deadline_live(entry):
                continue
            _, _, incident_id, which = entry
            inc = self.st.incidents[incident_id]
            if which == DEADLINE_ACK:
                reason = f"SLA: not acknowledged within {sla.ack_p1_s:g} s"
            else:
                reason = f"SLA: not dispatched within {sla.dispatch_p1_s:g} s of acknowledgement"
            inc.escalated = True
            self._history(inc, now, CORE, "escalated", reason)
            effects += [Escalated(incident_id, reason), IncidentChanged(incident_id)]
        effects += self._redact_due(now)  # console.engine.privacy
        return effects

    def _deadline_live(self, entry: tuple[float, int, str, int]) -> bool:
        """Whether a heap entry can still fire (open, still waiting for that very deadline)."""
        deadline, _, incident_id, which = entry
        inc = self.st.incidents.get(incident_id)
        if inc is None:
            return False
        if which == DEADLINE_ACK:
            return inc.status is IncidentStatus.NEW and inc.ack_deadline == deadline
        return inc.status is IncidentStatus.ACKNOWLEDGED and inc.dispatch_deadline == deadline

    def set_shelters(self, shelters: Sequence[Shelter]) -> None:
        """Replace the safe places (24-hour stores, police boxes) near which incidents are."""
        self.st.shelters = list(shelters)
        self._rebuild_shelters()

    # --- snapshots -----------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The exact state as MessagePack. Canonical: equal states give equal bytes."""
        live = sorted(e for e in self.st.deadlines if self._deadline_live(e))
        return _encoder.encode(msgspec.structs.replace(self.st, deadlines=live))

    @classmethod
    def restore(cls, config: Config, data: bytes, *, prefer_numpy: bool = True) -> Engine:
        state = _decoder.decode(data)
        if state.version != SNAPSHOT_VERSION:
            raise ValueError(
                f"engine snapshot version {state.version}, expected {SNAPSHOT_VERSION}"
            )
        engine = cls(config, prefer_numpy=prefer_numpy)
        engine.st = state
        engine._rebuild_indexes()
        return engine


_FLOAT_FIELDS = ("ts", "lat", "lon", "accuracy_m", "confidence", "sent", "expires")
_Event = TypeVar("_Event", bound=RawEvent | PublicAlert)


def _floats(event: _Event) -> _Event:
    """Ints where floats belong (events built in Python) as floats, so snapshots are canonical."""
    changes = {
        name: float(value)
        for name in _FLOAT_FIELDS
        if type(value := getattr(event, name, None)) is int
    }
    return msgspec.structs.replace(event, **changes) if changes else event
