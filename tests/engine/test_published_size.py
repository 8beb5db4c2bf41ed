"""One incident's published state stays bounded whatever a source or an operator repeats.

A retained message bigger than the broker's packet limit (deploy/: 8 MiB) disconnects the
core on every publish; a stream of impossible jumps adds a history entry each, and notes
are unbounded. The engine keeps everything (the journal is the record); the state shows
the first entries, the latest, and how many lie between.
"""

from __future__ import annotations

from console.engine.read import PUBLISHED_HISTORY_HEAD, PUBLISHED_HISTORY_TAIL, PUBLISHED_NOTES
from protocols import codec
from protocols.schemas import Action
from tests.engine.test_engine_support import DAY, do, engine, sos


def test_a_flood_of_notes_and_jumps_leaves_one_incident_small() -> None:
    eng = engine()
    eng.handle_event(sos("a0", device="d"), DAY, source="app")
    for n in range(1, 400):  # 12 km away a second later, every time: each one recorded
        far = 37.6745 if n % 2 else 37.5665
        eng.handle_event(sos(f"a{n}", device="d", lat=far, ts=DAY + n), DAY + n, source="app")
    for n in range(300):
        assert do(eng, Action.NOTE, text="x" * 4000, now=DAY + 500 + n).ok
    kept = eng.ctx.st.incidents["I-000001"]
    assert len(kept.history) > 500 and len(kept.notes) == 300  # nothing lost in the engine

    state = eng.incident_state("I-000001", DAY + 1000)
    shown = PUBLISHED_HISTORY_HEAD + 1 + PUBLISHED_HISTORY_TAIL
    assert len(state.history) == shown
    gap = state.history[PUBLISHED_HISTORY_HEAD]
    assert gap.action == "omitted" and str(len(kept.history) - shown + 1) in gap.detail
    assert state.history[0] == kept.history[0] and state.history[-1] == kept.history[-1]
    assert state.notes == tuple(kept.notes[-PUBLISHED_NOTES:])
    assert len(codec.encode(state)) < 1_000_000


def test_a_short_history_is_published_whole() -> None:
    eng = engine()
    eng.handle_event(sos("a0"), DAY, source="app")
    assert do(eng, Action.ACK).ok
    kept = eng.ctx.st.incidents["I-000001"]
    assert eng.incident_state("I-000001", DAY + 20).history == tuple(kept.history)
