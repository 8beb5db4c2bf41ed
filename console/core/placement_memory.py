"""A core's memory of where it placed what every partition's core reads: the raw topics
without a district (docs/partitions.md, "Placement").

Placement by the message alone goes wrong twice in a city of several partitions:

- an SOS resent with the same alarm id but a fix across a partition border (GPS jitter
  at the river) would be placed in both partitions, one sighting each: two incidents;
- a CCTV event with neither district nor position would go to the home partition,
  whose core never heard of its camera when a report without a district placed the
  camera in another partition by its position.

So each core remembers, for every SOS key, the district its first sighting was placed in,
and, for every camera its named owner ([owners]) reported without a district, the district
that report placed it in. Every core reads those topics and one source's messages in the
same order, so every core remembers the same thing and places alike, without sharing
anything. Placement stays a function every core evaluates alike: of the configuration and
of the stream they all read.

What a core holds (its engine's state, rebuilt from its journal on a restart) backs the
memory: a core that journaled an SOS or registered a camera takes what follows of it when
it has no memory (restarted, or its memory let it go). So a message another core leaves
to it is never left by both; at worst, after a restart, two cores take one (see
docs/partitions.md, "Not done yet").
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from console.engine.districts import DistrictMap
from console.engine.engine import Engine
from console.engine.partitions import district_of_message
from console.engine.trust import Registry
from protocols.schemas import CameraHealth, CctvEvent, SosAlarm

# SOS keys: the newest 100,000 first sightings, none older than a day. A phone resends an
# alarm until it has a receipt, within seconds or, out of coverage, hours; a day holds a
# sustained SOS a second. The day also stays well inside the engine's own memory of
# alarms (console.engine.context.ALARM_RETENTION_S, 7 days): a core that remembers
# leaving a key to another partition can count on that core still holding it.
SOS_MAX = 100_000
SOS_WINDOW_S = 86_400.0
# Cameras: per named source, the most recently placed 100,000. Per source, so a source's
# flood of its own ids never pushes out another's, and every core lets go of the same ones
# (each source's messages arrive in one order everywhere).
CAMERAS_PER_SOURCE = 100_000


class Holdings(Protocol):
    """What this core already holds from its journal (it survives a restart)."""

    def holds_alarm(self, key: str) -> bool: ...

    def holds_camera(self, camera_id: str) -> bool: ...


class EngineHoldings:
    """:class:`Holdings` from the engine's state: its alarms (``source/alarm_id``, as
    console.engine.sos keys them) and its cameras (its own and its neighbours')."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def holds_alarm(self, key: str) -> bool:
        return key in self.engine.st.alarms

    def holds_camera(self, camera_id: str) -> bool:
        return camera_id in self.engine.st.cameras


def holdings_of(judge: object) -> Holdings | None:
    """The holdings of the engine a Reader is bound to (None: no engine, nothing held)."""
    return EngineHoldings(judge) if isinstance(judge, Engine) else None


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a message without a district goes: ``district`` (None: no district, the home
    partition's), unless ``held``: this core holds it already, so it is this core's."""

    district: str | None
    held: bool = False


def alarm_key(message: SosAlarm) -> str:
    return f"{message.source}/{message.alarm_id}"


class PlacementMemory:
    """Where each SOS key and each named camera reported without a district was placed."""

    def __init__(
        self,
        districts: DistrictMap,
        cameras: Registry,
        *,
        sos_max: int = SOS_MAX,
        sos_window_s: float = SOS_WINDOW_S,
        cameras_per_source: int = CAMERAS_PER_SOURCE,
    ) -> None:
        self.districts = districts
        self.owners = cameras
        self.sos_max = sos_max
        self.sos_window_s = sos_window_s
        self.cameras_per_source = cameras_per_source
        # key -> (district of its first sighting, when): insertion order is arrival order.
        self.sos: OrderedDict[str, tuple[str | None, float]] = OrderedDict()
        # source -> camera id -> district, the most recently placed last.
        self.cameras: dict[str, OrderedDict[str, str]] = {}

    def place(
        self, message: object, source: str, now: float, holdings: Holdings | None = None
    ) -> Placement:
        """Place ``message`` (published without a district by ``source``) and remember
        what every core must remember of it, whoever takes it."""
        district = district_of_message(message, self.districts)
        if isinstance(message, SosAlarm):
            return self._sos(message, district, now, holdings)
        if isinstance(message, CameraHealth):
            self._note_camera(message, source, district)
        elif isinstance(message, CctvEvent) and district is None:
            if message.lat is None or message.lon is None:
                return self._cctv(message, source, holdings)
        return Placement(district)

    def _sos(
        self, message: SosAlarm, district: str | None, now: float, holdings: Holdings | None
    ) -> Placement:
        key = alarm_key(message)
        sos = self.sos
        horizon = now - self.sos_window_s
        while sos and next(iter(sos.values()))[1] < horizon:
            sos.popitem(last=False)
        first = sos.get(key)
        if first is None:
            sos[key] = (district, now)
            if len(sos) > self.sos_max:
                sos.popitem(last=False)
        else:
            district = first[0]  # the first sighting wins, wherever the resend is
        # The owner's journal outlasts its memory (a restart, a key let go): its own still.
        return Placement(district, holdings is not None and holdings.holds_alarm(key))

    def _note_camera(self, message: CameraHealth, source: str, district: str | None) -> None:
        """Remember where the camera's named owner placed it. Only its named owner: any
        source may publish any camera id, and every core must remember alike, so the
        [owners] configuration (the same in every core) decides, never a core's state."""
        if district is None or not source or source not in self.owners.sources(message.camera_id):
            return
        lat, lon = message.lat, message.lon
        if lat is not None and lon is not None and not self.districts.in_service_area(lat, lon):
            return  # its owner's core refuses it: no camera there to send its events to
        table = self.cameras.get(source)
        if table is None:
            table = self.cameras[source] = OrderedDict()
        table[message.camera_id] = district
        table.move_to_end(message.camera_id)
        if len(table) > self.cameras_per_source:
            table.popitem(last=False)

    def _cctv(self, message: CctvEvent, source: str, holdings: Holdings | None) -> Placement:
        """A CCTV event with neither district nor position: where its camera was placed."""
        if not source or source not in self.owners.sources(message.camera_id):
            return Placement(None)  # the home partition's, which refuses another's event
        table = self.cameras.get(source)
        district = table.get(message.camera_id) if table is not None else None
        if district is not None:
            return Placement(district)
        # No memory of it (this core restarted, or the camera was published into its
        # district): a core whose journal registered the camera takes it, so an event
        # another core leaves to this one is never left by both.
        return Placement(None, holdings is not None and holdings.holds_camera(message.camera_id))

    def size(self) -> tuple[int, int]:
        """(SOS keys, cameras) remembered."""
        return len(self.sos), sum(len(t) for t in self.cameras.values())
