"""Every message the console's code asks for has its Korean, and the catalogs hold no
message the code no longer asks for.

The messages are found as `pybabel extract` finds them (Babel's extractor, the keywords
``_``, ``N_``, ``pgettext:1c,2``, ``ngettext:1,2``) over widgets/ and console/tui/. A
table of words is marked ``N_("…")`` and shown through ``_(word)``. A ``pgettext("status",
label)`` of a variable cannot be extracted: its context is then "dynamic", its catalog
entries are not called stale, and the rendered-screen tests (test_i18n_pseudo.py) watch
those words.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from widgets import i18n

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "widgets", ROOT / "console" / "tui")
# N_ marks a literal that is translated later, through _() of a variable (a table of them).
KEYWORDS = {"_": None, "N_": None, "pgettext": ((1, "c"), 2), "ngettext": (1, 2)}
Key = tuple[str | None, str]  # (context, English)


def _skip_module(path: str) -> bool:
    return Path(path).name != "i18n.py"  # the functions themselves, not their callers


def extracted() -> dict[Key, list[str]]:
    """(context, English) -> where the code asks for it ("widgets/x.py:12")."""
    found: dict[Key, list[str]] = {}
    for folder in SOURCES:
        for filename, lineno, message, _comments, context in extract_from_dir(
            folder,
            method_map=[("**.py", "python")],
            keywords=KEYWORDS,
            directory_filter=lambda path: "__pycache__" not in path,
        ):
            if not _skip_module(filename):
                continue
            msgid = message if isinstance(message, str) else message[0]
            where = f"{folder.relative_to(ROOT)}/{filename}:{lineno}"
            found.setdefault((context, msgid), []).append(where)
    return found


def catalog_entries() -> dict[Key, tuple[str, Message]]:
    """(context, English) -> (the .po file's name, its entry), over every Korean catalog."""
    entries: dict[Key, tuple[str, Message]] = {}
    for path in sorted((i18n.LOCALE_DIR / "ko" / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as file:
            catalog = read_po(file, locale="ko")
        for message in catalog:
            if not message.id:
                continue  # the header
            msgid = message.id if isinstance(message.id, str) else message.id[0]
            entries[(message.context, msgid)] = (path.name, message)
    return entries


def _python_files() -> Iterator[Path]:
    for folder in SOURCES:
        for path in sorted(folder.rglob("*.py")):
            if path.name != "i18n.py":
                yield path


def _callee(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def _literal(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def dynamic_contexts() -> set[str]:
    """The contexts of ``pgettext("ctx", <not a literal>)``: words from a table. A context
    passed on by a helper (``pgettext(context, word)``) counts when the code names it."""
    contexts: set[str] = set()
    literals: set[str] = set()
    passed_on = False
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                literals.add(node.value)
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            first, second = node.args[0], node.args[1]
            if _callee(node) != "pgettext" or _literal(second):
                continue
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                contexts.add(first.value)
            else:
                passed_on = True
    return contexts | literals if passed_on else contexts


def _show(key: Key) -> str:
    context, msgid = key
    return f"{context}|{msgid!r}" if context else repr(msgid)


def test_every_message_the_code_asks_for_has_its_korean() -> None:
    asked = extracted()
    assert asked, "the extractor found no message at all: is the keyword list right?"
    entries = catalog_entries()
    missing = []
    for key, places in sorted(asked.items(), key=lambda kv: kv[1][0]):
        entry = entries.get(key)
        string = entry[1].string if entry else ""
        strings = (string,) if isinstance(string, str) else tuple(string)
        if not strings or not all(strings):
            missing.append(f"  {places[0]}: {_show(key)}")
    assert not missing, (
        f"{len(missing)} console messages have no Korean in widgets/locale/ko/LC_MESSAGES/*.po"
        " (add the msgid with its msgctxt and a msgstr):\n" + "\n".join(missing)
    )


def test_no_catalog_entry_is_stale() -> None:
    asked = extracted()
    dynamic = dynamic_contexts()
    stale = [
        f"  {po}: {_show(key)}"
        for key, (po, _message) in sorted(catalog_entries().items(), key=lambda kv: kv[1][0])
        if key not in asked and key[0] not in dynamic
    ]
    assert not stale, (
        f"{len(stale)} catalog entries are asked for by no code (remove them, or the code lost "
        "its _(); Babel does not see an N_() inside another _() call: give it a name):\n"
        + "\n".join(stale)
    )


def test_no_catalog_entry_is_there_twice_with_two_translations() -> None:
    seen: dict[Key, tuple[str, str]] = {}
    clashes = []
    for path in sorted((i18n.LOCALE_DIR / "ko" / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as file:
            for message in read_po(file, locale="ko"):
                if not message.id:
                    continue
                msgid = message.id if isinstance(message.id, str) else message.id[0]
                key, text = (message.context, msgid), str(message.string)
                if key in seen and seen[key][1] != text:
                    clashes.append(f"  {_show(key)}: {seen[key][0]} and {path.name} differ")
                seen.setdefault(key, (path.name, text))
    assert not clashes, "the merged catalog would pick one at random:\n" + "\n".join(clashes)
