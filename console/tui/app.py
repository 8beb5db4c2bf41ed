"""`ansim console`: the operator's Textual app.

The app composes the widgets, owns the keyboard and turns keys into
``Command``s. It never decides anything: the core does, and its answer comes
back as state (and, when refused, as a Reply shown as a notification).

Data flow: the link worker decodes into the StateStore as messages arrive; a
timer at [console] fps drains what changed and repaints only that; a second
timer ticks the ages once a second. Tests build the app with a ready store, a
frozen ``clock`` and a ``send_command`` that records, and no broker.

The selection is an incident: the queue follows it through every re-sort and
only the operator moves it. A new P1 is announced in the status bar (and by the
bell, see ``bell.BellPolicy``) without taking the cursor; `space` jumps to it.
"""

from __future__ import annotations

import argparse
import gc
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, cast

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.command import CommandPalette
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import ContentSwitcher, Footer, Input

from console.config import Config
from console.tui import language
from console.tui.actions import SendCommand
from console.tui.bell import BellPolicy
from console.tui.bindings import APP_BINDINGS
from console.tui.colors import native_ansi
from console.tui.commands import AnsimCommands
from console.tui.keys_text import translate_bindings, translate_tree
from console.tui.language import LanguageCommands
from console.tui.merged import scoped_summary
from console.tui.messages import LinkStateChanged, ReplyReceived
from console.tui.panes import PaneSwitch
from console.tui.presence import others_online
from console.tui.quitting import LocalCity, ask_quit
from console.tui.scope import narrowed
from console.tui.screens.frames import ConsoleScreen
from console.tui.screens.help import HelpScreen, help_rows
from console.tui.selection import SelectionWatch
from console.tui.state_store import StateStore
from console.tui.supervising import SUPERVISING, SupervisorActions
from protocols.schemas import Command, IncidentState, Role
from widgets.alert_queue import AlertQueue
from widgets.camera_grid import CameraGrid
from widgets.closed_list import ClosedIncidentList
from widgets.format import plain
from widgets.i18n import _, pgettext
from widgets.incident_detail import IncidentDetail
from widgets.mini_map import MapPoint, MiniMap
from widgets.responder_board import ResponderBoard
from widgets.shift_board import ShiftBoard
from widgets.status_bar import StatusBar

# Actions that change the record: hidden for an observer, dimmed without a selection.
CHANGING: frozenset[str] = frozenset(
    {"ack", "dispatch", "resolve", "false_alarm", "escalate", "note", "claim", "release",
     "cancel_escalation", "on_scene", "reassign"}
)  # fmt: skip


