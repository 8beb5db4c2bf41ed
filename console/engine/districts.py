"""The districts of the service area, as data the engine is given.

A city is a list of districts with a centre and an area; the district of a
point is the nearest centre, with distance measured in district radii so a
point on the edge of a large district is not given to a small neighbour. The
configuration supplies the list (``[city]`` in config.toml: Seoul's 25 gu for
the training default); nothing here knows any particular city.

The service area is a box: given (``[city] service_area``), or the box around every
district's circle plus a margin (``service_margin_m``). A position outside it is not
one the city's sources can plausibly report.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Annotated

import numpy as np
import numpy.typing as npt
from msgspec import Meta, Struct

from protocols.geo import EARTH_RADIUS_M

M_PER_DEG_LAT = math.pi * EARTH_RADIUS_M / 180.0  # ~111,195 m per degree of latitude

Latitude = Annotated[float, Meta(ge=-90, le=90)]
Longitude = Annotated[float, Meta(ge=-180, le=180)]
# (lat_min, lon_min, lat_max, lon_max)
Box = tuple[float, float, float, float]
DEFAULT_MARGIN_M = 10_000.0


class District(Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    # Romanised, as shown and used in topics: "Gangnam-gu".
    name: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+\Z")]
    korean: str = ""  # "강남구"
    slug: Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[a-z0-9-]+\Z")]  # "gangnam"
    lat: Latitude
    lon: Longitude
    area_km2: Annotated[float, Meta(gt=0)]
    population_k: Annotated[int, Meta(ge=0)] = 0  # thousands of residents, rounded

    @property
    def radius_m(self) -> float:
        """Radius of a circle with the district's area."""
        return math.sqrt(self.area_km2 / math.pi) * 1000.0


class DistrictMap:
    """Which district a point is in, one at a time (memoised) or many at once (numpy)."""

    def __init__(
        self,
        districts: Sequence[District],
        *,
        service_area: Sequence[float] | None = None,
        margin_m: float = DEFAULT_MARGIN_M,
    ) -> None:
        if not districts:
            raise ValueError("a city needs at least one district")
        names = [d.name for d in districts]
        if len(set(names)) != len(names):
            raise ValueError("district names must be unique")
        self.districts: tuple[District, ...] = tuple(districts)
        self.by_name: dict[str, District] = {d.name: d for d in self.districts}
        # An equirectangular projection at the city's mean latitude (to 0.01°, so a
        # small edit to one centre moves no boundary): accurate to well under a
        # percent across a city, and cheap.
        self.ref_lat = round(sum(d.lat for d in self.districts) / len(self.districts), 2)
        self.m_per_deg_lat = M_PER_DEG_LAT
        self.m_per_deg_lon = M_PER_DEG_LAT * math.cos(math.radians(self.ref_lat))
        self._lats = np.array([d.lat for d in self.districts])
        self._lons = np.array([d.lon for d in self.districts])
        self._r2 = np.array([d.radius_m**2 for d in self.districts])
        self._centres = [(d.lat, d.lon, d.radius_m**2, d.name) for d in self.districts]
        self.district_of: Callable[[float, float], str] = _memoised(self.nearest)
        self.service_area: Box = (
            service_box(service_area) if service_area else self._derived_area(max(0.0, margin_m))
        )

    def _derived_area(self, margin_m: float) -> Box:
        """The box around every district's circle, plus ``margin_m`` all round."""
        lat_min = lon_min = math.inf
        lat_max = lon_max = -math.inf
        for d in self.districts:
            reach = d.radius_m + margin_m
            dlat = reach / M_PER_DEG_LAT
            dlon = reach / max(M_PER_DEG_LAT * math.cos(math.radians(d.lat)), 1.0)
            lat_min, lat_max = min(lat_min, d.lat - dlat), max(lat_max, d.lat + dlat)
            lon_min, lon_max = min(lon_min, d.lon - dlon), max(lon_max, d.lon + dlon)
        return (max(lat_min, -90.0), max(lon_min, -180.0), min(lat_max, 90.0), min(lon_max, 180.0))

    def in_service_area(self, lat: float, lon: float) -> bool:
        lat_min, lon_min, lat_max, lon_max = self.service_area
        return lat_min <= lat <= lat_max and lon_min <= lon <= lon_max

    def __len__(self) -> int:
        return len(self.districts)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.districts]

    def nearest(self, lat: float, lon: float) -> str:
        """The district of a point, exactly (:attr:`district_of` is the memoised one)."""
        # Plain Python for one point: numpy's per-call overhead cost ~0.5 ms here.
        best, name = math.inf, self.districts[0].name
        for c_lat, c_lon, r2, c_name in self._centres:
            dy = (lat - c_lat) * self.m_per_deg_lat
            dx = (lon - c_lon) * self.m_per_deg_lon
            scaled = (dx * dx + dy * dy) / r2
            if scaled < best:
                best, name = scaled, c_name
        return name

    def indices(self, lats: npt.ArrayLike, lons: npt.ArrayLike) -> npt.NDArray[np.intp]:
        """Index into :attr:`districts` for each point, by the same rule, vectorised."""
        la = np.asarray(lats, dtype=np.float64)
        lo = np.asarray(lons, dtype=np.float64)
        # One pass per district with a running minimum: no (points x districts)
        # temporaries, so 100,000 points take a few milliseconds.
        best = np.full(la.shape, np.inf)
        index = np.zeros(la.shape, dtype=np.intp)
        for i in range(len(self.districts)):
            dy = (la - self._lats[i]) * self.m_per_deg_lat
            dx = (lo - self._lons[i]) * self.m_per_deg_lon
            scaled = (dx * dx + dy * dy) / self._r2[i]
            closer = scaled < best
            best = np.where(closer, scaled, best)
            index = np.where(closer, i, index)
        return index


def service_box(values: Sequence[float]) -> Box:
    if len(values) != 4:
        raise ValueError("service_area is [lat_min, lon_min, lat_max, lon_max]")
    lat_min, lon_min, lat_max, lon_max = (float(v) for v in values)
    if not (-90.0 <= lat_min < lat_max <= 90.0 and -180.0 <= lon_min < lon_max <= 180.0):
        raise ValueError(
            "service_area is [lat_min, lon_min, lat_max, lon_max], each minimum below its maximum"
        )
    return (lat_min, lon_min, lat_max, lon_max)


def _memoised(nearest: Callable[[float, float], str]) -> Callable[[float, float], str]:
    """``nearest`` taken at the point rounded to 0.001° (about 110 m × 90 m in Seoul).

    Still a pure function of the input, so deterministic, and a repeat costs a
    dict lookup.
    """

    @functools.lru_cache(maxsize=1 << 17)
    def rounded(lat_milli: int, lon_milli: int) -> str:
        return nearest(lat_milli / 1000.0, lon_milli / 1000.0)

    def cached(lat: float, lon: float) -> str:
        return rounded(round(lat * 1000.0), round(lon * 1000.0))

    return cached
