"""Which published recommendations a unit's change makes wrong, exactly and cheaply.

The core publishes each open incident with its ``k`` fastest units (retained), and the
read side tells this watch what it published (:meth:`RecommendationWatch.record`). When a
unit changes, the engine asks which incidents to republish (``IncidentChanged``): exactly
those whose list would now show other units, another order, or an ETA further than
``eta_tolerance_s`` from the one shown.

At publication, with ETAs ``e1 ≤ … ≤ ek`` listed and ``e(k+1)`` the best one left out,
each listed unit gets a band of ETAs: up to half-way to its neighbours in the list, no
further than the tolerance from the ETA shown, the last one up to the boundary
``B = (ek + e(k+1)) / 2`` (infinite when no unit was left out). While every listed unit
stays strictly inside its band and every other free unit's ETA stays above ``B``, nothing
shown changed. So:

- a listed unit going busy or off duty, changing kind, or falling silent
  (:meth:`stale_due`) certainly changes every list naming it;
- a listed unit leaving its band (a :class:`BandTable` per unit), or another free unit at
  ``B`` or closer (a :class:`ReachGrid` of the incidents, each with ``B`` as its reach
  time), may change one: a fresh ranking of that incident decides (:meth:`differs`, asked
  by ``Responders``).

Moves are looked at together, at most every ``COALESCE_S`` of the engine's ``now`` (and at
the tick), so thousands of reports a second cost one look per unit. An incident marked for
republishing is left out until it is published again. Effects follow from the inputs and
the publications alone: the same calls give the same answers (a restored engine starts
empty, and the core then publishes everything).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from console.engine.eta_rank import Ranked
from console.engine.rules import speed_mps
from console.engine.settings import DispatchConfig
from console.engine.spatial_math import FloatArray, Query
from console.engine.spatial_reach import BandTable, IntArray, ReachGrid, ReachMemo
from protocols.schemas import UnitKind

# Moves are looked at together at most this often (seconds of the engine's ``now``): a
# storm of reports (thousands a second) costs one look per unit and moment, while a quiet
# city (a report every few seconds) has each move looked at as it comes.
COALESCE_S = 0.5


class Candidates(NamedTuple):
    """What a unit's change means: lists it certainly left (already marked for
    republishing), and lists to confirm against a fresh ranking (:meth:`differs`)."""

    sure: list[str]
    maybe: list[str]


class RecommendationWatch:
    """The last published recommendations of each incident, indexed for unit changes."""

    def __init__(self, dispatch: DispatchConfig) -> None:
        self.dispatch = dispatch
        self._speed = {kind: speed_mps(dispatch, kind) for kind in UnitKind}
        self._grid = ReachGrid()
        # Incident -> its key: the grid's, the tables', and the row of what it showed.
        self._entries: dict[str, int] = {}
        self._incident: list[str] = []  # key -> incident ("" when free)
        self._units: list[tuple[str, ...]] = []  # key -> its units, as published
        # key -> lat, lon and the ETAs of the k + 1 best (NaN: fewer), as published: what
        # decides the bands, so that publishing the same again changes nothing.
        self._shown: FloatArray = np.full((64, dispatch.responders + 3), math.nan)
        self._free: list[int] = []  # keys to reuse
        # key -> republishing already asked for, until published again: its rows stay
        # (overwritten then) and are left out of every answer meanwhile.
        self._pending: npt.NDArray[np.bool_] = np.zeros(64, dtype=np.bool_)
        self._mine: npt.NDArray[np.bool_] = np.zeros(64, dtype=np.bool_)  # scratch
        self._bands: dict[str, BandTable] = {}  # unit -> the incidents listing it
        self._kind: dict[str, UnitKind] = {}  # unit -> its kind when its bands were set
        self._memos: dict[str, ReachMemo] = {}  # unit -> its candidate cells in the grid
        # Eligible units that moved (or came free) since the last look: where they are now.
        self._moved: dict[str, tuple[UnitKind, float, float]] = {}
        self._flushed = -math.inf

    def __contains__(self, incident_id: object) -> bool:
        """Published, and not yet asked to be republished."""
        key = self._entries.get(incident_id)  # type: ignore[call-overload]
        return key is not None and not self._pending[key]

    def listed(self, incident_id: str) -> tuple[str, ...] | None:
        return self._units[self._entries[incident_id]] if incident_id in self else None

    def record(self, incident_id: str, lat: float, lon: float, ranked: Sequence[Ranked]) -> None:
        """The incident was published at (lat, lon) with ``ranked[:k]``; ``ranked[k]``, if
        there is one, is the best unit left out."""
        self.record_many([(incident_id, lat, lon, ranked)])

    def record_many(self, published: Sequence[tuple[str, float, float, Sequence[Ranked]]]) -> None:
        """:meth:`record` of each."""
        k = self.dispatch.responders
        tol = self.dispatch.eta_tolerance_s
        entries, bands, speeds = self._entries, self._bands, self._speed
        nan = math.nan
        for incident_id, lat, lon, ranked in published:
            units = tuple([r.responder_id for r in ranked[:k]])
            etas = [r.eta for r in ranked[: k + 1]]
            shape = [lat, lon, *etas] + [nan] * (k + 1 - len(etas))
            key = entries.get(incident_id)
            if key is not None:
                self._pending[key] = False
                old = self._units[key]
                if old == units and _same(self._shown[key].tolist(), shape):
                    continue  # the same list at the same ETAs: the same bands
                for unit in old:
                    if unit not in units:
                        self._drop_row(unit, key)
            else:
                key = self._new_key(incident_id)
                entries[incident_id] = key
            self._units[key] = units
            self._shown[key] = shape
            boundary = (etas[k - 1] + etas[k]) / 2 if len(etas) > k else math.inf
            q = Query(lat, lon)
            self._grid.upsert(key, q, lat, lon, boundary)
            last = len(units) - 1
            for j, listed in enumerate(ranked[: last + 1]):
                e = etas[j]
                low = max((etas[j - 1] + e) / 2, e - tol) if j else e - tol
                high = min((e + etas[j + 1]) / 2 if j < last else boundary, e + tol)
                rid = listed.responder_id
                table = bands.get(rid)
                if table is None:
                    table = bands[rid] = BandTable()
                self._kind[rid] = listed.kind
                speed = speeds[listed.kind]
                table.put(key, q, low * speed, high * speed)

    def forget(self, incident_id: str) -> None:
        """The incident is closed or not published with recommendations: drop it."""
        key = self._entries.pop(incident_id, None)
        if key is None:
            return
        self._grid.remove(key)
        for unit in self._units[key]:
            self._drop_row(unit, key)
        self._incident[key] = ""
        self._units[key] = ()
        self._pending[key] = False
        self._free.append(key)

    def unit_changed(
        self,
        responder_id: str,
        kind: UnitKind,
        position: tuple[float, float],
        *,
        eligible: bool,
        moved: bool,
        now: float,
    ) -> Candidates:
        """The incidents a unit's change may have made wrong.

        ``eligible``: it can take a job now (``EtaRanker.eligible``); ``moved``: its
        position or its kind changed, or it became eligible. A unit no longer eligible (or of
        another kind) leaves every list naming it: those are certain. A move is looked at
        with the other units' moves of the same moment: at most every ``COALESCE_S`` of
        ``now`` (or at the next :meth:`flush`), so a storm of reports costs one look per
        unit, not one each; what a look finds is to be confirmed (:meth:`differs`).
        """
        if not self._entries:
            return Candidates([], [])
        table = self._bands.get(responder_id)
        sure = []
        if table is not None and (not eligible or self._kind[responder_id] is not kind):
            sure = self.mark(self._names(table.keys()))
        if eligible and moved:
            self._moved[responder_id] = (kind, *position)
        maybe = []
        if self._moved and not 0 <= now - self._flushed < COALESCE_S:
            maybe = self._look(now)
        return Candidates(sure, maybe)

    def flush(self, now: float) -> list[str]:
        """Look at every move not looked at yet (the tick's part): incidents to confirm."""
        return self._look(now) if self._moved else []

    def stale_due(self, is_stale: Callable[[str], bool]) -> list[str]:
        """Take the units fallen silent off every list naming them: those incidents, sorted."""
        keys = [t.keys() for unit, t in self._bands.items() if is_stale(unit)]
        return self.mark(self._names(np.concatenate(keys))) if keys else []

    def differs(self, incident_id: str, lat: float, lon: float, ranked: Sequence[Ranked]) -> bool:
        """Whether publishing the incident now (at lat, lon, with ``ranked``) would show
        other units, another order, or an ETA more than the tolerance away."""
        key = self._entries.get(incident_id)
        if key is None:
            return False
        k = self.dispatch.responders
        units = self._units[key]
        shown = self._shown[key].tolist()
        if [lat, lon] != shown[:2] or tuple(r.responder_id for r in ranked[:k]) != units:
            return True
        tol = self.dispatch.eta_tolerance_s
        etas = shown[2 : 2 + len(units)]
        return any(abs(r.eta - e) > tol for r, e in zip(ranked[: len(units)], etas, strict=True))

    def mark(self, incident_ids: Iterable[str]) -> list[str]:
        """Republishing is asked for: left out of every answer until published again.
        Returns those not marked already, sorted."""
        out = []
        for incident_id in incident_ids:
            key = self._entries.get(incident_id)
            if key is not None and not self._pending[key]:
                self._pending[key] = True
                out.append(incident_id)
        return sorted(out)

    def _look(self, now: float) -> list[str]:
        """The incidents whose published list a unit that moved since the last look may
        have made wrong: it left its band, or it is now within another list's boundary."""
        self._flushed = now
        moved, self._moved = self._moved, {}
        parts: list[IntArray] = []
        for responder_id, (kind, lat, lon) in moved.items():
            table = self._bands.get(responder_id)
            if table is not None and self._kind[responder_id] is kind:
                parts.append(table.outside(lat, lon))
            memo = self._memos.get(responder_id)
            if memo is None:
                memo = self._memos[responder_id] = ReachMemo()
            hits = self._grid.reach(lat, lon, self._speed[kind], memo)
            if table is not None and len(hits):
                # Those listing it are judged by their bands above, not by the boundary.
                mine = table.keys()
                self._mine[mine] = True
                hits = hits[~self._mine[hits]]
                self._mine[mine] = False
            parts.append(hits)
        return self._names(np.concatenate(parts)) if parts else []

    def _names(self, keys: IntArray) -> list[str]:
        """The incidents of ``keys`` not already marked, sorted, each once."""
        keys = keys[~self._pending[keys]]
        incident = self._incident
        return sorted({incident[k] for k in keys.tolist()})

    def _new_key(self, incident_id: str) -> int:
        if self._free:
            key = self._free.pop()
            self._incident[key] = incident_id
            return key
        key = len(self._incident)
        self._incident.append(incident_id)
        self._units.append(())
        if key == len(self._pending):
            self._pending = np.concatenate([self._pending, np.zeros(key, dtype=np.bool_)])
            self._mine = np.zeros(2 * key, dtype=np.bool_)
            self._shown = np.concatenate([self._shown, np.full_like(self._shown, math.nan)])
        return key

    def _drop_row(self, unit: str, key: int) -> None:
        table = self._bands.get(unit)
        if table is not None:
            table.drop(key)
            if not len(table):
                del self._bands[unit]
                del self._kind[unit]


def _same(shown: list[float], shape: list[float]) -> bool:
    """Equal, NaN equal to NaN (the ETAs a shorter list does not have)."""
    return all(a == b or (a != a and b != b) for a, b in zip(shown, shape, strict=True))
