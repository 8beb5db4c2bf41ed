"""PointIndex against a brute-force Python haversine loop, plus its edge cases.

Speed is measured in bench/spatial.py, never here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.engine.spatial import PointIndex
from protocols.geo import destination, haversine_m

SEOUL = (37.5665, 126.9780)
TOL_M = 1e-6  # numpy and math may differ in the last bits; a micrometre is plenty


@dataclass
class Model:
    """The obvious implementation: a dict and a loop."""

    points: dict[str, tuple[float, float, bool]] = field(default_factory=dict)

    def distances(self, lat: float, lon: float, active_only: bool) -> list[tuple[str, float]]:
        out = [
            (key, haversine_m(lat, lon, plat, plon))
            for key, (plat, plon, active) in self.points.items()
            if active or not active_only
        ]
        return sorted(out, key=lambda kd: kd[1])


def check_nearest(
    index: PointIndex,
    model: Model,
    lat: float,
    lon: float,
    k: int,
    active_only: bool = True,
    max_m: float | None = None,
) -> None:
    got = index.nearest(lat, lon, k, active_only=active_only, max_m=max_m)
    ref = model.distances(lat, lon, active_only)
    if max_m is not None:
        ref = [kd for kd in ref if kd[1] <= max_m + TOL_M]
        # A point within rounding of max_m may go either way.
        expected_min = len([kd for kd in ref if kd[1] < max_m - TOL_M])
        assert min(k, expected_min) <= len(got) <= min(k, len(ref))
    else:
        assert len(got) == min(k, len(ref))
    assert [d for _, d in got] == pytest.approx([d for _, d in ref[: len(got)]], abs=TOL_M)
    assert len({key for key, _ in got}) == len(got)
    for key, d in got:  # the right distance for the key, not just the right multiset
        plat, plon, active = model.points[key]
        assert active or not active_only
        assert d == pytest.approx(haversine_m(lat, lon, plat, plon), abs=TOL_M)
    assert [d for _, d in got] == sorted(d for _, d in got)


def check_within(
    index: PointIndex,
    model: Model,
    lat: float,
    lon: float,
    radius: float,
    active_only: bool = False,
) -> None:
    got = index.within(lat, lon, radius, active_only=active_only)
    ref = dict(model.distances(lat, lon, active_only))
    got_keys = {key for key, _ in got}
    assert len(got_keys) == len(got)
    surely_in = {key for key, d in ref.items() if d < radius - TOL_M}
    maybe_in = {key for key, d in ref.items() if d <= radius + TOL_M}
    assert surely_in <= got_keys <= maybe_in
    for key, d in got:
        assert d == pytest.approx(ref[key], abs=TOL_M)
        assert d <= radius
    assert [d for _, d in got] == sorted(d for _, d in got)


# --- edge cases ---------------------------------------------------------------------


def test_empty_index_answers_nothing() -> None:
    index = PointIndex()
    assert len(index) == 0
    assert index.nearest(*SEOUL, 5) == []
    assert index.nearest(*SEOUL, 5, active_only=False) == []
    assert index.within(*SEOUL, 1e7) == []
    assert index.position("x") is None
    assert "x" not in index


def test_k_larger_than_n_returns_everything_sorted() -> None:
    index = PointIndex()
    index.upsert("far", *destination(*SEOUL, 90, 900))
    index.upsert("near", *destination(*SEOUL, 0, 100))
    index.upsert("mid", *destination(*SEOUL, 180, 500))
    got = index.nearest(*SEOUL, 10)
    assert [k for k, _ in got] == ["near", "mid", "far"]
    assert [d for _, d in got] == pytest.approx([100, 500, 900])
    assert index.nearest(*SEOUL, 0) == []


def test_removed_keys_disappear_and_the_moved_slot_still_answers() -> None:
    index = PointIndex()
    for n in range(5):
        index.upsert(f"p{n}", *destination(*SEOUL, 0, 100 * (n + 1)))
    index.remove("p0")  # the last slot (p4) moves into slot 0
    index.remove("missing")  # a no-op
    assert len(index) == 4
    assert "p0" not in index
    assert index.position("p4") == pytest.approx(destination(*SEOUL, 0, 500))
    assert [k for k, _ in index.nearest(*SEOUL, 10)] == ["p1", "p2", "p3", "p4"]
    assert [k for k, _ in index.within(*SEOUL, 450)] == ["p1", "p2", "p3"]
    for key in ("p1", "p2", "p3", "p4"):
        index.remove(key)
    assert len(index) == 0
    assert index.nearest(*SEOUL, 1, active_only=False) == []


def test_inactive_keys_are_skipped_by_nearest_but_not_by_within() -> None:
    index = PointIndex()
    index.upsert("busy", *destination(*SEOUL, 0, 50), active=False)
    index.upsert("free", *destination(*SEOUL, 0, 300))
    assert index.nearest(*SEOUL, 1) == [("free", pytest.approx(300))]
    assert index.nearest(*SEOUL, 1, active_only=False) == [("busy", pytest.approx(50))]
    assert [k for k, _ in index.within(*SEOUL, 1000)] == ["busy", "free"]
    assert [k for k, _ in index.within(*SEOUL, 1000, active_only=True)] == ["free"]
    index.set_active("busy", True)
    index.set_active("free", False)
    assert index.active_count == 1
    assert index.nearest(*SEOUL, 5) == [("busy", pytest.approx(50))]
    assert index.is_active("free") is False
    with pytest.raises(KeyError):
        index.set_active("nobody", True)


def test_upserting_again_moves_the_point() -> None:
    index = PointIndex()
    index.upsert("unit", *SEOUL)
    far = destination(*SEOUL, 45, 20_000)  # many cells away
    index.upsert("unit", *far)
    assert len(index) == 1
    assert index.position("unit") == far
    assert index.within(*SEOUL, 1000) == []
    assert index.nearest(*far, 1) == [("unit", pytest.approx(0, abs=1e-6))]
    index.upsert("unit", *far, active=False)  # same place, now busy
    assert index.nearest(*far, 1) == []
    assert index.active_count == 0


def test_max_m_and_limit() -> None:
    index = PointIndex()
    for n in range(10):
        index.upsert(f"p{n}", *destination(*SEOUL, 36 * n, 100 * (n + 1)))
    assert [k for k, _ in index.nearest(*SEOUL, 5, max_m=350)] == ["p0", "p1", "p2"]
    assert [k for k, _ in index.within(*SEOUL, 10_000, limit=2)] == ["p0", "p1"]
    assert index.within(*SEOUL, 10_000, limit=0) == []
    assert index.nearest(*SEOUL, 5, max_m=10) == []


def test_grows_past_its_capacity() -> None:
    index = PointIndex(capacity=16)
    rng = random.Random(3)
    model = Model()
    for n in range(1000):
        lat, lon = rng.uniform(37.4, 37.7), rng.uniform(126.8, 127.2)
        index.upsert(str(n), lat, lon)
        model.points[str(n)] = (lat, lon, True)
    assert len(index) == 1000
    check_nearest(index, model, *SEOUL, 7)


def test_rejects_bad_positions_and_cells() -> None:
    index = PointIndex()
    for lat, lon in ((91.0, 0.0), (0.0, 181.0), (float("nan"), 0.0)):
        with pytest.raises(ValueError):
            index.upsert("x", lat, lon)
        with pytest.raises(ValueError):
            index.nearest(lat, lon, 1)
    assert len(index) == 0
    with pytest.raises(ValueError):
        PointIndex(cell_deg=0.007)


def test_antimeridian_and_poles() -> None:
    index = PointIndex()
    model = Model()
    points = {
        "east": (0.0, 179.999),
        "west": (0.0, -179.999),
        "edge": (0.0, 180.0),
        "north": (89.9999, 10.0),
        "north2": (89.9999, -170.0),
        "south": (-90.0, 0.0),
    }
    for key, (lat, lon) in points.items():
        index.upsert(key, lat, lon)
        model.points[key] = (lat, lon, True)
    for q in ((0.0, -180.0), (0.0, 179.9999), (90.0, 0.0), (89.99, 100.0), (-89.9, 45.0)):
        for k in (1, 2, 3):
            check_nearest(index, model, *q, k)
        for radius in (100.0, 300.0, 30_000.0):
            check_within(index, model, *q, radius)
    got = {k for k, _ in index.within(0.0, -180.0, 300.0)}
    assert got == {"east", "west", "edge"}


def test_a_city_against_brute_force() -> None:
    """Dense and sparse regions, busy and free units, deterministic."""
    rng = random.Random(11)
    index = PointIndex(scan_below=0)
    model = Model()
    for n in range(3000):
        if n % 10 == 0:  # a sparse country-wide scatter, so rings must grow
            lat, lon = rng.uniform(33.0, 38.5), rng.uniform(124.5, 130.0)
        else:
            lat, lon = rng.uniform(37.45, 37.70), rng.uniform(126.80, 127.18)
        active = rng.random() < 0.3
        index.upsert(f"u{n}", lat, lon, active)
        model.points[f"u{n}"] = (lat, lon, active)
    for n in range(0, 3000, 3):  # churn: removals and moves
        key = f"u{n}"
        if n % 2:
            index.remove(key)
            del model.points[key]
        else:
            lat, lon = rng.uniform(37.45, 37.70), rng.uniform(126.80, 127.18)
            index.upsert(key, lat, lon, True)
            model.points[key] = (lat, lon, True)
    for _ in range(40):
        q = rng.uniform(34.0, 38.0), rng.uniform(125.0, 129.5)
        check_nearest(index, model, *q, 5)
        check_nearest(index, model, *q, 1, active_only=False)
        q = rng.uniform(37.45, 37.70), rng.uniform(126.80, 127.18)
        check_nearest(index, model, *q, 5)
        check_nearest(index, model, *q, 8, active_only=False, max_m=1500)
        check_within(index, model, *q, 200)
        check_within(index, model, *q, 2000, active_only=True)


# --- property tests -------------------------------------------------------------------

keys = st.sampled_from([f"k{n}" for n in range(40)])
seoul_lat = st.floats(37.45, 37.70)
seoul_lon = st.floats(126.80, 127.18)
anywhere_lat = st.floats(-90.0, 90.0)
anywhere_lon = st.floats(-180.0, 180.0)
upsert = st.tuples(st.just("upsert"), keys, seoul_lat, seoul_lon, st.booleans())
upsert_far = st.tuples(st.just("upsert"), keys, anywhere_lat, anywhere_lon, st.booleans())
remove = st.tuples(st.just("remove"), keys)
toggle = st.tuples(st.just("toggle"), keys, st.booleans())
operations = st.lists(st.one_of(upsert, upsert, upsert_far, remove, toggle), max_size=120)


def apply(
    ops: list[tuple[object, ...]], cell_deg: float, scan_below: int = 0
) -> tuple[PointIndex, Model]:
    # scan_below=0: these sets are small, and the rings, not the full scan, are under test.
    index = PointIndex(capacity=4, cell_deg=cell_deg, scan_below=scan_below)
    model = Model()
    for op in ops:
        key = str(op[1])
        if op[0] == "upsert":
            _, _, lat, lon, active = op
            assert isinstance(lat, float) and isinstance(lon, float) and isinstance(active, bool)
            index.upsert(key, lat, lon, active)
            model.points[key] = (lat, lon, active)
        elif op[0] == "remove":
            index.remove(key)
            model.points.pop(key, None)
        elif key in model.points:
            active = bool(op[2])
            index.set_active(key, active)
            lat, lon, _ = model.points[key]
            model.points[key] = (lat, lon, active)
    assert len(index) == len(model.points)
    assert index.active_count == sum(a for _, _, a in model.points.values())
    for key, (lat, lon, _) in model.points.items():
        assert index.position(key) == (lat, lon)
    return index, model


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    operations,
    st.sampled_from([0.01, 0.05, 1.0]),
    st.one_of(st.tuples(seoul_lat, seoul_lon), st.tuples(anywhere_lat, anywhere_lon)),
    st.integers(1, 12),
    st.booleans(),
    st.one_of(st.none(), st.floats(0.0, 30_000.0)),
)
def test_nearest_matches_brute_force(
    ops: list[tuple[object, ...]],
    cell_deg: float,
    query: tuple[float, float],
    k: int,
    active_only: bool,
    max_m: float | None,
) -> None:
    for scan_below in (0, 1500):  # the rings, and the full scan of a small set
        index, model = apply(ops, cell_deg, scan_below)
        check_nearest(index, model, *query, k, active_only, max_m)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    operations,
    st.sampled_from([0.01, 0.05, 1.0]),
    st.one_of(st.tuples(seoul_lat, seoul_lon), st.tuples(anywhere_lat, anywhere_lon)),
    st.one_of(st.floats(0.0, 5_000.0), st.floats(0.0, 3e7)),
    st.booleans(),
)
def test_within_matches_brute_force(
    ops: list[tuple[object, ...]],
    cell_deg: float,
    query: tuple[float, float],
    radius: float,
    active_only: bool,
) -> None:
    index, model = apply(ops, cell_deg)
    check_within(index, model, *query, radius, active_only)


def test_a_sparse_small_set_is_scanned_not_walked_ring_by_ring(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """200 free units over Seoul leave most cells empty: one scan is ~4x cheaper."""
    rng = random.Random(6)
    index = PointIndex()
    model = Model()
    for n in range(200):
        lat, lon = rng.uniform(37.45, 37.70), rng.uniform(126.80, 127.18)
        index.upsert(f"u{n}", lat, lon, n % 4 != 0)
        model.points[f"u{n}"] = (lat, lon, n % 4 != 0)

    def no_rings(*_: object) -> None:
        raise AssertionError("walked the rings of a small set")

    monkeypatch.setattr(index, "_ring", no_rings)
    for _ in range(20):
        q = rng.uniform(37.45, 37.70), rng.uniform(126.80, 127.18)
        check_nearest(index, model, *q, 7)


def test_the_grid_path_answers_without_a_full_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a dense city neither query may fall back to scanning every point."""
    rng = random.Random(5)
    index = PointIndex(scan_below=0)
    model = Model()
    for n in range(4000):
        lat, lon = rng.uniform(37.45, 37.70), rng.uniform(126.80, 127.18)
        index.upsert(f"c{n}", lat, lon, n % 3 != 0)
        model.points[f"c{n}"] = (lat, lon, n % 3 != 0)

    def no_scan(active_only: bool) -> None:
        raise AssertionError("fell back to a full scan")

    monkeypatch.setattr(index, "_all_slots", no_scan)
    for _ in range(30):
        q = rng.uniform(37.50, 37.65), rng.uniform(126.85, 127.13)
        check_nearest(index, model, *q, 5)
        check_nearest(index, model, *q, 3, active_only=False)
        check_within(index, model, *q, 200.0)
        check_within(index, model, *q, 1500.0, active_only=True)


@pytest.mark.parametrize("order", [["b", "c", "a", "d"], ["d", "a", "c", "b"]])
def test_equal_distances_are_ordered_by_key_whatever_the_history(order: list[str]) -> None:
    """Four units at one police box: a rebuilt index must answer like the live one."""
    box = destination(*SEOUL, 30, 400)
    index = PointIndex()
    index.upsert("far", *destination(*SEOUL, 0, 900))
    for key in order:
        index.upsert("tmp", *SEOUL)  # churn, so slots differ between the two orders
        index.upsert(key, *box)
        index.remove("tmp")
    assert [k for k, _ in index.nearest(*SEOUL, 2)] == ["a", "b"]
    assert [k for k, _ in index.nearest(*SEOUL, 5)] == ["a", "b", "c", "d", "far"]
    assert [k for k, _ in index.within(*SEOUL, 500, limit=3)] == ["a", "b", "c"]
    many = PointIndex()
    for n in reversed(range(60)):  # more than the small-result path handles
        many.upsert(f"u{n:02d}", *box)
    assert [k for k, _ in many.within(*SEOUL, 500)] == [f"u{n:02d}" for n in range(60)]
    assert [k for k, _ in many.nearest(*SEOUL, 3)] == ["u00", "u01", "u02"]
