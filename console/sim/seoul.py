"""The simulated Seoul: its districts (from the configuration), bounding box and scale.

The district table itself is data: ``[city]`` in the shipped config.toml (rough
centroids, areas and rounded populations of the 25 autonomous districts). The
simulator places cameras, units and events in it, and the core, given the same
table, names the same district for every position.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from console.config import default_districts
from console.engine.districts import District, DistrictMap

DISTRICTS: Final[tuple[District, ...]] = default_districts()
SEOUL: Final = DistrictMap(DISTRICTS)
BY_NAME: Final[dict[str, District]] = SEOUL.by_name

# Seoul's rough bounding box; simulated positions are clipped to it.
LAT_MIN, LAT_MAX = 37.413, 37.715
LON_MIN, LON_MAX = 126.764, 127.184

M_PER_DEG_LAT: Final = SEOUL.m_per_deg_lat
M_PER_DEG_LON: Final = SEOUL.m_per_deg_lon


def district_indices(lats: npt.ArrayLike, lons: npt.ArrayLike) -> npt.NDArray[np.intp]:
    """Index into :data:`DISTRICTS` for each point, vectorised (nearest scaled centre)."""
    return SEOUL.indices(lats, lons)


def district_of(lat: float, lon: float) -> str:
    """The district a point is in (its romanised name), by the same rule."""
    return SEOUL.nearest(lat, lon)


# The two-partition example of docs/deploy.md and the tests: Seoul's 25 gu by which bank
# of the Han river they lie on (14 north, 11 south).
HAN_NORTH: Final[tuple[str, ...]] = (
    "Jongno-gu", "Jung-gu", "Yongsan-gu", "Seongdong-gu", "Gwangjin-gu", "Dongdaemun-gu",
    "Jungnang-gu", "Seongbuk-gu", "Gangbuk-gu", "Dobong-gu", "Nowon-gu", "Eunpyeong-gu",
    "Seodaemun-gu", "Mapo-gu",
)  # fmt: skip
HAN_SOUTH: Final[tuple[str, ...]] = tuple(d.name for d in DISTRICTS if d.name not in HAN_NORTH)
