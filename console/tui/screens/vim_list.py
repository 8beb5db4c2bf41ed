"""An OptionList that also moves with `j`/`k`, like every other list in the console."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import OptionList

from console.tui.keys_text import N_


class VimOptionList(OptionList):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", N_("Down"), show=False, id="dialog.down"),
        Binding("k", "cursor_up", N_("Up"), show=False, id="dialog.up"),
    ]
