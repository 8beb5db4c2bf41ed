"""`ansim console`: the operator's Textual app.

The app composes the widgets, owns the keyboard and turns keys into
``Command``s. It never decides anything: the core does, and its answer comes
back as state (and, when refused, as a Reply shown as a notification).

Data flow: the link worker decodes into the StateStore as messages arrive; a
timer at [console] fps drains what changed and repaints only that; a second
timer ticks the ages once a second. Tests build the app with a ready store, a
frozen ``clock`` and a ``send_command`` that records, and no broker.
"""

from __future__ import annotations

import argparse
import gc
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import ContentSwitcher, Footer, Input

from console.config import Config
from console.tui.actions import CommandActions, SendCommand
from console.tui.colors import native_ansi
from console.tui.commands import AnsimCommands
from console.tui.messages import LinkStateChanged, ReplyReceived
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.frames import ConsoleScreen
from console.tui.screens.help import HelpScreen
from console.tui.state_store import Filter, StateStore
from protocols.schemas import Command, IncidentState, Role
from widgets.alert_queue import AlertQueue
from widgets.camera_grid import CameraGrid
from widgets.format import plain
from widgets.incident_detail import IncidentDetail
from widgets.mini_map import MapPoint, MiniMap
from widgets.responder_board import ResponderBoard
from widgets.status_bar import StatusBar

# Actions that change the record: hidden for an observer, dimmed without a selection.
CHANGING: frozenset[str] = frozenset(
    {"ack", "dispatch", "resolve", "false_alarm", "escalate", "note", "claim", "release",
     "cancel_escalation", "on_scene"}
)  # fmt: skip
PANES: dict[str, str] = {
    "queue": "pane-queue",
    "cameras": "pane-cameras",
    "responders": "pane-responders",
}


