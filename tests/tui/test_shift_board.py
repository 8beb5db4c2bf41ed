"""The supervisor pane (`5`): the numbers of a hand-made ShiftReport, fitted to the screen,
and the supervisor's commands (reassign, handover) sent through the palette's dialogs."""

from __future__ import annotations

import pytest
from rich.cells import cell_len

from console.tui.app import AnsimApp
from console.tui.commands import palette_entries
from console.tui.screens.reassign import HandoverScreen, ReassignScreen
from console.tui.state_store import StateStore
from protocols import codec, topics
from protocols.schemas import Action
from protocols.shift import ShiftReport
from tests.tui.shift_fixtures import report
from tests.tui.test_i18n_pseudo import rows_by_widget, screen_lines, unwrapped_words
from tests.tui.ui_fixtures import Recorder, clock, make_store
from widgets import i18n
from widgets.shift_board import board_text, seconds, share


def store_with_report() -> StateStore:
    store = make_store()
    assert store.apply_payload(topics.state_shift("seoul"), codec.encode(report()))
    return store


def make_app(role: str = "supervisor") -> tuple[AnsimApp, Recorder]:
    recorder = Recorder()
    app = AnsimApp(store=store_with_report(), operator="sup1", role=role,
                   send_command=recorder, clock=clock, connected=True)  # fmt: skip
    return app, recorder


# --- the store -----------------------------------------------------------------------


def test_the_store_keeps_each_partitions_report_and_refuses_a_bad_one() -> None:
    store = StateStore()
    assert store.apply_payload(topics.state_shift("seoul"), codec.encode(report()))
    assert store.shift_reports == {"seoul": report()}
    assert store.drain().shift
    assert not store.apply_payload(topics.state_shift("busan"), b"\xc1 not a report")
    assert store.rejected == 1 and "state/shift/busan" in store.last_error
    assert store.apply_payload(topics.state_shift("seoul"), b"")  # cleared: nothing to show
    assert set(store.shift_reports) == {"seoul"}


# --- the view ------------------------------------------------------------------------


def test_times_are_said_in_seconds_like_the_targets() -> None:
    assert [seconds(v) for v in (None, 4.04, 9.0, 75.4, 190.0, 3600.0)] == [
        "-", "4.0s", "9.0s", "75s", "190s", "1h00m"
    ]  # fmt: skip
    assert [share(v) for v in (None, 0.92, 1.0)] == ["-", "92%", "100%"]


@pytest.mark.parametrize("width", [80, 120, 160])
def test_every_line_fits_its_width_in_both_languages(width: int) -> None:
    before = i18n.language()
    try:
        for language in i18n.LANGUAGES:
            i18n.set_language(language)
            for line in board_text([report()], width):
                assert cell_len(line) == width, (language, line)
    finally:
        i18n.set_language(before)


def test_the_board_shows_the_rest_below_the_figures() -> None:
    text = "\n".join(board_text([report()], 80))
    assert "Overdue: 2" in text
    assert "I-000003  P1 dispatch    +95s       op2" in text  # the latest first
    assert "I-000007  P2 acknowledge +14s       nobody" in text
    assert "sup1: Gangnam camera 4 is down until 09:00" in text
    assert "Alarms per minute, last hour (top 4)" in text
    assert "No shift figures yet" in board_text([], 80)[0]


async def test_pane_5_shows_the_reports_numbers_at_80x24() -> None:
    app, _sent = make_app(role="operator")  # the figures are the room's: every role sees them
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await pilot.pause()
        lines = screen_lines(app)
    assert all(cell_len(line) <= 80 for line in lines)
    shown = "\n".join(line.rstrip() for line in lines)
    assert "This shift (since 10:06): alarms 42" in shown, shown
    assert "Acknowledge ≤ 10s         Dispatch ≤ 60s" in shown
    rows = [line.split() for line in lines]
    assert ["All", "42", "4.0s", "9.0s", "31s", "92%", "35s", "75s", "190s", "80%"] in rows
    assert ["P1", "12", "3.0s", "14s", "31s", "83%", "41s", "58s", "65s", "91%"] in rows
    assert ["P2", "30", "5.0s", "8.0s", "17s", "93%", "-", "-", "-", "-"] in rows
    assert ["All", "17", "5.0s", "12s", "27s", "87%", "-", "-", "-", "-"] in rows
    assert "Last hour (since 14:06): alarms 17" in shown


# --- the supervisor's commands -------------------------------------------------------------


async def test_reassign_from_the_palette_sends_the_selected_incident_and_the_operator() -> None:
    app, sent = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        selected = app.queue.selected_id
        assert selected is not None
        await pilot.press("ctrl+p", *"Reassign")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ReassignScreen)
        await pilot.press(*"op 2", "enter")  # not an id: said in the dialog, nothing sent
        await pilot.pause()
        assert isinstance(app.screen, ReassignScreen) and sent.commands == []
        await pilot.press("ctrl+u", *"op2", "enter")
        await pilot.pause()
    assert [(c.action, c.incident_id, c.text, c.operator) for c in sent.commands] == [
        (Action.REASSIGN, selected, "op2", "sup1")
    ]


async def test_handover_note_is_sent_without_an_incident() -> None:
    app, sent = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        app.action_handover()
        await pilot.pause()
        assert isinstance(app.screen, HandoverScreen)
        await pilot.press(*"camera 4 down", "enter")
        await pilot.pause()
    assert [(c.action, c.incident_id, c.text) for c in sent.commands] == [
        (Action.HANDOVER, None, "camera 4 down")
    ]


@pytest.mark.parametrize("role", ["operator", "observer"])
async def test_only_the_supervisor_is_offered_the_supervisors_commands(role: str) -> None:
    app, _sent = make_app(role=role)
    async with app.run_test(size=(80, 24)):
        actions = {action for _title, _help, action in palette_entries(app)}
        assert not actions & {"reassign", "handover"}
        assert app.action_allowed("handover") is False


async def test_supervisor_is_offered_both_on_the_queue() -> None:
    app, _sent = make_app()
    async with app.run_test(size=(80, 24)):
        actions = {action for _title, _help, action in palette_entries(app)}
        assert {"reassign", "handover"} <= actions


def test_report_fixture_round_trips_on_the_wire() -> None:
    assert codec.decode(codec.encode(report()), ShiftReport) == report()


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
async def test_every_word_on_the_pane_went_through_the_catalog(size: tuple[int, int]) -> None:
    """The pseudo-locale check of test_i18n_pseudo.py, on pane 5 (the report's own texts
    are wire data: ids, the partition, the note)."""
    wire = {"seoul", "sup1", "op1", "op2", "I-000003", "I-000007",
            *"Gangnam camera 4 is down until 09:00".split()}  # fmt: skip
    app, _sent = make_app()
    i18n.set_pseudo(True)
    try:
        async with app.run_test(size=size) as pilot:
            await pilot.press("5")
            await pilot.pause()
            board = rows_by_widget(app)["ShiftBoard#pane-supervisor"]
    finally:
        i18n.set_pseudo(False)
    found = [(y, word) for y, word in unwrapped_words(board) if word not in wire]
    assert board and not found
