"""Great-circle geometry on a spherical Earth: distances, offsets, areas.

Pure ``math``, no numpy, so every layer may import it. The vectorised index in
``console.engine.spatial`` uses the same haversine formula, so a distance computed
here and one reported by the index agree to rounding.

Angles are WGS84 degrees, distances metres. A sphere of the IUGG mean radius is
within 0.5 % of the ellipsoid everywhere, far below a GPS fix's error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

EARTH_RADIUS_M: Final = 6_371_008.8  # IUGG mean radius R1
HALF_CIRCUMFERENCE_M: Final = math.pi * EARTH_RADIUS_M  # no two points are farther apart


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points given in degrees.

    Haversine rather than the spherical law of cosines: it stays accurate for
    the short distances dispatch cares about (metres, not kilometres).
    """
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    s_lat = math.sin((phi2 - phi1) * 0.5)
    s_lon = math.sin(math.radians(lon2 - lon1) * 0.5)
    a = s_lat * s_lat + math.cos(phi1) * math.cos(phi2) * s_lon * s_lon
    # Rounding can push ``a`` a hair above 1 for antipodal points.
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


def initial_bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Bearing at the start of the great circle from point 1 to point 2, in [0, 360)."""
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    d_lon = math.radians(lon2 - lon1)
    y = math.sin(d_lon) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(d_lon)
    return math.degrees(math.atan2(y, x)) % 360.0


def destination(
    lat: float, lon: float, bearing_deg: float, distance_m: float
) -> tuple[float, float]:
    """The point ``distance_m`` metres from (lat, lon) along ``bearing_deg`` (0 = north).

    Longitude is normalised to [-180, 180), so the result is always a valid
    wire position even across the antimeridian.
    """
    delta = distance_m / EARTH_RADIUS_M
    theta = math.radians(bearing_deg)
    phi1 = math.radians(lat)
    sin_phi2 = math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta)
    phi2 = math.asin(max(-1.0, min(1.0, sin_phi2)))
    lam2 = math.radians(lon) + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * sin_phi2,
    )
    return math.degrees(phi2), normalize_lon(math.degrees(lam2))


def normalize_lon(lon: float) -> float:
    """Longitude folded into [-180, 180)."""
    return (lon + 180.0) % 360.0 - 180.0


def bounding_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(south, west, north, east) degrees of a box containing the circle of ``radius_m``.

    Exact for a spherical cap: the longitude half-width is asin(sin(δ)/cos φ),
    not δ/cos φ. When the cap reaches a pole the box spans every longitude.
    West may exceed east when the box crosses the antimeridian.
    """
    delta = min(radius_m / EARTH_RADIUS_M, math.pi)
    d_lat = math.degrees(delta)
    south, north = lat - d_lat, lat + d_lat
    cos_lat = math.cos(math.radians(lat))
    if south <= -90.0 or north >= 90.0 or math.sin(delta) >= cos_lat:
        return max(south, -90.0), -180.0, min(north, 90.0), 180.0
    d_lon = math.degrees(math.asin(math.sin(delta) / cos_lat))
    return south, normalize_lon(lon - d_lon), north, normalize_lon(lon + d_lon)


def point_in_polygon(lat: float, lon: float, polygon: Sequence[tuple[float, float]]) -> bool:
    """Whether (lat, lon) lies inside or on the edge of ``polygon``, a ring of (lat, lon) pairs.

    Even-odd ray casting in the lat/lon plane, as CAP 1.2 areas are defined
    (a closed ring of WGS84 pairs, first point repeated or not). Points on an
    edge or vertex count as inside: an alert for an area covers its border.
    Areas crossing the antimeridian must be given with continuous longitudes.
    """
    n = len(polygon)
    if n < 3:
        return False
    inside = False
    y, x = lat, lon
    y1, x1 = polygon[-1]
    for y2, x2 in polygon:
        # On this edge? Collinear (zero cross product) and within its box.
        cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
        if cross == 0.0 and min(x1, x2) <= x <= max(x1, x2) and min(y1, y2) <= y <= max(y1, y2):
            return True
        # Half-open rule (y1 <= y < y2 or reverse) counts a vertex on the ray once.
        if (y1 > y) != (y2 > y):
            x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < x_cross:
                inside = not inside
        y1, x1 = y2, x2
    return inside
