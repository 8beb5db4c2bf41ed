"""`?`: the keys that apply right now, read from the active bindings (so remaps show)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Label, Static

from console.tui.keys_text import N_
from console.tui.screens.frames import ConsoleModal
from widgets.i18n import _

if TYPE_CHECKING:
    from textual.app import App
    from textual.binding import ActiveBinding


def help_rows(app: App[Any], active: Mapping[str, ActiveBinding]) -> list[tuple[str, str, bool]]:
    """(keys, description, enabled) of the active bindings, app keys first.

    Keys bound to one action (j and down, `:` and ctrl+p) share a row: the operator's
    commands matter more than the cursor keys of a widget, so those come after."""
    rows: dict[tuple[bool, str, str], tuple[list[str], bool]] = {}
    for key, bound in active.items():
        binding = bound.binding
        if not binding.description or binding.system:
            continue
        group = (bound.node is not app, binding.action, binding.tooltip or binding.description)
        keys, _enabled = rows.setdefault(group, ([], bound.enabled))
        shown = app.get_key_display(binding.with_key(key))
        if shown not in keys:
            keys.append(shown)
    return [(" ".join(keys), group[2], enabled)
            for group, (keys, enabled) in sorted(rows.items(), key=lambda r: r[0][0])]  # fmt: skip


class HelpScreen(ConsoleModal[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", N_("Close"), id="help.close"),
        Binding("j,down", "scroll(1)", N_("Down"), show=False, id="help.down"),
        Binding("k,up", "scroll(-1)", N_("Up"), show=False, id="help.up"),
    ]

    def __init__(self, rows: Sequence[tuple[str, str, bool]], title: str = "") -> None:
        """``rows``: (key, description, enabled now); disabled ones are shown dim."""
        super().__init__()
        self.rows, self.title_text = rows, title or _("Keys")

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, description, enabled in self.rows:
            # Text, not str: a Table parses str cells as markup, and a key shown as `[`
            # or a site's own description must print as written.
            table.add_row(Text(key), Text(description), style=None if enabled else "dim")
        with VerticalScroll(classes="dialog help"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield Static(table)
            yield Label(_("[b]esc[/b] or [b]?[/b] close"), classes="dialog-keys")

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll(self, step: int) -> None:
        self.query_one(VerticalScroll).scroll_relative(y=step, animate=False)
