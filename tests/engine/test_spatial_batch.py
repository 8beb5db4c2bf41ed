"""nearest_many must answer exactly as one nearest() per point does."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.engine.spatial import PointIndex
from console.engine.spatial_batch import nearest_many

SEOUL_LAT = (37.45, 37.70)
SEOUL_LON = (126.80, 127.18)


def city(n: int, seed: int, *, scan_below: int = 1500) -> PointIndex:
    rng = random.Random(seed)
    index = PointIndex(scan_below=scan_below)
    for i in range(n):
        index.upsert(f"u{i:04d}", rng.uniform(*SEOUL_LAT), rng.uniform(*SEOUL_LON), i % 3 != 0)
    return index


def queries(count: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(rng.uniform(*SEOUL_LAT), rng.uniform(*SEOUL_LON)) for _ in range(count)]


@pytest.mark.parametrize("n", [0, 1, 5, 200, 1400])
@pytest.mark.parametrize("active_only", [True, False])
def test_same_answers_as_one_query_at_a_time(n: int, active_only: bool) -> None:
    index = city(n, seed=n)
    points = queries(300, seed=7)  # more than one chunk
    expected = [index.nearest(lat, lon, 9, active_only=active_only) for lat, lon in points]
    assert nearest_many(index, points, 9, active_only=active_only) == expected


def test_a_large_set_goes_through_the_grid_and_still_agrees() -> None:
    index = city(400, seed=3, scan_below=100)
    assert not index.uses_scan(True)
    points = queries(50, seed=8)
    expected = [index.nearest(lat, lon, 5, active_only=True) for lat, lon in points]
    assert nearest_many(index, points, 5, active_only=True) == expected


def test_ties_are_cut_by_key_as_nearest_cuts_them() -> None:
    index = PointIndex()
    for key in ["d", "b", "e", "a", "c"]:  # five units on one corner
        index.upsert(key, 37.5, 127.0)
    index.upsert("far", 37.6, 127.1)
    got = nearest_many(index, [(37.51, 127.01), (37.5, 127.0)], 3, active_only=True)
    assert [[k for k, _ in row] for row in got] == [["a", "b", "c"], ["a", "b", "c"]]
    assert got == [index.nearest(37.51, 127.01, 3), index.nearest(37.5, 127.0, 3)]


def test_nothing_to_ask_and_bad_points() -> None:
    index = city(10, seed=1)
    assert nearest_many(index, [], 3, active_only=True) == []
    assert nearest_many(index, [(37.5, 127.0)], 0, active_only=True) == [[]]
    with pytest.raises(ValueError, match="out of range"):
        nearest_many(index, [(91.0, 0.0)], 3, active_only=True)


points = st.lists(
    st.tuples(st.floats(37.45, 37.70), st.floats(126.80, 127.18)), min_size=1, max_size=40
)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    st.lists(st.tuples(points.flatmap(lambda p: st.sampled_from(p)), st.booleans()), max_size=60),
    points,
    st.integers(1, 12),
    st.booleans(),
)
def test_property_matches_nearest(
    units: list[tuple[tuple[float, float], bool]],
    asked: list[tuple[float, float]],
    k: int,
    active_only: bool,
) -> None:
    index = PointIndex()
    for i, ((lat, lon), active) in enumerate(units):  # repeated positions: exact ties
        index.upsert(f"k{i % 25}", lat, lon, active)
    expected = [index.nearest(lat, lon, k, active_only=active_only) for lat, lon in asked]
    assert nearest_many(index, asked, k, active_only=active_only) == expected
