"""Memory (issue 6, item 5): the core's and the console's resident set at scale.

Each side is loaded in a fresh interpreter (``sys.executable -c``), so nothing
this process imported or allocated counts; the child reads VmRSS from
/proc/self/status once after its imports (the baseline: what the code costs
before any data) and once with the whole picture loaded. See ``METHOD``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench import Row, Settings, register

ROOT = Path(__file__).resolve().parent.parent

# Ratios (RSS after imports / RSS loaded) measured at tuning time, per size: the full
# picture is mostly data, the smoke one mostly imports. Smoke fails at half of its own.
REFERENCE_SMOKE = {"memory.core.rss": 0.49, "memory.console.rss": 0.86}
REFERENCE_FULL = {"memory.core.rss": 0.09, "memory.console.rss": 0.24}

CORE_GOAL_MB = 500.0
CONSOLE_GOAL_MB = 300.0
RESPONDERS = 1_000

METHOD = """\
- Memory (`bench/memory.py`): each side is loaded in a fresh interpreter
  (`python -c`), which reads `VmRSS` from `/proc/self/status` twice: right
  after its imports (the **baseline**: interpreter, numpy, msgspec, the code;
  for the console also Textual and `console.tui.app`), and with the whole picture
  loaded, after a `gc.collect()`. The ratio is baseline / loaded RSS, so it is
  below 1; it halves when the data's footprint grows by roughly the whole
  loaded size, which is what the smoke check guards. The absolute goals are on
  the loaded RSS. Notes give MB per 1,000 incidents above the baseline.
- **Core**: the core's pipeline minus MQTT, as in `bench/engine.py`
  (`console.core.ingest.read` → dedupe `has_key` → `journal.append` (SQLite, WAL) →
  `Engine.handle_event`, commit per 500), fed payloads encoded on the fly (so
  no list of a million payloads inflates the RSS). The mix, in order: N camera
  registrations (`CameraHealth` with name, district, position, from
  `console.sim.city`), 1,000 responder registrations, N SOS from N distinct
  devices (→ N open incidents; no tick runs, so none is escalated or closed),
  then cheap fillers up to the event total: responder position reports
  (`ResponderReport`, status unchanged) round-robin over the 1,000 units. The
  cheapest events to journal and apply, chosen so that a million fit the time
  budget; every one is a journaled record. N = 100,000 and 1,000,000 events
  (smoke: 5,000 and 50,000). The publisher's caches (one retained payload per
  dirty incident per tick) are not included.
