"""The console in Korean at 80×24: footer, help, dialogs, and Hangul typed as text."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from rich.cells import cell_len

from console.tui.app import AnsimApp
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.dispatch import DispatchScreen
from console.tui.screens.help import HelpScreen
from console.tui.screens.note import NoteScreen
from console.tui.screens.resolve import ResolveScreen
from protocols.schemas import Action
from tests.tui.ui_fixtures import Recorder, clock, make_store
from widgets import i18n
from widgets.alert_queue import AlertQueue

SIZE = (80, 24)


@pytest.fixture
def korean() -> Iterator[None]:
    i18n.set_language("ko")
    try:
        yield
    finally:
        i18n.set_language("en")  # the language is per process: every other test is English


def make_app() -> tuple[AnsimApp, Recorder]:
    recorder = Recorder()
    app = AnsimApp(store=make_store(), operator="op1", role="operator", send_command=recorder,
                   clock=clock, connected=True)  # fmt: skip
    return app, recorder


def screen_lines(app: AnsimApp) -> list[str]:
    """The screen as drawn, one string a row; every row is checked to fit 80 cells."""
    strips = app.screen._compositor.render_strips()
    assert all(strip.cell_length <= SIZE[0] for strip in strips)
    lines = [strip.text for strip in strips]
    assert all(cell_len(line) <= SIZE[0] for line in lines), [
        line for line in lines if cell_len(line) > SIZE[0]
    ]
    return lines


def footer_line(app: AnsimApp) -> str:
    return screen_lines(app)[-1]


@pytest.mark.usefixtures("korean")
async def test_footer_shows_korean_key_descriptions() -> None:
    app, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        footer = footer_line(app)
        for word in ("도움", "필터", "접수", "출동", "종결", "오인", "상향", "메모", "종료"):
            assert word in footer, footer
        assert "Dispatch" not in footer and "Quit" not in footer


@pytest.mark.usefixtures("korean")
async def test_help_is_korean() -> None:
    app, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = "\n".join(screen_lines(app))
        assert "키 — 사건 목록 화면 (" in text
        assert "선택한 사건 접수" in text and "상황관리자에게 긴급 상향" in text
        assert "닫기" in text
        assert "Acknowledge" not in text


@pytest.mark.usefixtures("korean")
async def test_dispatch_dialog_is_korean() -> None:
    app, sent = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(AlertQueue).select("I-000001")
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, DispatchScreen)
        text = "\n".join(screen_lines(app))
        assert "출동 지령: I-000001" in text
        assert "가용 단위 (빠른 순)" in text and "도착" in text
        assert "다른 단위" in text and "취소" in text
        assert "Free units" not in text and "ETA" not in text
        await pilot.press("enter")
        await pilot.pause()
        assert [c.action for c in sent.commands] == [Action.DISPATCH]


@pytest.mark.usefixtures("korean")
async def test_quit_dialog_is_korean() -> None:
    app, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        text = "\n".join(screen_lines(app))
        assert "종료할까요?" in text and "사건은 코어에 그대로 남습니다." in text
        assert "아니오" in text
        await pilot.press("n")  # back out: the app stays


@pytest.mark.usefixtures("korean")
async def test_resolve_shows_dispositions_in_korean_and_sends_the_code() -> None:
    app, sent = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ResolveScreen)
        text = "\n".join(screen_lines(app))
        assert "귀가 동행" in text and "escorted home" not in text
        await pilot.press("j", "enter")
        await pilot.pause()
        # The core records English codes: the wire is the same in every language.
        assert [(c.action, c.disposition) for c in sent.commands] == [
            (Action.RESOLVE, "escorted home")
        ]


@pytest.mark.usefixtures("korean")
async def test_hangul_typed_into_the_note_is_sent_as_typed() -> None:
    app, sent = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, NoteScreen)
        assert "메모: I-000003" in "\n".join(screen_lines(app))
        await pilot.press(*"신고자 안전 확인", "enter")  # each syllable a key, like an IME's commit
        await pilot.pause()
        assert [(c.action, c.text) for c in sent.commands] == [(Action.NOTE, "신고자 안전 확인")]


async def test_hangul_filter_finds_a_korean_place(korean: None) -> None:
    store = make_store()
    inc = store.incidents["I-000002"]
    store.apply(msgspec.structs.replace(inc, place="역삼로 12 여성안심지킴이집"))
    app = AnsimApp(store=store, operator="op1", send_command=Recorder(), clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        queue = app.query_one(AlertQueue)
        assert queue.row_count() > 1
        await pilot.press("slash")
        app.filter_box.insert_text_at_cursor("안심")  # an IME commits a whole word at once
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert [queue.rows[i].id for i in range(queue.row_count())] == ["I-000002"]
        screen_lines(app)
        await pilot.press("slash", "backspace", "backspace", *"지킴", "enter")
        await pilot.pause(0.2)
        assert queue.row_count() == 1 and queue.rows[0].id == "I-000002"


async def test_apply_language_switches_the_footer_and_back() -> None:
    app, _ = make_app()
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            english = footer_line(app)
            assert "Dispatch" in english
            i18n.set_language("ko")
            app.apply_language()
            await pilot.pause()
            assert "출동" in footer_line(app) and "Dispatch" not in footer_line(app)
            i18n.set_language("en")
            app.apply_language()
            await pilot.pause()
            assert footer_line(app) == english
    finally:
        i18n.set_language("en")


async def test_apply_language_before_the_app_runs_is_kept() -> None:
    """The start from config: set_language and apply_language before ``run``."""
    app, _ = make_app()
    try:
        i18n.set_language("ko")
        app.apply_language()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert "출동" in footer_line(app)
            assert "연결됨" in screen_lines(app)[0]
    finally:
        i18n.set_language("en")


async def test_an_empty_queue_of_a_scoped_seat_names_its_districts() -> None:
    from console.config import Config
    from console.tui.app import AnsimApp

    cfg = Config(scopes={"op1": ["Jongno-gu", "Jung-gu"]})
    app = AnsimApp(cfg, operator="op1", connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.queue.empty_text == "No open incident in Jongno-gu, Jung-gu."
