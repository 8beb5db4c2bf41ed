"""Great-circle helpers: known distances, round trips, polygons (CAP areas)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import geo

lats = st.floats(min_value=-89.0, max_value=89.0)
lons = st.floats(min_value=-180.0, max_value=180.0)

SEOUL_CITY_HALL = (37.5665, 126.9780)
GANGNAM_STATION = (37.4979, 127.0276)


def test_zero_distance() -> None:
    assert geo.haversine_m(*SEOUL_CITY_HALL, *SEOUL_CITY_HALL) == 0.0


def test_one_degree_of_latitude_is_r_times_pi_over_180() -> None:
    expected = geo.EARTH_RADIUS_M * math.pi / 180.0
    assert geo.haversine_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(expected, rel=1e-12)


def test_agrees_with_the_spherical_law_of_cosines() -> None:
    # An independent formula, well-conditioned at kilometres (City Hall to Gangnam).
    (lat1, lon1), (lat2, lon2) = SEOUL_CITY_HALL, GANGNAM_STATION
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    central = math.acos(math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl))
    expected = geo.EARTH_RADIUS_M * central
    assert geo.haversine_m(lat1, lon1, lat2, lon2) == pytest.approx(expected, rel=1e-8)
    assert 8_700 < expected < 8_900


def test_antipodes_are_half_the_circumference() -> None:
    assert geo.haversine_m(10.0, 20.0, -10.0, -160.0) == pytest.approx(geo.HALF_CIRCUMFERENCE_M)


def test_across_the_antimeridian() -> None:
    d = geo.haversine_m(0.0, 179.9995, 0.0, -179.9995)
    assert d == pytest.approx(geo.EARTH_RADIUS_M * math.radians(0.001), rel=1e-9)


@settings(derandomize=True)
@given(lats, lons, lats, lons)
def test_symmetric_and_bounded(lat1: float, lon1: float, lat2: float, lon2: float) -> None:
    d = geo.haversine_m(lat1, lon1, lat2, lon2)
    assert d == pytest.approx(geo.haversine_m(lat2, lon2, lat1, lon1), abs=1e-6)
    assert 0.0 <= d <= geo.HALF_CIRCUMFERENCE_M + 1e-6


@settings(derandomize=True)
@given(lats, lons, st.floats(min_value=0.0, max_value=360.0), st.floats(0.0, 50_000.0))
def test_destination_is_at_the_distance_and_bearing(
    lat: float, lon: float, bearing: float, distance: float
) -> None:
    lat2, lon2 = geo.destination(lat, lon, bearing, distance)
    assert -90.0 <= lat2 <= 90.0
    assert -180.0 <= lon2 < 180.0
    assert geo.haversine_m(lat, lon, lat2, lon2) == pytest.approx(distance, abs=1e-6)
    if distance > 1.0:
        back = geo.initial_bearing_deg(lat, lon, lat2, lon2)
        diff = abs((back - bearing + 180.0) % 360.0 - 180.0)
        assert diff < 1e-4


def test_destination_north_by_one_degree() -> None:
    metres = geo.EARTH_RADIUS_M * math.radians(1.0)
    lat, lon = geo.destination(37.0, 127.0, 0.0, metres)
    assert (lat, lon) == (pytest.approx(38.0), pytest.approx(127.0))


def test_bounding_box_contains_the_circle() -> None:
    south, west, north, east = geo.bounding_box(*SEOUL_CITY_HALL, 1_000.0)
    for bearing in range(0, 360, 5):
        lat, lon = geo.destination(*SEOUL_CITY_HALL, bearing, 1_000.0)
        assert south - 1e-9 <= lat <= north + 1e-9
        assert west - 1e-9 <= lon <= east + 1e-9


def test_bounding_box_over_a_pole_spans_all_longitudes() -> None:
    assert geo.bounding_box(89.99, 0.0, 5_000.0)[1::2] == (-180.0, 180.0)


SQUARE = [(37.50, 127.00), (37.50, 127.10), (37.60, 127.10), (37.60, 127.00)]
# A "C" shape: the notch (37.52–37.58, 127.05–127.10) is outside.
NOTCHED = [
    (37.50, 127.00),
    (37.50, 127.10),
    (37.52, 127.10),
    (37.52, 127.05),
    (37.58, 127.05),
    (37.58, 127.10),
    (37.60, 127.10),
    (37.60, 127.00),
    (37.50, 127.00),  # CAP repeats the first point; harmless
]


@pytest.mark.parametrize(
    ("polygon", "point", "inside"),
    [
        (SQUARE, (37.55, 127.05), True),
        (SQUARE, (37.45, 127.05), False),
        (SQUARE, (37.55, 127.15), False),
        (SQUARE, (37.50, 127.05), True),  # on an edge
        (SQUARE, (37.60, 127.10), True),  # on a vertex
        (NOTCHED, (37.55, 127.02), True),
        (NOTCHED, (37.55, 127.08), False),  # in the notch
        (NOTCHED, (37.51, 127.08), True),
        (NOTCHED, (37.58, 127.07), True),  # on the notch's edge
        (SQUARE[:2], (37.50, 127.05), False),  # not a polygon
    ],
)
def test_point_in_polygon(
    polygon: list[tuple[float, float]], point: tuple[float, float], inside: bool
) -> None:
    assert geo.point_in_polygon(*point, polygon) is inside


@settings(derandomize=True)
@given(st.floats(37.40, 37.70), st.floats(126.90, 127.20))
def test_point_in_square_matches_the_box(lat: float, lon: float) -> None:
    expected = 37.50 <= lat <= 37.60 and 127.00 <= lon <= 127.10
    assert geo.point_in_polygon(lat, lon, SQUARE) is expected


@pytest.mark.parametrize("lon", [-181.0, 180.0, 540.0, -180.0, 0.0, 179.5])
def test_normalize_lon(lon: float) -> None:
    out = geo.normalize_lon(lon)
    assert -180.0 <= out < 180.0
    assert math.isclose(math.cos(math.radians(out)), math.cos(math.radians(lon)), abs_tol=1e-12)