- **Console**: a `StateStore` fed encoded payloads through `apply_payload`, as
  the link does: N cameras in 25 districts as the core publishes them, pages of
  250 (`DistrictCameras` with `page`, ~25 KB each), decoded and joined into
  whole districts as the camera pane reads them, and N open `IncidentState`s (built like
  `bench/console_storm.py`'s, encoded and decoded one at a time), plus 1,000
  responders and a summary. Textual is imported but no app runs: widgets hold
  rows only for the visible screen.
"""

_READ_RSS = """
def rss_mb():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError('no VmRSS')
"""

_CORE = (
    _READ_RSS
    + """
import gc, json, sys, tempfile, time
from pathlib import Path
from console.sim.city import build_city
from console.config import Config, JournalConfig
from console.engine.engine import Engine
from console.core.ingest import Accepted, read
from console.journal.store import open_journal
from protocols import codec, topics
from protocols.schemas import CameraHealth, CameraHealthStatus, ResponderReport, ResponderStatus, SosAlarm, SosTrigger

incidents, events, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
gc.collect()
base = rss_mb()
started = time.perf_counter()
city = build_city(seed, incidents, 1000, 0)
T0 = 1_800_000_000.0

def stream():
    for i in range(city.camera_count):
        yield topics.raw('sim', topics.RAW_CAMERA), CameraHealth(
            camera_id=city.camera_ids[i], status=CameraHealthStatus.ONLINE, ts=T0,
            name=city.camera_names[i], district=city.camera_district_name(i),
            lat=float(city.camera_lat[i]), lon=float(city.camera_lon[i]))
    units = city.responders
    for u in units:
        yield topics.raw('sim', topics.RAW_RESPONDER), ResponderReport(
            responder_id=u.id, kind=u.kind, status=ResponderStatus.AVAILABLE,
            lat=u.lat, lon=u.lon, ts=T0, name=u.name)
    for n in range(incidents):
        i = n % city.camera_count
        yield topics.raw('sim', topics.RAW_SOS), SosAlarm(
            alarm_id=f'a{n}', source='sim', device_id=f'dev-{n:06d}', name=f'Person {n}',
            lat=float(city.camera_lat[i]) + 1e-4, lon=float(city.camera_lon[i]) + 1e-4,
            accuracy_m=15.0, trigger=SosTrigger.BUTTON, ts=T0)
    rest = events - city.camera_count - len(units) - incidents
    for k in range(rest):
        u = units[k % len(units)]
        d = (k // len(units) % 50) * 1e-5
        yield topics.raw('sim', topics.RAW_RESPONDER), ResponderReport(
            responder_id=u.id, kind=u.kind, status=ResponderStatus.AVAILABLE,
            lat=u.lat + d, lon=u.lon + d, ts=T0)

cfg = Config()
with tempfile.TemporaryDirectory() as tmp:
    journal = open_journal(JournalConfig(path=str(Path(tmp) / 'mem.db')))
    engine = Engine(cfg.engine_settings(), cfg.city.district_map())
    encode = codec.encode
    for i, (topic, message) in enumerate(stream()):
        payload = encode(message)
        result = read(topic, payload)
        assert isinstance(result, Accepted), result
        ts = T0 + i * 0.002
        if not (result.key and journal.has_key(result.key)):
            journal.append(ts, result.kind, topic, payload, key=result.key)
        engine.handle_event(result.message, ts)
        if journal.pending() >= 500:
            journal.commit()
    journal.commit()
    del city
    gc.collect()
    loaded = rss_mb()
    out = {'base': base, 'loaded': loaded, 'seconds': time.perf_counter() - started,
           'open': len(engine.st.incidents),
           'journaled': journal.count()}
    journal.close()
print(json.dumps(out))
"""
)

_CONSOLE = (
    _READ_RSS
    + """
import gc, json, random, sys, time
import msgspec
import console.tui.app  # noqa: F401  (the console's imports: Textual, widgets)
from bench.console_storm import DISTRICTS, _cameras, _incident, camera_pages, summary
from console.tui.state_store import StateStore
from protocols import codec, topics
from protocols.schemas import DistrictCameras, ResponderState, ResponderStatus, UnitKind

incidents, cameras, responders, seed = (int(a) for a in sys.argv[1:5])
gc.collect()
base = rss_mb()
started = time.perf_counter()
rng = random.Random(seed)
now = time.time()
store = StateStore()
for district in DISTRICTS:
    for topic, msg in camera_pages(_cameras(rng, district, cameras // len(DISTRICTS), now)):
        assert store.apply_payload(topic, msg), store.last_error
    del msg
for n in range(1, incidents + 1):
    s = _incident(rng, n, now)
    store.apply_payload(topics.state_incident(s.district, s.id), codec.encode(s))
kinds = list(UnitKind)
for n in range(responders):
    r = ResponderState(id=f'unit-{n:04d}', kind=kinds[n % 3], status=ResponderStatus.AVAILABLE,
                       lat=37.5 + n * 1e-4, lon=127.0, last_seen=now, status_since=now,
                       name=f'Unit {n}')
    store.apply_payload(topics.state_responder(r.district or "unknown", r.id), codec.encode(r))
store.apply_payload(topics.STATE_SUMMARY, codec.encode(summary(incidents, now)))
store.drain()
held = sum(len(d.cameras) for d in store.cameras.values())  # decoded and joined, as the pane reads them
gc.collect()
loaded = rss_mb()
out = {'base': base, 'loaded': loaded, 'seconds': time.perf_counter() - started,
       'open': store.open_count,
       'cameras': held}
print(json.dumps(out))
"""
)


def _child(code: str, *args: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", code, *(str(a) for a in args)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _per_k(res: dict[str, float], incidents: int) -> float:
    return (res["loaded"] - res["base"]) / (incidents / 1000)


@register("memory")
def bench_memory(settings: Settings) -> list[Row]:
    incidents, events = (5_000, 50_000) if settings.smoke else (100_000, 1_000_000)
    reference = REFERENCE_SMOKE if settings.smoke else REFERENCE_FULL
    start = time.perf_counter()
    core = _child(_CORE, incidents, events, settings.seed)
    core_s = time.perf_counter() - start
    if core["journaled"] != events or core["open"] != incidents:
        raise AssertionError(
            f"core: {core['journaled']} records, {core['open']} open (expected {events}, {incidents})"
        )
    start = time.perf_counter()
    con = _child(_CONSOLE, incidents, incidents, RESPONDERS, settings.seed)
    con_s = time.perf_counter() - start
    if con["open"] != incidents or con["cameras"] != incidents:
        raise AssertionError(
            f"console store holds {con['open']} incidents, {con['cameras']} cameras"
        )
    return [
        Row.of(
            "memory.core.rss",
            core["loaded"],
            "MB",
            core["base"],
            "the same process after its imports",
            lower_is_better=True,
            goal=f"≤ {CORE_GOAL_MB:.0f} MB",
            met=core["loaded"] <= CORE_GOAL_MB,
            reference=reference["memory.core.rss"],
            note=f"{incidents:,} open incidents, {events:,} journaled events, {incidents:,} cameras; "
            f"{_per_k(core, incidents):.2f} MB per 1,000 incidents above the baseline; "
            f"loaded in {core['seconds']:.0f} s ({core_s:.0f} s with start-up)",
        ),
        Row.of(
            "memory.console.rss",
            con["loaded"],
            "MB",
            con["base"],
            "the same process after its imports",
            lower_is_better=True,
            goal=f"≤ {CONSOLE_GOAL_MB:.0f} MB",
            met=con["loaded"] <= CONSOLE_GOAL_MB,
            reference=reference["memory.console.rss"],
            note=f"StateStore: {incidents:,} open incidents, {incidents:,} cameras, "
            f"{RESPONDERS:,} responders; {_per_k(con, incidents):.2f} MB per 1,000 incidents "
            f"(cameras included) above the baseline; {con_s:.1f} s",
        ),
    ]
