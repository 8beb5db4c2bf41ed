"""The command palette (`:` or `ctrl+p`): every console action, by name.

The list is built from the app's bindings plus a few palette-only actions, and
filtered through ``check_action`` so an observer is never offered a command
it may not send.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Final

from textual.command import DiscoveryHit, Hit, Hits, Provider

from console.tui.keys_text import N_
from widgets.i18n import _

if TYPE_CHECKING:
    from textual.app import App

# (title, help, action) for actions that have no key of their own; English, the
# catalog's ids, translated when the palette lists them.
EXTRA: Final = (
    (N_("Clear filter"), N_("show every open incident"), "clear_filter"),
    (N_("Filter: P1 only"), N_("only priority 1 incidents"), "set_filter('p1')"),
    (
        N_("Filter: new (unacknowledged)"),
        N_("only incidents nobody acknowledged"),
        "set_filter('new')",
    ),
    (N_("Release incident"), N_("give up ownership of the selected incident"), "release"),
    (
        N_("Cancel escalation"),
        N_("take the escalation flag off the selected incident"),
        "cancel_escalation",
    ),
    (N_("Incident on scene"), N_("mark the assigned unit as on scene"), "on_scene"),
    (N_("Reassign incident…"), N_("give the selected incident to another operator"), "reassign"),
    (N_("Handover note…"), N_("a note for the next shift, in the shift report"), "handover"),
)


def palette_entries(app: App[object]) -> list[tuple[str, str, str]]:
    """(title, help, action) of every action that applies now, in the seat's language."""
    entries: list[tuple[str, str, str]] = []
    for binding in app.BINDINGS:
        if isinstance(binding, tuple) or not binding.description:
            continue
        key = app.get_key_display(binding)
        entries.append((_(binding.description), _("key: {key}").format(key=key), binding.action))
    entries.extend((_(title), _(help_text), action) for title, help_text, action in EXTRA)
    # The palette is itself a modal screen, so ask the app's role/selection rules
    # directly rather than check_action (which hides everything under a modal).
    check = getattr(app, "action_allowed", None) or (lambda name: app.check_action(name, ()))
    allowed = []
    for title, help_text, action in entries:
        name = action.split("(", 1)[0]
        if name == "command_palette":
            continue
        if check(name) is not False:
            allowed.append((title, help_text, action))
    return allowed


class AnsimCommands(Provider):
    async def discover(self) -> Hits:
        for title, help_text, action in palette_entries(self.app):
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in palette_entries(self.app):
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.app.run_action, action),
                          text=title, help=help_text)  # fmt: skip
