"""console.engine.spatial_reach: never misses a point it should report."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.engine.spatial_math import Query
from console.engine.spatial_reach import BandTable, ReachGrid, ReachMemo
from protocols.geo import haversine_m

LAT, LON = 37.55, 126.98
offset = st.floats(-0.08, 0.08)
reach = st.one_of(st.floats(0.0, 3000.0), st.just(math.inf))
PROPS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPS
@given(
    st.lists(st.tuples(offset, offset, reach), min_size=1, max_size=60),
    st.lists(
        st.tuples(
            offset,
            offset,
            st.sampled_from([1.4, 1.7, 8.3]),
            # between two questions a point appears, moves or changes its reach
            st.one_of(st.none(), st.tuples(st.integers(0, 70), offset, offset, reach)),
        ),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.integers(0, 59), max_size=20),
)
def test_reach_reports_every_point_within_its_reach(
    points: list[tuple[float, float, float]],
    movers: list[tuple[float, float, float, tuple[int, float, float, float] | None]],
    removed: list[int],
) -> None:
    grid = ReachGrid()
    where = {}
    for key, (dlat, dlon, r) in enumerate(points):
        lat, lon = LAT + dlat, LON + dlon
        grid.upsert(key, Query(lat, lon), lat, lon, r)
        where[key] = (lat, lon, r)
    for key in removed:
        grid.remove(key)
        where.pop(key, None)
    memo = ReachMemo()
    for dlat, dlon, speed, change in movers:  # one mover asking again: its memo is used
        if change is not None:
            key, plat, plon, r = change
            plat, plon = LAT + plat, LON + plon
            grid.upsert(key, Query(plat, plon), plat, plon, r)
            where[key] = (plat, plon, r)
        lat, lon = LAT + dlat / 50, LON + dlon / 50
        got = set(grid.reach(lat, lon, speed, memo).tolist())
        want = {
            k
            for k, (plat, plon, r) in where.items()
            if haversine_m(lat, lon, plat, plon) <= r * speed
        }
        assert want <= got
        # what more it reports is on the edge only (a relative 1e-9, a few millimetres)
        for k in got - want:
            plat, plon, r = where[k]
            assert haversine_m(lat, lon, plat, plon) <= r * speed * (1 + 1e-6) + 0.05


@PROPS
@given(
    st.lists(
        st.tuples(offset, offset, st.floats(-100.0, 3000.0), st.floats(0.0, 4000.0)),
        min_size=1,
        max_size=30,
    ),
    offset,
    offset,
)
def test_band_table_flags_every_row_left(
    rows: list[tuple[float, float, float, float]], dlat: float, dlon: float
) -> None:
    table = BandTable()
    for key, (rlat, rlon, low, width) in enumerate(rows):
        lat, lon = LAT + rlat, LON + rlon
        table.put(key, Query(lat, lon), low, low + width)
    lat, lon = LAT + dlat, LON + dlon
    flagged = set(table.outside(lat, lon).tolist())
    for key, (rlat, rlon, low, width) in enumerate(rows):
        d = haversine_m(lat, lon, LAT + rlat, LON + rlon)
        if not low < d < low + width:
            assert key in flagged, (key, d, low, low + width)
