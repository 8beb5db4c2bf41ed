"""The fastest units to a place: available, heard from recently, ranked by ETA, exactly.

A unit's ETA is its straight-line distance at its kind's ``[dispatch]`` speed
(:func:`console.engine.rules.speed_mps`), so a police car 2.7 km away (5.4 min at 30 km/h)
comes before a guard on foot 1.6 km away (16 min at 6 km/h). Within a kind the ETA grows
with the distance, so the ``k`` fastest of all are among the ``k`` nearest of each kind:

- a small fleet (the usual case: up to ``spatial.SCAN_BELOW`` free units) is one matrix of
  haversine terms, places × every free unit, divided by each unit's speed and cut at the
  ``k``-th ETA of each row (the batching of :mod:`console.engine.spatial_batch`);
- a large one, or the pure-Python index, asks each kind's index for its nearest and
  merges them.

Units not heard from within ``stale_after_s`` are left out (they may be anywhere by now).
Ties are broken by id, so the answer depends only on the state and ``now``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from console.engine.rules import speed_mps
from console.engine.spatial import SCAN_BELOW, PointIndex
from console.engine.spatial_batch import CHUNK, nearest_many
from console.engine.spatial_math import FloatArray
from protocols.geo import EARTH_RADIUS_M
from protocols.schemas import ResponderStatus, UnitKind

if TYPE_CHECKING:
    from console.engine.context import Context
    from console.engine.model import Responder


class Ranked(NamedTuple):
    """One unit for one place: sorts by (ETA, id)."""

    eta: float  # seconds, unrounded
    responder_id: str
    distance_m: float
    kind: UnitKind


class _Columns(NamedTuple):
    """Every fresh free unit, for the matrix: φ/2, λ/2, cos φ, speed; ids and kinds."""

    pts: FloatArray
    ids: list[str]
    kinds: list[UnitKind]


class EtaRanker:
    """Answers "the k fastest units to each of these places" against one engine's context."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._memo_key: tuple[float, int] | None = None
        self._stale: dict[UnitKind, frozenset[str]] = {}
        self._columns: _Columns | None = None

    def eligible(self, resp: Responder, now: float) -> bool:
        """Can take a job: available, and heard from within ``stale_after_s`` of ``now``."""
        return (
            resp.status is ResponderStatus.AVAILABLE
            and now - resp.last_seen <= self.ctx.settings.dispatch.stale_after_s
        )

    def speed(self, kind: UnitKind) -> float:
        return speed_mps(self.ctx.settings.dispatch, kind)

    def fastest_many(
        self, points: Sequence[tuple[float, float]], k: int, now: float
    ) -> list[list[Ranked]]:
        """For each place, the ``k`` eligible units with the lowest ETA, fastest first."""
        if not points:
            return []
        if k <= 0:
            return [[] for _ in points]
        self._refresh(now)
        if self._columns is not None:
            out: list[list[Ranked]] = []
            for start in range(0, len(points), CHUNK):
                out += self._matrix(points[start : start + CHUNK], k, self._columns)
            return out
        return self._by_kind(points, k)

    # --- the two ways ------------------------------------------------------------------

    def _matrix(
        self, points: Sequence[tuple[float, float]], k: int, cols: _Columns
    ) -> list[list[Ranked]]:
        n = len(cols.ids)
        if n == 0:
            return [[] for _ in points]
        q = np.empty((3, len(points), 1))
        for r, (lat, lon) in enumerate(points):
            if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
                raise ValueError(f"position out of range: {lat!r}, {lon!r}")
            phi = math.radians(lat)
            q[:, r, 0] = (phi * 0.5, math.radians(lon) * 0.5, math.cos(phi))
        phi_c, lam_c, cos_c, speed_c = cols.pts
        s_lat = np.sin(phi_c[None, :] - q[0])
        s_lat *= s_lat
        s_lon = np.sin(lam_c[None, :] - q[1])
        s_lon *= s_lon
        s_lon *= cos_c[None, :]
        s_lon *= q[2]
        s_lat += s_lon
        np.minimum(s_lat, 1.0, out=s_lat)
        np.sqrt(s_lat, out=s_lat)
        np.arcsin(s_lat, out=s_lat)
        s_lat *= 2.0 * EARTH_RADIUS_M
        dist = s_lat
        eta = dist / speed_c[None, :]
        ids, kinds = cols.ids, cols.kinds
        if k >= n:
            take = [np.arange(n)] * len(points)
        else:
            # Every ETA tied with the k-th goes along, so the cut is by (ETA, id).
            kth = np.partition(eta, k - 1, axis=1)[:, k - 1 : k]
            rows, found = np.nonzero(eta <= kth)
            bounds = np.searchsorted(rows, np.arange(len(points) + 1))
            take = [found[bounds[r] : bounds[r + 1]] for r in range(len(points))]
        out = []
        for r, cols_r in enumerate(take):
            picked = cols_r.tolist()
            ranked = [
                Ranked(e, ids[c], d, kinds[c])
                for c, e, d in zip(
                    picked, eta[r, cols_r].tolist(), dist[r, cols_r].tolist(), strict=True
                )
            ]
            ranked.sort()
            out.append(ranked[:k])
        return out

    def _by_kind(self, points: Sequence[tuple[float, float]], k: int) -> list[list[Ranked]]:
        merged: list[list[Ranked]] = [[] for _ in points]
        for kind, index in self.ctx.by_kind.items():
            stale = self._stale.get(kind, frozenset())
            speed = self.speed(kind)
            found = nearest_many(index, points, k + len(stale), active_only=True)
            for row, near in zip(merged, found, strict=True):
                fresh = [(rid, d) for rid, d in near if rid not in stale][:k]
                row += [Ranked(d / speed, rid, d, kind) for rid, d in fresh]
        for row in merged:
            row.sort()
            del row[k:]
        return merged

    # --- what is known of the fleet at ``now`` ----------------------------------------

    def _refresh(self, now: float) -> None:
        """The stale free units and the matrix columns, once per state of the fleet and time."""
        key = (now, self.ctx.fleet_version)
        if key == self._memo_key:
            return
        self._memo_key = key
        cutoff = now - self.ctx.settings.dispatch.stale_after_s
        stale: dict[UnitKind, set[str]] = {}
        for resp in self.ctx.st.responders.values():
            if resp.status is ResponderStatus.AVAILABLE and resp.last_seen < cutoff:
                stale.setdefault(resp.kind, set()).add(resp.id)
        self._stale = {kind: frozenset(ids) for kind, ids in stale.items()}
        self._columns = self._build_columns()

    def _build_columns(self) -> _Columns | None:
        """The matrix's columns, or None when the fleet is too big for it (or not numpy)."""
        indexes = self.ctx.by_kind
        if not all(isinstance(i, PointIndex) for i in indexes.values()):
            return None
        if sum(i.active_count for i in indexes.values() if isinstance(i, PointIndex)) > SCAN_BELOW:
            return None
        parts: list[FloatArray] = []
        ids: list[str] = []
        kinds: list[UnitKind] = []
        for kind, index in indexes.items():
            assert isinstance(index, PointIndex)
            slots, phi, lam, cos = index.scan_arrays(True)
            keys = index.keys_at(slots)
            stale = self._stale.get(kind)
            if stale:
                keep = np.array([key not in stale for key in keys], dtype=np.bool_)
                phi, lam, cos = phi[keep], lam[keep], cos[keep]
                keys = [key for key in keys if key not in stale]
            parts.append(np.vstack([phi, lam, cos, np.full(len(keys), self.speed(kind))]))
            ids += keys
            kinds += [kind] * len(keys)
        return _Columns(np.hstack(parts), ids, kinds)
