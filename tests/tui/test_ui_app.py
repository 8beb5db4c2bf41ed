"""The console driven by the keyboard, on fixture state, with no broker."""

from __future__ import annotations

import msgspec

from console.tui.app import AnsimApp
from console.tui.messages import LinkStateChanged, ReplyReceived
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.dispatch import DispatchScreen
from console.tui.screens.help import HelpScreen
from console.tui.state_store import StateStore
from protocols.schemas import Action, IncidentStatus, Reply
from tests.tui.ui_fixtures import NOW, Recorder, cameras, clock, incident, make_store
from widgets.alert_queue import AlertQueue
from widgets.camera_grid import CameraGrid

SIZE = (80, 24)


def make_app(
    store: StateStore | None = None, role: str = "operator", connected: bool = True
) -> tuple[AnsimApp, Recorder]:
    recorder = Recorder()
    app = AnsimApp(store=store or make_store(), operator="op1", role=role,
                   send_command=recorder, clock=clock, connected=connected)  # fmt: skip
    return app, recorder


def notes(app: AnsimApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_sos_appears_in_the_queue() -> None:
    store = StateStore()
    for cams in cameras():
        store.apply(cams)
    app, _ = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()  # mounted, even on a loaded machine
        queue = app.query_one(AlertQueue)
        assert queue.row_count() == 0
        store.apply(incident(1, title="SOS (shake)"))
        for _ in range(20):  # a drain comes at 15 Hz; a loaded machine may need a few
            await pilot.pause(0.1)
            if queue.row_count():
                break
        assert queue.row_count() == 1
        assert queue.selected_id == "I-000001"
        assert "SOS" in queue.render_line(1).text and "NEW" in queue.render_line(1).text


async def test_a_sends_ack_for_the_selected_incident() -> None:
    app, sent = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await pilot.pause()
        assert [(c.action, c.incident_id, c.operator) for c in sent.commands] == [
            (Action.ACK, "I-000003", "op1")
        ]
        await pilot.press("j", "j", "a")  # fast keys act on where the cursor is now
        await pilot.pause()
        assert sent.commands[-1].incident_id == "I-000001"
        assert len({c.cmd_id for c in sent.commands}) == 2


async def test_d_enter_dispatches_the_nearest_free_unit() -> None:
    app, sent = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(AlertQueue).select("I-000001")
        await pilot.press("d")
        assert isinstance(app.screen, DispatchScreen)
        await pilot.press("enter")
        await pilot.pause()
        # police-02 is nearer but already dispatched: police-07 is preselected.
        assert [(c.action, c.incident_id, c.responder_id) for c in sent.commands] == [
            (Action.DISPATCH, "I-000001", "police-07")
        ]


async def test_escape_backs_out_of_the_dispatch_dialog() -> None:
    app, sent = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")
        assert isinstance(app.screen, DispatchScreen)
        await pilot.press("a")  # the console's keys are inert under a dialog
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, DispatchScreen) and sent.commands == []


async def test_resolve_and_note_dialogs_send_their_text() -> None:
    app, sent = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r", "j", "enter")
        await pilot.press("n", *"caller safe", "enter")
        await pilot.pause()
        assert [(c.action, c.disposition, c.text) for c in sent.commands] == [
            (Action.RESOLVE, "escorted home", None),
            (Action.NOTE, None, "caller safe"),
        ]


async def test_observer_cannot_change_anything() -> None:
    app, sent = make_app(role="observer")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a", "d", "e", "c")
        await pilot.pause()
        assert sent.commands == [] and not isinstance(app.screen, DispatchScreen)
        assert app.check_action("ack", ()) is False
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        descriptions = " | ".join(row[1] for row in app.screen.rows)
        assert "Acknowledge" not in descriptions and "Dispatch" not in descriptions
        assert "Filter the queue" in descriptions


async def test_filter_and_escape_clears_it() -> None:
    app, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        queue = app.query_one(AlertQueue)
        assert queue.row_count() == 8
        await pilot.press("slash", "p", "2", "enter")
        await pilot.pause(0.2)
        assert queue.row_count() == 2 and queue.has_focus
        assert {queue.rows[i].priority for i in range(2)} == {2}
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert queue.row_count() == 8


async def test_help_opens_and_lists_the_keys_that_apply() -> None:
    app, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = {row[1].split(" ")[0]: row[0] for row in app.screen.rows}
        assert keys["Acknowledge"] == "a" and keys["Dispatch"] == "d"
        assert keys["Down"] == "j ↓" and "q" in keys["Quit"].split()
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_quit_asks_to_confirm() -> None:
    app, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmScreen) and app.is_running
        await pilot.press("q", "y")
        await pilot.pause()
    assert app.return_value == 0


async def test_refusal_reply_is_shown() -> None:
    app, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        reason = "unit-police-07 already dispatched to I-000012 by op2"
        app.post_message(
            ReplyReceived(Reply(cmd_id="x", operator="op1", ok=False, ts=NOW, reason=reason))
        )
        await pilot.pause()
        assert f"Refused: {reason}" in notes(app)


