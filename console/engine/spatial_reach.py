"""Reverse reach queries for the recommendation watch (:mod:`console.engine.eta_watch`).

Two small structures, both pure and exact in the direction that matters: a point that
qualifies is never missed; one within a hair (1e-9 relative) of the limit may be
reported as well, which only republishes an incident once more.

- :class:`ReachGrid`: keyed points (incidents), each with a reach time in seconds. Asked
  "which of them could a unit at (lat, lon) moving at ``v`` m/s reach within their own
  time?", it looks only at the grid cells whose largest reach could cover the unit (one
  vectorised pass over a few hundred cells), then tests their points exactly. A responder
  report therefore costs about what the incidents near it cost, not every open incident.
- :class:`BandTable`: one unit's rows (the incidents listing it), each with a band of
  distances it may move within without changing what is published; asked which rows a
  new position leaves, it answers in one vectorised pass.

Distances are compared as haversine terms (``a``), monotone in distance, so no arcsine is
taken per point; the formula is that of :mod:`console.engine.spatial`.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from console.engine.spatial_math import FloatArray, Query, SlotArray
from protocols.geo import EARTH_RADIUS_M, haversine_m

IntArray = npt.NDArray[np.int64]

CELL_DEG: Final = 0.02  # ~2.2 km × 1.8 km in Seoul: a few hundred cells over the city
# A mover's candidate cells stay valid within this distance of where they were found,
# and while at most this many cells rose since (more: it looks at every cell again).
MEMO_SLACK_M: Final = 500.0
MEMO_RISES: Final = 128
_EPS: Final = 1e-9  # relative slack, always on the side of reporting more
_PAD_DEG: Final = 1e-9
_NONE: Final[IntArray] = np.empty(0, dtype=np.int64)


def term(metres: float) -> float:
    """The haversine term of a distance; negative stays below every term, huge saturates."""
    if metres <= 0.0:
        return -1.0 if metres < 0.0 else 0.0
    half = metres / (2.0 * EARTH_RADIUS_M)
    if half >= math.pi / 2:
        return 2.0  # beyond half the globe: no distance reaches it
    s = math.sin(half)
    return s * s


def _terms(metres: FloatArray) -> FloatArray:
    """:func:`term` of many non-negative distances (inf allowed), capped at 1 (all reach)."""
    half = np.minimum(metres * (1.0 / (2.0 * EARTH_RADIUS_M)), math.pi / 2)
    s = np.sin(half)
    s *= s
    return s


def _hav(phi: FloatArray, lam: FloatArray, cos: FloatArray, q: Query) -> FloatArray:
    s_lat = np.sin(phi - q.phi_h)
    s_lon = np.sin(lam - q.lam_h)
    s_lat *= s_lat
    s_lon *= s_lon
    s_lon *= cos
    s_lon *= q.cos
    s_lat += s_lon
    return s_lat


class ReachMemo:
    """One mover's candidate cells, valid near where they were found (``MEMO_SLACK_M``)."""

    __slots__ = ("cells", "lat", "lon", "members", "slots", "speed", "version")

    def __init__(self) -> None:
        self.version = -1
        self.members = -1
        self.speed = 0.0
        self.lat = self.lon = 0.0
        self.cells: set[int] = set()
        self.slots: SlotArray | None = None


