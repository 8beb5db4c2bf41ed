"""The arithmetic under :mod:`console.engine.spatial`: query points, haversine terms, top-k.

Split from the index so the index reads as the data structure it is. Half angles in
radians throughout: the haversine only ever uses Δφ/2 and Δλ/2.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from protocols.geo import EARTH_RADIUS_M, HALF_CIRCUMFERENCE_M

FloatArray = npt.NDArray[np.float64]
SlotArray = npt.NDArray[np.intp]


class Query:
    """A query point in the units the arrays use."""

    __slots__ = ("cos", "lam_h", "phi_h")

    def __init__(self, lat: float, lon: float) -> None:
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise ValueError(f"position out of range: {lat!r}, {lon!r}")
        phi = math.radians(lat)
        self.phi_h = phi * 0.5
        self.lam_h = math.radians(lon) * 0.5
        self.cos = math.cos(phi)


def distance_then_key(kd: tuple[str, float]) -> tuple[float, str]:
    return kd[1], kd[0]


def smallest(a: FloatArray, k: int) -> SlotArray:
    """Positions of the ``k`` smallest values of ``a`` and of every value tied with the k-th."""
    kth = a[np.argpartition(a, k - 1)[k - 1]]
    return np.flatnonzero(a <= kth)


def concat(parts: list[SlotArray]) -> SlotArray:
    if not parts:
        return np.empty(0, dtype=np.intp)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts)


def concat_f(parts: list[FloatArray]) -> FloatArray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def m_to_a(metres: float) -> float:
    """The haversine term of a distance; distances beyond half the globe saturate at 1."""
    if metres >= HALF_CIRCUMFERENCE_M:
        return 1.0
    s = math.sin(metres / (2.0 * EARTH_RADIUS_M))
    return s * s
