"""What the queue shows and which incident is selected (a mixin of the app).

The selection is an incident and news never takes it. The queue
(``widgets.alert_queue``) keeps the cursor on its incident through every re-sort;
this part of the app decides the rest: the top row is selected only while the
start-up picture arrives, a new P1 is announced in the status bar and by the bell
(``bell.BellPolicy``) without moving the cursor, `space` jumps to it, and when the
selected incident leaves the queue (closed, filtered out) a toast says which one
took its place. The filter lives here too: it is what most often hides a selection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from console.tui.actions import describe
from console.tui.bell import BellPolicy, new_p1
from console.tui.notices import incident_notices
from console.tui.state_store import Filter
from protocols.schemas import IncidentState, IncidentStatus
from widgets.format import district_name, plain
from widgets.i18n import _

if TYPE_CHECKING:
    from textual.app import App
    from textual.containers import Vertical
    from textual.widget import Widget
    from textual.widgets import Input

    from console.config import Config
    from console.tui.panes import Searchable
    from console.tui.state_store import StateStore
    from widgets.alert_queue import AlertQueue
    from widgets.status_bar import StatusBar

    _Base = App[int]
else:
    _Base = object


class SelectionWatch(_Base):
    """Selection and news; the app provides the attributes annotated here."""

    store: StateStore
    operator: str
    cfg: Config
    queue: AlertQueue
    status_bar: StatusBar
    filter_box: Input
    queue_pane: Vertical
    connected: bool
    clock: Callable[[], float]
    bell_policy: BellPolicy
    _connect: bool
    _last_seen: dict[str, IncidentState]  # open incidents as last drawn
    _fresh_p1: list[str]  # new P1s announced and not yet seen to, newest last
    _lost_while_typing: str | None
    _queue_query: str

    if TYPE_CHECKING:  # from the other parts of the app (a stub here would shadow them)

        def _searched(self) -> Searchable | None: ...
        def filter_text(self) -> str: ...
        def pane_widget(self) -> Widget: ...
        def action_pane(self, pane: str) -> None: ...

    def _show_selected(self) -> None:
        raise NotImplementedError

    def drain(self) -> None:
        raise NotImplementedError

    def _end_start_up(self) -> None:
        """The top row is selected only while the start-up picture arrives."""
        if (
            self.queue.pinned_to_top
            and not self.store.resyncing
            and (self.connected or not self._connect)
        ):
            self.queue.unpin()

    def hold_selection(self) -> None:
        self.queue.unpin()

    def _watch(self, changed: set[str]) -> None:
        """Announce new P1s and ring the bell (one ring a frame at most)."""
        incidents, last = self.store.incidents, self._last_seen
        if self.queue.pinned_to_top:  # the start-up picture: what is there is not news
            for incident_id in changed:
                inc = incidents.get(incident_id)
                if inc is None or inc.status.is_closed:
                    last.pop(incident_id, None)
                else:
                    self._tell(last.get(incident_id), inc)  # an alert on ours is, once
                    last[incident_id] = inc
            return
        now = self.clock()
        ring: str | None = None
        for incident_id in changed:
            after = incidents.get(incident_id)
            if after is None or after.status.is_closed:
                last.pop(incident_id, None)
                continue
            before = last.get(incident_id)
            last[incident_id] = after
            if before is after:
                continue
            self._tell(before, after)
            if after.status == IncidentStatus.NEW and new_p1(before, after):
                self._fresh_p1.append(incident_id)
            if ring is None:
                ring = self.bell_policy.ring_for(before, after, now)
        if ring is not None:
            self.bell()
            if ring == "escalation":  # its own pattern: two bells
                self.set_timer(0.3, self.bell)
        self._show_news()

    def _tell(self, before: IncidentState | None, after: IncidentState) -> None:
        """The core's alerts on an incident (a unit left it) that this operator must hear."""
        for text in incident_notices(self.operator, before, after):
            self.notify(text, title=_("Unit left"), severity="warning", timeout=15, markup=False)

    def _waiting_p1(self) -> list[str]:
        """The announced new P1s still new, open and not selected; oldest first."""
        incidents, selected = self.store.incidents, self.queue.selected_id
        self._fresh_p1 = [
            i for i in dict.fromkeys(self._fresh_p1)
            if i != selected and (inc := incidents.get(i)) is not None
            and inc.status == IncidentStatus.NEW and inc.priority == 1
        ]  # fmt: skip
        return self._fresh_p1

    def _show_news(self, *, force: bool = False) -> None:
        waiting = self._waiting_p1()
        news = ""
        if waiting:
            inc = self.store.incidents[waiting[-1]]
            more = f" +{len(waiting) - 1}" if len(waiting) > 1 else ""
            news = _("NEW P1 {incident} {district}{more} [{key}]").format(
                incident=plain(inc.id), district=plain(inc.district, 20), more=more,
                key=self._jump_key(),
            )  # fmt: skip
        # A repaint of the bar only when the news changed (or its language did: ``force``).
        if force or news != self.status_bar.news:
            self.status_bar.update_state(news=news)

    def _jump_key(self) -> str:
        for key, active in self.active_bindings.items():
            if active.binding.action == "jump_new_p1":
                return self.get_key_display(active.binding.with_key(key))
        return "space"

    def action_jump_new_p1(self) -> None:
        """Select the newest announced P1 (or the first new P1 in the queue)."""
        waiting = self._waiting_p1()
        target = waiting[-1] if waiting else self._first_new_p1()
        if target is None:
            self.notify(_("No new P1 waiting."), timeout=3)
            return
        if self.queue.rows.index_of(target) is None and self.store.filter.active:
            self.apply_filter("")
            self.notify(_("Filter cleared to show {incident}.").format(incident=plain(target)),
                        timeout=4, markup=False)  # fmt: skip
        if self.queue.select(target):
            self.action_pane("queue")
            self._show_selected()

    def _first_new_p1(self) -> str | None:
        rows = self.queue.rows
        for index in range(len(rows)):
            inc = rows[index]
            if inc.priority != 1 and not inc.escalated:
                break  # past the P1s (an escalated P2 sorts among them)
            if inc.priority == 1 and inc.status == IncidentStatus.NEW:
                if inc.id != self.queue.selected_id:
                    return inc.id
        return None

    def _report_lost(self, lost: str, now_on: str | None, *, typing: bool = False) -> None:
        """Say why the selection moved: the operator did not move it. ``typing``: the
        operator is typing a filter; what it hides is said once they are done."""
        inc = self.store.incidents.get(lost)
        if inc is None:
            why = _("{incident} left the queue")
        elif inc.status == IncidentStatus.RESOLVED:
            why = _("{incident} was resolved")
        elif inc.status == IncidentStatus.FALSE_ALARM:
            why = _("{incident} was closed as a false alarm")
        else:
            why = _("{incident} is hidden by the filter")
            if typing:
                self._lost_while_typing = self._lost_while_typing or lost
                return
        target = self.store.incidents.get(now_on) if now_on else None
        where = (
            _("now on {incident}").format(incident=describe(target))
            if target
            else _("no incident selected")
        )
        self.notify(f"{why.format(incident=plain(lost))}: {where}", title=_("Selection moved"),
                    severity="warning", timeout=6, markup=False)  # fmt: skip

    def _report_lost_while_typing(self) -> None:
        lost, self._lost_while_typing = self._lost_while_typing, None
        if lost is not None and self.queue.rows.index_of(lost) is None:
            self._report_lost(lost, self.queue.selected_id)

    # --- the filter ----------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.filter_box
        box.value = self.filter_text()  # each pane keeps its own filter
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
        self._queue_query = text
        self.store.set_filter(Filter.parse(text, self.store.districts()) if text else Filter())
        self.status_bar.update_state(filter_text=self.store.filter.describe())
        self._describe_filter()
        self.drain()

    def _describe_filter(self) -> None:
        """What the queue says when it is empty: why (the filter), in the seat's language."""
        typed = plain(" ".join(self._queue_query.split()), 60)
        scope = self.cfg.scope_of(self.operator)
        if self.store.filter.active:
            text = _("No incident matches filter '{typed}' — esc clears").format(typed=typed)
        elif scope is not None:  # the status bar counts the partition's: say why it differs
            names = ", ".join(district_name(d) for d in sorted(scope))
            text = _("No open incident in {districts}.").format(districts=plain(names, 60))
        else:
            text = _("No open incident.")
        self.queue.set_empty_text(text)

    def action_back_out(self) -> None:
        box = self.filter_box
        searched = self._searched()
        if searched is not None:  # the units or the closed list: their own search
            if box.has_focus or searched.query_text:
                box.display = False
                box.value = ""
                searched.set_query("")
                self.status_bar.update_state(filter_text="")
                self.pane_widget().focus()
            return
        pane = self.queue_pane
        if box.has_focus or (self.store.filter.active and not pane.has_class("-detail")):
            box.display = False
            self._lost_while_typing = None  # the filter is gone: nothing stays hidden
            self.apply_filter("")
            self.queue.focus()
        elif pane.has_class("-detail"):
            pane.remove_class("-detail")
            self.queue.focus()