class ReachGrid:
    """Keyed points with a reach time each; which could a mover reach in time? Not thread-safe.

    A cell's largest reach only rises (until the cell empties): a stale high value costs a
    few points tested for nothing, never a miss, and it keeps a mover's memo of candidate
    cells (:class:`ReachMemo`) valid while reaches fall and rise again under churn.
    """

    def __init__(self, cell_deg: float = CELL_DEG) -> None:
        self._c = cell_deg
        self._ncols = round(360.0 / cell_deg)
        self._slot: dict[int, int] = {}
        self._keys: IntArray = np.empty(64, dtype=np.int64)
        self._n = 0
        self._cell_of: list[int] = []
        # Per point: φ/2, λ/2, cos φ, reach in seconds (inf: any unit reaches it).
        self._pts: FloatArray = np.empty((4, 64))
        self._members: dict[int, set[int]] = {}  # cell -> slots
        self._slots_of: dict[int, SlotArray] = {}
        self._dirty: set[int] = set()  # cells whose slot array is out of date
        # One row per occupied cell: lat low, lat high, lon low (degrees), smallest cos φ,
        # largest reach of its points (not lowered while the cell is occupied).
        self._row: dict[int, int] = {}
        self._row_cell: list[int] = []
        self._cells: FloatArray = np.empty((5, 64))
        self._info: dict[int, list[float]] = {}  # cell -> its row, as Python floats
        # The cells that appeared or whose largest reach rose, in order: a memo made at
        # version v need only look at those from v on (``_rise_base`` is the first's).
        self._rises: list[int] = []
        self._rise_base = 0
        self._members_version = 0  # bumped on any change of which slots a cell holds

    def __len__(self) -> int:
        return self._n

    def __contains__(self, key: object) -> bool:
        return key in self._slot

    def upsert(self, key: int, q: Query, lat: float, lon: float, reach_s: float) -> None:
        """Point ``key`` at (lat, lon) (``q``: the same point as a query), reach ``reach_s``."""
        i, j = math.floor(lat / self._c), math.floor(lon / self._c)
        cell = i * self._ncols + j % self._ncols
        slot = self._slot.get(key)
        if slot is None:
            slot = self._n
            if slot == self._pts.shape[1]:
                self._pts = _grown(self._pts, slot)
                keys = np.empty(2 * slot, dtype=np.int64)
                keys[:slot] = self._keys[:slot]
                self._keys = keys
            self._n += 1
            self._slot[key] = slot
            self._keys[slot] = key
            self._cell_of.append(cell)
            self._join(cell, i, j, slot)
        elif self._cell_of[slot] != cell:
            self._leave(self._cell_of[slot], slot)
            self._cell_of[slot] = cell
            self._join(cell, i, j, slot)
        self._pts[:, slot] = (q.phi_h, q.lam_h, q.cos, reach_s)
        info = self._info[cell]
        if reach_s > info[4]:
            # Rounded up to a step of 25 %: small rises under churn do not count as rises.
            info[4] = self._cells[4, self._row[cell]] = _step_up(reach_s)
            self._rose(cell)

    def remove(self, key: int) -> None:
        slot = self._slot.pop(key, None)
        if slot is None:
            return
        last = self._n - 1
        self._leave(self._cell_of[slot], slot)
        if slot != last:
            moved = int(self._keys[last])
            cell = self._cell_of[last]
            members = self._members[cell]
            members.discard(last)
            members.add(slot)
            self._dirty.add(cell)
            self._keys[slot] = moved
            self._cell_of[slot] = cell
            self._pts[:, slot] = self._pts[:, last]
            self._slot[moved] = slot
        self._n = last
        self._cell_of.pop()

    def reach(
        self, lat: float, lon: float, speed_mps: float, memo: ReachMemo | None = None
    ) -> IntArray:
        """The keys whose point is within ``reach_s × speed_mps`` metres of (lat, lon).

        ``memo``: the same mover's memo from its previous question, used (and renewed) so
        that a mover that stayed within ``MEMO_SLACK_M`` of where the cells were last found
        skips looking at every cell again.
        """
        if not self._n:
            return _NONE
        q = Query(lat, lon)
        self._refresh()
        if memo is None:
            memo = ReachMemo()
        version = self._rise_base + len(self._rises)
        if (
            memo.version < self._rise_base
            or memo.speed != speed_mps
            or version - memo.version > MEMO_RISES
            or haversine_m(memo.lat, memo.lon, lat, lon) >= MEMO_SLACK_M
        ):
            memo.cells = self._candidate_cells(q, lat, lon, speed_mps)
            memo.speed, memo.lat, memo.lon = speed_mps, lat, lon
            memo.members = -1
        else:
            # Only the cells that rose since can have become candidates.
            rose = set(self._rises[memo.version - self._rise_base :])
            rose -= memo.cells
            if rose:
                added = {c for c in rose if self._qualifies(c, memo, speed_mps)}
                if added:
                    memo.cells |= added
                    memo.members = -1
        memo.version = version
        if memo.members != self._members_version:
            parts = [self._slots_of[c] for c in memo.cells if c in self._slots_of]
            memo.slots = np.concatenate(parts) if parts else np.empty(0, dtype=np.intp)
            memo.members = self._members_version
        slots = memo.slots
        if slots is None or len(slots) == 0:
            return _NONE
        p = self._pts[:, slots]
        hit = _hav(p[0], p[1], p[2], q) <= _terms(p[3] * speed_mps) * (1 + _EPS) + 1e-18
        return self._keys[slots[hit]]

    def _candidate_cells(self, q: Query, lat: float, lon: float, speed_mps: float) -> set[int]:
        """The cells a point of which is within its reach of some spot within
        ``MEMO_SLACK_M`` of (lat, lon): one vectorised pass over the occupied cells."""
        n = len(self._row_cell)
        lat_lo, lat_hi, lon_lo, cos_min, reach = self._cells[:, :n]
        d_lat = np.maximum(np.maximum(lat_lo - lat, lat - lat_hi), _PAD_DEG) - _PAD_DEG
        d_lon = np.maximum(np.maximum(lon_lo - lon, lon - lon_lo - self._c), _PAD_DEG) - _PAD_DEG
        d_lon[d_lon > 180.0] = 0.0  # across ±180°: no bound, look
        # The nearest a point of the cell can be, as a haversine term (a lower bound:
        # |Δφ| and |Δλ| at least the gaps, cos φ at least the cell's smallest).
        s_lat = np.sin(np.radians(d_lat) * 0.5)
        s_lon = np.sin(np.radians(d_lon) * 0.5)
        low = s_lat * s_lat + s_lon * s_lon * cos_min * q.cos
        limit = _terms(reach * speed_mps + MEMO_SLACK_M) * (1 + _EPS) + 1e-18
        cells = self._row_cell
        return {cells[r] for r in np.flatnonzero(low <= limit).tolist()}

    def _qualifies(self, cell: int, memo: ReachMemo, speed_mps: float) -> bool:
        """:meth:`_candidate_cells` for one cell, from the memo's spot."""
        info = self._info.get(cell)
        if info is None:
            return False
        lat_lo, lat_hi, lon_lo, cos_min, reach = info
        lat, lon = memo.lat, memo.lon
        d_lat = max(lat_lo - lat, lat - lat_hi, _PAD_DEG) - _PAD_DEG
        d_lon = max(lon_lo - lon, lon - lon_lo - self._c, _PAD_DEG) - _PAD_DEG
        if d_lon > 180.0:
            d_lon = 0.0
        s_lat = math.sin(math.radians(d_lat) * 0.5)
        s_lon = math.sin(math.radians(d_lon) * 0.5)
        low = s_lat * s_lat + s_lon * s_lon * cos_min * math.cos(math.radians(lat))
        return low <= term(reach * speed_mps + MEMO_SLACK_M) * (1 + _EPS) + 1e-18

    def _rose(self, cell: int) -> None:
        self._rises.append(cell)
        if len(self._rises) > 16 * MEMO_RISES:
            # Forget the oldest: memos older than the log look at every cell again.
            self._rise_base += len(self._rises)
            self._rises.clear()

    # --- internals -------------------------------------------------------------------

    def _join(self, cell: int, i: int, j: int, slot: int) -> None:
        members = self._members.get(cell)
        if members is None:
            members = self._members[cell] = set()
            row = len(self._row_cell)
            if row == self._cells.shape[1]:
                self._cells = _grown(self._cells, row)
            lat_lo, lat_hi = i * self._c, (i + 1) * self._c
            cos_min = min(math.cos(math.radians(lat_lo)), math.cos(math.radians(lat_hi)))
            info = [lat_lo, lat_hi, j * self._c, cos_min, -math.inf]
            self._cells[:, row] = info
            self._info[cell] = info
            self._row[cell] = row
            self._row_cell.append(cell)
            self._rose(cell)
        members.add(slot)
        self._dirty.add(cell)

    def _leave(self, cell: int, slot: int) -> None:
        self._members[cell].discard(slot)
        self._dirty.add(cell)

    def _refresh(self) -> None:
        """The slot array of each changed cell; empty cells leave the table."""
        if not self._dirty:
            return
        self._members_version += 1
        for cell in self._dirty:
            members = self._members[cell]
            if members:
                self._slots_of[cell] = np.fromiter(members, dtype=np.intp, count=len(members))
                continue
            del self._members[cell]
            del self._info[cell]
            self._slots_of.pop(cell, None)
            row = self._row.pop(cell)
            last = len(self._row_cell) - 1
            if row != last:
                moved = self._row_cell[last]
                self._cells[:, row] = self._cells[:, last]
                self._row_cell[row] = moved
                self._row[moved] = row
            self._row_cell.pop()
        self._dirty.clear()


