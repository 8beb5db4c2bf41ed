"""Nearest-k for many query points at once, over a small set (responders, shelters).

Every tick the core publishes the states of the incidents that changed, each with
its nearest free responders and shelters. Asked one by one, each query costs ~30 µs
of numpy call overhead for a few hundred points; asked together, one matrix of
haversine terms (queries × points) answers a few hundred incidents for about the
price of ten single queries. The answers are exactly those of
:meth:`console.engine.spatial.PointIndex.nearest` (same distances, ties by key): the tests
compare them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final, Protocol

import numpy as np

from console.engine.spatial import FloatArray, PointIndex, SlotArray

# Rows per matrix: 256 queries × 1,500 points is 3 MB of float64.
CHUNK: Final = 256


class Nearest(Protocol):
    def nearest(
        self, lat: float, lon: float, k: int, *, active_only: bool = True
    ) -> list[tuple[str, float]]: ...


def nearest_many(
    index: Nearest, points: Sequence[tuple[float, float]], k: int, *, active_only: bool
) -> list[list[tuple[str, float]]]:
    """``index.nearest(lat, lon, k, active_only=...)`` for each point, in order.

    Any index with ``nearest`` is accepted (the engine's pure-Python fallback, say);
    only a :class:`PointIndex` over a small set is answered by the matrix.
    """
    if not points:
        return []
    if k <= 0 or not isinstance(index, PointIndex) or not index.uses_scan(active_only):
        # A large set: the grid answers each query faster than a full row would.
        return [index.nearest(lat, lon, k, active_only=active_only) for lat, lon in points]
    slots, phi, lam, cos = index.scan_arrays(active_only)
    if len(slots) == 0:
        return [[] for _ in points]
    out: list[list[tuple[str, float]]] = []
    for start in range(0, len(points), CHUNK):
        out += _chunk(index, points[start : start + CHUNK], k, slots, phi, lam, cos)
    return out


def _chunk(
    index: PointIndex,
    points: Sequence[tuple[float, float]],
    k: int,
    slots: SlotArray,
    phi: FloatArray,
    lam: FloatArray,
    cos: FloatArray,
) -> list[list[tuple[str, float]]]:
    # Per query in Python with math's functions, exactly as nearest()'s _Query does, so
    # the terms (and the ties) are bit for bit the same.
    q_phi = np.empty((len(points), 1))
    q_lam = np.empty((len(points), 1))
    q_cos = np.empty((len(points), 1))
    for r, (lat, lon) in enumerate(points):
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise ValueError(f"position out of range: {lat!r}, {lon!r}")
        phi_r = math.radians(lat)
        q_phi[r, 0] = phi_r * 0.5
        q_lam[r, 0] = math.radians(lon) * 0.5
        q_cos[r, 0] = math.cos(phi_r)
    # The haversine term, as PointIndex._hav_a computes it, one row per query.
    s_lat = np.sin(phi[None, :] - q_phi)
    s_lat *= s_lat
    s_lon = np.sin(lam[None, :] - q_lam)
    s_lon *= s_lon
    s_lon *= cos[None, :]
    s_lon *= q_cos
    s_lat += s_lon
    a = s_lat
    n = a.shape[1]
    if k >= n:
        return [index.finish(slots, row, k) for row in a]
    # The k-th smallest term of each row; every term tied with it goes along, so the
    # cut is by (distance, key) as in nearest().
    kth = np.partition(a, k - 1, axis=1)[:, k - 1 : k]
    rows, cols = np.nonzero(a <= kth)
    bounds = np.searchsorted(rows, np.arange(len(points) + 1))
    out: list[list[tuple[str, float]]] = []
    for r in range(len(points)):
        take = cols[bounds[r] : bounds[r + 1]]
        out.append(index.finish(slots[take], a[r, take], k))
    return out
