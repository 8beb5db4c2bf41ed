"""The engine's pure-Python grid index agrees with brute force."""

from __future__ import annotations

import random

from console.engine.geo import GridIndex, haversine_m


def test_grid_index_matches_brute_force() -> None:
    rnd = random.Random(3)
    index = GridIndex(0.005)
    points = {}
    for i in range(2000):
        lat, lon = 37.45 + rnd.random() * 0.2, 126.85 + rnd.random() * 0.25
        points[f"p{i}"] = (lat, lon, rnd.random() < 0.5)
        index.upsert(f"p{i}", lat, lon, points[f"p{i}"][2])
    for i in range(0, 2000, 7):  # removals and moves
        index.remove(f"p{i}")
        points.pop(f"p{i}")
    for i in range(1, 2000, 11):
        lat, lon = 37.45 + rnd.random() * 0.2, 126.85 + rnd.random() * 0.25
        points[f"p{i}"] = (lat, lon, True)
        index.upsert(f"p{i}", lat, lon, True)
    for _ in range(50):
        qlat, qlon = 37.4 + rnd.random() * 0.3, 126.8 + rnd.random() * 0.35
        dist = {k: haversine_m(qlat, qlon, la, lo) for k, (la, lo, _a) in points.items()}
        brute = sorted((d, k) for k, d in dist.items() if d <= 800)
        assert [k for k, _ in index.within(qlat, qlon, 800)] == [k for _, k in brute]
        active = sorted((d, k) for k, d in dist.items() if points[k][2])
        assert [k for k, _ in index.nearest(qlat, qlon, 5)] == [k for _, k in active[:5]]
        every = sorted((d, k) for k, d in dist.items())
        assert [k for k, _ in index.nearest(qlat, qlon, 3, active_only=False)] == [
            k for _, k in every[:3]
        ]


def test_far_apart_points_fall_back_to_a_scan() -> None:
    index = GridIndex(0.01)
    index.upsert("seoul", 37.5, 127.0)
    index.upsert("quito", -0.2, -78.5)
    assert [k for k, _ in index.nearest(37.5, 127.0, 2)] == ["seoul", "quito"]
    assert index.within(37.5, 127.0, 10.0)[0][0] == "seoul"
    assert len(index) == 2 and "quito" in index
