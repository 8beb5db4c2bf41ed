"""Scale: 100,000 cameras and many open incidents, no O(n) work per event."""

from __future__ import annotations

import random
import time

from protocols.schemas import Action
from tests.engine.test_engine_support import DAY, camera, cctv, do, engine, responder, sos


def test_events_stay_fast_with_100k_cameras() -> None:
    rnd = random.Random(5)
    e = engine()
    e.ctx.district_of = lambda lat, lon: "Jung-gu"  # the district lookup is timed elsewhere

    def spot() -> tuple[float, float]:
        return 37.45 + rnd.random() * 0.25, 126.8 + rnd.random() * 0.35

    for i in range(100_000):
        lat, lon = spot()
        e.handle_event(camera(f"c{i}", lat=lat, lon=lon, district=f"D{i % 25}"), DAY)
    for i in range(200):
        lat, lon = spot()
        e.handle_event(responder(f"R{i}", lat=lat, lon=lon), DAY)
    start = time.perf_counter()
    n = 3000
    for i in range(n):
        lat, lon = spot()
        e.handle_event(sos(f"a{i}", device=f"d{i}", lat=lat, lon=lon), DAY + i)
        e.handle_event(cctv(f"e{i}", f"c{rnd.randrange(100_000)}"), DAY + i)
    per_event = (time.perf_counter() - start) / (2 * n)
    assert per_event < 0.002, f"{per_event * 1e6:.0f} µs per event"
    start = time.perf_counter()
    for iid in e.open_incident_ids()[:200]:
        state = e.incident_state(iid, DAY + 500)  # units heard from within stale_after_s
        assert len(state.recommended) == 5
    assert (time.perf_counter() - start) / 200 < 0.005
    assert do(e, Action.DISPATCH, e.open_incident_ids()[0]).ok
    assert e.tick(DAY + n + 31)
