"""Geometry for the engine: a small grid index, and which point index to use.

Pure and deterministic. ``console.engine.spatial.PointIndex`` (numpy) is preferred for
the big sets (cameras, responders, shelters) when it is installed;
:class:`GridIndex` is a pure-Python index with the same interface, used for the
open-SOS correlation index (small, many inserts and removals) and as the
fallback. Longitude wrap-around at ±180° is not handled (one city).
"""

from __future__ import annotations

import math
from typing import Protocol

from console.engine.spatial import PointIndex
from protocols.geo import EARTH_RADIUS_M, haversine_m

M_PER_DEG = math.pi * EARTH_RADIUS_M / 180.0  # ~111,195 m per degree of latitude


class PointIndexLike(Protocol):
    def upsert(self, key: str, lat: float, lon: float, active: bool = True) -> None: ...
    def remove(self, key: str) -> None: ...
    def set_active(self, key: str, active: bool) -> None: ...
    def nearest(
        self, lat: float, lon: float, k: int, *, active_only: bool = True
    ) -> list[tuple[str, float]]: ...
    def within(
        self, lat: float, lon: float, radius_m: float, *, limit: int | None = None
    ) -> list[tuple[str, float]]: ...


class GridIndex:
    """Points bucketed in lat/lon cells; exact results, sorted by (distance, key)."""

    def __init__(self, cell_deg: float = 0.01) -> None:
        self._cell = cell_deg
        self._points: dict[str, tuple[float, float, bool]] = {}
        self._where: dict[str, tuple[int, int]] = {}
        self._cells: dict[tuple[int, int], dict[str, None]] = {}
        self._bbox: tuple[int, int, int, int] | None = None  # min i, max i, min j, max j

    def __len__(self) -> int:
        return len(self._points)

    def __contains__(self, key: object) -> bool:
        return key in self._points

    def _cell_of(self, lat: float, lon: float) -> tuple[int, int]:
        return (math.floor(lat / self._cell), math.floor(lon / self._cell))

    def upsert(self, key: str, lat: float, lon: float, active: bool = True) -> None:
        cell = self._cell_of(lat, lon)
        old = self._where.get(key)
        if old is not None and old != cell:
            self._discard(key, old)
        self._points[key] = (lat, lon, active)
        self._where[key] = cell
        self._cells.setdefault(cell, {})[key] = None
        i, j = cell
        if self._bbox is None:
            self._bbox = (i, i, j, j)
        else:
            a, b, c, d = self._bbox
            self._bbox = (min(a, i), max(b, i), min(c, j), max(d, j))

    def _discard(self, key: str, cell: tuple[int, int]) -> None:
        bucket = self._cells.get(cell)
        if bucket is not None:
            bucket.pop(key, None)
            if not bucket:
                del self._cells[cell]

    def remove(self, key: str) -> None:
        cell = self._where.pop(key, None)
        if cell is not None:
            self._discard(key, cell)
        self._points.pop(key, None)

    def set_active(self, key: str, active: bool) -> None:
        point = self._points.get(key)
        if point is not None:
            self._points[key] = (point[0], point[1], active)

    def within(
        self,
        lat: float,
        lon: float,
        radius_m: float,
        *,
        limit: int | None = None,
        active_only: bool = False,
    ) -> list[tuple[str, float]]:
        dlat = radius_m / M_PER_DEG * (1 + 1e-9) + 1e-12
        coslat = math.cos(math.radians(min(89.9, abs(lat) + dlat)))
        dlon = dlat / max(coslat, 1e-6)
        i0, j0 = self._cell_of(lat - dlat, lon - dlon)
        i1, j1 = self._cell_of(lat + dlat, lon + dlon)
        found: list[tuple[str, float]] = []
        if (i1 - i0 + 1) * (j1 - j0 + 1) > 4 * len(self._cells) + 16:
            keys: list[str] = list(self._points)
        else:
            keys = []
            for i in range(i0, i1 + 1):
                for j in range(j0, j1 + 1):
                    bucket = self._cells.get((i, j))
                    if bucket:
                        keys.extend(bucket)
        for key in keys:
            plat, plon, active = self._points[key]
            if (active_only and not active) or abs(plat - lat) > dlat or abs(plon - lon) > dlon:
                continue
            dist = haversine_m(lat, lon, plat, plon)
            if dist <= radius_m:
                found.append((key, dist))
        found.sort(key=lambda kd: (kd[1], kd[0]))
        return found if limit is None else found[:limit]

    def nearest(
        self, lat: float, lon: float, k: int, *, active_only: bool = True
    ) -> list[tuple[str, float]]:
        if k <= 0 or not self._points or self._bbox is None:
            return []
        ci, cj = self._cell_of(lat, lon)
        a, b, c, d = self._bbox
        max_ring = max(abs(ci - a), abs(ci - b), abs(cj - c), abs(cj - d))
        found: list[tuple[float, str]] = []
        ring = 0
        while ring <= max_ring:
            if (2 * ring + 1) ** 2 > 4 * len(self._cells) + 16:
                return self._brute_nearest(lat, lon, k, active_only)
            for cell in _ring_cells(ci, cj, ring):
                bucket = self._cells.get(cell)
                if not bucket:
                    continue
                for key in bucket:
                    plat, plon, active = self._points[key]
                    if active_only and not active:
                        continue
                    found.append((haversine_m(lat, lon, plat, plon), key))
            if len(found) >= k:
                found.sort()
                # Anything in an unscanned ring is at least this far away.
                reach_deg = ring * self._cell
                coslat = math.cos(math.radians(min(89.9, abs(lat) + reach_deg + self._cell)))
                if found[k - 1][0] <= reach_deg * M_PER_DEG * coslat * 0.999:
                    break
            ring += 1
        found.sort()
        return [(key, dist) for dist, key in found[:k]]

    def _brute_nearest(
        self, lat: float, lon: float, k: int, active_only: bool
    ) -> list[tuple[str, float]]:
        found = [
            (haversine_m(lat, lon, plat, plon), key)
            for key, (plat, plon, active) in self._points.items()
            if active or not active_only
        ]
        found.sort()
        return [(key, dist) for dist, key in found[:k]]


def _ring_cells(ci: int, cj: int, ring: int) -> list[tuple[int, int]]:
    if ring == 0:
        return [(ci, cj)]
    cells = [(ci - ring, j) for j in range(cj - ring, cj + ring + 1)]
    cells += [(ci + ring, j) for j in range(cj - ring, cj + ring + 1)]
    cells += [(i, cj - ring) for i in range(ci - ring + 1, ci + ring)]
    cells += [(i, cj + ring) for i in range(ci - ring + 1, ci + ring)]
    return cells


def make_point_index(prefer_numpy: bool = True) -> PointIndexLike:
    """``console.engine.spatial.PointIndex`` (numpy), or the pure-Python :class:`GridIndex`."""
    if prefer_numpy:
        index: PointIndexLike = PointIndex()
        return index
    return GridIndex()
