"""The console under a storm, against a naive DataTable console, in the same run.

Both apps run headless under ``App.run_test`` in this process and are fed the
same pre-encoded state payloads through the same ``StateStore`` (decode +
apply, as the console's link does) by a task on the app's own event loop, the
loop the real link worker shares with the UI. See ``METHOD`` (it goes into
bench/RESULTS.md) for what each figure means and how it is taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rich.console import RenderableType
from textual import events
from textual._compositor import CompositorUpdate
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable

from bench import Row, Settings, percentile, register
from bench.console_storm import PROBE_ID, City, build_city, probe, probe_text
from console.config import Config, ConsoleConfig
from console.tui import app as console_app
from console.tui.app import AnsimApp
from console.tui.state_store import StateStore
from protocols.schemas import Command
from widgets.format import KIND_LABEL, STATUS_LABEL, age

SIZE = (80, 24)
FPS = 15.0
TICK_S = 0.01  # the storm applies its payloads in slices this often

# Ratios recorded at tuning time (bench/RESULTS.md); smoke fails at half of these.
# Set from smoke runs (the smaller ratios); full runs measure far larger ones.
REFERENCE: dict[str, float] = {
    "console.keypress-to-screen.p50": 100.0,
    "console.publish-to-screen.p50": 5.5,
    "console.frame.100-open.mean": 8.0,
    "console.cpu-share": 7.5,
}

METHOD = """\
- Console (`bench/console.py`): our console (`AnsimApp`: Line-API queue, keyed
  row cache, drain at 15 Hz) and a naive console (a plain Textual `DataTable`
  with the same columns, cleared and refilled with `add_rows` from the same
  store's sorted view whenever a drain finds changes — per update batch, at the
  same 15 Hz, which is generous to it: refilled per message it could not keep
  up at all) run one after the other in this process, headless at 80×24, on
  the same pre-encoded payloads: the retained picture (cameras in 25 districts,
  open incidents), then a storm of incident updates (status/owner/updated of
  random open incidents, so the queue keeps its size) applied through
  `StateStore.apply_payload` in 10 ms slices on the app's event loop, plus one
  page of a district's cameras (250 of its 4,000, as the core republishes
  them when one camera changes) every 200 ms. The store keeps camera pages
  as received and decodes them when the camera pane or the map reads them,
  which the queue pane measured here does not.
- **Frames and bytes.** Headless Textual composes every frame but skips the
  write: `App._display` returns early when `is_headless`. The bench subclasses
  both apps with a `_display` that does what the real driver path does —
  `CompositorUpdate.render_segments(app.console)` plus the cursor move, the
  exact escape-sequence string a terminal would receive — and counts its UTF-8
  bytes (plus the 16 bytes of the synchronized-update markers).
- **Frame time** is the UI's time per frame period: one drain tick (15 Hz:
  store → widgets; for the baseline, the refill) plus every screen update until
  the next tick (`Screen._on_timer_update`: layout, compositor, the widgets'
  `render_line`, and the escape-sequence rendering above); the mean over the
  run. (The distribution is bimodal — a period with nothing visible to repaint
  costs only its drain — so a median jumps between the two modes.)
- **Keypress → screen.** A `Key` event ("j"/"k") is handed to the driver
  (`driver.send_message`, the path a real terminal's input thread uses, and
  what `pilot.press` does before it waits for the process to go idle, which
  under the storm took up to 2 s a key); the clock starts just before it. The latency ends at the first frame
  written (`_display`) at which the list's cursor is on the target row: a
  cursor move marks the widget dirty, so that frame is the one that shows it.
  Keys alternate down/up around the top rows, one every ~100 ms during the storm.
- **Publish → screen.** Every 200 ms the storm applies an update to the top
  row (a P1 escalated incident, always visible) with a new unique place text;
  the latency ends at the first frame whose bytes contain that text.
- **CPU share**: process CPU time / wall time over the storm (one core = 100 %);
  it includes decoding the storm, the same for both.
- **100 vs N open**: the same storm rate with 100 and with N open incidents
  (N = 100,000 full, 5,000 smoke); the growth ratio is the mean frame time at
  N / at 100.
