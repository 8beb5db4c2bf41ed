"""The seat's language: [console] language, `ansim console --language`, an `ansim ssh`
key's language=, and the palette's switch."""

from __future__ import annotations

import argparse
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.command import Hit

from console.cli import build_parser
from console.config import ConfigError, ConsoleConfig, load
from console.seats.ssh_server import seat_language
from console.tui import language
from console.tui.app import AnsimApp
from console.tui.language import LanguageCommands, choose_language
from tests.tui.ui_fixtures import Recorder, clock, make_store
from widgets import i18n


@pytest.fixture(autouse=True)
def language_put_back() -> Iterator[None]:
    before = i18n.language()
    try:
        yield
    finally:
        i18n.set_language(before)
        i18n.set_pseudo(False)


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_config_offers_exactly_the_languages_with_a_catalog() -> None:
    hint = typing.get_type_hints(ConsoleConfig)["language"]
    assert typing.get_args(hint) == i18n.LANGUAGES
    assert ConsoleConfig().language == "en"
    for lang in i18n.LANGUAGES[1:]:
        assert (i18n.LOCALE_DIR / lang / "LC_MESSAGES").is_dir()


def test_the_option_wins_over_the_config(tmp_path: Path) -> None:
    cfg = load(config(tmp_path, '[console]\nlanguage = "ko"\n'), environ={})
    parser = build_parser()
    assert choose_language(cfg, parser.parse_args(["console"])) == "ko"
    assert choose_language(cfg, parser.parse_args(["console", "--language", "en"])) == "en"
    # `ansim all` starts the console with its own arguments, which have no --language.
    assert choose_language(cfg, argparse.Namespace()) == "ko"
    assert choose_language(load(config(tmp_path, ""), environ={}), argparse.Namespace()) == "en"


def test_a_language_without_a_catalog_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match=r"\[console\] language"):
        load(config(tmp_path, '[console]\nlanguage = "fr"\n'), environ={})
    with pytest.raises(SystemExit):
        build_parser().parse_args(["console", "--language", "fr"])
    assert "invalid choice: 'fr'" in capsys.readouterr().err


def test_an_ssh_key_language_becomes_the_console_option() -> None:
    assert [seat_language(w) for w in ("ko", "ko-KR", "ko_KR", "en", "", "fr")] == [
        "ko", "ko", "ko", "en", None, None,
    ]  # fmt: skip


def test_pseudo_is_for_tests_not_a_language_a_seat_can_choose() -> None:
    with pytest.raises(ValueError, match="no language 'qps'"):
        i18n.set_language("qps")
    i18n.set_pseudo(True)
    assert i18n._("Units") == "⟦Units⟧"
    assert i18n.pgettext("role", "operator") == "⟦operator⟧"
    assert i18n.ngettext("{n} unit", "{n} units", 2) == "⟦{n} units⟧"
    i18n.set_pseudo(False)
    assert i18n._("Units") == "Units"


def test_the_palette_offers_the_language_switch() -> None:
    assert LanguageCommands in AnsimApp.COMMANDS, (
        "register console.tui.language.LanguageCommands in AnsimApp.COMMANDS"
    )


async def test_the_palette_switch_redraws_the_console_in_korean_and_back() -> None:
    language.apply("en")
    app = AnsimApp(store=make_store(), operator="op1", send_command=Recorder(), clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        assert "operator" in str(app.status_bar.render())
        # The provider as the palette runs it (registered or not yet).
        provider = LanguageCommands(app.screen)
        hits = [hit async for hit in provider.search("korean")]
        assert [str(hit.text) for hit in hits] == [language.TITLES["ko"]]
        assert [hit async for hit in provider.search("english")] == []  # already English
        assert isinstance(hits[0], Hit)
        hits[0].command()
        await pilot.pause()
        assert i18n.language() == "ko"
        korean_role = i18n.pgettext("role", "operator")
        assert korean_role != "operator", "the catalog has no Korean for the role"
        assert korean_role in str(app.status_bar.render())

        [back] = [hit async for hit in provider.discover()]
        assert back.text == language.TITLES["en"]
        back.command()
        await pilot.pause()
        assert i18n.language() == "en"
        assert "operator" in str(app.status_bar.render())