class AnsimApp(SelectionWatch, PaneSwitch, SupervisorActions, App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "Ansim"
    COMMANDS: ClassVar[set[Any]] = {AnsimCommands, LanguageCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012 (Textual declares it without ClassVar)

    BINDINGS: ClassVar[list[BindingType]] = APP_BINDINGS

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
        local_city: LocalCity | None = None,
    ) -> None:
        super().__init__(ansi_color=ansi_color)
        self.local_city = local_city  # the all-in-one: what quitting may leave running
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
        self._about: dict[str, str] = {}
        self.bell_policy = BellPolicy(self.cfg.console)
        self._last_seen: dict[str, IncidentState] = {}  # open incidents as last drawn
        self._fresh_p1: list[str] = []  # new P1s announced and not yet seen to, newest last
        self._lost_while_typing: str | None = None
        self._shown_id: str | None = None  # the incident the detail pane shows
        self._pane = "queue"
        self._queue_query = ""
        self._dirty: set[str] = set()  # panes with changes not yet drawn (they were hidden)
        self.selected_id: str | None = None
        self._can_change: bool | None = None  # what the footer last showed: a selection to act on
        self._gc_frozen = False
        self._link_label = "offline"  # the link's state in English, shown translated
        self._mounted_ui = False  # on_mount ran: the widgets apply_language redraws exist

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
        self.closed_view = ClosedIncidentList(id="pane-closed")
        self.shift_board = ShiftBoard(id="pane-supervisor")
        self.panes = ContentSwitcher(initial="pane-queue", id="panes")
        self.queue_pane = Vertical(id="pane-queue")
        self.filter_box = Input(placeholder=self._filter_placeholder(), id="filter")
        yield self.status_bar
        with self.panes:
            with self.queue_pane:
                yield self.queue
                with Vertical(id="side"):
                    yield self.detail
                    yield self.mini_map
            yield self.grid
            yield self.board
            yield self.closed_view
            yield self.shift_board
        yield self.filter_box
        # The palette has its own keys (`:`, ctrl+p, in the help): at 80 columns the
        # footer has no room to dock it at the right, over the commands.
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        translate_tree(self)  # the classes' bindings are English: the footer is in the seat's
        self._mounted_ui = True
        if self._keymap:
            self.set_keymap(self._keymap)
        fps = float(self.cfg.console.fps)
        self.set_interval(1 / fps, self.drain)
        self.set_interval(1.0, self.tick)
        self._show_link(
            "connected" if self.connected else ("connecting" if self._connect else "offline"),
            self.connected,
        )
        # What the store already holds is the picture the console starts with, not news.
        self._last_seen = {i.id: i for i in self.store.incidents.values()
                           if not i.status.is_closed}  # fmt: skip
        self._describe_filter()  # a seat scoped to districts says so when its queue is empty
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
        self.link = link  # ask_quit says goodbye on it before the app exits
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
        queue = self.queue
        if not changes:
            self._end_start_up()
            return
        with self.batch_update():
            if changes.incidents or changes.order:
                queue.update_rows(changes.incidents, changes.order)
                self._watch(changes.incidents)
                self._end_start_up()
                if self.selected_id in changes.incidents or self.selected_id != queue.selected_id:
                    self._show_selected()
            if changes.cameras:
                self._dirty.add("cameras")
            if changes.responders:
                self._dirty.add("responders")
            if changes.closed:
                self._dirty.add("closed")
            if changes.shift:
                self._dirty.add("supervisor")
            scoped = self.cfg.scope_of(self.operator) is not None
            if changes.summary or changes.presence or (scoped and changes.incidents):
                others = others_online(self.store.presence, None, self.operator, self.clock())
                summary = self.store.summary
                if scoped:  # its districts' counts, not its partition's
                    summary = scoped_summary(summary, self.store.incidents.values())
                self.status_bar.update_state(summary=summary, others=others)
            self._draw_pane()
        # The picture may be complete on a frame that changed no incident (a summary, a
        # camera page, a presence): the start-up pin must end then too.
        self._end_start_up()

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
        # Presence expires (a seat that died without its last will): re-read every second.
        others = others_online(self.store.presence, None, self.operator, now)
        self.status_bar.update_state(now=now, others=others)
        self.grid.tick(now)
        self.board.tick(now)
        detail = self.detail
        detail.show(detail.incident, now)

    def _report_dead_children(self) -> None:
        news = self._child_news() if self._child_news else []
        for line in news:
            self.notify(plain(line), title=_("A background process stopped"), severity="error",
                        timeout=60, markup=False)  # fmt: skip
            self._child_alarms.append(line.split(";")[0])
        if news:
            self.status_bar.update_state(local_alarms=self._child_alarms)

    def _show_selected(self) -> None:
        self.selected_id = self.queue.selected_id
        inc = self.store.incidents.get(self.selected_id) if self.selected_id else None
        self.detail.show(inc, self.clock(), self.store.responders)
        if self.selected_id != self._shown_id:  # another incident: open it at its top
            self._shown_id = self.selected_id
            self.detail.scroll_home(animate=False)
            if self._fresh_p1:
                self._show_news()
        self.mini_map.show(*self._map_points(inc))
        self.board.set_focus(*((inc.lat, inc.lon) if inc else (None, None)))
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
        if event.lost is not None and event.lost != event.incident_id:
            self._report_lost(event.lost, event.incident_id, typing=self.filter_box.has_focus)

    @on(CameraGrid.CameraChosen)
    def _camera_chosen(self, event: CameraGrid.CameraChosen) -> None:
        self.apply_filter(event.camera_id)
        self.action_pane("queue")

    # --- link events ------------------------------------------------------------------

    @on(LinkStateChanged)
    def _link_state(self, event: LinkStateChanged) -> None:
        was, self.connected = self.connected, event.connected
        self._show_link(event.label, event.connected)
        self.panes.set_class(not event.connected, "-stale")
        if was and not event.connected:
            reason = plain(event.reason) or pgettext("link", "disconnected")
            self.notify(_("Lost the broker: {reason}. The picture is frozen.").format(reason=reason),
                        severity="error", timeout=8, markup=False)  # fmt: skip
        elif event.connected and not was:
            self.notify(_("Connected: catching up."), timeout=3)

    def _show_link(self, label: str, ok: bool) -> None:
        """The link's state in the status bar; ``label`` is English ("connected", ...)."""
        self._link_label = label
        self.status_bar.update_state(link=pgettext("link", label), link_ok=ok)

    @on(ReplyReceived)
    def _reply(self, event: ReplyReceived) -> None:
        self.reply_received(event.reply)

    # --- bindings -----------------------------------------------------------------------

    def action_allowed(self, action: str) -> bool | None:
        """Role and selection rules (False hides, None dims), ignoring which screen is on top."""
        if action in SUPERVISING and self.role != Role.SUPERVISOR:
            return False  # the core refuses them from any other role
        if action in CHANGING:
            if self.role == Role.OBSERVER:
                return False
            if self._pane != "queue":  # hidden: the other panes' own keys need the footer
                return False
            if self.selected_incident() is None:
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
        lines = help_rows(self, self.screen.active_bindings)
        title = _("Keys — {pane} pane ({role})").format(
            pane=pgettext("pane", self._pane), role=pgettext("role", self.role.value)
        )
        self.push_screen(HelpScreen(lines, title=title))

    def action_details(self) -> None:
        pane = self.queue_pane
        pane.add_class("-detail")
        self.detail.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_typed(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.pane_widget().focus()
        self._report_lost_while_typing()

    def action_quit_confirm(self) -> None:
        ask_quit(self)

    def action_command_palette(self) -> None:
        """Textual's palette, its prompt in the seat's language."""
        if self.use_command_palette and not CommandPalette.is_open(cast("App[object]", self)):
            placeholder = _("Search for commands…")
            self.push_screen(CommandPalette(placeholder=placeholder, id="--command-palette"))

    # --- language -------------------------------------------------------------------------

    @staticmethod
    def _filter_placeholder() -> str:
        return _("filter: p1 new gangnam scream …  (esc clears)")

    def apply_language(self) -> None:
        """Show everything in the language ``widgets.i18n.set_language`` chose, from now on.

        Call it after ``set_language`` (the palette's switch, or at start from
        ``[console] language``); before the app is mounted it only translates the
        app's own bindings, and ``on_mount`` does the rest. It translates the key
        bindings of every node (the footer and the help read them), the status bar, the
        queue (its rows, header and empty text), the detail, the hidden panes (drawn
        when shown) and the filter box's placeholder. A dialog already open keeps its
        language until it closes; toasts already shown keep theirs."""
        if not self._mounted_ui:  # the widgets are not built yet: on_mount translates them
            translate_bindings(self)
            return
        translate_tree(self)
        self.filter_box.placeholder = self._filter_placeholder()
        self._show_link(self._link_label, self.connected)
        self._describe_filter()
        self._show_news(force=True)
        self._dirty |= {"cameras", "responders", "closed", "supervisor"}
        self.store.mark_all_changed()
        self.drain()
        self.tick()
        for widget in (self.status_bar, self.queue, self.detail, self.mini_map, self.grid,
                       self.board, self.closed_view, self.shift_board):  # fmt: skip
            widget.refresh(layout=True)


def run(
    args: argparse.Namespace,
    cfg: Config,
    child_news: Callable[[], list[str]] | None = None,
    local_city: LocalCity | None = None,
) -> int:
    """`ansim console`: connect to the configured broker and run until the operator quits.

    ``child_news`` is the all-in-one launcher's report of children that died; the
    console shows each line, without knowing what a child is.
    """
    operator = getattr(args, "operator", None) or cfg.operator.id
    role = getattr(args, "role", None) or cfg.operator.role
    if districts := getattr(args, "districts", None):
        cfg = narrowed(cfg, operator, [d.strip() for d in districts.split(",") if d.strip()])
    language.apply(language.choose_language(cfg, args))
    app = AnsimApp(cfg, operator=operator, role=role, connect=True, child_news=child_news,
                   ansi_color=native_ansi(cfg.console.colors), local_city=local_city)  # fmt: skip
    result = app.run()
    return int(result or 0)
