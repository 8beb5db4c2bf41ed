"""Key bindings in the seat's language: what the footer and the help (`?`) show.

Textual reads ``BINDINGS`` once, when a class is defined, into each node's
``_bindings`` (a copy per node, made at its construction), and the footer and the help
read the descriptions and tooltips from there. So the classes keep English, the
catalog's ids, marked with :func:`N_` for extraction, and :func:`translate_bindings`
gives a node its own copy in the active language, built from the class's English every
time so a switch back and forth never translates a translation. The keymap
(``[console] keys``) is applied by Textual to a copy at every lookup, so it survives.

Textual is pinned (pyproject.toml): ``_bindings`` and ``_merged_bindings`` are private.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from textual.binding import Binding, BindingsMap

from widgets.i18n import _

if TYPE_CHECKING:
    from textual.app import App
    from textual.dom import DOMNode


def N_(message: str) -> str:  # the name gettext's extractors (Babel, xgettext) know
    """Mark ``message`` for the catalog; it is translated where it is shown, by ``_``."""
    return message


def _translated(binding: Binding) -> Binding:
    if not binding.description and not binding.tooltip:
        return binding
    return dataclasses.replace(
        binding,
        description=_(binding.description) if binding.description else "",
        tooltip=_(binding.tooltip) if binding.tooltip else "",
    )


def translate_bindings(node: DOMNode) -> None:
    """Give ``node`` its class's bindings with descriptions in the active language.

    Built from the class's bindings: one added at run time (``App.bind``, which the
    console does not use) would be dropped."""
    source = type(node)._merged_bindings
    if source is None:
        return
    node._bindings = BindingsMap.from_keys(
        {
            key: [_translated(b) for b in bindings]
            for key, bindings in source.key_to_bindings.items()
        }
    )


def translate_tree(app: App[Any]) -> None:
    """Translate the bindings of the app and of every node of every screen, then let the
    footers recompose from them."""
    translate_bindings(app)
    for screen in app.screen_stack:
        for node in screen.walk_children(with_self=True):
            translate_bindings(node)
        screen.refresh_bindings()
