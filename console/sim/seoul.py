"""The 25 autonomous districts (gu) of Seoul: names, rough centres and sizes.

Centres are rough geographic centroids, radii come from the area (a circle of
the same area), populations are rounded. Good enough to place a simulated
city and to say which district a point is in; not a map.
"""

from __future__ import annotations

import math
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_M: Final = 6_371_000.0


class District(NamedTuple):
    name: str  # romanised, as shown and used in topics: "Gangnam-gu"
    korean: str  # "강남구"
    slug: str  # for identifiers: "gangnam"
    lat: float
    lon: float
    area_km2: float
    population_k: int  # thousands of residents, rounded

    @property
    def radius_m(self) -> float:
        """Radius of a circle with the district's area."""
        return math.sqrt(self.area_km2 / math.pi) * 1000.0


DISTRICTS: Final[tuple[District, ...]] = (
    District("Jongno-gu", "종로구", "jongno", 37.5945, 126.9770, 23.91, 140),
    District("Jung-gu", "중구", "jung", 37.5601, 126.9960, 9.96, 120),
    District("Yongsan-gu", "용산구", "yongsan", 37.5311, 126.9810, 21.87, 215),
    District("Seongdong-gu", "성동구", "seongdong", 37.5506, 127.0409, 16.86, 280),
    District("Gwangjin-gu", "광진구", "gwangjin", 37.5467, 127.0857, 17.06, 340),
    District("Dongdaemun-gu", "동대문구", "dongdaemun", 37.5819, 127.0548, 14.22, 345),
    District("Jungnang-gu", "중랑구", "jungnang", 37.5977, 127.0928, 18.50, 385),
    District("Seongbuk-gu", "성북구", "seongbuk", 37.6057, 127.0176, 24.58, 430),
    District("Gangbuk-gu", "강북구", "gangbuk", 37.6430, 127.0113, 23.60, 290),
    District("Dobong-gu", "도봉구", "dobong", 37.6690, 127.0324, 20.65, 310),
    District("Nowon-gu", "노원구", "nowon", 37.6525, 127.0750, 35.44, 500),
    District("Eunpyeong-gu", "은평구", "eunpyeong", 37.6191, 126.9270, 29.70, 465),
    District("Seodaemun-gu", "서대문구", "seodaemun", 37.5779, 126.9394, 17.63, 310),
    District("Mapo-gu", "마포구", "mapo", 37.5594, 126.9085, 23.85, 370),
    District("Yangcheon-gu", "양천구", "yangcheon", 37.5247, 126.8555, 17.41, 440),
    District("Gangseo-gu", "강서구", "gangseo", 37.5612, 126.8228, 41.44, 570),
    District("Guro-gu", "구로구", "guro", 37.4943, 126.8560, 20.12, 400),
    District("Geumcheon-gu", "금천구", "geumcheon", 37.4601, 126.9003, 13.02, 230),
    District("Yeongdeungpo-gu", "영등포구", "yeongdeungpo", 37.5222, 126.9103, 24.55, 375),
    District("Dongjak-gu", "동작구", "dongjak", 37.4989, 126.9516, 16.35, 385),
    District("Gwanak-gu", "관악구", "gwanak", 37.4673, 126.9453, 29.57, 490),
    District("Seocho-gu", "서초구", "seocho", 37.4733, 127.0311, 46.98, 410),
    District("Gangnam-gu", "강남구", "gangnam", 37.4967, 127.0630, 39.50, 530),
    District("Songpa-gu", "송파구", "songpa", 37.5049, 127.1151, 33.87, 660),
    District("Gangdong-gu", "강동구", "gangdong", 37.5502, 127.1470, 24.59, 460),
)

BY_NAME: Final[dict[str, District]] = {d.name: d for d in DISTRICTS}

# Seoul's rough bounding box; simulated positions are clipped to it.
LAT_MIN, LAT_MAX = 37.413, 37.715
LON_MIN, LON_MAX = 126.764, 127.184

_LATS = np.array([d.lat for d in DISTRICTS])
_LONS = np.array([d.lon for d in DISTRICTS])
_RADII = np.array([d.radius_m for d in DISTRICTS])
# Metres per degree at Seoul's latitude: an equirectangular projection is
# accurate to well under a percent across a city this size.
M_PER_DEG_LAT: Final = math.pi * EARTH_RADIUS_M / 180.0
M_PER_DEG_LON: Final = M_PER_DEG_LAT * math.cos(math.radians(37.55))


def district_indices(lats: npt.ArrayLike, lons: npt.ArrayLike) -> npt.NDArray[np.intp]:
    """Index into :data:`DISTRICTS` for each point, vectorised.

    Nearest centre, with the distance measured in district radii so a point on
    the edge of a large district is not given to a small neighbour.
    """
    la = np.asarray(lats, dtype=np.float64)
    lo = np.asarray(lons, dtype=np.float64)
    # One pass per district with a running minimum: no (points x 25) temporaries,
    # so 100,000 points take a few milliseconds.
    best = np.full(la.shape, np.inf)
    index = np.zeros(la.shape, dtype=np.intp)
    for i in range(len(DISTRICTS)):
        dy = (la - _LATS[i]) * M_PER_DEG_LAT
        dx = (lo - _LONS[i]) * M_PER_DEG_LON
        scaled = (dx * dx + dy * dy) / (_RADII[i] * _RADII[i])
        closer = scaled < best
        best = np.where(closer, scaled, best)
        index = np.where(closer, i, index)
    return index


_CENTRES: Final = [(d.lat, d.lon, d.radius_m * d.radius_m, d.name) for d in DISTRICTS]


def district_of(lat: float, lon: float) -> str:
    """The district a point is in (its romanised name), by nearest scaled centre.

    The same rule as :func:`district_indices`, in plain Python: for one point,
    numpy's per-call overhead made this cost ~0.5 ms, most of an event's cost.
    """
    best, name = math.inf, DISTRICTS[0].name
    for c_lat, c_lon, r2, c_name in _CENTRES:
        dy = (lat - c_lat) * M_PER_DEG_LAT
        dx = (lon - c_lon) * M_PER_DEG_LON
        scaled = (dx * dx + dy * dy) / r2
        if scaled < best:
            best, name = scaled, c_name
    return name
