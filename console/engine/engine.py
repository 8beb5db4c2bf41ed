"""The pure incident engine: the heart of ``ansim core``.

State in, an event or a command in (with the time), new state and a list of
effects out. No I/O, no clock, no randomness: replaying the journal through a
fresh engine gives the state the live core had. See ``docs/engine.md``.

:class:`Engine` only composes the parts, each over the one shared
:class:`~console.engine.context.Context`, and routes inputs to them. The parts
call each other through the references they are given here, so who calls whom
is read off ``_compose``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import msgspec

from console.engine.alerts import PublicAlerts
from console.engine.cameras import Cameras
from console.engine.cctv import CctvEvents
from console.engine.closed import closed_list
from console.engine.commands import Commands
from console.engine.context import Context
from console.engine.districts import DistrictMap
from console.engine.effects import Effect, Rejected
from console.engine.geo import GridIndex, PointIndexLike
from console.engine.incidents import Incidents
from console.engine.lending import Lending
from console.engine.model import SNAPSHOT_VERSION, Incident, State, migrate
from console.engine.privacy import Privacy
from console.engine.read import ReadSide
from console.engine.responders import Responders
from console.engine.settings import EngineSettings
from console.engine.shift import Targets, Times, report, shift_start, times_of
from console.engine.sos import SosAlarms
from console.engine.trust import Trust
from protocols.public_alert import PublicAlert
from protocols.schemas import (
    CameraHealth,
    CctvEvent,
    ClosedList,
    Command,
    DistrictCameras,
    IncidentState,
    RawEvent,
    Reply,
    ResponderReport,
    ResponderState,
    Role,
    Shelter,
    SosAlarm,
    Summary,
)
from protocols.shift import ShiftReport

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(State)

InputEvent = SosAlarm | CctvEvent | CameraHealth | ResponderReport | PublicAlert | Reply


class Engine:
    """One authority's incident state. Not thread-safe: one owner calls it."""

    def __init__(
        self, settings: EngineSettings, districts: DistrictMap, *, prefer_numpy: bool = True
    ) -> None:
        self._compose(State(), settings, districts, prefer_numpy)

    def _compose(
        self, state: State, settings: EngineSettings, districts: DistrictMap, prefer_numpy: bool
    ) -> None:
        ctx = self.ctx = Context(state, settings, districts, prefer_numpy=prefer_numpy)
        self.trust = Trust(ctx)
        self.privacy = Privacy(ctx)
        self.responders = Responders(ctx, self.trust)
        self.incidents = Incidents(ctx, self.responders, self.privacy)
        self.cameras = Cameras(ctx, self.incidents, self.trust)
        self.sos = SosAlarms(ctx, self.incidents, self.trust)
        self.cctv = CctvEvents(ctx, self.incidents, self.cameras, self.sos, self.trust)
        self.alerts = PublicAlerts(ctx, self.incidents, self.trust)
        self.lending = Lending(ctx, self.responders)
        self.incidents.lending = self.lending
        self.commands = Commands(ctx, self.incidents, self.responders, self.lending)
        self.read = ReadSide(ctx, self.responders)
        # Routed by exact type: one dict lookup instead of a chain of isinstance checks.
        self._routes: dict[type[Any], Callable[[Any, float], list[Effect]]] = {
            SosAlarm: self.sos.handle,
            CctvEvent: self.cctv.handle,
            CameraHealth: self.cameras.handle,
            ResponderReport: self.responders.handle,
            PublicAlert: self.alerts.handle,
        }

    # --- inputs --------------------------------------------------------------------------

    def handle_event(
        self, event: InputEvent, now: float, *, source: str | None = None, vetted: bool = False
    ) -> list[Effect]:
        """Apply one raw event from ``source`` (the topic's ``<source>`` level).

        ``source=None`` is an unattributed input (a test, a tool, a configured adapter):
        no ownership is checked or claimed; an SOS always speaks for its own ``source``.
        An input :meth:`refusal` refuses changes nothing and gives ``Rejected(reason)``.
        ``vetted``: the caller has just asked :meth:`refusal` about this very event,
        ``now`` and ``source``, and nothing was applied since, so the answer is None.
        """
        if isinstance(event, Reply):  # another partition's core answers a LEND
            return self.lending.answer(event, float(now))
        route = self._routes.get(type(event))
        if route is None:
            route = next((r for t, r in self._routes.items() if isinstance(event, t)), None)
            if route is None:
                raise TypeError(f"not a raw event: {type(event).__name__}")
        event, now = _floats(event), float(now)
        problem = None if vetted else self.trust.refusal(event, now, source)
        if problem is not None:
            # Nothing changes, not even a count: the core asks first and dead-letters it,
            # so live and replay agree whether it asked or not.
            return [Rejected(problem)]
        if isinstance(event, PublicAlert):
            effects = self.alerts.handle(event, now, source)
        else:
            effects = route(event, now)
        self.trust.claim(source, event)
        return effects

    def refusal(self, event: object, now: float, *, source: str | None = None) -> str | None:
        """Why :meth:`handle_event` would refuse ``event`` from ``source`` now, or None.

        Pure and cheap: the core asks before journaling and dead-letters the input with
        this reason; the replay (state rebuilt from accepted inputs only) decides alike.
        """
        if isinstance(event, Reply):
            return None  # another partition's core answering: its account vouches for it
        if not isinstance(event, tuple(self._routes)):
            return f"not a raw event: {type(event).__name__}"
        return self.trust.refusal(_floats(event), float(now), source)  # type: ignore[type-var]

    def owner_problem(self, source: str | None, event: object) -> str | None:
        """The ownership part of :meth:`refusal` alone: whether ``source`` may report it."""
        return self.trust.owner_problem(source, event)

    def handle_command(self, cmd: Command, now: float, role: Role = Role.OPERATOR) -> list[Effect]:
        """Apply one operator command; the effects hold exactly one ``SendReply``."""
        return self.commands.handle(cmd, float(now), role)

    def resend_command(self, cmd: Command, now: float) -> list[Effect]:
        """A command the journal already holds (its key): answered, never applied again."""
        return self.commands.resend(cmd, float(now))

    def tick(self, now: float) -> list[Effect]:
        """Fire the SLA deadlines, then the personal-data redactions, due by ``now``; and
        republish the recommendations a silent unit (``stale_after_s``) or a move not looked
        at yet (``console.engine.eta_watch``) made wrong.

        A tick that returns no effects changes nothing observable (it may drop
        deadlines that can no longer fire), so the core need not journal it.
        """
        now = float(now)
        due = self.incidents.escalate_due(now) + self.privacy.redact_due(now)
        return due + self.responders.stale_due(now)

    def set_shelters(self, shelters: Sequence[Shelter]) -> None:
        """Replace the safe places (24-hour stores, police boxes) near which incidents are."""
        self.ctx.st.shelters = list(shelters)
        self.ctx.index_shelters()

    # --- snapshots -----------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The exact state as MessagePack. Canonical: equal states give equal bytes."""
        live = self.incidents.live_deadlines()
        return _encoder.encode(msgspec.structs.replace(self.ctx.st, deadlines=live))

    @classmethod
    def restore(
        cls,
        settings: EngineSettings,
        districts: DistrictMap,
        data: bytes,
        *,
        prefer_numpy: bool = True,
    ) -> Engine:
        state = migrate(_decoder.decode(data))
        if state.version != SNAPSHOT_VERSION:
            raise ValueError(
                f"engine snapshot version {state.version}, expected {SNAPSHOT_VERSION}"
            )
        engine = cls.__new__(cls)
        engine._compose(state, settings, districts, prefer_numpy)
        return engine

    # --- the read side -------------------------------------------------------------------

    def incident_state(self, incident_id: str, now: float) -> IncidentState:
        """An open or recently closed incident, with dispatch support (KeyError if unknown)."""
        return self.read.incident_state(incident_id, now)

    def incident_states(self, incident_ids: Sequence[str], now: float) -> list[IncidentState]:
        return self.read.incident_states(incident_ids, now)

    def open_incident_ids(self) -> list[str]:
        return self.read.open_incident_ids()

    def closed_incident_ids(self) -> list[str]:
        """The most recent closed incidents (up to ``incidents.MAX_CLOSED``), oldest first."""
        return list(self.ctx.st.closed)

    def districts(self) -> list[str]:
        """Districts that have cameras, sorted."""
        return self.read.districts()

    def district_cameras(self, district: str, now: float) -> DistrictCameras:
        return self.read.district_cameras(district, now)

    def responder_ids(self) -> list[str]:
        return self.read.responder_ids()

    def responder_state(self, responder_id: str) -> ResponderState:
        return self.read.responder_state(responder_id)

    def summary(self, now: float) -> Summary:
        return self.read.summary(now)

    def closed_list(self, now: float) -> ClosedList:
        """The recently closed incidents, newest first, bounded (``console.engine.closed``)."""
        return closed_list(self.ctx.st.closed, float(now))

    def closed_lists(self, now: float) -> dict[str, ClosedList]:
        """:meth:`closed_list` of each home district that has recently closed incidents."""
        by_home: dict[str, dict[str, Incident]] = {}
        for incident_id, inc in self.ctx.st.closed.items():
            by_home.setdefault(inc.home or inc.district, {})[incident_id] = inc
        lists = {home: closed_list(closed, float(now)) for home, closed in by_home.items()}
        return {home: listing for home, listing in lists.items() if listing.incidents}

    def shift_times(self) -> list[Times]:
        """The moments of the open incidents and of those closed within ``keep_s``."""
        st = self.ctx.st
        done = [Times(*row) for row, _ in st.finished.values()]
        return done + [times_of(inc) for inc in st.incidents.values()]

    def shift_report(self, now: float) -> ShiftReport:
        """The supervisor's figures at ``now`` (console.engine.shift)."""
        s = self.ctx.settings.supervisor
        start = shift_start(now, s.shift_start_hours, self.ctx.settings.priority.utc_offset_hours)
        targets = Targets(ack_s=s.ack_target_s, dispatch_s=s.dispatch_target_s)
        return report(self.shift_times(), float(now), targets, start,
                      partition=self.ctx.settings.partition,
                      handover=self.ctx.st.handover[-20:])  # fmt: skip

    def urgent_incidents(self, incident_ids: Iterable[str]) -> list[str]:
        """Those of ``incident_ids`` that are open P1s (published ahead of the rest)."""
        open_ = self.ctx.st.incidents
        return [i for i in incident_ids if (inc := open_.get(i)) is not None and inc.priority == 1]

    def incident_home(self, incident_id: str) -> str | None:
        """The home district of an open or recently closed incident (its state topic's)."""
        st = self.ctx.st
        inc = st.incidents.get(incident_id) or st.closed.get(incident_id)
        return None if inc is None else (inc.home or inc.district)

    def responder_home(self, responder_id: str) -> str | None:
        resp = self.ctx.st.responders.get(responder_id)
        if resp is None:
            return None
        return resp.home or self.ctx.district(resp.lat, resp.lon)

    def receipt_for(self, event: object, now: float) -> list[Effect]:
        """The receipt owed for an SOS already journaled (a resend); changes nothing."""
        return self.read.receipt_for(event, now)

    # --- the shared context, for tests and tools -----------------------------------------

    @property
    def st(self) -> State:
        return self.ctx.st

    @property
    def settings(self) -> EngineSettings:
        return self.ctx.settings

    @property
    def district_map(self) -> DistrictMap:
        return self.ctx.district_map

    @property
    def sos_index(self) -> GridIndex:
        return self.ctx.sos_index

    @property
    def cam_index(self) -> PointIndexLike:
        return self.ctx.cam_index

    @property
    def resp_index(self) -> PointIndexLike:
        return self.ctx.resp_index

    @property
    def shelter_index(self) -> PointIndexLike:
        return self.ctx.shelter_index

    @property
    def district_cams(self) -> dict[str, dict[str, None]]:
        return self.ctx.district_cams


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
