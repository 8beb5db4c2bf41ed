"""Text from the wire, made safe to keep and to show: no control or format characters.

A hostile source can put terminal escapes (``ESC ] 0;… BEL``, ``ESC [2J``), C1
controls, bidirectional overrides or NULs in any text field; the core removes them at
ingest so that nothing downstream (journal exports, consoles, logs, EIDO) carries
them. Separators (tabs, newlines, the ideographic space) become one plain space, so
words stay apart in a single-line field.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Any, TypeVar

import msgspec
import msgspec.inspect

_SEPARATOR_CATEGORIES = frozenset({"Zs", "Zl", "Zp"})
# Controls that separate words or lines (tab, the line breaks, the information
# separators, NEL): a space, not nothing, so the words around them stay apart.
_BLANK_CONTROLS = frozenset("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85")
_S = TypeVar("_S", bound=msgspec.Struct)


def printable(text: str) -> str:
    """``text`` with control and format characters removed and separators as spaces."""
    if text.isprintable():  # the common case, in C
        return text
    kept = []
    for char in text:
        if char.isprintable():
            kept.append(char)
            continue
        category = unicodedata.category(char)
        if char in _BLANK_CONTROLS or category in _SEPARATOR_CATEGORIES:
            kept.append(" ")
        elif category == "Cs":
            kept.append("\ufffd")  # a lone surrogate: cannot be encoded, so shown as such
        # Cc (C0, DEL, C1), Cf (bidi overrides, zero-width), Co, Cn: dropped.
    return "".join(kept)


def printable_struct(message: _S) -> _S:
    """``message`` with every text in it made printable; the same object when all already is.

    On the core's per-message path: only the fields whose type can hold text are looked
    at (worked out once per type), so a clean message costs a few ``isprintable`` calls.
    """
    fields = _text_fields(type(message))
    changes: dict[str, Any] = {}
    for name in fields:
        value = getattr(message, name)
        if value is None or (type(value) is str and value.isprintable()):
            continue
        cleaned = _clean(value)
        if cleaned is not value:
            changes[name] = cleaned
    return msgspec.structs.replace(message, **changes) if changes else message


@functools.cache
def _text_fields(kind: type[msgspec.Struct]) -> tuple[str, ...]:
    """The fields of ``kind`` that may hold a str, a nested struct or a tuple of them."""
    info = msgspec.inspect.type_info(kind)
    assert isinstance(info, msgspec.inspect.StructType)
    return tuple(f.name for f in info.fields if _may_hold_text(f.type))


def _may_hold_text(kind: msgspec.inspect.Type) -> bool:
    if isinstance(kind, msgspec.inspect.UnionType):
        return any(_may_hold_text(member) for member in kind.types)
    if isinstance(kind, msgspec.inspect.Metadata):
        return _may_hold_text(kind.type)
    return isinstance(
        kind,
        msgspec.inspect.StrType
        | msgspec.inspect.StructType
        | msgspec.inspect.VarTupleType
        | msgspec.inspect.TupleType
        | msgspec.inspect.ListType
        | msgspec.inspect.AnyType,
    )


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        if value.isprintable():
            return value
        cleaned = printable(value)
        # An enum member's value is fixed by its type; only free text is rewritten.
        return value if cleaned == value else cleaned
    if isinstance(value, msgspec.Struct):
        return printable_struct(value)
    if isinstance(value, tuple):
        items = tuple(_clean(item) for item in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value