class AnsimApp(CommandActions, App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "Ansim"
    COMMANDS: ClassVar[set[Any]] = {AnsimCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012 (Textual declares it without ClassVar)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", tooltip="Keys that apply here", id="help"),
        Binding(
            "colon",
            "command_palette",
            "Commands",
            tooltip="Command palette: every action by name",
            show=False,
            id="palette",
        ),
        Binding(
            "slash",
            "filter",
            "Filter",
            tooltip="Filter the queue: p1..p4, new/ack/disp, district, text",
            id="filter",
        ),
        Binding(
            "escape",
            "back_out",
            "Back",
            tooltip="Close the detail, clear the filter",
            show=False,
            id="back",
        ),
        Binding("1", "pane('queue')", "Queue pane", show=False, id="pane.queue"),
        Binding("2", "pane('cameras')", "Camera pane", show=False, id="pane.cameras"),
        Binding("3", "pane('responders')", "Responder pane", show=False, id="pane.responders"),
        Binding(
            "enter",
            "details",
            "Details",
            tooltip="Everything about the selected incident",
            show=False,
            id="details",
        ),
        Binding("a", "ack", "Ack", tooltip="Acknowledge the selected incident", id="ack"),
        Binding(
            "d",
            "dispatch",
            "Dispatch",
            tooltip="Dispatch a unit (nearest free one preselected)",
            id="dispatch",
        ),
        Binding("r", "resolve", "Resolve", tooltip="Resolve with a disposition", id="resolve"),
        Binding("f", "false_alarm", "False", tooltip="Close as a false alarm", id="false_alarm"),
        Binding("e", "escalate", "Escalate", tooltip="Escalate to the supervisor", id="escalate"),
        Binding("n", "note", "Note", tooltip="Add a note to the record", id="note"),
        Binding(
            "c", "claim", "Claim", tooltip="Take ownership of the incident", show=False, id="claim"
        ),
        Binding("q", "quit_confirm", "Quit", tooltip="Quit (asks first)", id="quit"),
        # Textual's ctrl+q quits at once; in a control room it asks like `q` does.
        Binding(
            "ctrl+q",
            "quit_confirm",
            "Quit",
            tooltip="Quit (asks first)",
            show=False,
            priority=True,
            id="quit.ctrl",
        ),
    ]

    def __init__(
        self,
        cfg: Config | None = None,
        *,
        store: StateStore | None = None,
        operator: str | None = None,
        role: Role | str | None = None,
        send_command: SendCommand | None = None,
        connect: bool = False,
        connected: bool | None = None,
        clock: Callable[[], float] = time.time,
        keymap: Mapping[str, str] | None = None,
        child_news: Callable[[], list[str]] | None = None,
        ansi_color: bool | None = None,
    ) -> None:
        super().__init__(ansi_color=ansi_color)
        self._child_news = child_news  # the all-in-one launcher: children that died
        self._child_alarms: list[str] = []
        self.cfg = cfg or Config()
        self.store = store or StateStore()
        self.operator = operator or self.cfg.operator.id
        self.role = Role(role or self.cfg.operator.role)
        self.send_command = send_command
        self.clock = clock
        self._connect = connect
        self.connected = (
            connected if connected is not None else (send_command is not None and not connect)
        )
        self._keymap = dict(keymap or {})
        self._session = secrets.token_hex(3)
        self._seq = 0
        self._sent: dict[str, Command] = {}
        self._seen: set[str] = set()
        self._pane = "queue"
        self._dirty: set[str] = set()  # panes with changes not yet drawn (they were hidden)
        self.selected_id: str | None = None
        self._can_change: bool | None = None  # what the footer last showed: a selection to act on
        self._gc_frozen = False

    # --- layout --------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # Kept as attributes: a timer or message may arrive while a dialog is the
        # active screen, where query_one() would not find them.
        self.status_bar = StatusBar(self.operator, self.role.value, id="status")
        self.queue = AlertQueue(self.store.view, id="queue")
        self.detail = IncidentDetail(id="detail")
        self.mini_map = MiniMap(id="map")
        self.grid = CameraGrid(id="pane-cameras")
        self.board = ResponderBoard(id="pane-responders")
        self.panes = ContentSwitcher(initial="pane-queue", id="panes")
        self.queue_pane = Vertical(id="pane-queue")
        self.filter_box = Input(
            placeholder="filter: p1 new gangnam scream …  (esc clears)", id="filter"
        )
        yield self.status_bar
        with self.panes:
            with self.queue_pane:
                yield self.queue
                with Vertical(id="side"):
                    yield self.detail
                    yield self.mini_map
            yield self.grid
            yield self.board
        yield self.filter_box
        yield Footer(compact=True)

    def on_mount(self) -> None:
        if self._keymap:
            self.set_keymap(self._keymap)
        fps = float(self.cfg.console.fps)
        self.set_interval(1 / fps, self.drain)
        self.set_interval(1.0, self.tick)
        self.status_bar.update_state(
            link="connected" if self.connected else ("connecting" if self._connect else "offline"),
            link_ok=self.connected,
        )
        self.store.mark_all_changed()  # draw what the store already holds
        self.drain()
        self.tick()
        self.queue.focus()
        if self._connect:
            self.start_link()

    @work(exclusive=True, group="mqtt")
    async def start_link(self) -> None:
        from console.tui.link import Link  # the network stack only when it is used

        link = Link(self.cfg, self.operator, self.role, self.store, self.post_message, self.clock)
        self.send_command = link.send
        await link.run()

    def get_default_screen(self) -> ConsoleScreen:
        return ConsoleScreen(id="_default")  # paints a keypress in the next frame, not two later

    # --- drawing ---------------------------------------------------------------------

    def drain(self) -> None:
        """Apply what changed since the last frame; cheap when nothing did."""
        if not self._gc_frozen and self.connected and not self.store.resyncing:
            self._freeze_gc()
        changes = self.store.drain()
        if not changes:
            return
        queue = self.queue
        with self.batch_update():
            if changes.incidents or changes.order:
                queue.update_rows(changes.incidents, changes.order)
                self._ring_for_new_p1(changes.incidents)
                if self.selected_id in changes.incidents or self.selected_id != queue.selected_id:
                    self._show_selected()
            if changes.cameras:
                self._dirty.add("cameras")
            if changes.responders:
                self._dirty.add("responders")
            if changes.summary or changes.presence:
                others = [p.operator for p in self.store.presence.values()
                          if p.online and p.operator != self.operator]  # fmt: skip
                self.status_bar.update_state(summary=self.store.summary, others=others)
            self._draw_pane()

    def _draw_pane(self) -> None:
        """Hidden panes are redrawn when shown, not at every frame of a storm."""
        if self._pane == "cameras" and "cameras" in self._dirty:
            self.grid.set_cameras(self.store.cameras)
        elif self._pane == "responders" and "responders" in self._dirty:
            self.board.set_responders(self.store.responders)
        else:
            return
        self._dirty.discard(self._pane)

    def _freeze_gc(self) -> None:
        """Take what start-up built out of the cyclic GC's reach, once the picture is in.

        A full collection walks every tracked object: the modules, the widgets and the
        open incidents add up to tens of milliseconds of a stalled loop, which is a
        keypress answered late. Frozen objects are still freed by reference counting
        (an incident replaced by its next state); only cycles among them would wait
        for ``gc.unfreeze()``, which runs when the app exits."""
        self._gc_frozen = True
        gc.freeze()

    def on_unmount(self) -> None:
        if self._gc_frozen:
            gc.unfreeze()  # a test run builds many apps: let the next collection have them

    def tick(self) -> None:
        now = self.clock()
        self._report_dead_children()
        self.queue.tick(now)
        self.status_bar.update_state(now=now)
        self.grid.tick(now)
        self.board.tick(now)
        detail = self.detail
        detail.show(detail.incident, now)

    def _report_dead_children(self) -> None:
        news = self._child_news() if self._child_news else []
        for line in news:
            self.notify(plain(line), title="A background process stopped", severity="error",
                        timeout=60, markup=False)  # fmt: skip
            self._child_alarms.append(line.split(";")[0])
        if news:
            self.status_bar.update_state(local_alarms=self._child_alarms)

    def _ring_for_new_p1(self, changed: set[str]) -> None:
        ring = False
        for incident_id in changed - self._seen:  # only the new ones: a storm is mostly updates
            inc = self.store.incidents.get(incident_id)
            if inc is not None:
                self._seen.add(incident_id)
                ring = ring or (inc.priority == 1 and not inc.status.is_closed)
        if ring and self.cfg.console.bell:
            self.bell()

    def _show_selected(self) -> None:
        self.selected_id = self.queue.selected_id
        inc = self.store.incidents.get(self.selected_id) if self.selected_id else None
        self.detail.show(inc, self.clock(), self.store.responders)
        self.mini_map.show(*self._map_points(inc))
        # The footer dims the commands when nothing can be acted on; refreshing the
        # bindings recomposes it (a dozen widgets mounted), so only when that flips.
        can_change = self.selected_incident() is not None
        if can_change != self._can_change:
            self._can_change = can_change
            self.refresh_bindings()

    def _map_points(
        self, inc: IncidentState | None
    ) -> tuple[tuple[float, float] | None, list[MapPoint]]:
        if inc is None:
            return None, []
        points: list[MapPoint] = []
        near = {c.camera_id for c in inc.cameras}
        district = self.store.camera_district(inc.district) if near else None
        if district is not None:
            points += [MapPoint("camera", c.lat, c.lon) for c in district.cameras if c.id in near]
        for rec in inc.recommended:
            unit = self.store.responders.get(rec.responder_id)
            if unit is not None:
                points.append(MapPoint("responder", unit.lat, unit.lon))
        for unit_id in inc.responders:
            unit = self.store.responders.get(unit_id)
            if unit is not None:
                points.append(MapPoint("busy", unit.lat, unit.lon))
        points += [MapPoint("shelter", s.lat, s.lon) for s in inc.shelters]
        return (inc.lat, inc.lon), points

    @on(AlertQueue.Selected)
    def _selected(self, event: AlertQueue.Selected) -> None:
        self._show_selected()

    @on(CameraGrid.CameraChosen)
    def _camera_chosen(self, event: CameraGrid.CameraChosen) -> None:
        self.apply_filter(event.camera_id)
        self.action_pane("queue")

    # --- link events ------------------------------------------------------------------

    @on(LinkStateChanged)
    def _link_state(self, event: LinkStateChanged) -> None:
        was, self.connected = self.connected, event.connected
        self.status_bar.update_state(link=event.label, link_ok=event.connected)
        self.panes.set_class(not event.connected, "-stale")
        if was and not event.connected:
            reason = plain(event.reason) or "disconnected"
            self.notify(f"Lost the broker: {reason}. The picture is frozen.",
                        severity="error", timeout=8, markup=False)  # fmt: skip
        elif event.connected and not was:
            self.notify("Connected: catching up.", timeout=3)

    @on(ReplyReceived)
    def _reply(self, event: ReplyReceived) -> None:
        self.reply_received(event.reply)

    # --- bindings -----------------------------------------------------------------------

    def action_allowed(self, action: str) -> bool | None:
        """Role and selection rules (False hides, None dims), ignoring which screen is on top."""
        if action in CHANGING:
            if self.role == Role.OBSERVER:
                return False
            if self._pane != "queue" or self.selected_incident() is None:
                return None
        if action == "details" and self._pane != "queue":
            return None
        return True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Under a dialog, the console's own keys must not fire (the dialog has its own).
        if isinstance(self.screen, ModalScreen) and any(
            b.action.split("(")[0] == action for b in self.BINDINGS if isinstance(b, Binding)
        ):
            return False
        return self.action_allowed(action)

    def selected_incident(self) -> IncidentState | None:
        # Ask the queue, not the last Selected message: keys typed fast (`j j a`)
        # are handled before that message has bubbled up to the app.
        selected = self.queue.selected_id
        inc = self.store.incidents.get(selected) if selected else None
        return None if inc is None or inc.status.is_closed else inc

    def action_help(self) -> None:
        # Group keys bound to the same action (j and down), app keys first: the
        # operator's commands matter more than the cursor keys of a widget.
        rows: dict[tuple[bool, str, str], tuple[list[str], bool]] = {}
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if not binding.description or binding.system:
                continue
            group = (
                active.node is not self,
                binding.action,
                binding.tooltip or binding.description,
            )
            keys, _ = rows.setdefault(group, ([], active.enabled))
            shown = self.get_key_display(binding.with_key(key))
            if shown not in keys:
                keys.append(shown)
        lines = [(" ".join(keys), group[2], enabled)
                 for group, (keys, enabled) in sorted(rows.items(), key=lambda r: r[0][0])]  # fmt: skip
        lines.append(("ctrl+p", "Command palette (also :)", True))
        self.push_screen(HelpScreen(lines, title=f"Keys — {self._pane} pane ({self.role.value})"))

    def action_pane(self, pane: str) -> None:
        self._pane = pane
        self.panes.current = PANES[pane]
        self._draw_pane()
        {"queue": self.queue, "cameras": self.grid, "responders": self.board}[pane].focus()
        self.refresh_bindings()

    def action_details(self) -> None:
        pane = self.queue_pane
        pane.add_class("-detail")
        self.detail.focus()

    def action_filter(self) -> None:
        box = self.filter_box
        box.display = True
        box.focus()

    def apply_filter(self, text: str) -> None:
        box = self.filter_box
        box.value = text
        self._set_filter(text)

    def action_set_filter(self, text: str) -> None:
        self.apply_filter(text)

    def action_clear_filter(self) -> None:
        self.apply_filter("")

    def _set_filter(self, text: str) -> None:
        self.store.set_filter(Filter.parse(text, self.store.districts()) if text else Filter())
        self.status_bar.update_state(filter_text=self.store.filter.describe())
        self.drain()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.queue.focus()

    def action_back_out(self) -> None:
        box = self.filter_box
        pane = self.queue_pane
        if box.has_focus or (self.store.filter.active and not pane.has_class("-detail")):
            box.display = False
            self.apply_filter("")
            self.queue.focus()
        elif pane.has_class("-detail"):
            pane.remove_class("-detail")
            self.queue.focus()

    def action_quit_confirm(self) -> None:
        def done(yes: bool | None) -> None:
            if yes:
                self.exit(0)

        self.push_screen(ConfirmScreen("Quit Ansim?", "Incidents stay with the core."), done)


def run(
    args: argparse.Namespace,
    cfg: Config,
    child_news: Callable[[], list[str]] | None = None,
) -> int:
    """`ansim console`: connect to the configured broker and run until the operator quits.

    ``child_news`` is the all-in-one launcher's report of children that died; the
    console shows each line, without knowing what a child is.
    """
    operator = getattr(args, "operator", None) or cfg.operator.id
    role = getattr(args, "role", None) or cfg.operator.role
    app = AnsimApp(cfg, operator=operator, role=role, connect=True, child_news=child_news,
                   ansi_color=native_ansi(cfg.console.colors))  # fmt: skip
    result = app.run()
    return int(result or 0)
