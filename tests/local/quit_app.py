"""A tiny console for the quit tests: a Link, a StateStore and `q` bound to ``ask_quit``.

It holds exactly what ``console.tui.quitting.ask_quit`` reads from an app (store,
operator, clock, and optionally local_city and link), so the quit flow is tested
apart from the full console.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Label

import console.tui
from console.config import Config
from console.tui.link import Link
from console.tui.messages import LinkStateChanged
from console.tui.quitting import LocalCity, ask_quit
from console.tui.state_store import StateStore
from protocols.schemas import PRESENCE_HEARTBEAT_S, Role

APP_CSS = Path(console.tui.__file__).parent / "app.tcss"  # the console's dialog styles


class QuitApp(App[int]):
    CSS_PATH = APP_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit_confirm", "Quit")]

    def __init__(
        self,
        cfg: Config | None = None,
        operator: str = "op1",
        *,
        store: StateStore | None = None,
        local_city: LocalCity | None = None,
        clock: Callable[[], float] = time.time,
        heartbeat_s: float = PRESENCE_HEARTBEAT_S,
    ) -> None:
        super().__init__()
        self.cfg, self.operator, self.clock = cfg, operator, clock
        self.store = store or StateStore()
        self.local_city = local_city
        self.heartbeat_s = heartbeat_s
        self.link: Link | None = None
        self.connected = False

    def compose(self) -> ComposeResult:
        yield Label(f"seat of {self.operator}")

    def on_mount(self) -> None:
        if self.cfg is not None:
            self.link = Link(self.cfg, self.operator, Role.OPERATOR, self.store,
                             self.post_message, self.clock, self.heartbeat_s)  # fmt: skip
            self.run_worker(self.link.run(), group="mqtt", exclusive=True)

    @on(LinkStateChanged)
    def _link_state(self, event: LinkStateChanged) -> None:
        self.connected = event.connected

    def action_quit_confirm(self) -> None:
        ask_quit(self)
