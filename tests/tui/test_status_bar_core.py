"""The status bar names the active core of a standby pair and marks a takeover."""

from __future__ import annotations

from textual.app import App, ComposeResult

from protocols.schemas import Summary
from widgets.status_bar import StatusBar, active_host

NOW = 1_770_000_000.0


class BarApp(App[None]):
    def compose(self) -> ComposeResult:
        yield StatusBar("op1", "operator", id="bar")


def summary(term: int, holder: str) -> Summary:
    return Summary(ts=NOW, term=term, lease_holder=holder)


def test_active_host_reads_the_holder_id() -> None:
    assert active_host("ansim-core@core-b:4242:ab12cd") == "core-b"
    assert active_host("") == "?"
    assert "\x1b" not in active_host("ansim-core@ho\x1bst:1:x")


async def test_the_bar_shows_the_active_core_and_a_takeover() -> None:
    app = BarApp()
    async with app.run_test(size=(160, 3)) as pilot:
        bar = app.query_one(StatusBar)
        bar.update_state(now=NOW, summary=summary(2, "ansim-core@core-a:10:aa"))
        await pilot.pause()
        text = str(bar.render())
        assert "core core-a t2" in text and "TAKEN OVER" not in text
        bar.update_state(now=NOW + 5, summary=summary(3, "ansim-core@core-b:11:bb"))
        assert "core core-b t3" in str(bar.render()) and "TAKEN OVER" in str(bar.render())
        bar.update_state(now=NOW + 60)  # a while later the mark is gone
        assert "TAKEN OVER" not in str(bar.render())
        bar.update_state(summary=Summary(ts=NOW))  # a lone core: no core label
        assert "core " not in str(bar.render()).replace("op1", "")


async def test_a_city_wide_seat_shows_the_partitions_merged() -> None:
    from console.tui.merged import merge_summaries

    north = Summary(ts=NOW, open_by_priority=(1, 0, 0, 0), open_total=1, partition="north",
                    term=2, lease_holder="ansim-core-north@a:1:x", alarms=("journal slow",))  # fmt: skip
    south = Summary(ts=NOW + 1, open_by_priority=(0, 2, 0, 0), open_total=2, partition="south")
    merged = merge_summaries({"north": north, "south": south})
    assert merged is not None
    assert (merged.open_by_priority, merged.open_total) == ((1, 2, 0, 0), 3)
    assert merged.alarms == ("north: journal slow",)
    app = BarApp()
    async with app.run_test(size=(160, 4)) as pilot:
        bar = app.query_one(StatusBar)
        bar.update_state(now=NOW, summary=merged)
        await pilot.pause()
        text = str(bar.render())
        assert "P1 1 P2 2 open 3" in text and "2 cores" in text


async def test_a_scoped_seat_counts_its_districts_not_its_partition() -> None:
    """The partition's summary says 5 P1; the Jongno seat is sent one of them."""
    from console.config import Config
    from console.tui.app import AnsimApp
    from console.tui.state_store import StateStore
    from protocols.schemas import IncidentStatus
    from tests.tui.ui_fixtures import Recorder, clock, incident

    store = StateStore()
    store.apply(Summary(ts=NOW, open_by_priority=(5, 3, 0, 0), open_total=8, oldest_unacked=NOW))
    store.apply(incident(1, district="Jongno-gu", created=NOW - 30))
    store.apply(incident(2, district="Jongno-gu", priority=2, status=IncidentStatus.RESOLVED))
    cfg = Config(scopes={"op1": ["Jongno-gu"]})
    app = AnsimApp(cfg, store=store, operator="op1", role="operator", send_command=Recorder(),
                   clock=clock, connected=True)  # fmt: skip
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        text = str(app.status_bar.render())
        assert "P1 1 P2 0 open 1" in text, text
        store.apply(incident(3, district="Jongno-gu", priority=2))  # a new one arrives
        app.drain()
        await pilot.pause()
        assert "P1 1 P2 1 open 2" in str(app.status_bar.render())
    unscoped = AnsimApp(store=store, operator="op1", role="operator", send_command=Recorder(),
                        clock=clock, connected=True)  # fmt: skip
    async with unscoped.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        assert "P1 5 P2 3 open 8" in str(unscoped.status_bar.render())  # as the core says
