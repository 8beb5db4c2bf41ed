"""Which core is the authority of which district: the city's partitions, as data.

A partition is a set of districts with one core (an active/standby pair), one
journal chain and its own incident ids. The configuration maps partitions to
districts (``[partitions]``); with none configured the whole city is one
partition, ``city``, and everything is as it was before partitions existed.

Placement is a pure function of the district, so every core and every gateway
that asks gets the same answer: a message published without a district is taken
by exactly one core, the one whose partition holds the district of its position
(or of its payload), and what no district places (no position, a position outside
the service area) belongs to the first partition, the home partition.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from console.engine.districts import DistrictMap
from protocols.geo import haversine_m
from protocols.public_alert import PublicAlert
from protocols.schemas import CameraHealth, CctvEvent, ResponderReport, SosAlarm
from protocols.topics import DEFAULT_PARTITION

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class Partitions:
    """The partitions of a city and the district each one owns."""

    def __init__(self, table: Mapping[str, Sequence[str]], districts: Iterable[str]) -> None:
        known = list(districts)
        if not table:
            table = {DEFAULT_PARTITION: known}
        self.names: tuple[str, ...] = tuple(table)
        self.home: str = self.names[0]
        self.configured = len(self.names) > 1 or self.names != (DEFAULT_PARTITION,)
        self._owner: dict[str, str] = {}
        self._districts: dict[str, frozenset[str]] = {}
        known_set = set(known)
        for name, members in table.items():
            # A partition's name is a topic level (cmd/<op>/<partition>, state/summary/...).
            if not _NAME.fullmatch(name):
                raise ValueError(f"{name[:64]}: a partition's name is letters, digits, . _ -")
            for district in members:
                if district not in known_set:
                    raise ValueError(f"{name}: no district named {district!r} in [city]")
                if district in self._owner:
                    raise ValueError(
                        f"{name}: {district} is already in partition {self._owner[district]}"
                    )
                self._owner[district] = name
            self._districts[name] = frozenset(members)
        missing = [d for d in known if d not in self._owner]
        if missing:
            raise ValueError(f"no partition holds {', '.join(missing)}")

    def owner(self, district: str | None) -> str:
        """The partition whose core is the authority of ``district`` (home if none)."""
        if district is None:
            return self.home
        return self._owner.get(district, self.home)

    def districts_of(self, partition: str) -> frozenset[str]:
        if partition not in self._districts:
            raise KeyError(partition)
        return self._districts[partition]

    def __contains__(self, partition: object) -> bool:
        return partition in self._districts

    def border_districts(
        self, partition: str, districts: DistrictMap, margin_m: float
    ) -> frozenset[str]:
        """Other partitions' districts whose circle comes within ``margin_m`` of one of
        ``partition``'s: whose cameras and units its core reads as context."""
        own = [d for d in districts.districts if d.name in self._districts[partition]]
        found: set[str] = set()
        for other in districts.districts:
            if self.owner(other.name) == partition:
                continue
            for mine in own:
                gap = haversine_m(mine.lat, mine.lon, other.lat, other.lon)
                if gap - mine.radius_m - other.radius_m <= margin_m:
                    found.add(other.name)
                    break
        return frozenset(found)


def district_of_message(message: object, districts: DistrictMap) -> str | None:
    """The district a message published without one belongs to, or None (the home
    partition's): the district it names (a camera's, a unit's, a CCTV event's; the first
    of a public alert's), else the district of its position.

    A named district the city lacks counts for nothing (the position decides), and so
    does a position outside the service area: the nearest district of a point in Busan
    is no partition's business, and a made-up name must not pull a camera standing in
    one partition's district into another's (whose page for it would replace the
    owner's)."""
    named = getattr(message, "district", None)
    if isinstance(message, CameraHealth | CctvEvent | ResponderReport) and (
        named in districts.by_name
    ):
        return str(named)
    if isinstance(message, PublicAlert):
        # The engine homes an alert in the first of its districts the city has
        # (console.engine.alerts): the core that opens it must be that district's.
        listed = next((d for d in message.districts if d in districts.by_name), None)
        if listed is not None:
            return listed
    if isinstance(message, SosAlarm | CctvEvent | CameraHealth | ResponderReport | PublicAlert):
        lat, lon = getattr(message, "lat", None), getattr(message, "lon", None)
        if lat is not None and lon is not None:
            lat, lon = float(lat), float(lon)
            if districts.in_service_area(lat, lon):
                return districts.district_of(lat, lon)
    return None
