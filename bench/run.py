"""The one entry point: ``python -m bench.run`` (``make bench``) and ``--smoke`` (``make bench-smoke``).

Discovers every ``bench/*.py`` module, runs the functions they registered,
prints a table, and exits 1 when any ratio has regressed to half its recorded
reference or worse (or a benchmark crashed, or checked its answers and found
them wrong). The full run also rewrites ``bench/RESULTS.md``; the smoke run
(small counts, < 1 minute) only prints.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.metadata
import os
import pkgutil
import platform
import sys
import time
import traceback
from pathlib import Path

import bench
from bench import REGISTRY, Row, Settings

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
_NOT_BENCHMARKS = {"run"}


def discover() -> None:
    """Import every benchmark module so its @register calls run."""
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in _NOT_BENCHMARKS:
            continue
        importlib.import_module(f"bench.{info.name}")


def machine() -> dict[str, str]:
    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "nproc": str(usable),
        "load average at start (1/5/15 min)": load,
        "os": platform.platform(),
        "python": platform.python_version() + f" ({platform.python_implementation()})",
        "numpy": version("numpy"),
        "msgspec": version("msgspec"),
        "msgpack": version("msgpack"),
    }


def fmt(x: float) -> str:
    if x == float("inf"):
        return "∞"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def verdict(row: Row) -> str:
    if row.regressed:
        return "REGRESSED"
    if row.met is None:
        return "–"
    return "yes" if row.met else "NO"


def table(rows: list[Row]) -> str:
    head = "| benchmark | value | baseline | ratio (×) | reference (×) | goal | met |"
    lines = [head, "|---|---:|---|---:|---:|---|---|"]
    for r in rows:
        ref = fmt(r.reference) if r.reference is not None else "–"
        lines.append(
            f"| `{r.name}` | {fmt(r.value)} {r.unit} | {fmt(r.baseline)} {r.unit} "
            f"({r.baseline_name}) | {fmt(r.ratio)} | {ref} | {r.goal or '–'} | {verdict(r)} |"
        )
    return "\n".join(lines)


METHOD = """\
- Every figure is compared with a baseline measured in the same run on the same
  data, and the **ratio** is oriented so that higher is better (baseline time /
  our time, or our rate / baseline rate). Absolute numbers move with the
  machine; ratios much less so.
- `reference` is the ratio recorded when the code was last tuned.
  `make bench-smoke` (the same benchmarks with small counts) fails when a
  ratio drops to half its reference or below; the absolute goals are reported,
  not enforced, because a loaded CI runner would miss them for no fault of the code.
- Spatial: 100,000 cameras and 10,000 responders (60 % available) uniform over
  Seoul (37.45–37.70 N, 126.80–127.18 E), seed 42; query points uniform over
  the same box. Each query is timed on its own (`perf_counter_ns`, cyclic GC
  off, after a warm-up); median and p99 over all queries. The baseline is a
  plain Python loop calling `protocols.geo.haversine_m` on every point
  (`heapq.nsmallest` for top-k), over fewer queries because it is slow. Every
  baseline query's answer is checked against the index's (same keys within
  200 m, same top-5 distances); a mismatch fails the run. `numpy-scan` rows
  are the vectorised brute force without the grid, to show what the grid buys.
- Codec: 20,000 distinct `SosAlarm` payloads (5,000 in smoke); each variant
  decodes all of them, several rounds interleaved so load bursts hit every
  variant alike; the median round gives messages/s. Every variant's output is
  checked equal to the original messages before timing.
"""


def module_methods() -> list[str]:
    """The ``METHOD`` text a benchmark module may define, for RESULTS.md."""
    texts = []
    for name, module in sorted(sys.modules.items()):
        text = getattr(module, "METHOD", None) if name.startswith("bench.") else None
        if isinstance(text, str) and name != "bench.run":
            texts.append(text)
    return texts


def module_limits() -> dict[str, str]:
    """The ``LIMITS`` of the benchmark modules: for a goal not met, what limits it."""
    limits: dict[str, str] = {}
    for name, module in sorted(sys.modules.items()):
        found = getattr(module, "LIMITS", None) if name.startswith("bench.") else None
        if isinstance(found, dict):
            limits.update(found)
    return limits


def missed(rows: list[Row]) -> list[str]:
    """One entry per goal not met: by how much, and what limits it."""
    limits = module_limits()
    out = []
    for r in rows:
        if r.met is False:
            why = limits.get(r.name, "not analysed yet")
            out.append(f"- `{r.name}`: {fmt(r.value)} {r.unit}, goal {r.goal}. {why}")
    return out


def write_results(rows: list[Row], info: dict[str, str], elapsed: float) -> None:
    notes = [f"- `{r.name}`: {r.note}" for r in rows if r.note]
    not_met = missed(rows)
    text = "\n".join(
        [
            "# Benchmark results",
            "",
            "Written by `make bench` (`python -m bench.run`); do not edit by hand.",
            "",
            "## Results",
            "",
            table(rows),
            "",
            *(["Notes:", "", *notes, ""] if notes else []),
            *(["## Goals not met", "", *not_met, ""] if not_met else []),
            "## Method",
            "",
            METHOD,
            *module_methods(),
            "## Machine",
            "",
            *[f"- {k}: {v}" for k, v in info.items()],
            f"- wall time of the run: {elapsed:.0f} s",
            "",
        ]
    )
    RESULTS.write_text(text, encoding="utf-8")


def _best_of(first: list[Row], second: list[Row]) -> list[Row]:
    """Row by row, the measurement with the better ratio."""
    again = {r.name: r for r in second}
    return [max(r, again.get(r.name, r), key=lambda x: x.ratio) for r in first]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="small counts, print only (CI)")
    parser.add_argument(
        "--only", metavar="TEXT", help="run the benchmarks whose name contains TEXT"
    )
    args = parser.parse_args(argv)
    settings = Settings(smoke=args.smoke)
    info = machine()
    discover()
    started = time.perf_counter()
    rows: list[Row] = []
    crashed: list[str] = []
    for name, func in REGISTRY.items():
        if args.only and args.only not in name:
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        try:
            result = func(settings)
            if any(r.regressed for r in result):
                # A real 2× regression survives a second measurement; a noisy neighbour rarely does.
                print(f"re-measuring {name} (a ratio looks regressed)", file=sys.stderr, flush=True)
                result = _best_of(result, func(settings))
            rows.extend(result)
        except Exception:  # one broken benchmark must not hide the others' results
            traceback.print_exc()
            crashed.append(name)
        print(f"  {name}: {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    print(table(rows))
    print(
        f"\n{'smoke' if args.smoke else 'full'} run, {elapsed:.1f} s, load {info['load average at start (1/5/15 min)']}"
    )
    if not args.smoke and not args.only and not crashed:
        write_results(rows, info, elapsed)
        print(f"wrote {RESULTS}")
    regressed = [r for r in rows if r.regressed]
    for r in regressed:
        print(
            f"REGRESSION {r.name}: ratio {r.ratio:.2f}× ≤ half the reference {r.reference:.2f}×",
            file=sys.stderr,
        )
    for r in rows:
        if r.met is False:
            print(f"goal missed (not enforced): {r.name}: {r.goal}", file=sys.stderr)
    for name in crashed:
        print(f"CRASHED {name}", file=sys.stderr)
    return 1 if regressed or crashed else 0


if __name__ == "__main__":
    sys.exit(main())
