"""A simulated Seoul: cameras, responders and safe shelters, the same for a seed.

Cameras are kept as columns (lists and numpy arrays), not one object each, so
that 100,000 of them build in a fraction of a second and "cameras near this
point" is one vectorised expression.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from console.sim import seoul
from protocols.schemas import Shelter, UnitKind

# What a camera looks at; the name says where it is, as a control room labels them.
_CAMERA_PLACES = (
    "alley",
    "crosswalk",
    "bus stop",
    "station exit",
    "park entrance",
    "playground",
    "school zone",
    "underpass",
    "parking lot",
    "market street",
    "riverside path",
    "villa block",
)
_STORE_BRANDS = ("GS25", "CU", "7-Eleven", "emart24")
# Share of each responder kind, and how each is named.
_UNIT_SHARE = ((UnitKind.POLICE, 0.4), (UnitKind.SCOUT, 0.35), (UnitKind.GUARD, 0.25))
_UNIT_LABEL = {
    UnitKind.POLICE: "patrol",
    UnitKind.SCOUT: "safe-return scout",
    UnitKind.GUARD: "guard",
}
# Shelter kinds: 24-hour convenience stores, police boxes (jigudae), and the
# "women's safe-return house" (여성안심지킴이집) stores that take in someone followed.
_SHELTER_SHARE = (("24h-store", 0.6), ("police-box", 0.15), ("safe-house", 0.25))


@dataclass(frozen=True)
class Responder:
    id: str
    kind: UnitKind
    name: str
    district: str  # its home district, where it starts: its reports are published there
    lat: float
    lon: float


@dataclass(frozen=True, eq=False)
class City:
    """The simulated city. Camera ``i`` is ``camera_ids[i]`` at ``camera_lat[i], camera_lon[i]``."""

    seed: int
    camera_ids: list[str]
    camera_names: list[str]
    camera_district: npt.NDArray[np.intp]  # index into seoul.DISTRICTS
    camera_lat: npt.NDArray[np.float64]
    camera_lon: npt.NDArray[np.float64]
    responders: tuple[Responder, ...]
    shelters: tuple[Shelter, ...]

    @property
    def camera_count(self) -> int:
        return len(self.camera_ids)

    def camera_district_name(self, i: int) -> str:
        return seoul.DISTRICTS[int(self.camera_district[i])].name

    def cameras_near(self, lat: float, lon: float, radius_m: float) -> npt.NDArray[np.intp]:
        """Indices of cameras within ``radius_m`` of a point, nearest first."""
        dy = (self.camera_lat - lat) * seoul.M_PER_DEG_LAT
        dx = (self.camera_lon - lon) * seoul.M_PER_DEG_LON
        d2 = dx * dx + dy * dy
        inside = np.flatnonzero(d2 <= radius_m * radius_m)
        return inside[np.argsort(d2[inside], kind="stable")]


def _weights() -> npt.NDArray[np.float64]:
    """Cameras and people follow population, with a floor so small districts are not empty."""
    pop = np.array([d.population_k for d in seoul.DISTRICTS], dtype=np.float64)
    w = pop + pop.mean() * 0.25
    return w / w.sum()


def _scatter(
    rng: np.random.Generator, district: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Positions around each district's centre: most near it, some out to its edge.

    A 60/40 mix of a normal (sigma = radius/2, the dense centre around stations
    and markets) and a uniform disc (residential streets everywhere else).
    """
    n = len(district)
    lat0 = np.array([d.lat for d in seoul.DISTRICTS])[district]
    lon0 = np.array([d.lon for d in seoul.DISTRICTS])[district]
    radius = np.array([d.radius_m for d in seoul.DISTRICTS])[district]
    dense = rng.random(n) < 0.6
    r = np.where(
        dense,
        np.abs(rng.normal(0.0, 0.5, n)) * radius,
        np.sqrt(rng.random(n)) * radius,
    )
    r = np.minimum(r, radius * 1.2)
    theta = rng.random(n) * 2 * np.pi
    lat = lat0 + r * np.sin(theta) / seoul.M_PER_DEG_LAT
    lon = lon0 + r * np.cos(theta) / seoul.M_PER_DEG_LON
    lat = np.clip(lat, seoul.LAT_MIN, seoul.LAT_MAX).round(6)
    lon = np.clip(lon, seoul.LON_MIN, seoul.LON_MAX).round(6)
    return lat, lon


