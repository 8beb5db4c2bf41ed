"""Under a storm the core publishes incident states within a budget, oldest first; an
SOS (a P1) must not wait behind the backlog of CCTV incidents (bench/partitions.py
measured seconds of it)."""

from __future__ import annotations

from collections import OrderedDict

from console.core.publisher import Dirty, publish_state
from protocols.schemas import CctvKind
from tests.core.test_publish_after_commit import Recorder
from tests.engine.test_engine_support import DAY, LAT, LON, camera, cctv, engine, sos


async def test_a_new_p1_goes_to_the_head_of_the_publication_backlog() -> None:
    e = engine()
    for n in range(40):  # forty cameras, each with a loitering event: P3 incidents
        e.handle_event(camera(f"cam{n}", lat=LAT + n * 0.01, lon=LON), DAY)
        e.handle_event(cctv(f"e{n}", f"cam{n}", kind=CctvKind.LOITERING), DAY)
    storm = e.open_incident_ids()
    backlog: OrderedDict[str, None] = OrderedDict.fromkeys(storm)
    e.handle_event(sos("a1", "dev-1", LAT + 0.5, LON), DAY + 1)
    (p1,) = set(e.open_incident_ids()) - set(storm)
    out = Recorder()
    await publish_state(out, e, Dirty(incidents={p1}), DAY + 1, backlog=backlog)  # type: ignore[arg-type]
    published = [t.rsplit("/", 1)[-1] for t in out.topics() if "/state/incident/" in t]
    assert published == [p1, *storm]  # the SOS first, the others in their order
