"""Every string the console shows, in the seat's language (English or Korean).

The catalogs are standard gettext ``.po`` files under ``widgets/locale/<lang>/LC_MESSAGES``
(one per area: ``widgets.po``, ``tui.po``), read with Babel at first use and merged;
English is the source language, so ``en`` needs no catalog. Widgets and screens call
:func:`_` (``pgettext`` where one English word has two Korean ones) at render time, never
at import time, so :func:`set_language` (the palette's switch) takes effect on the next
frame. The language is one per process: a console is one seat.

:func:`set_pseudo` is for tests only: every string that went through the catalog shows
as ``⟦English⟧``, so a test can find on screen the words that never did.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Final

LANGUAGES: Final = ("en", "ko")
LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"

_active = "en"
_pseudo = False
PSEUDO_OPEN: Final = "⟦"
PSEUDO_CLOSE: Final = "⟧"


def set_language(language: str) -> None:
    """Show every string in ``language`` from now on (ValueError if there is no catalog)."""
    global _active
    if language not in LANGUAGES:
        raise ValueError(f"no language {language!r} (one of {', '.join(LANGUAGES)})")
    _active = language


def language() -> str:
    return _active


def set_pseudo(on: bool) -> None:
    """Tests only: mark every translated string as ``⟦English⟧`` (not a user's language)."""
    global _pseudo
    _pseudo = on


def pseudo() -> bool:
    return _pseudo


def _marked(message: str) -> str:
    return f"{PSEUDO_OPEN}{message}{PSEUDO_CLOSE}"


def _(message: str) -> str:
    """``message`` (English, the catalog's id) in the active language."""
    if _pseudo:
        return _marked(message)
    if _active == "en":
        return message
    return _catalog(_active).get((None, message)) or message


def pgettext(context: str, message: str) -> str:
    """``message`` in the active language, told apart by ``context`` (e.g. "status")."""
    if _pseudo:
        return _marked(message)
    if _active == "en":
        return message
    return _catalog(_active).get((context, message)) or message


def N_(message: str) -> str:
    """Marks a literal for the extractor; it is translated later, by ``_(word)``."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form for ``n`` (Korean has one form; English two)."""
    if _pseudo:
        return _marked(singular if n == 1 else plural)
    if _active == "en":
        return singular if n == 1 else plural
    return _catalog(_active).get((None, singular)) or (singular if n == 1 else plural)


@functools.cache
def _catalog(language: str) -> dict[tuple[str | None, str], str]:
    """(context, English) -> translation, of every .po file of ``language``."""
    from babel.messages.pofile import read_po  # only a console in another language pays

    found: dict[tuple[str | None, str], str] = {}
    for path in sorted((LOCALE_DIR / language / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as file:
            catalog = read_po(file, locale=language)
        for message in catalog:
            if not message.id or not message.string:
                continue
            # A plural entry holds its forms in a sequence; Korean has one.
            msgid = message.id if isinstance(message.id, str) else message.id[0]
            text = message.string if isinstance(message.string, str) else message.string[0]
            if text:
                found[(message.context, msgid)] = text
    return found
