"""The seat's language: chosen at start, switched from the palette.

At start `ansim console --language` wins over ``[console] language`` (an `ansim ssh` key's
``language=`` arrives as that option). The palette offers one command per language; its
titles are in both scripts on purpose, so an operator who cannot read the language on
screen still finds the way back.
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import TYPE_CHECKING, Final, Protocol, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from widgets import i18n

if TYPE_CHECKING:
    from console.config import Config

# Each language by its own name, and in the other script, for the palette.
TITLES: Final = {
    "en": "Language / 언어: English (영어)",
    "ko": "Language / 언어: 한국어 (Korean)",
}
HELPS: Final = {
    "en": "show the console in English",
    "ko": "콘솔을 한국어로 보기",
}


class Relabelled(Protocol):
    """The app redraws every label in the active language (AnsimApp)."""

    def apply_language(self) -> None: ...


def choose_language(cfg: Config, args: argparse.Namespace) -> str:
    """``--language`` if given (the all-in-one launcher has none), else ``[console] language``."""
    return getattr(args, "language", None) or cfg.console.language


def apply(lang: str) -> None:
    """Make ``lang`` the language of every string from now on (before the app is built)."""
    i18n.set_language(lang)


def switch_language(app: object, lang: str) -> None:
    """The palette's switch: the catalog first, then the app redraws in it."""
    i18n.set_language(lang)
    cast(Relabelled, app).apply_language()


class LanguageCommands(Provider):
    """`Language / 언어: …` in the palette, one per language other than the active one."""

    def _offered(self) -> list[str]:
        return [lang for lang in i18n.LANGUAGES if lang != i18n.language()]

    async def discover(self) -> Hits:
        for lang in self._offered():
            yield DiscoveryHit(TITLES[lang], partial(switch_language, self.app, lang),
                               help=HELPS[lang])  # fmt: skip

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for lang in self._offered():
            title = TITLES[lang]
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(switch_language, self.app, lang),
                          text=title, help=HELPS[lang])  # fmt: skip