async def test_disconnected_refuses_commands_and_greys_the_picture() -> None:
    app, sent = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.post_message(LinkStateChanged(False, "disconnected", "connection refused"))
        await pilot.pause()
        await pilot.press("a", "d")
        await pilot.pause()
        assert sent.commands == [] and not isinstance(app.screen, DispatchScreen)
        assert any("NOT sent" in n for n in notes(app))
        assert app.query_one("#panes").has_class("-stale")
        app.post_message(LinkStateChanged(True, "connected"))
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        assert len(sent.commands) == 1


async def test_cursor_follows_the_selected_incident_across_resorts() -> None:
    store = make_store()
    app, _ = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        queue = app.query_one(AlertQueue)
        queue.select("I-000040")  # the last row, a P4
        store.apply(
            msgspec.structs.replace(store.incidents["I-000040"], priority=1, escalated=True)
        )
        await pilot.pause(0.2)
        assert queue.selected_id == "I-000040" and queue.cursor == 0
        store.apply(
            msgspec.structs.replace(store.incidents["I-000040"], status=IncidentStatus.RESOLVED)
        )
        await pilot.pause(0.2)
        assert queue.selected_id == queue.rows[0].id != "I-000040"


async def test_cursor_stays_on_top_only_while_the_start_up_picture_arrives() -> None:
    """At start-up the picture arrives row by row: the cursor must not ride down with the
    first incident. Once the picture is in, the selection follows its incident."""
    store = make_store()
    store.begin_resync()  # the retained picture is still arriving
    app, _ = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        queue = app.query_one(AlertQueue)
        top = queue.rows[0].id
        newest = msgspec.structs.replace(store.incidents["I-000040"], priority=1, escalated=True)
        store.apply(newest)  # now sorts above everything
        await pilot.pause(0.2)
        assert queue.pinned_to_top and queue.cursor == 0 and queue.selected_id == newest.id != top
        for inc in list(store.incidents.values()):  # the rest of the retained picture
            store.apply(inc)
        store.end_resync()  # the picture is in: from now on nothing but the operator moves it
        await pilot.pause(0.2)
        assert not queue.pinned_to_top
        store.apply(msgspec.structs.replace(store.incidents[top], escalated=True, created=0.0))
        await pilot.pause(0.2)
        assert queue.rows[0].id == top and queue.selected_id == newest.id


async def test_enter_opens_details_and_camera_enter_filters() -> None:
    app, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        assert app.query_one("#pane-queue").has_class("-detail")
        await pilot.press("escape")
        assert not app.query_one("#pane-queue").has_class("-detail")
        await pilot.press("2")
        grid = app.query_one(CameraGrid)
        assert grid.has_focus and [d.district for d in grid.districts] == [
            "Gangnam",
            "Jongno",
            "Mapo",
        ]
        await pilot.press("l", "enter")  # the first camera of Jongno
        await pilot.pause(0.2)
        assert app.store.filter.text == "cam-jon-000"
        assert app.query_one(AlertQueue).has_focus


async def test_frame_cost_does_not_grow_with_the_queue() -> None:
    app, _ = make_app(make_store(many=50_000))
    async with app.run_test(size=SIZE) as pilot:
        queue = app.query_one(AlertQueue)
        assert queue.row_count() == 50_008
        await pilot.press("end")
        assert queue.cursor == 50_007
        rendered = []
        original = queue.render_row
        queue.render_row = lambda i, w: rendered.append(i) or original(i, w)  # type: ignore[method-assign]
        queue.tick(NOW)
        await pilot.pause()
        assert 0 < len(rendered) <= 24


async def test_ok_reply_shows_what_was_done() -> None:
    app, sent = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(AlertQueue).select("I-000001")
        await pilot.press("d", "enter")
        await pilot.pause()
        command = sent.commands[-1]
        app.post_message(
            ReplyReceived(Reply(cmd_id=command.cmd_id, operator="op1", ok=True, ts=NOW,
                                incident_id="I-000001"))
        )  # fmt: skip
        await pilot.pause()
        assert "Dispatched police-07 to I-000001 (SOS, Gangnam Yeoksam-ro 12)" in notes(app)
        assert app._sent == {}


async def test_responder_board_lists_nearest_to_the_selection_then_busy_first() -> None:
    app, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        inc = app.store.incidents[app.queue.selected_id or ""]
        distances = [app.board.distance_to(u.id) for u in app.board.units]
        on_duty = [d for u, d in zip(app.board.units, distances, strict=True)
                   if str(u.status) != "off-duty"]  # fmt: skip
        assert app.board.focus_point == (inc.lat, inc.lon)
        assert on_duty == sorted(on_duty, key=lambda d: d or 0.0)
        assert str(app.board.units[-1].status) == "off-duty"
        app.board.set_focus(None)  # nothing selected: the busy units first
        statuses = [str(u.status) for u in app.board.units]
        assert statuses == ["on-scene", "en-route", "dispatched", "available", "available",
                            "off-duty"]  # fmt: skip