"""


class Meter:
    """What one app run records: frames, bytes, latencies."""

    def __init__(self, cursor_of: Callable[[], int]) -> None:
        self.cursor_of = cursor_of
        self.frames: list[float] = []
        self.bytes = 0
        self.period: float | None = None
        self.key_target: int | None = None
        self.key_t0 = 0.0
        self.key_latencies: list[float] = []
        self.key_seen = asyncio.Event()
        self.probes: dict[str, float] = {}  # text → when applied
        self.probe_latencies: list[float] = []
        self.recording = False

    def drained(self, seconds: float) -> None:
        """A drain tick (15 Hz) starts a frame period: its cost is this drain plus
        every screen update until the next drain."""
        if self.recording and self.period is not None:
            self.frames.append(self.period)
        self.period = seconds

    def frame(self, seconds: float) -> None:
        if self.period is not None:
            self.period += seconds

    def displayed(self, data: str) -> None:
        now = time.perf_counter()
        if self.recording:
            self.bytes += len(data.encode("utf-8")) + 16
        if self.key_target is not None and self.cursor_of() == self.key_target:
            self.key_latencies.append(now - self.key_t0)
            self.key_target = None
            self.key_seen.set()
        for text in [t for t in self.probes if t in data]:
            self.probe_latencies.append(now - self.probes.pop(text))


def _render(app: App[Any], renderable: RenderableType) -> str:
    """The escape sequences the real (non-headless) `App._display` would write."""
    if isinstance(renderable, CompositorUpdate):
        return renderable.render_segments(app.console)
    console = app.console
    return console._render_buffer(console.render(renderable))


class _Metered:
    meter: Meter

    def _display(self, screen: Screen[Any], renderable: RenderableType | None) -> None:
        super()._display(screen, renderable)  # type: ignore[misc]
        app: App[Any] = self  # type: ignore[assignment]
        if renderable is not None and not app._batch_count:
            self.meter.displayed(_render(app, renderable))


class BenchAnsim(_Metered, AnsimApp):
    CSS_PATH = str(Path(console_app.__file__).with_name("app.tcss"))  # relative to the module

    def drain(self) -> None:
        start = time.perf_counter()
        super().drain()
        self.meter.drained(time.perf_counter() - start)


class NaiveTable(DataTable[str]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", show=False),
        Binding("k", "cursor_up", show=False),
    ]


class NaiveApp(_Metered, App[int]):
    """The baseline: a DataTable cleared and refilled from the store per update batch."""

    def __init__(self, store: StateStore) -> None:
        super().__init__()
        self.store = store
        self.table = NaiveTable(cursor_type="row")

    def compose(self) -> ComposeResult:
        yield self.table

    def on_mount(self) -> None:
        self.table.add_columns("Pri", "Kind", "District / place", "Age", "State", "Owner", "Resp.")
        self.store.mark_all_changed()
        self.drain()
        self.table.focus()
        self.set_interval(1 / FPS, self.drain)

    def drain(self) -> None:
        start = time.perf_counter()
        if self.store.drain():
            now = time.time()
            view = self.store.view
            row = self.table.cursor_row
            self.table.clear()
            self.table.add_rows(
                (
                    f"P{i.priority}",
                    KIND_LABEL.get(i.kind, str(i.kind)),
                    f"{i.district} {i.place}",
                    age(now - i.created),
                    STATUS_LABEL.get(i.status, "?"),
                    i.owner or "-",
                    ",".join(i.responders) or "-",
                )
                for i in (view[n] for n in range(len(view)))
            )
            self.table.move_cursor(row=row, animate=False)
        self.meter.drained(time.perf_counter() - start)


_original_update = Screen._on_timer_update


def _timed_update(self: Screen[Any]) -> None:
    start = time.perf_counter()
    _original_update(self)
    meter = getattr(self.app, "meter", None)
    if meter is not None:
        meter.frame(time.perf_counter() - start)


@dataclass
class Phase:
    """One app under one storm."""

    naive: bool
    city: City
    rate: float
    seconds: float
    keys: bool = True
    min_frames: int = 0
    max_seconds: float = 60.0
    result: dict[str, float] = field(default_factory=dict)


async def _nothing(command: Command) -> None:
    return None


def _make(phase: Phase, store: StateStore) -> tuple[App[Any], Meter]:
    app: BenchAnsim | NaiveApp
    if phase.naive:
        app = NaiveApp(store)
        meter = Meter(lambda: app.table.cursor_row)  # type: ignore[union-attr]
    else:
        cfg = Config(console=ConsoleConfig(bell=False, fps=FPS))
        app = BenchAnsim(cfg, store=store, operator="op1", send_command=_nothing, connected=True)
        meter = Meter(lambda: app.queue.cursor)  # type: ignore[union-attr]
    app.meter = meter
    return app, meter


async def _storm(store: StateStore, phase: Phase, meter: Meter, stop: asyncio.Event) -> int:
    updates, cams = phase.city.updates, phase.city.camera_updates
    applied = serial = 0
    start = time.perf_counter()
    next_probe = next_cams = start
    while not stop.is_set():
        now = time.perf_counter()
        due = int((now - start) * phase.rate)
        while applied < due:
            topic, payload = updates[applied % len(updates)]
            store.apply_payload(topic, payload)
            applied += 1
        if now >= next_cams:
            topic, payload = cams[int(now * 5) % len(cams)]
            store.apply_payload(topic, payload)
            next_cams = now + 0.2
        if now >= next_probe and meter.recording:
            serial += 1
            meter.probes[probe_text(serial)] = time.perf_counter()
            store.apply_payload(*probe(serial, time.time()))
            next_probe = now + 0.2
        await asyncio.sleep(TICK_S)
    return applied


async def _keys(pilot: Pilot[Any], meter: Meter, until: float) -> None:
    pattern = ["j", "j", "j", "k", "k", "k"]
    app, n = pilot.app, 0
    driver = app._driver
    assert driver is not None
    while time.perf_counter() < until:
        key = pattern[n % len(pattern)]
        meter.key_target = meter.cursor_of() + (1 if key == "j" else -1)
        meter.key_t0 = time.perf_counter()
        meter.key_seen.clear()
        # What `pilot.press` does (and a terminal's input thread), without the harness's
        # waits for an idle process after it: under the storm those took up to 2 s a key
        # and left a handful of samples for a p99.
        event = events.Key(key, key)
        event.set_sender(app)
        driver.send_message(event)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(meter.key_seen.wait(), 5.0)
        meter.key_target = None
        n += 1
        await asyncio.sleep(0.1)


async def _run(phase: Phase) -> dict[str, float]:
    store = StateStore()
    for topic, payload in phase.city.initial:
        store.apply_payload(topic, payload)
    app, meter = _make(phase, store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)  # the first full frames, the cursor on the top row
        stop = asyncio.Event()
        storm = asyncio.create_task(_storm(store, phase, meter, stop))
        await asyncio.sleep(0.3)  # warm-up under the storm
        meter.recording = True
        meter.probes.clear()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        until = wall0 + phase.seconds
        if phase.keys:
            await _keys(pilot, meter, until)
        await asyncio.sleep(max(0.0, until - time.perf_counter()))
        # A slow baseline may not have drawn enough frames yet: give it (bounded) time.
        end = wall0 + phase.max_seconds
        while len(meter.frames) < phase.min_frames and time.perf_counter() < end:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        meter.recording = False
        stop.set()
        applied = await storm
        await pilot.press("q", "y") if not phase.naive else app.exit(0)
    assert store.incidents.get(PROBE_ID) is not None
    res = {
        "wall": wall,
        "cpu_share": cpu / wall,
        "bytes_per_s": meter.bytes / wall,
        "frames": float(len(meter.frames)),
        "frame_mean": statistics.fmean(meter.frames) if meter.frames else float("nan"),
        "applied_per_s": applied / (wall + 0.3),
    }
    for name, samples in (("key", meter.key_latencies), ("pub", meter.probe_latencies)):
        if samples:
            res[f"{name}_p50"] = percentile(samples, 50)
            res[f"{name}_p99"] = percentile(samples, 99)
            res[f"{name}_n"] = float(len(samples))
    return res


def _ms(x: float) -> float:
    return x * 1000.0


@register("console")
def bench_console(settings: Settings) -> list[Row]:
    Screen._on_timer_update = _timed_update  # type: ignore[method-assign]
    try:
        return _bench(settings)
    finally:
        Screen._on_timer_update = _original_update  # type: ignore[method-assign]


def _bench(settings: Settings) -> list[Row]:
    if settings.smoke:
        rate, cameras, incidents, big, seconds = 2_000.0, 10_000, 1_000, 5_000, 1.6
    else:
        rate, cameras, incidents, big, seconds = 5_000.0, 100_000, 10_000, 100_000, 8.0
    now = time.time()
    n_updates = int(rate * 2)
    storm_city = build_city(settings.seed, incidents, cameras, n_updates, now)
    small_city = build_city(settings.seed + 1, 100, cameras // 10, n_updates, now)
    big_city = build_city(settings.seed + 2, big, cameras // 10, n_updates, now)

    def run(phase: Phase) -> dict[str, float]:
        return asyncio.run(_run(phase))

    ours = run(Phase(False, storm_city, rate, seconds))
    naive = run(Phase(True, storm_city, rate, seconds))
    frame_s = seconds / 2
    ours_small = run(Phase(False, small_city, rate, frame_s, keys=False))
    ours_big = run(Phase(False, big_city, rate, frame_s, keys=False))
    naive_small = run(Phase(True, small_city, rate, frame_s, keys=False))
    cap = 8.0 if settings.smoke else 45.0  # a refill of 100,000 DataTable rows takes seconds
    naive_big = run(Phase(True, big_city, rate, frame_s, keys=False, min_frames=2, max_seconds=cap))

    def rows_for(key: str, goal: str = "", limit: float | None = None) -> list[Row]:
        out = []
        for q in ("p50", "p99"):
            ours_v, naive_v = _ms(ours[f"{key}_{q}"]), _ms(naive.get(f"{key}_{q}", float("inf")))
            what = "keypress-to-screen" if key == "key" else "publish-to-screen"
            name = f"console.{what}.{q}"
            out.append(
                Row.of(name, ours_v, "ms", naive_v, "DataTable refilled per update",
                       lower_is_better=True, goal=goal if q == "p99" else "",
                       met=(ours_v <= limit) if (limit and q == "p99") else None,
                       reference=REFERENCE.get(name),
                       note=f"{int(ours[f'{key}_n'])} samples (baseline {int(naive.get(f'{key}_n', 0))})"
                       if q == "p50" else "")
            )  # fmt: skip
        return out

    scale = f"{rate:,.0f} events/s, {cameras:,} cameras, {incidents:,} open incidents"
    rows = [*rows_for("key", "p99 ≤ 50 ms", 50.0), *rows_for("pub", "p99 ≤ 250 ms", 250.0)]
    rows[0] = _with_note(rows[0], f"{scale}; " + rows[0].note)
    growth = ours_big["frame_mean"] / ours_small["frame_mean"]
    naive_growth = naive_big["frame_mean"] / naive_small["frame_mean"]
    rows += [
        Row.of("console.frame.100-open.mean", _ms(ours_small["frame_mean"]), "ms",
               _ms(naive_small["frame_mean"]), "DataTable refilled per update",
               lower_is_better=True, reference=REFERENCE.get("console.frame.100-open.mean"),
               note=f"{int(ours_small['frames'])} frames (baseline {int(naive_small['frames'])})"),
        Row.of(f"console.frame.{big // 1000}k-open.mean", _ms(ours_big["frame_mean"]), "ms",
               _ms(naive_big["frame_mean"]), "DataTable refilled per update",
               lower_is_better=True, reference=REFERENCE.get(f"console.frame.{big // 1000}k-open.mean"),
               note=f"{int(ours_big['frames'])} frames (baseline {int(naive_big['frames'])})"),
        Row.of(f"console.frame.growth.{big // 1000}k-vs-100", growth, "×", naive_growth,
               "DataTable refilled per update", lower_is_better=True,
               goal="≤ 1.5", met=growth <= 1.5,
               note="mean UI time per frame period, N open / 100 open"),
        Row.of("console.bytes-per-s", ours["bytes_per_s"] / 1000, "KB/s",
               naive["bytes_per_s"] / 1000, "DataTable refilled per update", lower_is_better=True,
               goal="≤ 100 KB/s", met=ours["bytes_per_s"] <= 100_000,
               reference=REFERENCE.get("console.bytes-per-s"),
               note="80×24; rendered escape sequences, what the driver would write"),
        Row.of("console.cpu-share", 100 * ours["cpu_share"], "%", 100 * naive["cpu_share"],
               "DataTable refilled per update", lower_is_better=True,
               reference=REFERENCE.get("console.cpu-share"),
               note=f"storm applied at {ours['applied_per_s']:,.0f}/s (baseline {naive['applied_per_s']:,.0f}/s)"),
    ]  # fmt: skip
    return rows


def _with_note(row: Row, note: str) -> Row:
    from dataclasses import replace

    return replace(row, note=note)