def _split(total: int, shares: tuple[tuple[object, float], ...]) -> list[int]:
    """Whole counts for ``shares`` adding up to ``total`` (largest remainders)."""
    raw = [total * share for _, share in shares]
    counts = [int(x) for x in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def build_city(seed: int, cameras: int, responders: int, shelters: int) -> City:
    """The city for ``seed``: same arguments, same city, on any machine."""
    rng = np.random.default_rng([seed, 0x5E0])
    weights = _weights()
    n_districts = len(seoul.DISTRICTS)

    # Cameras, grouped by district so their numbers run 0001, 0002, ... per district.
    # Placed around a district's centre, then filed under the district the
    # position falls in (seoul.district_of), so the core agrees with the name.
    placed = np.repeat(np.arange(n_districts), rng.multinomial(cameras, weights))
    cam_lat, cam_lon = _scatter(rng, placed)
    cam_district = seoul.district_indices(cam_lat, cam_lon)
    order = np.argsort(cam_district, kind="stable")
    cam_district, cam_lat, cam_lon = cam_district[order], cam_lat[order], cam_lon[order]
    per_district = np.bincount(cam_district, minlength=n_districts)
    places = rng.integers(0, len(_CAMERA_PLACES), cameras).tolist()
    ids: list[str] = []
    names: list[str] = []
    for d_index, count in enumerate(per_district.tolist()):
        district = seoul.DISTRICTS[d_index]
        base = len(ids)
        short = district.name.removesuffix("-gu")
        ids.extend(f"cam-{district.slug}-{k:04d}" for k in range(1, count + 1))
        names.extend(
            f"{short} {_CAMERA_PLACES[places[base + k - 1]]} {k:04d}" for k in range(1, count + 1)
        )

    # Responders: kinds by share, spread over districts by population.
    units: list[Responder] = []
    for (kind, _), count in zip(_UNIT_SHARE, _split(responders, _UNIT_SHARE), strict=True):
        u_lat, u_lon = _scatter(rng, rng.choice(n_districts, size=count, p=weights))
        u_district = seoul.district_indices(u_lat, u_lon)
        for k in range(count):
            district = seoul.DISTRICTS[int(u_district[k])]
            units.append(
                Responder(
                    id=f"unit-{kind.value}-{k + 1:02d}",
                    kind=kind,
                    name=f"{district.name.removesuffix('-gu')} {_UNIT_LABEL[kind]} {k + 1}",
                    district=district.name,
                    lat=float(u_lat[k]),
                    lon=float(u_lon[k]),
                )
            )

    # Shelters.
    places_out: list[Shelter] = []
    for (shelter_kind, _), count in zip(
        _SHELTER_SHARE, _split(shelters, _SHELTER_SHARE), strict=True
    ):
        s_lat, s_lon = _scatter(rng, rng.choice(n_districts, size=count, p=weights))
        s_district = seoul.district_indices(s_lat, s_lon)
        brands = rng.integers(0, len(_STORE_BRANDS), count)
        for k in range(count):
            district = seoul.DISTRICTS[int(s_district[k])]
            short = district.name.removesuffix("-gu")
            if shelter_kind == "police-box":
                name = f"{short} jigudae {k + 1} ({district.korean} 지구대)"
            elif shelter_kind == "safe-house":
                name = f"{_STORE_BRANDS[brands[k]]} {short} {k + 1} (여성안심지킴이집)"
            else:
                name = f"{_STORE_BRANDS[brands[k]]} {short} {k + 1}"
            places_out.append(
                Shelter(
                    id=f"shelter-{shelter_kind}-{k + 1:04d}",
                    name=name,
                    kind=shelter_kind,
                    lat=float(s_lat[k]),
                    lon=float(s_lon[k]),
                    district=district.name,
                )
            )

    return City(
        seed=seed,
        camera_ids=ids,
        camera_names=names,
        camera_district=cam_district,
        camera_lat=cam_lat,
        camera_lon=cam_lon,
        responders=tuple(units),
        shelters=tuple(places_out),
    )
