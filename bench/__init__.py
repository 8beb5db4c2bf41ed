"""Benchmarks: a registry of functions that each return result rows.

A benchmark module is any ``bench/<name>.py`` whose functions are decorated
with :func:`register`; ``python -m bench.run`` discovers and runs them all.

Machines are noisy (CI runners, a laptop on battery, a shared two-core VM), so
every figure is judged as a *ratio* against a baseline measured in the same
run, on the same data. ``ratio`` is oriented so that higher is better, and
``reference`` is the ratio recorded when the code was last tuned: ``make
bench-smoke`` fails when a ratio falls to half its reference or below.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    smoke: bool = False  # small counts: the whole smoke run must stay under a minute
    seed: int = 42


@dataclass(frozen=True)
class Row:
    name: str
    value: float
    unit: str
    baseline: float
    baseline_name: str
    ratio: float  # higher is better (a speed-up); see Row.of
    goal: str = ""
    met: bool | None = None  # None: no absolute goal
    reference: float | None = None  # ratio recorded at tuning time; smoke fails at ≤ reference/2
    note: str = ""

    @staticmethod
    def of(
        name: str,
        value: float,
        unit: str,
        baseline: float,
        baseline_name: str,
        *,
        lower_is_better: bool,
        goal: str = "",
        met: bool | None = None,
        reference: float | None = None,
        note: str = "",
    ) -> Row:
        """A row whose ratio is a speed-up: baseline/value for times, value/baseline for rates."""
        if lower_is_better:
            ratio = baseline / value if value > 0 else float("inf")
        else:
            ratio = value / baseline if baseline > 0 else float("inf")
        return Row(name, value, unit, baseline, baseline_name, ratio, goal, met, reference, note)

    @property
    def regressed(self) -> bool:
        return self.reference is not None and self.ratio <= self.reference / 2.0


BenchFunction = Callable[[Settings], list[Row]]
REGISTRY: dict[str, BenchFunction] = {}


def register(name: str) -> Callable[[BenchFunction], BenchFunction]:
    """Add a benchmark under ``name`` (unique); it returns its rows."""

    def add(func: BenchFunction) -> BenchFunction:
        if name in REGISTRY:
            raise ValueError(f"benchmark {name!r} registered twice")
        REGISTRY[name] = func
        return func

    return add


# --- measuring helpers -----------------------------------------------------------------


@contextmanager
def quiet_gc() -> Iterator[None]:
    """No cyclic-GC pauses inside a timed section; collected before, restored after."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0–100), linear interpolation, like numpy's default."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def per_call_us(func: Callable[[], object]) -> float:
    """Microseconds for one call of ``func``."""
    start = time.perf_counter_ns()
    func()
    return (time.perf_counter_ns() - start) / 1000.0
