"""`?`: the keys that apply right now, read from the active bindings (so remaps show)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Label, Static

from console.tui.screens.frames import ConsoleModal


class HelpScreen(ConsoleModal[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close"),
        Binding("j,down", "scroll(1)", "Down", show=False, id="help.down"),
        Binding("k,up", "scroll(-1)", "Up", show=False, id="help.up"),
    ]

    def __init__(self, rows: Sequence[tuple[str, str, bool]], title: str = "Keys") -> None:
        """``rows``: (key, description, enabled now); disabled ones are shown dim."""
        super().__init__()
        self.rows, self.title_text = rows, title

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
            yield Label("[b]esc[/b] or [b]?[/b] close", classes="dialog-keys")

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll(self, step: int) -> None:
        self.query_one(VerticalScroll).scroll_relative(y=step, animate=False)