def _step_up(reach_s: float) -> float:
    """The smallest 1.25 ** n (n ≥ 0) at least ``reach_s``; inf stays inf."""
    if not reach_s < math.inf:
        return math.inf
    if reach_s <= 1.0:
        return 1.0
    return 1.25 ** math.ceil(math.log(reach_s, 1.25) - 1e-12) * (1 + 1e-12)


def _grown(arr: FloatArray, used: int) -> FloatArray:
    """Twice the columns, the first ``used`` copied: O(1) amortised appends."""
    new = np.empty((arr.shape[0], 2 * arr.shape[1]))
    new[:, :used] = arr[:, :used]
    return new


class BandTable:
    """One unit's rows (integer keys: the incidents listing it), each a position and the
    band of distances that keeps the unit's place in that list."""

    def __init__(self) -> None:
        self._row: dict[int, int] = {}
        self._keys: IntArray = np.empty(8, dtype=np.int64)
        self._data: FloatArray = np.empty((5, 8))  # φ/2, λ/2, cos φ, low m, high m
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def __contains__(self, key: object) -> bool:
        return key in self._row

    def keys(self) -> IntArray:
        return self._keys[: self._n].copy()

    def put(self, key: int, q: Query, low_m: float, high_m: float) -> None:
        """Row ``key`` at ``q``: flagged once the distance is at most ``low_m`` or at least
        ``high_m`` (``-inf``, ``inf``: never)."""
        row = self._row.get(key)
        if row is None:
            row = self._n
            if row == self._data.shape[1]:
                self._data = _grown(self._data, row)
                keys = np.empty(2 * row, dtype=np.int64)
                keys[:row] = self._keys[:row]
                self._keys = keys
            self._row[key] = row
            self._keys[row] = key
            self._n += 1
        self._data[:, row] = (q.phi_h, q.lam_h, q.cos, low_m, high_m)

    def drop(self, key: int) -> None:
        row = self._row.pop(key, None)
        if row is None:
            return
        last = self._n - 1
        if row != last:
            moved = int(self._keys[last])
            self._keys[row] = moved
            self._data[:, row] = self._data[:, last]
            self._row[moved] = row
        self._n = last

    def outside(self, lat: float, lon: float) -> IntArray:
        """The rows whose band a unit at (lat, lon) is not strictly inside."""
        n = self._n
        if n == 0:
            return _NONE
        d = self._data[:, :n]
        a = _hav(d[0], d[1], d[2], Query(lat, lon))
        np.minimum(a, 1.0, out=a)
        np.sqrt(a, out=a)
        np.arcsin(a, out=a)
        a *= 2.0 * EARTH_RADIUS_M  # metres now
        out = (a <= d[3] * (1 + _EPS) + 1e-6) | (a >= d[4] * (1 - _EPS) - 1e-6)
        return self._keys[:n][out]
