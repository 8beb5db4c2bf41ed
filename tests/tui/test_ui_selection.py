"""The selection is an incident: it follows its incident and only the operator moves it.

Pilot tests on fixture state (no broker): reorders under the cursor, a new P1 announced
without taking the cursor, the jump key, the selected incident leaving the queue, the
filter saying why the queue is empty, the palette on ctrl+p, the bell in the app.
"""

from __future__ import annotations

import msgspec
from textual.command import CommandPalette

from console.tui.app import AnsimApp
from console.tui.screens.resolve import ResolveScreen
from console.tui.state_store import StateStore
from protocols.schemas import Action, IncidentStatus
from tests.tui.ui_fixtures import NOW, Recorder, clock, incident, make_store
from widgets.alert_queue import AlertQueue

SIZE = (80, 24)


def make_app(store: StateStore | None = None) -> tuple[AnsimApp, Recorder, list[str]]:
    recorder = Recorder()
    app = AnsimApp(store=store or make_store(), operator="op1", role="operator",
                   send_command=recorder, clock=clock, connected=True)  # fmt: skip
    rings: list[str] = []
    app.bell = lambda: rings.append("bell")  # type: ignore[method-assign]
    return app, recorder, rings


def notes(app: AnsimApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def status(app: AnsimApp) -> str:
    return str(app.status_bar.render())


def ids(queue: AlertQueue) -> list[str]:
    return [queue.rows[i].id for i in range(len(queue.rows))]


async def test_a_reorder_under_the_cursor_keeps_the_selection_and_a_acts_on_it() -> None:
    store = make_store()
    app, sent, _ = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        queue = app.query_one(AlertQueue)
        await pilot.press("j", "j")
        assert queue.selected_id == "I-000001" and queue.cursor == 2
        # Another incident is escalated (it now stands with the P1s, above I-000001) and
        # a new P1 older than I-000001 arrives: two rows move in above the cursor.
        store.apply(msgspec.structs.replace(store.incidents["I-000002"], escalated=True))
        store.apply(incident(60, created=NOW - 9999, place="Dosan-daero 1"))
        await pilot.pause(0.2)
        assert ids(queue)[:5] == ["I-000003", "I-000002", "I-000060", "I-000006", "I-000001"]
        assert queue.selected_id == "I-000001" and queue.cursor == 4
        assert app.selected_incident() is not None
        assert app.selected_incident().id == "I-000001"  # type: ignore[union-attr]
        await pilot.press("a")
        await pilot.pause()
        assert [(c.action, c.incident_id) for c in sent.commands] == [(Action.ACK, "I-000001")]
        assert "Acknowledging I-000001 (SOS, Gangnam Yeoksam-ro 12)" in notes(app)


async def test_after_acting_on_the_top_row_an_escalation_above_it_does_not_take_it() -> None:
    """The issue's case: a, then an SLA escalation pushes another above; r still resolves
    the incident the operator acted on."""
    store = make_store()
    app, _, _ = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        queue = app.query_one(AlertQueue)
        assert queue.selected_id == "I-000003" and queue.cursor == 0
        await pilot.press("a")
        store.apply(
            msgspec.structs.replace(store.incidents["I-000040"], priority=1, escalated=True)
        )
        await pilot.pause(0.2)
        assert queue.rows[0].id == "I-000040" and queue.selected_id == "I-000003"
        await pilot.press("r")
        assert isinstance(app.screen, ResolveScreen) and app.screen.incident_id == "I-000003"
        assert "I-000003 (SOS, Gangnam Teheran-ro 5)" in app.screen.about


async def test_a_new_p1_is_announced_without_the_cursor_and_space_jumps_to_it() -> None:
    store = make_store()
    app, _, rings = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        queue = app.query_one(AlertQueue)
        await pilot.press("j", "j", "j")
        chosen = queue.selected_id
        store.apply(incident(61, created=NOW - 9999, district="Mapo", place="Hongik-ro 1"))
        await pilot.pause(0.2)
        assert queue.selected_id == chosen and queue.rows.index_of("I-000061") == 1
        assert "NEW P1 I-000061 Mapo [space]" in status(app)
        assert rings == ["bell"]
        store.apply(msgspec.structs.replace(store.incidents["I-000061"], owner="op2"))
        await pilot.pause(0.2)
        assert rings == ["bell"]  # an update of a known P1 does not ring
        await pilot.press("space")
        await pilot.pause()
        assert queue.selected_id == "I-000061" and app.detail.incident is not None
        assert app.detail.incident.id == "I-000061"
        assert "NEW P1" not in status(app)  # seen to: the announcement is gone
        await pilot.press("space")  # none announced: the first new P1 in the queue
        await pilot.pause()
        assert queue.selected_id == "I-000003"


async def test_jump_clears_a_filter_that_hides_the_new_p1() -> None:
    store = make_store()
    app, _, _ = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        app.apply_filter("p2")
        store.apply(incident(62))
        await pilot.pause(0.2)
        assert "NEW P1 I-000062" in status(app)
        await pilot.press("space")
        await pilot.pause()
        assert not app.store.filter.active and app.queue.selected_id == "I-000062"
        assert "Filter cleared to show I-000062." in notes(app)


async def test_an_escalation_rings_twice_and_the_budget_holds() -> None:
    store = make_store()
    app, _, rings = make_app(store)
    app.bell_policy.max_per_window = 2
    async with app.run_test(size=SIZE) as pilot:
        store.apply(msgspec.structs.replace(store.incidents["I-000002"], escalated=True))
        await pilot.pause(0.5)
        assert rings == ["bell", "bell"]  # the escalation pattern: two bells
        for n in (70, 71, 72):
            store.apply(incident(n))
            await pilot.pause(0.1)
        assert len(rings) == 3 and app.bell_policy.rings == 2  # one more P1, then the budget
        assert "NEW P1 I-000072" in status(app) and "+2" in status(app)  # all announced


async def test_the_selected_incident_closing_moves_to_its_neighbour_and_says_so() -> None:
    store = make_store()
    app, _, _ = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        queue = app.query_one(AlertQueue)
        queue.select("I-000001")
        await pilot.pause()
        resolved = msgspec.structs.replace(
            store.incidents["I-000001"], status=IncidentStatus.RESOLVED
        )
        store.apply(resolved)
        await pilot.pause(0.2)
        assert queue.selected_id == "I-000005"  # the next in queue order
        assert app.detail.incident is not None and app.detail.incident.id == "I-000005"
        assert "I-000001 was resolved: now on I-000005 (CCTV, Mapo Hongik-ro 20)" in notes(app)


async def test_filtering_out_the_selection_says_so_and_an_empty_queue_says_why() -> None:
    app, _, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        queue = app.query_one(AlertQueue)
        queue.select("I-000001")
        await pilot.press("slash", "p", "2")
        await pilot.pause(0.2)
        assert queue.selected_id == "I-000005"
        assert not any("hidden" in n for n in notes(app))  # not while the operator types
        await pilot.press("enter")
        await pilot.pause()
        assert "I-000001 is hidden by the filter: now on I-000005 (CCTV, Mapo Hongik-ro 20)" in (
            notes(app)
        )
        assert " /P2 " in status(app)
        app.apply_filter("p1 mapo")
        await pilot.pause(0.2)
        assert queue.row_count() == 0 and queue.selected_id is None
        assert "No incident matches filter 'p1 mapo' — esc clears" in queue.render_line(1).text
        assert " /P1 Mapo " in status(app)
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert queue.row_count() == 8 and " /" not in status(app)


async def test_ctrl_p_and_colon_open_the_command_palette() -> None:
    app, _, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, CommandPalette)
        await pilot.press("colon")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press("escape")
        await pilot.press("slash", "x")  # typing a filter: ctrl+p still opens it
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)


async def test_the_detail_opens_at_its_top_on_every_new_selection() -> None:
    app, _, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(AlertQueue).select("I-000001")  # the fixture's longest detail
        await pilot.pause()
        app.detail.scroll_end(animate=False)
        await pilot.pause()
        assert app.detail.scroll_y > 0
        await pilot.press("j")
        await pilot.pause()
        assert app.detail.scroll_y == 0
