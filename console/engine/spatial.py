"""Nearest-neighbour and radius search over moving points (cameras, responders, shelters).

The engine asks two questions on every incident: which free responders are
nearest, and which cameras are within a radius. Both must stay far below a
millisecond with 100,000 cameras, while responders move every few seconds.

Method (numbers in ``docs/spatial.md`` and ``bench/RESULTS.md``):

- Positions live in flat float64 arrays (radians, plus cos(lat)) indexed by a
  dense slot; a key→slot dict gives O(1) upsert and swap-remove.
- A grid of ``cell_deg`` × ``cell_deg`` cells (0.01° ≈ 1.1 km × 0.9 km in
  Seoul) maps each cell to the set of its slots, so a query touches only the
  cells near it: scanning 100,000 points costs ~1 ms in numpy, a 200 m query
  touches about four cells and a few hundred points. Each cell caches its slots
  as an array, rebuilt only after that cell changed.
- Candidates get the exact haversine distance (the formula of
  ``protocols.geo.haversine_m``), vectorised; top-k uses ``np.argpartition``;
  equal distances are ordered by key, so the answer never depends on history.
- ``nearest`` grows rings of cells around the query until the k-th distance is
  no farther than the closest point outside the rings can be. When the rings
  would touch more cells than are occupied, or near a pole or across half the
  globe, it scans every point instead: always exact, only slower.

Pure: no I/O, no clock, no asyncio, so the engine can own one.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from console.engine.spatial_math import (
    FloatArray,
    Query,
    SlotArray,
    concat,
    concat_f,
    distance_then_key,
    m_to_a,
    smallest,
)
from protocols.geo import EARTH_RADIUS_M

DEFAULT_CELL_DEG: Final = 0.01
# Widens range queries so a point on a cell border is never lost to the
# rounding of lat / cell_deg (≈1e-13°); 1e-9° is 0.1 mm.
_PAD_DEG: Final = 1e-9
# Subtracted from the ring bound for the same reason, in metres.
_SLACK_M: Final = 1e-3
_EMPTY: Final[list[tuple[str, float]]] = []
# Below this many results, finishing in plain Python beats numpy's per-call overhead.
_SMALL: Final = 48
# Up to this many eligible points, one vectorised pass over all of them beats growing
# rings: a sparse set (200 free responders over Seoul) leaves most cells empty, and
# walking them cost ~110 µs a query against ~30 µs for the scan (200 of them).
SCAN_BELOW: Final = 1500


class PointIndex:
    """Keyed points on the sphere, each active or not, answering exact nearest/within queries.

    Distances are great-circle metres (haversine, Earth radius 6,371,008.8 m).
    Results are ``(key, metres)`` pairs, nearest first. Not thread-safe: one
    owner (the engine) mutates and queries it.
    """

    def __init__(
        self,
        capacity: int = 1024,
        *,
        cell_deg: float = DEFAULT_CELL_DEG,
        scan_below: int = SCAN_BELOW,
    ) -> None:
        ncols = round(360.0 / cell_deg)
        if cell_deg <= 0 or cell_deg > 10.0 or abs(ncols * cell_deg - 360.0) > 1e-9:
            raise ValueError(f"cell_deg must divide 360° evenly and be at most 10°, not {cell_deg}")
        cap = max(16, capacity)
        self._cell_deg = cell_deg
        self._scan_below = scan_below  # nearest(): scan when this few points are eligible
        self._ncols = ncols
        self._n = 0
        self._n_active = 0
        self._keys: list[str] = []
        self._slot: dict[str, int] = {}
        self._pos: list[tuple[float, float]] = []  # degrees as given, for position()
        self._cell_of: list[int] = []
        # Half angles in radians: the haversine only ever uses Δφ/2 and Δλ/2.
        self._phi: FloatArray = np.empty(cap)  # latitude / 2
        self._lam: FloatArray = np.empty(cap)  # longitude / 2
        self._cos: FloatArray = np.empty(cap)  # cos(latitude), saves a cos per query per point
        self._active: npt.NDArray[np.bool_] = np.zeros(cap, dtype=np.bool_)
        # One grid per active flag, so "free responders only" never touches busy ones.
        self._cells: tuple[dict[int, set[int]], dict[int, set[int]]] = ({}, {})
        self._cache: tuple[dict[int, SlotArray], dict[int, SlotArray]] = ({}, {})

    # --- mutation ----------------------------------------------------------------

    def upsert(self, key: str, lat: float, lon: float, active: bool = True) -> None:
        """Insert ``key`` or move it to (lat, lon) and set its active flag. O(1) amortised."""
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise ValueError(f"position out of range: {lat!r}, {lon!r}")
        cell = self._cell_id(math.floor(lat / self._cell_deg), math.floor(lon / self._cell_deg))
        slot = self._slot.get(key)
        if slot is None:
            if self._n == len(self._phi):
                self._grow()
            slot = self._n
            self._n += 1
            self._slot[key] = slot
            self._keys.append(key)
            self._pos.append((lat, lon))
            self._cell_of.append(cell)
            self._cell_add(active, cell, slot)
        else:
            old_cell = self._cell_of[slot]
            was_active = bool(self._active[slot])
            # A move inside the same cell (most GPS updates) leaves the grid alone.
            if old_cell != cell or was_active != active:
                self._cell_discard(was_active, old_cell, slot)
                self._cell_add(active, cell, slot)
                self._cell_of[slot] = cell
            self._pos[slot] = (lat, lon)
            if was_active:
                self._n_active -= 1
        phi = math.radians(lat)
        self._phi[slot] = phi * 0.5
        self._lam[slot] = math.radians(lon) * 0.5
        self._cos[slot] = math.cos(phi)
        self._active[slot] = active
        if active:
            self._n_active += 1

    def remove(self, key: str) -> None:
        """Forget ``key``; does nothing if it is absent. O(1): the last slot moves into the hole."""
        slot = self._slot.pop(key, None)
        if slot is None:
            return
        last = self._n - 1
        was_active = bool(self._active[slot])
        self._cell_discard(was_active, self._cell_of[slot], slot)
        if was_active:
            self._n_active -= 1
        if slot != last:
            moved = self._keys[last]
            moved_cell = self._cell_of[last]
            moved_active = bool(self._active[last])
            self._cell_discard(moved_active, moved_cell, last)
            self._cell_add(moved_active, moved_cell, slot)
            self._keys[slot] = moved
            self._pos[slot] = self._pos[last]
            self._cell_of[slot] = moved_cell
            self._phi[slot] = self._phi[last]
            self._lam[slot] = self._lam[last]
            self._cos[slot] = self._cos[last]
            self._active[slot] = moved_active
            self._slot[moved] = slot
        self._keys.pop()
        self._pos.pop()
        self._cell_of.pop()
        self._active[last] = False
        self._n = last

    def set_active(self, key: str, active: bool) -> None:
        """Mark ``key`` active (e.g. a free responder) or not. Raises KeyError if absent."""
        slot = self._slot[key]
        if bool(self._active[slot]) != active:
            cell = self._cell_of[slot]
            self._cell_discard(not active, cell, slot)
            self._cell_add(active, cell, slot)
            self._active[slot] = active
            self._n_active += 1 if active else -1

    # --- lookup ------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    def __contains__(self, key: object) -> bool:
        return key in self._slot

    def position(self, key: str) -> tuple[float, float] | None:
        """(lat, lon) in degrees exactly as last upserted, or None."""
        slot = self._slot.get(key)
        return None if slot is None else self._pos[slot]

    def is_active(self, key: str) -> bool | None:
        slot = self._slot.get(key)
        return None if slot is None else bool(self._active[slot])

    @property
    def active_count(self) -> int:
        return self._n_active

    # --- queries -----------------------------------------------------------------

    def nearest(
        self,
        lat: float,
        lon: float,
        k: int,
        *,
        active_only: bool = True,
        max_m: float | None = None,
    ) -> list[tuple[str, float]]:
        """The ``k`` points nearest to (lat, lon), nearest first, at most ``max_m`` away.

        Fewer than ``k`` when fewer qualify. Equal distances are ordered by key.
        """
        q = Query(lat, lon)  # validates even when the index is empty
        eligible = self._n_active if active_only else self._n
        if k <= 0 or eligible == 0 or (max_m is not None and max_m < 0):
            return _EMPTY[:]
        if k >= eligible or eligible <= self._scan_below:
            return self._top_k(self._all_slots(active_only), q, k, max_m)
        grids = self._grids(active_only)
        occupied = sum(len(self._cells[g]) for g in grids)
        c = self._cell_deg
        ci = math.floor(lat / c)
        cj = math.floor(lon / c)
        # Distances are computed lazily, once per point: rings gathered since
        # the last check wait in `pending`.
        done_s: list[SlotArray] = []
        done_a: list[FloatArray] = []
        pending: list[SlotArray] = []
        count = 0
        # Metres² per cell, for guessing whether a check can succeed yet.
        cell_m2 = (math.radians(c) * EARTH_RADIUS_M) ** 2 * max(q.cos, 1e-9)
        r = 0
        while True:
            lat_lo = (ci - r) * c
            lat_hi = (ci + r + 1) * c
            # Beyond this a full scan is cheaper, or the ring geometry breaks down.
            if (
                (2 * r + 1) ** 2 > 2 * occupied + 9
                or lat_lo <= -90.0 + c
                or lat_hi >= 90.0 - c
                or (2 * r + 1) * c >= 170.0
            ):
                return self._top_k(self._all_slots(active_only), q, k, max_m)
            new = self._ring(ci, cj, r, grids)
            pending += new
            count += sum(len(arr) for arr in new)
            # Nothing outside rings 0..r is closer than `bound` metres: any path
            # out of the block crosses a parallel (≥ R·Δφ) or a meridian
            # (≥ R·asin(cos φ·sin Δλ), the distance to its great circle).
            d_lat = min(lat - lat_lo, lat_hi - lat)
            d_lon = max(0.0, min(lon - (cj - r) * c, (cj + r + 1) * c - lon))
            bound = EARTH_RADIUS_M * min(
                math.radians(d_lat), math.asin(q.cos * math.sin(math.radians(d_lon)))
            )
            bound -= _SLACK_M
            if max_m is not None and bound >= max_m:
                if pending:
                    slots = concat(pending)
                    done_s.append(slots)
                    done_a.append(self._hav_a(slots, q))
                if not done_s:
                    return _EMPTY[:]
                return self._best(concat(done_s), concat_f(done_a), k, max_m)
            # Check only when the block probably holds k points within `bound`
            # (uniform density); a wrong guess costs time, never correctness.
            expected = count * math.pi * bound * bound / ((2 * r + 1) ** 2 * cell_m2)
            if count >= k and bound > 0 and expected >= k:
                if pending:
                    slots = concat(pending)
                    done_s.append(slots)
                    done_a.append(self._hav_a(slots, q))
                    pending = []
                a = concat_f(done_a)
                kth = a[np.argpartition(a, k - 1)[k - 1]]
                if kth <= m_to_a(bound):
                    # Ties with the k-th go along, so the cut is by (distance, key).
                    top = np.flatnonzero(a <= kth)
                    return self._finish(concat(done_s)[top], a[top], max_m, k)
            r += 1

    def within(
        self,
        lat: float,
        lon: float,
        radius_m: float,
        *,
        limit: int | None = None,
        active_only: bool = False,
    ) -> list[tuple[str, float]]:
        """Points at most ``radius_m`` from (lat, lon), nearest first, at most ``limit`` of them."""
        q = Query(lat, lon)
        if self._n == 0 or radius_m < 0 or (limit is not None and limit <= 0):
            return _EMPTY[:]
        if active_only and self._n_active == 0:
            return _EMPTY[:]
        slots = self._box_slots(lat, lon, radius_m, active_only)
        if len(slots) == 0:
            return _EMPTY[:]
        a = self._hav_a(slots, q)
        # Prefilter on the haversine term (monotonic in distance), with a hair
        # of margin; the exact test on metres in _finish decides.
        hit = np.flatnonzero(a <= m_to_a(radius_m) * (1.0 + 1e-9) + 1e-300)
        slots, a = slots[hit], a[hit]
        if limit is not None and len(a) > limit:
            top = smallest(a, limit)
            slots, a = slots[top], a[top]
        return self._finish(slots, a, radius_m, limit)

    def scan_arrays(
        self, active_only: bool
    ) -> tuple[SlotArray, FloatArray, FloatArray, FloatArray]:
        """(slots, φ/2, λ/2, cos φ) of every eligible point, for batch scans
        (:mod:`console.engine.spatial_batch`); the arrays are views, valid until the next change."""
        slots = self._all_slots(active_only)
        return slots, self._phi[slots], self._lam[slots], self._cos[slots]

    def keys_at(self, slots: SlotArray) -> list[str]:
        """The keys of ``slots`` (from :meth:`scan_arrays`), in order."""
        keys = self._keys
        return [keys[s] for s in slots.tolist()]

    def finish(self, slots: SlotArray, a: FloatArray, limit: int) -> list[tuple[str, float]]:
        """Metres for haversine terms ``a`` of ``slots``, sorted by (distance, key)."""
        return self._finish(slots, a, None, limit)

    def uses_scan(self, active_only: bool) -> bool:
        """Whether ``nearest`` answers by scanning every eligible point (a small set)."""
        return (self._n_active if active_only else self._n) <= self._scan_below

    # --- internals ---------------------------------------------------------------

    def _cell_id(self, i: int, j: int) -> int:
        return i * self._ncols + j % self._ncols

    def _cell_add(self, active: bool, cell: int, slot: int) -> None:
        cells = self._cells[active]
        members = cells.get(cell)
        if members is None:
            cells[cell] = {slot}
        else:
            members.add(slot)
        self._cache[active].pop(cell, None)

    def _cell_discard(self, active: bool, cell: int, slot: int) -> None:
        cells = self._cells[active]
        members = cells[cell]
        members.discard(slot)
        if not members:
            del cells[cell]
        self._cache[active].pop(cell, None)

    def _grids(self, active_only: bool) -> tuple[bool, ...]:
        return (True,) if active_only else (True, False)

    def _gather(self, cells: list[int], grids: tuple[bool, ...]) -> list[SlotArray]:
        """The slot arrays of the occupied ``cells`` in ``grids``, from the per-cell cache."""
        out = []
        for g in grids:
            members = self._cells[g]
            cache = self._cache[g]
            for cell in cells:
                arr = cache.get(cell)
                if arr is None:
                    found = members.get(cell)
                    if found is None:
                        continue
                    arr = np.fromiter(found, dtype=np.intp, count=len(found))
                    cache[cell] = arr
                out.append(arr)
        return out

    def _ring(self, ci: int, cj: int, r: int, grids: tuple[bool, ...]) -> list[SlotArray]:
        """Slot arrays of the cells at Chebyshev distance exactly ``r`` from (ci, cj)."""
        cid = self._cell_id
        if r == 0:
            cells = [cid(ci, cj)]
        else:
            cells = [cid(ci - r, j) for j in range(cj - r, cj + r + 1)]
            cells += [cid(ci + r, j) for j in range(cj - r, cj + r + 1)]
            cells += [cid(i, cj - r) for i in range(ci - r + 1, ci + r)]
            cells += [cid(i, cj + r) for i in range(ci - r + 1, ci + r)]
        return self._gather(cells, grids)

    def _box_slots(self, lat: float, lon: float, radius_m: float, active_only: bool) -> SlotArray:
        """Slots in the cells covering the circle's bounding box (or all, when cheaper)."""
        c = self._cell_deg
        delta = min(radius_m / EARTH_RADIUS_M, math.pi)
        d_lat = math.degrees(delta) + _PAD_DEG
        cos_lat = math.cos(math.radians(lat))
        s = math.sin(delta)
        if lat - d_lat <= -90.0 or lat + d_lat >= 90.0 or s >= cos_lat:
            return self._all_slots(active_only)
        # Exact longitude half-width of a spherical cap (not δ / cos φ).
        d_lon = math.degrees(math.asin(s / cos_lat)) + _PAD_DEG
        i0, i1 = math.floor((lat - d_lat) / c), math.floor((lat + d_lat) / c)
        j0, j1 = math.floor((lon - d_lon) / c), math.floor((lon + d_lon) / c)
        grids = self._grids(active_only)
        occupied = sum(len(self._cells[g]) for g in grids)
        if (i1 - i0 + 1) * (j1 - j0 + 1) > occupied + 16 or j1 - j0 + 1 >= self._ncols:
            return self._all_slots(active_only)
        cid = self._cell_id
        cells = [cid(i, j) for i in range(i0, i1 + 1) for j in range(j0, j1 + 1)]
        return concat(self._gather(cells, grids))

    def _all_slots(self, active_only: bool) -> SlotArray:
        if active_only:
            return np.flatnonzero(self._active[: self._n])
        return np.arange(self._n, dtype=np.intp)

    def _hav_a(self, slots: SlotArray, q: Query) -> FloatArray:
        """The haversine term a = sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2) for each slot."""
        s_lat = np.sin(self._phi[slots] - q.phi_h)
        s_lon = np.sin(self._lam[slots] - q.lam_h)
        # In place: at a few hundred points, allocations cost as much as the arithmetic.
        s_lat *= s_lat
        s_lon *= s_lon
        s_lon *= self._cos[slots]
        s_lon *= q.cos
        s_lat += s_lon
        return s_lat

    def _top_k(
        self, slots: SlotArray, q: Query, k: int, max_m: float | None
    ) -> list[tuple[str, float]]:
        if len(slots) == 0:
            return _EMPTY[:]
        return self._best(slots, self._hav_a(slots, q), k, max_m)

    def _best(
        self, slots: SlotArray, a: FloatArray, k: int, max_m: float | None
    ) -> list[tuple[str, float]]:
        if len(a) > k:
            top = smallest(a, k)
            slots, a = slots[top], a[top]
        return self._finish(slots, a, max_m, k)

    def _finish(
        self, slots: SlotArray, a: FloatArray, max_m: float | None, limit: int | None = None
    ) -> list[tuple[str, float]]:
        """Exact metres, cut at ``max_m``, sorted by (distance, key), at most ``limit``.

        Ties are broken by key, not by slot, so two indexes holding the same
        points (a live core and one rebuilt from the journal) answer alike.
        """
        keys = self._keys
        if len(a) <= _SMALL:
            # A dozen numpy calls cost more than this loop over a few results.
            two_r = 2.0 * EARTH_RADIUS_M
            asin, sqrt = math.asin, math.sqrt
            out = [
                (keys[s], two_r * asin(sqrt(x if x < 1.0 else 1.0)))
                for s, x in zip(slots.tolist(), a.tolist(), strict=True)
            ]
            if max_m is not None:
                out = [kd for kd in out if kd[1] <= max_m]
            out.sort(key=distance_then_key)
            return out if limit is None else out[:limit]
        d = np.sqrt(np.minimum(a, 1.0))
        np.arcsin(d, out=d)
        d *= 2.0 * EARTH_RADIUS_M
        if max_m is not None:
            keep = np.flatnonzero(d <= max_m)
            d, slots = d[keep], slots[keep]
        order = np.argsort(d, kind="stable")
        d, slots = d[order], slots[order]
        result = [(keys[s], m) for s, m in zip(slots.tolist(), d.tolist(), strict=True)]
        if len(d) > 1 and bool(np.any(d[1:] == d[:-1])):
            result.sort(key=distance_then_key)  # Timsort: near-linear on sorted input
        return result if limit is None else result[:limit]

    def _grow(self) -> None:
        """Double the arrays: geometric growth keeps upsert O(1) amortised."""
        cap = 2 * len(self._phi)
        for name in ("_phi", "_lam", "_cos"):
            old: FloatArray = getattr(self, name)
            new = np.empty(cap)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)
        active = np.zeros(cap, dtype=np.bool_)
        active[: self._n] = self._active[: self._n]
        self._active = active
